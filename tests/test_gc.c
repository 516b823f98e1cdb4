/*
 * test_gc.c - the cycle collector's algorithm (lib/gc.c), against the
 * semantics of docs/api.md ("The cycle collector"); its public controls are
 * tested in test_gc_api.c:
 *
 *   - cycles of 1 (self-reference), 2, 3, 100 and 100,000 objects, cycles
 *     reachable only from garbage, garbage with acyclic tails, tracked and
 *     untracked: exact return values of rs_gc_collect and destroy counts;
 *   - what must survive: cycles held by C references, by untracked objects,
 *     by live objects through long chains, by an older generation;
 *   - finalizers (PEP 442): resurrection, allocation, new cycles, dropping
 *     references, rs_gc_collect from inside, at most once per object;
 *   - collections while other threads mutate the graph, go offline, hold
 *     pending decrements or cascade.
 *
 * Automatic collection is disabled except in the cases that test it, so
 * every return value is exact.
 */
#include "gclib.h"

#if GC_SANITIZED
#define BIG 30000L
#define MUTATE_MS 800
#else
#define BIG 100000L
#define MUTATE_MS 1500
#endif

static void *gslot;	/* a shared slot */

/* ------------------------------------------------------------------------ */
/* Cycles that must be collected                                            */
/* ------------------------------------------------------------------------ */

static void collect_ring(long n, int gen)
{
	long before = destroyed(), r;
	struct node *x = ring(&node_type, n);

	rs_decref(x);
	r = rs_gc_collect(gen);
	is(r, n, "ring of %ld collected by rs_gc_collect(%d): return value", n, gen);
	is(destroyed() - before, n, "ring of %ld: %ld destroyed", n, n);
}

static void test_cycles(void)
{
	struct node *x1, *x2, *y1, *y2, *a, *tail, *c;
	long before, r, lbefore;
	uint64_t t0;

	is(gc_drain(), 0L, "nothing to collect at the start");
	collect_ring(1, 0);
	collect_ring(2, 0);
	collect_ring(3, 1);
	collect_ring(100, 2);
	t0 = now_ns();
	collect_ring(BIG, 0);
	diag("ring of %ld built and collected in %.0f ms", BIG,
	     (now_ns() - t0) / 1e6);

	/* two garbage cycles, the second reachable only from the first */
	before = destroyed();
	x1 = obj_new(&node_type, 1);
	x2 = obj_new(&node_type, 2);
	y1 = obj_new(&node_type, 3);
	y2 = obj_new(&node_type, 4);
	x1->kid[0] = (struct node *)rs_incref(x2);
	x2->kid[0] = (struct node *)rs_incref(x1);
	x1->kid[1] = (struct node *)rs_incref(y1);
	y1->kid[0] = (struct node *)rs_incref(y2);
	y2->kid[0] = (struct node *)rs_incref(y1);
	rs_decref(x1);
	rs_decref(x2);
	rs_decref(y1);
	rs_decref(y2);
	is(rs_gc_collect(0), 4L, "a cycle reachable only from a garbage cycle: both found");
	is(destroyed() - before, 4L, "... and the 4 objects destroyed");

	/* a garbage cycle with a long acyclic tracked tail */
	before = destroyed();
	a = ring(&node_type, 2);
	a->kid[1] = chain(&node_type, BIG, &tail);
	rs_decref(a);
	is(rs_gc_collect(0), BIG + 2, "a 2-cycle with a tail of %ld tracked objects", BIG);
	is(destroyed() - before, BIG + 2, "... all destroyed");

	/* a garbage cycle holding an untracked leaf: the leaf is given back */
	before = destroyed();
	lbefore = leaves_gone();
	a = ring(&node_type, 2);
	a->kid[1] = (struct node *)rs_new(&leaf_type);
	rs_decref(a);
	is(rs_gc_collect(0), 2L, "a 2-cycle holding an untracked leaf: 2 found");
	is(destroyed() - before, 2L, "... 2 destroyed");
	settle_until(leaves_gone() - lbefore == 1, 5000);
	is(leaves_gone() - lbefore, 1L, "... and the leaf freed once its reference was given back");

	/* published cycles: every decrement is deferred, collect applies them */
	before = destroyed();
	a = ring(&node_type, 3);
	rs_set_steal(&gslot, a);	/* publishes the ring */
	rs_clear(&gslot);		/* deferred decrement */
	is(rs_gc_collect(0), 3L, "a published 3-cycle dropped just before rs_gc_collect: "
	   "the pending decrement is applied first");
	is(destroyed() - before, 3L, "... 3 destroyed");

	/* a garbage cycle referring to a live object gives its reference back */
	before = destroyed();
	c = obj_new(&node_type, 7);
	a = ring(&node_type, 2);
	a->kid[1] = (struct node *)rs_incref(c);
	rs_decref(a);
	is(rs_refcount(c), 2L, "live object counted twice (C and the cycle)");
	r = rs_gc_collect(0);
	is(r, 2L, "garbage cycle referring to a live object: 2 found");
	settle_until(rs_refcount(c) == 1, 5000);
	is(rs_refcount(c), 1L, "the live object's count is back to 1");
	is(c->magic, NODE_ALIVE, "the live object is alive");
	rs_decref(c);
	rs_safepoint();
	is(destroyed() - before, 3L, "and freed by reference counting when dropped");
	is(gc_drain(), 0L, "nothing left to collect");
}

/* ------------------------------------------------------------------------ */
/* What must survive                                                        */
/* ------------------------------------------------------------------------ */

