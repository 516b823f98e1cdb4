/*
 * test_chain.c - destruction cascades without recursion: a 10-million-long
 * chain and a deep binary tree are freed on a thread with a 256 KiB stack
 * (any recursion per level would overflow it), from the private path and
 * from the published (deferred) path.
 */
#include "testlib.h"

#ifdef RS_PLAIN_MALLOC	/* sanitizer builds: same shape, less memory */
#define CHAIN 1000000L
#define DEPTH 17
#else
#define CHAIN 10000000L
#define DEPTH 20
#endif

static struct node *root;

static struct node *chain(long n)
{
	struct node *head = NULL, *x;
	long i;

	for (i = 0; i < n; i++) {
		x = node_new(i);
		if (!x)
			bail_out("out of memory building the chain");
		x->kid[0] = head;	/* steals the reference */
		head = x;
	}
	return head;
}

static struct node *tree(int depth)
{
	/* built level by level from an explicit stack: no recursion here either */
	struct node **level, **next;
	long width = 1L << depth, i;
	int d;

	level = (struct node **)malloc((size_t)width * sizeof(*level));
	next = (struct node **)malloc((size_t)width * sizeof(*next));
	for (i = 0; i < width; i++)
		level[i] = node_new(depth);
	for (d = depth - 1; d >= 0; d--) {
		width >>= 1;
		for (i = 0; i < width; i++) {
			next[i] = node_new(d);
			next[i]->kid[0] = level[2 * i];
			next[i]->kid[1] = level[2 * i + 1];
		}
		memcpy(level, next, (size_t)width * sizeof(*level));
	}
	root = level[0];
	free(level);
	free(next);
	return root;
}

static void *run(void *arg)
{
	long before, live;
	uint64_t t0;
	struct node *head;

	(void)arg;
	rs_thread_attach();
	live = live_objects();

	head = chain(CHAIN);
	before = destroyed();
	t0 = now_ns();
	rs_decref(head);
	rs_safepoint();
	diag("private chain of %ld freed in %.0f ms", CHAIN, (now_ns() - t0) / 1e6);
	is(destroyed() - before, CHAIN, "private chain of %ld freed at the safepoint",
	   CHAIN);

	head = chain(CHAIN / 10);
	rs_set_steal(&root, head);	/* published: the deferred path */
	before = destroyed();
	rs_clear(&root);
	settle_until(destroyed() - before == CHAIN / 10, 20000);
	is(destroyed() - before, CHAIN / 10, "published chain freed after a grace period");

	tree(DEPTH);
	before = destroyed();
	rs_decref(root);
	rs_safepoint();
	is(destroyed() - before, (2L << DEPTH) - 1, "binary tree of depth %d freed",
	   DEPTH);
	is(live_objects(), live, "nothing left");
	rs_thread_detach();
	return NULL;
}

int main(void)
{
	pthread_attr_t attr;
	pthread_t t;

	plan(5);
	rs_init(NULL);
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 << 10);
	if (pthread_create(&t, &attr, run, NULL))
		bail_out("pthread_create");
	pthread_join(t, NULL);
	is(rs_shutdown(), 0L, "shutdown clean");
	return exit_status();
}
