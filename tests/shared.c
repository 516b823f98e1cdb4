/*
 * shared.c - a program that includes only the public header and links the
 * shared library: the exported API, the inline fast paths and the
 * initial-exec TLS work from outside the library.
 */
#include <errno.h>
#include <pthread.h>

#include "refstore.h"
#include "tap.h"

struct pair {
	struct pair *next;
	long v;
};

static void pair_traverse(void *obj, rs_visit_fn visit, void *arg)
{
	visit(((struct pair *)obj)->next, arg);
}

static const rs_type pair_type = {"pair", sizeof(struct pair), pair_traverse,
				  NULL, NULL, 0};
static struct pair *root;

static void *worker(void *arg)
{
	long i, sum = 0;
	struct pair *p;

	(void)arg;
	rs_thread_attach();
	for (i = 0; i < 10000; i++) {
		p = (struct pair *)rs_get(&root);
		if (p)
			sum += p->v;
		rs_safepoint();
	}
	rs_thread_detach();
	return (void *)sum;
}

int main(void)
{
	struct pair *a, *b, *p;
	struct rs_stats st;
	pthread_t t;
	void *sum;

	plan(8);
	ok(rs_init(NULL) == 0 && rs_thread_attach() == 0, "init and attach");
	a = (struct pair *)rs_new(&pair_type);
	b = (struct pair *)rs_new(&pair_type);
	ok(a && b, "rs_new through the shared library");
	a->v = 1;
	b->v = 2;
	a->next = b;
	ok(rs_set_steal(&root, a) == 0, "rs_set_steal");
	pthread_create(&t, NULL, worker, NULL);
	rs_offline();
	pthread_join(t, &sum);
	rs_online();
	is_long((long)sum, 10000L, "another thread borrowed the root 10000 times");
	p = (struct pair *)rs_new(&pair_type);
	rs_incref(p);
	is_long(rs_refcount(p), 2L, "inline owner incref");
	rs_decref(p);
	is_long(rs_refcount(p), 1L, "inline owner decref of a private object");
	rs_decref(p);
	rs_clear(&root);
	rs_stats(&st);
	ok(st.live_objects >= 2, "objects live before shutdown");
	is_long(rs_shutdown(), 0L, "shutdown frees everything");
	return exit_status();
}