static void test_survivors(void)
{
	struct node *l, *a, *h, *head, *tail;
	long before = destroyed(), hbefore;

	/* held by a live object held by C */
	l = obj_new(&node_type, 1);
	l->kid[0] = ring(&node_type, 2);
	is(rs_gc_collect(2), 0L, "a cycle hanging off a live object survives collect(2)");
	is(destroyed() - before, 0L, "... nothing destroyed");
	is(l->kid[0]->magic, NODE_ALIVE, "... its members are alive");
	is(l->kid[0]->kid[0]->magic, NODE_ALIVE, "... both of them");

	/* a C reference to a member */
	a = ring(&node_type, 3);
	is(rs_gc_collect(2), 0L, "a cycle with a C reference to a member survives");
	is(rs_refcount(a), 2L, "... member count unchanged (C + cycle)");
	rs_decref(a);
	rs_decref(l);	/* l dies by refcounting: its ring becomes garbage */
	rs_safepoint();
	is(destroyed() - before, 1L, "dropping the holder frees only the holder");
	is(rs_gc_collect(2), 5L, "then both cycles are garbage: 5 found");
	is(destroyed() - before, 6L, "... and destroyed");

	/* held by an untracked object (RS_TYPE_NO_CYCLES with traverse) */
	before = destroyed();
	hbefore = holders_gone();
	h = obj_new(&holder_type, 1);
	h->kid[0] = ring(&node_type, 2);
	is(rs_gc_is_tracked(h), 0, "a RS_TYPE_NO_CYCLES object is not tracked");
	is(rs_gc_collect(2), 0L, "a cycle referenced only by an untracked object survives");
	rs_decref(h);
	settle_until(holders_gone() - hbefore == 1, 5000);
	is(holders_gone() - hbefore, 1L, "the untracked holder is freed by refcounting");
	is(destroyed() - before, 0L, "... its cycle is not");
	is(rs_gc_collect(2), 2L, "and is collected next");
	is(destroyed() - before, 2L, "... 2 destroyed");

	/* reachable from a live object through a long chain */
	before = destroyed();
	head = chain(&node_type, BIG, &tail);
	tail->kid[1] = ring(&node_type, 2);
	is(rs_gc_collect(0), 0L, "a cycle at the end of a chain of %ld from a C reference "
	   "survives", BIG);
	is(rs_gc_collect(2), 0L, "... also in a full collection");
	rs_decref(head);
	is(rs_gc_collect(2), 2L, "the chain dropped: only the cycle is found");
	settle_until(destroyed() - before == BIG + 2, 10000);
	is(destroyed() - before, BIG + 2, "chain (refcounting) and cycle destroyed");
	is(gc_drain(), 0L, "nothing left to collect");
}

/* ------------------------------------------------------------------------ */
/* ------------------------------------------------------------------------ */
/* Finalizers                                                               */
/* ------------------------------------------------------------------------ */

