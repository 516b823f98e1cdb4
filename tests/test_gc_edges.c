/*
 * test_gc_edges.c - regressions from the review of the collector and weak
 * references: calls from destroy callbacks while another thread holds the
 * collector role, weak references around rs_immortalize, weak references
 * made to garbage by a destroy callback.
 */
#include <errno.h>
#include <stdio.h>

#include "testlib.h"

/* ---- a destroy callback asks for the role while a finalizer holds it ---- */

static int in_fin, fin_done;
static long edeadlk_result, edeadlk_errno;

static void slow_finalize(void *obj)
{
	(void)obj;
	__atomic_store_n(&in_fin, 1, __ATOMIC_RELAXED);
	/* hold the role until the other thread's destroy callback ran */
	while (!__atomic_load_n(&fin_done, __ATOMIC_ACQUIRE))
		usleep(1000);
}

static const rs_type fin_type = {
	"fin", sizeof(struct node), node_traverse, slow_finalize, node_destroy, 0,
};

static void role_destroy(void *obj)
{
	(void)obj;
	errno = 0;
	edeadlk_result = rs_gc_get_freeze_count();
	edeadlk_errno = errno;
	__atomic_store_n(&fin_done, 1, __ATOMIC_RELEASE);
}

static const rs_type role_type = {"role", 16, NULL, NULL, role_destroy, 0};

static void *other(void *arg)
{
	void *x;

	(void)arg;
	rs_thread_attach();
	while (!__atomic_load_n(&in_fin, __ATOMIC_RELAXED))
		rs_safepoint();
	x = rs_new(&role_type);
	rs_decref(x);	/* destroyed at the next safepoint, in a cascade */
	while (!__atomic_load_n(&fin_done, __ATOMIC_ACQUIRE))
		rs_safepoint();
	rs_thread_detach();
	return NULL;
}

static void test_destroy_waits_not(void)
{
	struct node *a = rs_new(&fin_type), *b = rs_new(&fin_type);
	pthread_t th;
	long n;

	a->kid[0] = rs_incref(b);
	b->kid[0] = rs_incref(a);
	rs_decref(b);
	rs_decref(a);
	pthread_create(&th, NULL, other, NULL);
	alarm(20);	/* a deadlock fails the test instead of hanging it */
	n = rs_gc_collect(0);
	alarm(0);
	rs_offline();
	pthread_join(th, NULL);
	rs_online();
	is(edeadlk_result, -1L, "a destroy callback's rs_gc_get_freeze_count "
	   "while another thread collects: -1");
	is(edeadlk_errno, (long)EDEADLK, "... EDEADLK, not a deadlock");
	ok(n >= 0, "the collection finished (%ld)", n);
	rs_gc_collect(2);
}

/* ---- weak references around rs_immortalize ---- */

static void test_immortal_links(void)
{
	struct node *t = node_new(1);
	void *w0 = rs_weakref_new(t, NULL, NULL);
	void *w1 = rs_weakref_new(t, NULL, NULL);
	void *w2, *got;

	ok(rs_immortalize(t) == 0, "immortalized after two weak references");
	w2 = rs_weakref_new(t, NULL, NULL);
	ok(w2 != NULL, "a third one after");
	rs_decref(w2);
	rs_safepoint();
	rs_safepoint();
	got = rs_weakref_get(w0);
	ok(got == t, "the first still gets the target");
	rs_decref(got);
	rs_decref(w1);
	rs_safepoint();
	rs_safepoint();
	rs_decref(w0);
	rs_safepoint();
	rs_safepoint();
	is(rs_heap_verify(), 0L, "heap consistent after all three died");
}

/* ---- a destroy callback of garbage makes a weak reference to garbage ---- */

struct pair {
	struct pair *other;
	long magic;
};

static void *made_wr;
static long made_errno;

static void pair_traverse(void *obj, rs_visit_fn visit, void *arg)
{
	visit(((struct pair *)obj)->other, arg);
}

static void pair_destroy(void *obj)
{
	struct pair *p = obj;

	if (!made_wr && !made_errno) {
		errno = 0;
		made_wr = rs_weakref_new(p->other, NULL, NULL);
		made_errno = errno;
	}
}

static const rs_type pair_type = {
	"pair", sizeof(struct pair), pair_traverse, NULL, pair_destroy, 0,
};

static void test_weakref_to_garbage(void)
{
	struct pair *a = rs_new(&pair_type), *b = rs_new(&pair_type);

	a->other = rs_incref(b);
	b->other = rs_incref(a);
	rs_decref(a);
	rs_decref(b);
	is(rs_gc_collect(0), 2L, "a garbage pair");
	ok(made_wr == NULL && made_errno == EINVAL,
	   "its destroy cannot make a weak reference to the other: EINVAL");
	is(rs_heap_verify(), 0L, "heap consistent");
}

int main(void)
{
	rs_config cfg = {0};

	cfg.report_leaks = -1;	/* the immortal object stays */
	ok(rs_init(&cfg) == 0 && rs_thread_attach() == 0, "init and attach");
	rs_gc_disable();
	test_destroy_waits_not();
	test_immortal_links();
	test_weakref_to_garbage();
	rs_shutdown();
	return done_testing();
}