static void test_finalizers(void)
{
	struct rs_gc_stats st0, st1;
	struct node *a, *l;
	long before, fbefore, r, here;
	int i;

	/* a fin object freed by plain refcounting gets destroy only */
	before = destroyed();
	fbefore = finalized();
	a = obj_new(&fin_type, FIN_NONE);
	rs_decref(a);
	rs_safepoint();
	is(destroyed() - before, 1L, "fin object dropped: destroyed by refcounting");
	is(finalized() - fbefore, 0L, "... without its finalizer");

	/* plain garbage with finalizers */
	before = destroyed();
	fbefore = finalized();
	here = fin_here;
	rs_decref(ring_mode(&fin_type, 3, FIN_NONE));
	is(rs_gc_collect(0), 3L, "3-cycle with finalizers: 3 found");
	is(finalized() - fbefore, 3L, "... 3 finalizers ran");
	is(fin_here - here, 3L, "... on the collecting thread");
	is(destroyed() - before, 3L, "... 3 destroyed");

	/* resurrection into a plain global */
	before = destroyed();
	fbefore = finalized();
	a = ring_mode(&fin_type, 2, FIN_NONE);
	a->value = FIN_RESURRECT;
	rs_decref(a);
	rs_gc_get_stats(0, &st0);
	r = rs_gc_collect(0);
	rs_gc_get_stats(0, &st1);
	diag("collect with a resurrecting finalizer returned %ld", r);
	ok(r >= 0 && r <= 2, "resurrection: collect returned %ld (0..2)", r);
	is(finalized() - fbefore, 2L, "both finalizers ran");
	is_ptr(fin_saved, a, "the finalizer resurrected its object");
	is(destroyed() - before, 0L, "the resurrected object and what it reaches survive");
	is(st1.collected - st0.collected, (uint64_t)0, "stats: nothing counted as collected");
	is(a->magic, NODE_ALIVE, "resurrected object intact");
	is(a->kid[0]->magic, NODE_ALIVE, "... and the other member");
	is(rs_gc_collect(2), 0L, "resurrected cycle held by the global: not garbage");
	is(finalized() - fbefore, 2L, "no finalizer ran again");
	rs_decref(fin_saved);
	fin_saved = NULL;
	is(rs_gc_collect(2), 2L, "global dropped: the cycle is found again");
	is(finalized() - fbefore, 2L, "... finalizers do not run a second time");
	is(destroyed() - before, 2L, "... and it is freed");

	/* an object finalized once, garbage again with an unfinalized one:
	 * only the new one's finalizer runs */
	before = destroyed();
	fbefore = finalized();
	rs_decref(ring_mode(&fin_type, 1, FIN_RESURRECT));
	rs_gc_collect(0);
	a = fin_saved;		/* resurrected, finalized; we take the reference */
	fin_saved = NULL;
	l = obj_new(&fin_type, FIN_NONE);
	rs_set(&a->kid[1], l);
	rs_set_steal(&l->kid[0], a);	/* a <-> l, a still self-referencing */
	rs_decref(l);
	is(rs_gc_collect(2), 2L, "finalized and unfinalized objects in one garbage: 2 found");
	is(finalized() - fbefore, 2L, "... only the unfinalized one's finalizer ran");
	is(destroyed() - before, 2L, "... both freed");

	/* resurrection through rs_set into a shared slot (publishes it) */
	before = destroyed();
	fbefore = finalized();
	rs_decref(ring_mode(&fin_type, 1, FIN_RESURRECT_SET));
	rs_gc_collect(0);
	is(finalized() - fbefore, 1L, "self-referencing object finalized");
	ok(rs_get(&fin_slot) != NULL, "... resurrected into a shared slot");
	is(destroyed() - before, 0L, "... not destroyed");
	rs_clear(&fin_slot);	/* deferred */
	is(rs_gc_collect(2), 1L, "slot cleared: found again (pending decrement applied)");
	is(finalized() - fbefore, 1L, "... not finalized again");
	is(destroyed() - before, 1L, "... freed");

	/* resurrect and unlink: later freed by refcounting, no second finalize */
	before = destroyed();
	fbefore = finalized();
	rs_decref(ring_mode(&fin_type, 1, FIN_RESURRECT_UNLINK));
	rs_gc_collect(0);
	is(finalized() - fbefore, 1L, "resurrect+unlink: finalized once");
	settle_until(rs_refcount(fin_saved) == 1, 2000);
	is(rs_refcount(fin_saved), 1L, "... survives with only the global's reference");
	is(destroyed() - before, 0L, "... not destroyed");
	rs_decref(fin_saved);
	fin_saved = NULL;
	settle_until(destroyed() - before == 1, 5000);
	is(destroyed() - before, 1L, "dropped: freed by refcounting");
	is(finalized() - fbefore, 1L, "... without a second finalizer run");

	/* finalizer that allocates */
	before = destroyed();
	fin_nalloc = 0;
	rs_decref(ring_mode(&fin_type, 2, FIN_ALLOC));
	is(rs_gc_collect(0), 2L, "finalizers that allocate: 2 found");
	is(fin_nalloc, 2, "... each allocated an object");
	is(destroyed() - before, 2L, "... the garbage destroyed");
	ok(fin_alloc[0]->magic == NODE_ALIVE && fin_alloc[1]->magic == NODE_ALIVE,
	   "... what they allocated is alive");
	for (i = 0; i < fin_nalloc; i++)
		rs_decref(fin_alloc[i]);
	rs_safepoint();
	is(destroyed() - before, 4L, "... and freed when dropped");

	/* finalizer that creates a new garbage cycle */
	before = destroyed();
	rs_decref(ring_mode(&fin_type, 1, FIN_NEW_CYCLE));
	is(rs_gc_collect(0), 1L, "finalizer creating a cycle: the finalized object found");
	is(destroyed() - before, 1L, "... destroyed");
	is(rs_gc_collect(2), 2L, "the new cycle is found by the next collection");
	is(destroyed() - before, 3L, "... destroyed");

	/* finalizer that calls rs_gc_collect */
	before = destroyed();
	fin_collect_ret = -99;
	rs_decref(ring_mode(&fin_type, 2, FIN_COLLECT));
	is(rs_gc_collect(0), 2L, "finalizer calling rs_gc_collect: the outer one finds 2");
	is(fin_collect_ret, 0L, "... the inner call returned 0");
	is(destroyed() - before, 2L, "... 2 destroyed");

	/* finalizer that drops references */
	before = destroyed();
	rs_decref(ring_mode(&fin_type, 1, FIN_DROP));
	r = rs_gc_collect(0);
	ok(r == 0 || r == 1, "self-reference dropped by its finalizer: returned %ld", r);
	settle_until(destroyed() - before == 1, 5000);
	is(destroyed() - before, 1L, "... destroyed exactly once");
	before = destroyed();
	a = ring_mode(&fin_type, 2, FIN_NONE);
	a->value = FIN_DROP;	/* a drops its reference to the other member */
	rs_decref(a);
	is(rs_gc_collect(0), 2L, "2-cycle, one finalizer breaks it: 2 found");
	settle_until(destroyed() - before == 2, 5000);
	is(destroyed() - before, 2L, "... both destroyed once");

	/* finalizers of garbage referring to a live object */
	before = destroyed();
	l = obj_new(&node_type, 5);
	a = ring_mode(&fin_type, 2, FIN_NONE);
	a->kid[1] = (struct node *)rs_incref(l);
	rs_decref(a);
	is(rs_gc_collect(0), 2L, "fin garbage holding a live object: 2 found");
	settle_until(rs_refcount(l) == 1, 5000);
	is(rs_refcount(l), 1L, "... reference given back");
	rs_decref(l);
	rs_safepoint();
	is(destroyed() - before, 3L, "... all freed");

	is(fin_bad, 0L, "no finalizer ran twice on one object or saw a dead one");
	is(gc_drain(), 0L, "nothing left to collect");
}

/* ------------------------------------------------------------------------ */
/* ------------------------------------------------------------------------ */
/* Decrements pending on an offline thread                                  */
/* ------------------------------------------------------------------------ */

static int dropper_state;	/* 1: dropped and offline; 2: may go on */

static void *offline_dropper(void *arg)
{
	rs_thread_attach();
	rs_decref(arg);		/* published: logged, applied much later */
	rs_offline();
	__atomic_store_n(&dropper_state, 1, __ATOMIC_RELEASE);
	while (__atomic_load_n(&dropper_state, __ATOMIC_ACQUIRE) != 2)
		usleep(1000);
	rs_online();
	rs_thread_detach();
	return NULL;
}

static void test_pending_elsewhere(void)
{
	struct node *a;
	long before = destroyed();
	pthread_t t;

	a = ring(&node_type, 2);
	rs_publish(a);
	start_thread(&t, offline_dropper, a);	/* hands our reference over */
	while (!__atomic_load_n(&dropper_state, __ATOMIC_ACQUIRE)) {
		rs_offline();
		usleep(1000);
		rs_online();
	}
	is(rs_gc_collect(0), 2L, "a cycle whose last decrement is pending on an offline "
	   "thread: found");
	is(destroyed() - before, 2L, "... destroyed");
	__atomic_store_n(&dropper_state, 2, __ATOMIC_RELEASE);
	join_offline(t);
}

/* ------------------------------------------------------------------------ */
/* Cycles whose counts live on other threads (biased counts)                */
/* ------------------------------------------------------------------------ */

static struct node *xslot;
static int xstate;

static void xwait(int s)
{
	while (__atomic_load_n(&xstate, __ATOMIC_ACQUIRE) != s)
		usleep(500);
}

static void xset(int s)
{
	__atomic_store_n(&xstate, s, __ATOMIC_RELEASE);
}

/* Mode 0: publishes a node, keeps its own counted reference while offline,
 * drops it when told.  Mode 1: builds a 2-cycle (counts in its local
 * fields), publishes it, drops its references and exits. */
static void *xowner(void *arg)
{
	struct node *a;

	rs_thread_attach();
	if (arg) {
		a = ring(&node_type, 2);
		rs_set_steal(&xslot, a);
		rs_thread_detach();
		return NULL;
	}
	a = obj_new(&node_type, 1);
	rs_set(&xslot, a);
	rs_offline();
	xset(1);
	xwait(2);
	rs_online();
	rs_decref(a);
	rs_thread_detach();
	return NULL;
}

static void test_other_owners(void)
{
	struct node *a, *b;
	long before;
	pthread_t t;

	gc_drain();
	before = destroyed();
	xset(0);
	start_thread(&t, xowner, NULL);
	rs_offline();
	xwait(1);
	rs_online();
	a = rs_get(&xslot);
	b = obj_new(&node_type, 2);
	rs_set(&a->kid[0], b);
	rs_set(&b->kid[0], a);
	rs_decref(b);
	rs_clear(&xslot);
	is(rs_gc_collect(2), 0L, "a cycle also held by its offline owner thread survives");
	is(destroyed() - before, 0L, "... nothing destroyed");
	xset(2);
	join_offline(t);
	is(rs_gc_collect(2), 2L, "owner dropped its reference and exited: collected");
	is(destroyed() - before, 2L, "... destroyed");

	before = destroyed();
	start_thread(&t, xowner, (void *)1);
	join_offline(t);
	rs_clear(&xslot);
	is(rs_gc_collect(0), 2L, "a cycle built (local counts) by a thread that exited: "
	   "collected");
	is(destroyed() - before, 2L, "... destroyed");
}

/* ------------------------------------------------------------------------ */
/* Collections during a long cascade on another thread                       */
/* ------------------------------------------------------------------------ */

/* Each collection examines the whole chain and the cascade stops for it
 * every 1024 objects: the time grows as the square of the length. */
#if GC_SANITIZED
#define CASCADE 50000L
#else
#define CASCADE 200000L
#endif

static int cascade_state;

static void *cascader(void *arg)
{
	struct node *head, *tail;

	(void)arg;
	rs_thread_attach();
	head = chain(&node_type, CASCADE, &tail);
	tail->kid[1] = ring(&node_type, 2);	/* a cycle at the end */
	__atomic_store_n(&cascade_state, 1, __ATOMIC_RELEASE);
	rs_decref(head);
	rs_safepoint();		/* the cascade: it polls for stops */
	__atomic_store_n(&cascade_state, 2, __ATOMIC_RELEASE);
	rs_thread_detach();
	return NULL;
}

static void test_cascade(void)
{
	long before, found = 0, r, n = 0;
	pthread_t t;

	gc_drain();
	before = destroyed();
	start_thread(&t, cascader, NULL);
	while (!__atomic_load_n(&cascade_state, __ATOMIC_ACQUIRE))
		rs_safepoint();
	while (__atomic_load_n(&cascade_state, __ATOMIC_ACQUIRE) != 2) {
		r = rs_gc_collect((int)(n++ % 3));
		if (r > 0)
			found += r;
	}
	join_offline(t);
	diag("%ld collections during a cascade of %ld", n, CASCADE);
	r = rs_gc_collect(2);
	found += r > 0 ? r : 0;
	is(found, 2L, "collections during a long cascade: only the cycle at its end "
	   "found (once)");
	settle_until(destroyed() - before == CASCADE + 2, 10000);
	is(destroyed() - before, CASCADE + 2, "chain and cycle destroyed once");
	is(rs_heap_verify(), 0L, "heap verifies");
}

/* A thread that parks for a stop first applies its private decrements and
 * gives back what its dying objects reference (lib/defer.c
 * rs__defer_before_park): a tree it dropped just before the stop is dying
 * when the collection chooses its set, instead of young members that the
 * dropped root's pending decrement keeps alive -- which the collection
 * examined and promoted, all of them. */
#define DROP_DEPTH 11
extern int rs__stop_requested;	/* lib/internal.h (tests link statically) */
extern int rs__gc_requested;
#define DROP_N ((1L << (DROP_DEPTH + 1)) - 1)
static __thread long ctraversed;
static int drop_state;
static long drop_destroyed;

static void counting_traverse(void *obj, rs_visit_fn visit, void *arg)
{
	ctraversed++;
	node_traverse(obj, visit, arg);
}

static const rs_type ctree_type = {
	"ctree", sizeof(struct node), counting_traverse, NULL, node_destroy, 0,
};

static struct node *ctree(int depth)
{
	struct node *n = (struct node *)rs_new(&ctree_type);

	if (!n)
		bail_out("rs_new failed");
	if (depth) {	/* counted references held by plain stores */
		n->kid[0] = ctree(depth - 1);
		n->kid[1] = ctree(depth - 1);
	}
	return n;
}

static void *tree_dropper(void *arg)
{
	(void)arg;
	rs_thread_attach();
	rs_decref(ctree(DROP_DEPTH));
	__atomic_store_n(&drop_state, 1, __ATOMIC_RELEASE);
	while (!__atomic_load_n(&rs__stop_requested, __ATOMIC_SEQ_CST))
		sched_yield();	/* no safepoint until the stop is asked */
	rs_safepoint();		/* parks; the collection runs meanwhile */
	__atomic_store_n(&drop_destroyed, destroyed(), __ATOMIC_RELEASE);
	rs_thread_detach();
	return NULL;
}

static void test_dropped_before_stop(void)
{
	long before = destroyed(), seen;
	pthread_t t;

	start_thread(&t, tree_dropper, NULL);
	while (!__atomic_load_n(&drop_state, __ATOMIC_ACQUIRE))
		sched_yield();
	ctraversed = 0;
	rs_gc_collect(0);
	seen = ctraversed;
	join_offline(t);
	ok(seen < 100, "a tree of %ld dropped just before a stop is not in the "
	   "collection's set (%ld traverse calls by the collector)", DROP_N,
	   seen);
	is(__atomic_load_n(&drop_destroyed, __ATOMIC_ACQUIRE) - before, DROP_N,
	   "... and all of it was destroyed by the end of that safepoint");
}

/* An automatic collection is run by a thread that holds its share of the
 * young objects (lib/gc.c holds_share): another thread's structure in the
 * making does not make this one stop the world, its own garbage does. */
static int share_state;

static void *share_builder(void *arg)
{
	struct node *kept;

	(void)arg;
	rs_thread_attach();
	kept = ctree(13);	/* 16,383 young objects, alive */
	rs_offline();		/* counts as stopped: no stop would wait */
	__atomic_store_n(&share_state, 1, __ATOMIC_RELEASE);
	while (__atomic_load_n(&share_state, __ATOMIC_ACQUIRE) != 2)
		usleep(500);
	rs_online();
	rs_decref(kept);
	rs_thread_detach();
	return NULL;
}

static void test_share(void)
{
	struct rs_gc_stats a, b, c;
	struct node *mine[64];
	long before = destroyed();
	pthread_t t;
	int i;

	rs_gc_collect(2);
	start_thread(&t, share_builder, NULL);
	while (!__atomic_load_n(&share_state, __ATOMIC_ACQUIRE))
		usleep(500);
	rs_gc_enable();
	rs_gc_get_stats(0, &a);
	for (i = 0; i < 64; i++)	/* births: the count is flushed, and a */
		mine[i] = node_new(i);	/* collection requested */
	for (i = 0; i < 5; i++)
		rs_safepoint();
	rs_gc_get_stats(0, &b);
	ok(__atomic_load_n(&rs__gc_requested, __ATOMIC_RELAXED) &&
	   b.collections == a.collections, "another thread's 16,383 young "
	   "objects: a collection is requested, but not run at this thread's "
	   "safepoints");
	for (i = 0; i < 64; i++)
		rs_decref(mine[i]);
	for (i = 0; i < 9000; i++)
		rs_decref(ring(&node_type, 2));	/* 18,000 of its own */
	rs_safepoint();
	rs_gc_get_stats(0, &c);
	ok(c.collections > b.collections && c.collected - b.collected >= 18000,
	   "its own 18,000 of garbage: collected at its safepoint (%ld found)",
	   (long)(c.collected - b.collected));
	rs_gc_disable();
	__atomic_store_n(&share_state, 2, __ATOMIC_RELEASE);
	join_offline(t);
	settle_until(destroyed() - before == 18064 + (1L << 14) - 1, 10000);
	is(destroyed() - before, 18064 + (1L << 14) - 1L, "... everything destroyed");
}

/* ------------------------------------------------------------------------ */
/* Collections while other threads mutate the graph                         */
/* ------------------------------------------------------------------------ */

#define NSLOTS 16
#define NWEAK 4
static struct node *cslots[NSLOTS];
static int cquit;
static long cbad, cops, ccollections, cmismatch, cverify;
static __thread struct rs_gc_info last_info;
static __thread int last_info_set;
static long conc_collected;	/* atomic: sum of info.collected, all threads */

static int quitting(void)
{
	return __atomic_load_n(&cquit, __ATOMIC_RELAXED);
}

static struct node *check(struct node *n)
{
	if (n && __atomic_load_n(&n->magic, __ATOMIC_RELAXED) != NODE_ALIVE)
		__atomic_fetch_add(&cbad, 1, __ATOMIC_RELAXED);
	return n;
}

static void conc_cb(const struct rs_gc_info *info, void *arg)
{
	(void)arg;
	last_info = *info;
	last_info_set = 1;
	__atomic_fetch_add(&conc_collected, info->collected, __ATOMIC_RELAXED);
}

static void *mutator(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg * 7919u + 1, r;
	struct node *a, *b, *x;
	void *wrs[NWEAK] = {NULL};
	long ops = 0;
	int i, j, k;

	rs_thread_attach();
	while (!quitting()) {
		r = (unsigned)rand_r(&seed);
		i = (int)(r % NSLOTS);
		j = (int)((r >> 8) % NSLOTS);
		switch ((r >> 16) % 8) {
		case 0:		/* replace a shared object */
			rs_set_steal(&cslots[i], obj_new(&node_type, ops));
			break;
		case 1:		/* link two shared objects (cycles among them) */
		case 2:
			a = check(rs_get(&cslots[i]));
			b = check(rs_get(&cslots[j]));
			if (a)
				rs_set(&a->kid[(r >> 24) & 1], b);
			break;
		case 3:		/* private garbage cycle, some with finalizers */
			rs_decref(ring_mode((r >> 28) & 1 ? &fin_type : &node_type,
					    2 + (r >> 24) % 4, FIN_NONE));
			break;
		case 4:		/* publish a cycle */
			rs_set_steal(&cslots[i], ring(&node_type, 1 + (r >> 24) % 5));
			break;
		case 5:		/* walk */
			a = rs_get(&cslots[i]);
			for (k = 0; a && k < 16; k++)
				a = rs_get(&check(a)->kid[k & 1]);
			break;
		case 6:		/* unlink */
			a = check(rs_get(&cslots[i]));
			if (a)
				rs_clear(&a->kid[(r >> 24) & 1]);
			break;
		case 7:		/* a private cycle held across safepoints */
			x = ring(&node_type, 2);
			for (k = 0; k < 3; k++)
				rs_safepoint();
			check(x);
			check(x->kid[0]);
			rs_decref(x);
			break;
		}
		if ((r >> 4) % 8 == 0) {
			/* weak references to shared objects, kept a while */
			k = (int)((r >> 12) % NWEAK);
			if (wrs[k]) {
				x = (struct node *)rs_weakref_get(wrs[k]);
				check(x);
				rs_decref(x);
				rs_decref(wrs[k]);
				wrs[k] = NULL;
			} else if ((a = check(rs_get(&cslots[j])))) {
				wrs[k] = rs_weakref_new(a, NULL, NULL);
			}
		}
		if ((r >> 4) % 128 == 0) {
			/* offline for a while, holding a counted reference */
			x = (struct node *)rs_get_ref(&cslots[j]);
			rs_offline();
			usleep(200);
			rs_online();
			check(x);
			if (x)
				check(rs_get(&x->kid[0]));
			rs_decref(x);
		}
		if (++ops % 4 == 0)
			rs_safepoint();
	}
	for (k = 0; k < NWEAK; k++)
		rs_decref(wrs[k]);
	__atomic_fetch_add(&cops, ops, __ATOMIC_RELAXED);
	rs_thread_detach();
	return NULL;
}

static void *collector(void *arg)
{
	long n, i = 0;
	int g;

	(void)arg;
	rs_thread_attach();
	while (!quitting()) {
		g = (int)(i % 3);
		last_info_set = 0;
		n = rs_gc_collect(g);
		if (n < 0 || !last_info_set || last_info.generation != g ||
		    n != last_info.collected + last_info.uncollectable) {
			if (__atomic_fetch_add(&cmismatch, 1, __ATOMIC_RELAXED) < 5)
				diag("collect(%d) returned %ld, callback %s gen %d "
				     "collected %ld uncollectable %ld", g, n,
				     last_info_set ? "saw" : "did not run:",
				     last_info.generation, last_info.collected,
				     last_info.uncollectable);
		}
		if (++i % 16 == 0) {
			rs_offline();
			usleep(300);
			rs_online();
		}
		if (i % 64 == 0 && rs_heap_verify() != 0)
			__atomic_fetch_add(&cverify, 1, __ATOMIC_RELAXED);
		rs_safepoint();
	}
	__atomic_fetch_add(&ccollections, i, __ATOMIC_RELAXED);
	rs_thread_detach();
	return NULL;
}

static void test_concurrent(void)
{
	struct rs_gc_stats s0[RS_GC_GENERATIONS], s1[RS_GC_GENERATIONS];
	pthread_t t[3];
	long base, i, mine = 0;
	uint64_t end, dcollected = 0;
	int g;

	gc_drain();
	base = live_objects();
	snap(s0);
	rs_gc_add_callback(conc_cb, NULL);
	rs_gc_set_threshold(300, 5, 5);
	rs_gc_enable();		/* automatic collections at mutators' safepoints too */
	start_thread(&t[0], mutator, (void *)1);
	start_thread(&t[1], mutator, (void *)2);
	start_thread(&t[2], collector, NULL);
	end = now_ns() + MUTATE_MS * 1000000ull;
	while (now_ns() < end) {
		if (rs_gc_collect(2) >= 0)	/* waits for the other collector */
			mine++;
		rs_offline();
		usleep(5000);
		rs_online();
	}
	__atomic_store_n(&cquit, 1, __ATOMIC_RELAXED);
	for (i = 0; i < 3; i++)
		join_offline(t[i]);
	rs_gc_disable();
	rs_gc_set_threshold(2000, 10, 10);
	diag("concurrent: %ld mutator operations, %ld + %ld explicit collections, "
	     "%llu in all", cops, ccollections, mine,
	     (unsigned long long)(gc_collections()));
	is(cbad, 0L, "mutators never reached a destroyed object (borrowed, counted or "
	   "through weak references)");
	is(cmismatch, 0L, "each collect's return == its callback's collected + uncollectable");
	is(cverify, 0L, "heap verifications during the run found nothing");
	is(fin_bad, 0L, "finalizers ran at most once, on live objects");
	ok(ccollections > 10, "the collector thread collected %ld times", ccollections);

	for (i = 0; i < NSLOTS; i++)
		rs_clear(&cslots[i]);
	end = now_ns() + 10000 * 1000000ull;
	while (live_objects() != base && now_ns() < end) {
		rs_gc_collect(2);
		rs_safepoint();
	}
	is(live_objects(), base, "everything freed after the slots are cleared");
	is(rs_heap_verify(), 0L, "heap verifies");
	snap(s1);
	for (g = 0; g < RS_GC_GENERATIONS; g++)
		dcollected += s1[g].collected - s0[g].collected;
	is((uint64_t)__atomic_load_n(&conc_collected, __ATOMIC_RELAXED), dcollected,
	   "callbacks saw every collected object the stats count");
	rs_gc_remove_callback(conc_cb, NULL);
}

/* ------------------------------------------------------------------------ */

/* ------------------------------------------------------------------------ */
/* Completeness of the collections from candidates                          */
/* ------------------------------------------------------------------------ */

#define CG_N (GC_SANITIZED ? 1500L : 6000L)

static unsigned cg_rand(unsigned *s)
{
	*s = *s * 1103515245u + 12345u;
	return *s >> 8;
}

/* Objects reachable from the kept ones, by the test's own walk. */
static long cg_reachable(struct node **v, const char *kept, char *seen)
{
	struct node **stack = malloc(CG_N * 2 * sizeof(*stack)), *x;
	long n = 0, sp = 0, i;
	int k;

	memset(seen, 0, CG_N);
	for (i = 0; i < CG_N; i++)
		if (kept[i])
			stack[sp++] = v[i];
	while (sp) {
		x = stack[--sp];
		if (seen[x->value])
			continue;
		seen[x->value] = 1;
		n++;
		for (k = 0; k < 2; k++)
			if (x->kid[k] && !seen[x->kid[k]->value])
				stack[sp++] = x->kid[k];
	}
	free(stack);
	return n;
}

/*
 * A random graph, half of old objects, all CLEAN (a full collection
 * examined them), half of young ones; then the references held from C are
 * dropped but for a few.  Only
 * automatic collections run (young ones, which promote the young
 * candidates, and the old generations' through their candidates): within a
 * few of them every unreachable object must be freed
 * -- the reference model is the test's own reachability walk -- and a full
 * collection afterwards must find nothing they missed.
 */
static void test_candidates_complete(void)
{
	struct rs_gc_stats st[RS_GC_GENERATIONS];
	struct node **v = malloc(CG_N * sizeof(*v)), *hold[128];
	char *kept = malloc(CG_N), *seen = malloc(CG_N);
	long *perm = malloc(CG_N * sizeof(*perm));
	long i, j, t, live, before, freed, round, r, nhold;
	unsigned seed;

	for (round = 0; round < 3; round++) {
		seed = 1234u + (unsigned)round * 7919u;
		for (i = 0; i < CG_N / 2; i++)
			v[i] = obj_new(&node_type, i);
		is(rs_gc_collect(2), 0L, "round %ld: %ld objects held: a full "
		   "collection finds nothing (and makes them old and clean)",
		   round, CG_N / 2);
		for (; i < CG_N; i++)
			v[i] = obj_new(&node_type, i);	/* young */
		/* kid[0]: rings of 1 to 6 objects over a random permutation
		 * (old and young mixed); kid[1]: a random edge, now and then.
		 * Private objects: plain stores. */
		for (i = 0; i < CG_N; i++)
			perm[i] = i;
		for (i = CG_N - 1; i > 0; i--) {
			j = (long)(cg_rand(&seed) % (unsigned)(i + 1));
			t = perm[i], perm[i] = perm[j], perm[j] = t;
		}
		for (i = 0; i < CG_N; i = j) {
			j = i + 1 + (long)(cg_rand(&seed) % 6);
			if (j > CG_N)
				j = CG_N;
			for (t = i; t < j; t++)
				v[perm[t]]->kid[0] = (struct node *)
					rs_incref(v[perm[t + 1 < j ? t + 1 : i]]);
		}
		for (i = 0; i < CG_N; i++)
			if (cg_rand(&seed) % 10 < 3)
				v[i]->kid[1] = (struct node *)
					rs_incref(v[cg_rand(&seed) % CG_N]);
		for (i = 0; i < CG_N; i++)
			kept[i] = cg_rand(&seed) % 100 < (unsigned)(2 + 3 * round);
		live = cg_reachable(v, kept, seen);
		before = destroyed();
		for (i = 0; i < CG_N; i++)
			if (!kept[i])
				rs_decref(v[i]);
		/* a young collection first (it promotes the young candidates),
		 * then the old generations' from their candidates */
		rs_gc_set_threshold(1, 0, 1000);
		rs_gc_enable();
		snap(st);
		nhold = 0;
		for (r = 0; r < 60 && destroyed() - before < CG_N - live; r++) {
			hold[nhold++] = obj_new(&node_type, -1);
			hold[nhold++] = obj_new(&node_type, -1);
			rs_safepoint();	/* held: none of them dies here */
		}
		rs_gc_disable();
		rs_gc_set_threshold(2000, 10, 10);
		freed = destroyed() - before;
		ok(freed == CG_N - live, "round %ld: %ld of %ld unreachable freed by "
		   "%ld automatic collections of generation 2 (%ld young), "
		   "%ld reachable kept", round, freed, CG_N - live,
		   delta(st, 2), delta(st, 0), live);
		ok(delta(st, 2) >= 1, "... candidate collections ran (%ld)",
		   delta(st, 2));
		for (i = 0; i < nhold; i++)
			rs_decref(hold[i]);
		rs_safepoint();
		before = destroyed();
		is(rs_gc_collect(2), 0L, "... a full collection finds no cycle "
		   "they missed");
		is(rs_heap_verify(), 0L, "... heap verifies");
		for (i = 0; i < CG_N; i++)
			if (kept[i])
				rs_decref(v[i]);
		gc_drain();
	}
	is(gc_drain(), 0L, "nothing left to collect");
	free(v);
	free(kept);
	free(seen);
	free(perm);
}

/*
 * A young candidate must stay a candidate when it is promoted.  X (old)
 * and Y (young) point to each other.  X's last outside reference goes: a
 * candidate collection examines {X, Y}, finds Y held from C, and cleans
 * both.  Then Y's outside reference goes while Y is young; the young
 * collection sees X's reference to Y as outside and promotes Y.  The pair
 * is garbage now, and only Y's candidacy, carried into the old generation,
 * lets a candidate collection find it.
 */
#define PP_N 500L

static void pp_hold(struct node **hold)
{
	int i;

	for (i = 0; i < 64; i++)	/* enough births to flush the count */
		hold[i] = obj_new(&node_type, -1);
}

static void test_candidate_promotion(void)
{
	struct rs_gc_stats st[RS_GC_GENERATIONS];
	struct node *x[PP_N], *y[PP_N], *hold[64];
	struct rs_stats rst;
	long i, before;

	for (i = 0; i < PP_N; i++)
		x[i] = obj_new(&node_type, i);
	rs_gc_collect(2);	/* x old and clean */
	for (i = 0; i < PP_N; i++) {
		y[i] = obj_new(&node_type, i);
		x[i]->kid[0] = (struct node *)rs_incref(y[i]);
		y[i]->kid[0] = (struct node *)rs_incref(x[i]);
	}
	before = destroyed();
	for (i = 0; i < PP_N; i++)
		rs_decref(x[i]);	/* old candidates */
	rs_stats(&rst);
	ok(rst.gc_candidates >= (size_t)PP_N && rst.gc_candidate_trigger > 0,
	   "rs_stats reports the backlog: %zu candidates (next collection due "
	   "at %zu)", rst.gc_candidates, rst.gc_candidate_trigger);
	rs_gc_set_threshold(1L << 30, 0, 0);	/* candidates only */
	rs_gc_enable();
	snap(st);
	rs_safepoint();
	rs_safepoint();
	ok(delta(st, 2) >= 1 && delta(st, 0) == 0, "a candidate collection ran "
	   "(%ld), no young one (%ld)", delta(st, 2), delta(st, 0));
	is(destroyed() - before, 0L, "... and freed nothing: each y is held");

	for (i = 0; i < PP_N; i++)
		rs_decref(y[i]);	/* young candidates: no bit yet */
	rs_gc_set_threshold(1, 1000, 1000);	/* young collections only */
	snap(st);
	pp_hold(hold);
	rs_safepoint();
	rs_safepoint();
	ok(delta(st, 0) >= 1 && delta(st, 2) == 0, "a young collection ran (%ld), "
	   "none of the old generations (%ld)", delta(st, 0), delta(st, 2));
	is(destroyed() - before, 0L, "... it promoted every y (x's reference "
	   "counts as outside)");

	rs_gc_set_threshold(1L << 30, 0, 0);
	snap(st);
	rs_safepoint();
	rs_safepoint();
	rs_gc_disable();
	rs_gc_set_threshold(2000, 10, 10);
	is(destroyed() - before, 2 * PP_N, "a candidate collection (%ld) freed "
	   "all %ld pairs: the promoted y stayed candidates", delta(st, 2), PP_N);
	rs_stats(&rst);
	is((long)rst.gc_candidates, 0L, "... and no candidate is left waiting");
	for (i = 0; i < 64; i++)
		rs_decref(hold[i]);
	rs_safepoint();
	is(rs_gc_collect(2), 0L, "... nothing left for a full collection");
}

/*
 * The old generations' logs stay dense: each young collection appends a
 * partly filled chunk to generation 1, and its objects die there; the
 * candidate collections' tidying merges such chunks and frees the empty
 * ones, so the chunks stay in proportion to the live old objects rather
 * than to the young collections that ran.
 */
size_t rs__gc_log_chunks(int gen, size_t *entries);	/* lib/internal.h */

static void test_logs_dense(void)
{
	struct rs_gc_stats st[RS_GC_GENERATIONS];
	struct node *keep[300], *kept[400], *x;
	size_t chunks, entries;
	long r, i, nk = 0;

	gc_drain();
	rs_gc_set_threshold(250, 1000, 1000);
	rs_gc_enable();
	snap(st);
	for (r = 0; r < 40; r++) {
		for (i = 0; i < 300; i++)	/* survive one young collection */
			keep[i] = node_new(i);
		rs_safepoint();
		for (i = 0; i < 300; i++) {	/* then die old, but ten */
			x = keep[i];
			if (i % 30 == 0) {	/* the ten stay, candidates */
				kept[nk++] = rs_incref(x);
				rs_decref(x);	/* leaves it a reference */
				continue;
			}
			rs_decref(x);
		}
		rs_safepoint();
	}
	chunks = rs__gc_log_chunks(1, &entries);
	ok(chunks <= 2, "young collections alone keep it dense (a program "
	   "with no candidate collection): %zu chunks for %zu entries",
	   chunks, entries);
	rs_gc_set_threshold(1, 0, 0);	/* candidates now: tidies the logs */
	for (i = 0; i < 8; i++) {
		rs_decref(node_new(i));
		rs_safepoint();
	}
	rs_gc_disable();
	rs_gc_set_threshold(2000, 10, 10);
	chunks = rs__gc_log_chunks(1, &entries);
	diag("%ld young collections: generation 1 holds %zu chunks, %zu "
	     "entries", delta(st, 0), chunks, entries);
	ok(delta(st, 0) >= 20, "%ld young collections ran", delta(st, 0));
	ok(chunks <= 2, "generation 1's partly filled chunks were merged: "
	   "%zu chunks left for %zu entries (%ld objects alive)", chunks,
	   entries, nk);
	for (i = 0; i < nk; i++)
		rs_decref(kept[i]);
	rs_safepoint();
	gc_drain();
	is(rs_heap_verify(), 0L, "... and every entry still points at its "
	   "object and back");
}

int main(void)
{
	ok(rs_init(NULL) == 0 && rs_thread_attach() == 0, "init and attach");
	is(rs_gc_disable(), 0, "disable automatic collection for exact counts");

	test_cycles();
	test_survivors();
	test_finalizers();
	test_pending_elsewhere();
	test_other_owners();
	test_cascade();
	test_dropped_before_stop();
	test_share();
	test_candidates_complete();
	test_candidate_promotion();
	test_logs_dense();
	test_concurrent();

	is(rs_heap_verify(), 0L, "heap verifies");
	is(rs_shutdown(), 0L, "shutdown: nothing left alive");
	return exit_status();
}
