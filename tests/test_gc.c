/*
 * test_gc.c - the cycle collector (lib/gc.c), against the semantics of
 * docs/api.md ("The cycle collector"):
 *
 *   - cycles of 1 (self-reference), 2, 3, 100 and 100,000 objects, cycles
 *     reachable only from garbage, garbage with acyclic tails, tracked and
 *     untracked: exact return values of rs_gc_collect and destroy counts;
 *   - what must survive: cycles held by C references, by untracked objects,
 *     by live objects through long chains, by an older generation;
 *   - generations: promotion, counts, thresholds, enable/disable, the
 *     long-lived rule for full collections;
 *   - finalizers (PEP 442): resurrection, allocation, new cycles, dropping
 *     references, rs_gc_collect from inside, at most once per object;
 *   - the uncollectable list (RS_GC_DEBUG_SAVEALL), freeze across fork,
 *     stats and callbacks, introspection, errors;
 *   - collections while other threads mutate the graph, go offline, or hold
 *     pending decrements.
 *
 * Automatic collection is disabled except in the cases that test it, so
 * every return value is exact.
 */
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include "gclib.h"

extern char **environ;

#if GC_SANITIZED
#define BIG 30000L
#define LONG_LIVED 3000L
#define MUTATE_MS 800
#else
#define BIG 100000L
#define LONG_LIVED 10000L
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
/* Generations                                                              */
/* ------------------------------------------------------------------------ */

static int get_count(long *c0, long *c1, long *c2)
{
	*c0 = *c1 = *c2 = -7;
	return rs_gc_get_count(c0, c1, c2);
}

static void test_generations(void)
{
	struct node *a, *b, *c, *keep[10];
	long c0, c1, c2, c0a, before;
	void *leaf;
	int i;

	rs_gc_collect(2);
	is(get_count(&c0, &c1, &c2), 0, "rs_gc_get_count returns 0");
	ok(c0 == 0 && c1 == 0 && c2 == 0, "counts are 0 after a full collection "
	   "(got %ld %ld %ld)", c0, c1, c2);
	rs_gc_collect(0);
	get_count(&c0, &c1, &c2);
	ok(c0 == 0 && c1 == 1 && c2 == 0, "collect(0): c1 == 1 (got %ld %ld %ld)", c0, c1, c2);
	rs_gc_collect(0);
	get_count(&c0, &c1, &c2);
	ok(c1 == 2 && c2 == 0, "second collect(0): c1 == 2 (got %ld %ld %ld)", c0, c1, c2);
	rs_gc_collect(1);
	get_count(&c0, &c1, &c2);
	ok(c0 == 0 && c1 == 0 && c2 == 1, "collect(1): c1 == 0, c2 == 1 (got %ld %ld %ld)",
	   c0, c1, c2);
	rs_gc_collect(2);
	get_count(&c0, &c1, &c2);
	ok(c0 == 0 && c1 == 0 && c2 == 0, "collect(2): all 0 (got %ld %ld %ld)", c0, c1, c2);

	get_count(&c0a, &c1, &c2);
	for (i = 0; i < 10; i++)
		keep[i] = obj_new(&node_type, i);
	leaf = rs_new(&leaf_type);	/* untracked: not counted */
	get_count(&c0, &c1, &c2);
	is(c0 - c0a, 10L, "10 tracked allocations: c0 up by 10 (untracked not counted)");
	for (i = 0; i < 10; i++)
		rs_decref(keep[i]);
	rs_decref(leaf);
	rs_safepoint();
	get_count(&c0, &c1, &c2);
	is(c0 - c0a, 0L, "their deaths by refcounting: c0 back down");

	/* survivors of collect(0) go to gen 1: collect(0) no longer sees them */
	before = destroyed();
	a = ring(&node_type, 2);
	is(rs_gc_collect(0), 0L, "held cycle survives collect(0) (-> gen 1)");
	rs_decref(a);
	is(rs_gc_collect(0), 0L, "dropped, it is in gen 1: collect(0) does not examine it");
	is(destroyed() - before, 0L, "... nothing destroyed");
	is(rs_gc_collect(1), 2L, "collect(1) finds it");
	is(destroyed() - before, 2L, "... destroyed");

	/* up to gen 2 */
	before = destroyed();
	a = ring(&node_type, 2);
	rs_gc_collect(0);
	rs_gc_collect(1);	/* gen 1 survivors -> gen 2 */
	rs_decref(a);
	is(rs_gc_collect(0), 0L, "a cycle in gen 2: not seen by collect(0)");
	is(rs_gc_collect(1), 0L, "... nor by collect(1)");
	is(destroyed() - before, 0L, "... nothing destroyed");
	is(rs_gc_collect(2), 2L, "collect(2) finds it");
	is(destroyed() - before, 2L, "... destroyed");

	/* a young cycle referenced only from an old object */
	before = destroyed();
	a = obj_new(&node_type, 1);
	rs_gc_collect(2);	/* a is old now */
	b = ring(&node_type, 2);
	c = b->kid[0];
	a->kid[0] = b;		/* steals our reference: b's cycle hangs off a */
	is(rs_gc_collect(0), 0L, "young cycle referenced from an old object survives collect(0)");
	is(rs_gc_collect(1), 0L, "... and collect(1)");
	is(destroyed() - before, 0L, "... nothing destroyed");
	is(c->magic, NODE_ALIVE, "... members alive");
	rs_clear(&a->kid[0]);
	is(rs_gc_collect(2), 2L, "the old object's reference dropped: collect(2) finds it");
	is(destroyed() - before, 2L, "... destroyed");
	rs_decref(a);
	rs_safepoint();
	is(destroyed() - before, 3L, "the old object dies by refcounting");

	/* an old garbage cycle holding a young one: collect(0) keeps the young
	 * one (the old cycle's reference counts as external) */
	before = destroyed();
	a = ring(&node_type, 2);
	rs_gc_collect(2);
	a->kid[1] = ring(&node_type, 2);
	rs_decref(a);
	is(rs_gc_collect(0), 0L, "young cycle held by an old garbage cycle: kept by collect(0)");
	is(rs_gc_collect(2), 4L, "collect(2) finds both");
	is(destroyed() - before, 4L, "... destroyed");
	is(gc_drain(), 0L, "nothing left to collect");
}

/* ------------------------------------------------------------------------ */
/* Thresholds and automatic collection                                      */
/* ------------------------------------------------------------------------ */

static void snap(struct rs_gc_stats st[RS_GC_GENERATIONS])
{
	int g;

	for (g = 0; g < RS_GC_GENERATIONS; g++)
		rs_gc_get_stats(g, &st[g]);
}

static long delta(struct rs_gc_stats st[RS_GC_GENERATIONS], int g)
{
	struct rs_gc_stats now;

	rs_gc_get_stats(g, &now);
	return (long)(now.collections - st[g].collections);
}

static void garbage_pairs(long n, int every)
{
	long i;

	for (i = 0; i < n; i++) {
		rs_decref(ring(&node_type, 2));
		if (every && i % every == 0)
			rs_safepoint();
	}
	rs_safepoint();
}

static void test_thresholds(void)
{
	struct rs_gc_stats st[RS_GC_GENERATIONS];
	struct node *keep[100];
	long t0, t1, t2, c0, c1, c2, before;
	uint64_t ncoll;
	int i;

	ok(rs_gc_set_threshold(50, 10, 10) == 0, "set_threshold(50, 10, 10)");
	rs_gc_get_threshold(&t0, &t1, &t2);
	ok(t0 == 50 && t1 == 10 && t2 == 10, "get_threshold reads it back");
	errno = 0;
	ok(rs_gc_set_threshold(-1, 10, 10) == -1 && errno == EINVAL,
	   "negative threshold: EINVAL");
	errno = 0;
	ok(rs_gc_set_threshold(10, 10, -5) == -1 && errno == EINVAL,
	   "negative t2: EINVAL");
	rs_gc_get_threshold(&t0, &t1, &t2);
	ok(t0 == 50 && t1 == 10 && t2 == 10, "... thresholds unchanged");

	rs_gc_collect(2);	/* counts 0 */
	is(rs_gc_enable(), 0, "rs_gc_enable");
	is(rs_gc_is_enabled(), 1, "enabled");
	snap(st);
	for (i = 0; i < 100; i++)
		keep[i] = obj_new(&node_type, i);
	is(delta(st, 0) + delta(st, 1) + delta(st, 2), 0L,
	   "no collection before a safepoint");
	rs_safepoint();
	ok(delta(st, 0) >= 1, "100 tracked allocations, t0 = 50: a collection ran at "
	   "the safepoint (%ld)", delta(st, 0));
	is(delta(st, 1) + delta(st, 2), 0L, "... of generation 0 only");
	get_count(&c0, &c1, &c2);
	is(c1, delta(st, 0), "c1 counts those young collections");
	for (i = 0; i < 100; i++)
		rs_decref(keep[i]);
	rs_safepoint();

	/* automatic collections find garbage */
	rs_gc_collect(0);
	before = destroyed();
	garbage_pairs(100, 1);
	ok(destroyed() - before >= 50, "100 garbage 2-cycles with t0 = 50: automatic "
	   "collections freed %ld of 200", destroyed() - before);
	rs_gc_collect(2);
	is(destroyed() - before, 200L, "collect(2) freed the rest");

	/* t0 == 0 disables automatic collection */
	rs_gc_set_threshold(0, 10, 10);
	ncoll = gc_collections();
	before = destroyed();
	garbage_pairs(500, 1);
	is(gc_collections() - ncoll, (uint64_t)0, "t0 == 0: no automatic collection "
	   "after 1000 tracked allocations");
	is(destroyed() - before, 0L, "... no garbage freed");
	is(rs_gc_collect(0), 1000L, "rs_gc_collect still works: 1000 found");

	/* rs_gc_disable */
	rs_gc_set_threshold(50, 10, 10);
	is(rs_gc_disable(), 0, "rs_gc_disable");
	is(rs_gc_is_enabled(), 0, "disabled");
	ncoll = gc_collections();
	before = destroyed();
	garbage_pairs(500, 1);
	is(gc_collections() - ncoll, (uint64_t)0, "disabled: no automatic collection");
	is(destroyed() - before, 0L, "... no garbage freed");
	is(rs_gc_collect(2), 1000L, "rs_gc_collect works while disabled");
	is(destroyed() - before, 1000L, "... 1000 destroyed");
	rs_gc_set_threshold(2000, 10, 10);
}

/* The long-lived rule: with many objects in gen 2 and nothing promoted
 * into it, full collections do not happen however often gen-1 ones do;
 * once enough is promoted, they do, rarely. */
static void test_long_lived(void)
{
	struct rs_gc_stats st[RS_GC_GENERATIONS];
	struct node **ll, **surv;
	long i, d1, d2, n = LONG_LIVED, s = LONG_LIVED / 2;

	ll = malloc((size_t)n * sizeof(*ll));
	surv = malloc((size_t)s * sizeof(*surv));
	for (i = 0; i < n; i++)
		ll[i] = obj_new(&node_type, i);
	rs_gc_collect(2);	/* long-lived total = n */
	rs_gc_set_threshold(100, 2, 2);
	rs_gc_enable();
	snap(st);
	garbage_pairs(3000, 1);
	d1 = delta(st, 1);
	d2 = delta(st, 2);
	ok(d1 >= 5, "thresholds 100/2/2, 6000 allocations of garbage: %ld gen-1 "
	   "collections", d1);
	is(d2, 0L, "... and no full collection (nothing promoted to gen 2, "
	   "%ld long-lived)", n);
	for (i = 0; i < s; i++) {
		surv[i] = obj_new(&node_type, i);
		rs_decref(ring(&node_type, 2));
		rs_safepoint();
	}
	d1 = delta(st, 1);
	d2 = delta(st, 2);
	diag("long-lived: %ld gen-0, %ld gen-1, %ld gen-2 collections",
	     delta(st, 0), d1, d2);
	ok(d2 >= 1, "%ld survivors promoted (> 25%% of %ld): a full collection ran", s, n);
	ok(d2 < d1, "full collections rarer than gen-1 ones (%ld < %ld)", d2, d1);
	rs_gc_disable();
	rs_gc_set_threshold(2000, 10, 10);
	for (i = 0; i < n; i++)
		rs_decref(ll[i]);
	for (i = 0; i < s; i++)
		rs_decref(surv[i]);
	free(ll);
	free(surv);
	rs_safepoint();
	gc_drain();
	is(gc_drain(), 0L, "nothing left to collect");
}

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
/* The uncollectable list                                                   */
/* ------------------------------------------------------------------------ */

static void count_alive(void *obj, void *arg)
{
	struct node *n = (struct node *)obj;
	long *k = (long *)arg;

	if (n->magic == NODE_ALIVE)
		k[0]++;
	else
		k[1]++;
}

static void test_saveall(void)
{
	struct rs_gc_stats st0, st1;
	struct node *a, *t;
	long before = destroyed(), k[2] = {0, 0};

	is(rs_gc_get_debug(), 0u, "debug flags 0 by default");
	is(rs_gc_set_debug(RS_GC_DEBUG_SAVEALL), 0, "set_debug(SAVEALL)");
	is(rs_gc_get_debug(), RS_GC_DEBUG_SAVEALL, "get_debug reads it back");
	a = ring(&node_type, 2);
	a->kid[1] = t = obj_new(&node_type, 9);
	rs_decref(a);
	rs_gc_get_stats(0, &st0);
	is(rs_gc_collect(0), 3L, "SAVEALL: 3 unreachable found");
	rs_gc_get_stats(0, &st1);
	is(destroyed() - before, 0L, "... none destroyed");
	is(st1.uncollectable - st0.uncollectable, (uint64_t)3, "stats: 3 uncollectable");
	is(st1.collected - st0.collected, (uint64_t)0, "stats: 0 collected");
	is(rs_gc_garbage(count_alive, k), 3L, "rs_gc_garbage: 3 kept");
	ok(k[0] == 3 && k[1] == 0, "... visited 3 live objects (%ld live, %ld dead)",
	   k[0], k[1]);
	is(rs_refcount(a), 2L, "the list holds a counted reference");
	is(rs_refcount(t), 2L, "... to each kept object");
	is(rs_gc_collect(2), 0L, "kept objects are reachable from the list: not found again");
	is(rs_gc_set_debug(0), 0, "set_debug(0)");
	is(rs_gc_garbage_clear(), 3L, "garbage_clear drops 3");
	k[0] = k[1] = 0;
	is(rs_gc_garbage(count_alive, k), 0L, "... the list is empty");
	idle_ms(20);
	is(destroyed() - before, 0L, "... they are still a cycle: not freed");
	is(rs_gc_collect(2), 3L, "the next collection finds them");
	is(destroyed() - before, 3L, "... and frees them");
	is(rs_gc_garbage_clear(), 0L, "garbage_clear on an empty list: 0");
}

/* ------------------------------------------------------------------------ */
/* Freeze and fork                                                          */
/* ------------------------------------------------------------------------ */

static void find_ptr(void *obj, void *arg)
{
	void **p = (void **)arg;

	if (obj == p[0])
		p[1] = obj;
}

#if !GC_TSAN
static int freeze_child(long before)
{
	int bad = 0;

	if (rs_gc_collect(2) != 0)
		bad |= 1;
	if (destroyed() != before)
		bad |= 2;
	if (rs_gc_get_freeze_count() != 3)
		bad |= 4;
	if (rs_gc_unfreeze() != 0)
		bad |= 8;
	if (rs_gc_collect(2) != 2)
		bad |= 16;
	if (destroyed() - before != 2)
		bad |= 32;
	return bad;
}
#endif

static void test_freeze(void)
{
	struct node *live, *y;
	void *p[2];
	long before;
	int status;
	pid_t pid;

	gc_drain();
	is(rs_gc_get_freeze_count(), 0L, "freeze count 0");
	live = obj_new(&node_type, 1);
	rs_decref(ring(&node_type, 2));	/* garbage, frozen below */
	is(rs_gc_freeze(), 0, "rs_gc_freeze");
	is(rs_gc_get_freeze_count(), 3L, "the 3 tracked objects alive are frozen");
	before = destroyed();
	y = ring(&node_type, 2);
	live->kid[0] = y;	/* a young cycle hanging off a frozen object */
	is(rs_gc_collect(2), 0L, "collect(2): frozen garbage not collected, a cycle held "
	   "by a frozen object kept");
	is(destroyed() - before, 0L, "... nothing destroyed");
	p[0] = live;
	p[1] = NULL;
	is(rs_gc_get_referrers(y, find_ptr, p), 2L, "referrers include frozen objects");
	is(p[1], (void *)live, "... the frozen one");

#if GC_TSAN
	skip(2, "ThreadSanitizer cannot follow threads started in a fork child");
#else
	fflush(NULL);
	pid = fork();
	if (pid == 0)
		_exit(freeze_child(before));
	ok(pid > 0, "fork");
	rs_offline();
	waitpid(pid, &status, 0);
	rs_online();
	ok(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child: frozen garbage "
	   "survives collect(2), unfreeze then collect frees it (status 0x%x)", status);
#endif
	(void)pid;
	(void)status;
	is(rs_gc_collect(2), 0L, "parent: frozen garbage still not collected");
	is(rs_gc_unfreeze(), 0, "rs_gc_unfreeze");
	is(rs_gc_get_freeze_count(), 0L, "freeze count 0 again");
	is(rs_gc_collect(2), 2L, "unfrozen: the garbage cycle is collected");
	is(destroyed() - before, 2L, "... 2 destroyed");
	rs_decref(live);
	rs_safepoint();
	is(rs_gc_collect(2), 2L, "the frozen holder gone: its young cycle is garbage");
	is(destroyed() - before, 5L, "... all freed");
}

/* ------------------------------------------------------------------------ */
/* Stats and callbacks                                                      */
/* ------------------------------------------------------------------------ */

struct cbrec {
	long calls, per_gen[RS_GC_GENERATIONS], collected, uncollectable, bad;
	uint64_t pause, ttsp, maxpause[RS_GC_GENERATIONS];
	int do_collect;
	long inner;
	pthread_t thread;
};

static void gc_cb(const struct rs_gc_info *info, void *arg)
{
	struct cbrec *r = (struct cbrec *)arg;
	int g = info->generation;

	r->calls++;
	r->thread = pthread_self();
	if (g < 0 || g >= RS_GC_GENERATIONS) {
		r->bad++;
		return;
	}
	r->per_gen[g]++;
	r->collected += info->collected;
	r->uncollectable += info->uncollectable;
	r->pause += info->pause_ns;
	r->ttsp += info->ttsp_ns;
	if (info->pause_ns > r->maxpause[g])
		r->maxpause[g] = info->pause_ns;
	if (info->duration_ns < info->pause_ns)
		r->bad++;
	if (r->do_collect)
		r->inner = rs_gc_collect(2);
}

static void other_cb(const struct rs_gc_info *info, void *arg)
{
	(void)info;
	(void)arg;
}

static void test_stats(void)
{
	struct rs_gc_stats s0[RS_GC_GENERATIONS], s1[RS_GC_GENERATIONS];
	struct cbrec rec;
	uint64_t dpause = 0, dttsp = 0, dcoll = 0, dcollected = 0, h;
	long ret = 0, r;
	int g, i, b, hist_ok = 1, max_ok = 1;
	static long args[17];

	memset(&rec, 0, sizeof(rec));
	errno = 0;
	ok(rs_gc_get_stats(3, &s0[0]) == -1 && errno == EINVAL, "get_stats(3): EINVAL");
	errno = 0;
	ok(rs_gc_get_stats(-1, &s0[0]) == -1 && errno == EINVAL, "get_stats(-1): EINVAL");
	errno = 0;
	ok(rs_gc_add_callback(NULL, NULL) == -1 && errno == EINVAL,
	   "add_callback(NULL): EINVAL");
	errno = 0;
	ok(rs_gc_remove_callback(gc_cb, &rec) == -1 && errno == ENOENT,
	   "remove of an unknown callback: ENOENT");

	snap(s0);
	is(rs_gc_add_callback(gc_cb, &rec), 0, "add_callback");
	for (i = 0; i < 6; i++) {
		rs_decref(ring(&node_type, 2 + i));
		r = rs_gc_collect(i % 3);
		ret += r;
	}
	rs_decref(ring_mode(&fin_type, 3, FIN_NONE));	/* finalizers: two stops */
	ret += rs_gc_collect(0);
	rs_decref(ring(&node_type, 2));
	ret += rs_gc_collect(2);
	snap(s1);
	for (g = 0; g < RS_GC_GENERATIONS; g++) {
		dpause += s1[g].pause_total_ns - s0[g].pause_total_ns;
		dttsp += s1[g].ttsp_total_ns - s0[g].ttsp_total_ns;
		dcoll += s1[g].collections - s0[g].collections;
		dcollected += s1[g].collected - s0[g].collected;
		for (h = 0, b = 0; b < RS_GC_HIST_BUCKETS; b++)
			h += s1[g].hist[b];
		if (h != s1[g].collections) {
			diag("gen %d: hist sums to %llu, %llu collections", g,
			     (unsigned long long)h,
			     (unsigned long long)s1[g].collections);
			hist_ok = 0;
		}
		if (rec.maxpause[g] > s1[g].pause_max_ns)
			max_ok = 0;
		if (s1[g].ttsp_max_ns > s1[g].ttsp_total_ns ||
		    s1[g].pause_max_ns > s1[g].pause_total_ns)
			max_ok = 0;
		if ((long)(s1[g].collections - s0[g].collections) != rec.per_gen[g]) {
			diag("gen %d: %ld callbacks, %llu collections", g,
			     rec.per_gen[g], (unsigned long long)
			     (s1[g].collections - s0[g].collections));
			hist_ok = 0;
		}
	}
	is(rec.calls, 8L, "8 collections: 8 callbacks");
	is(dcoll, (uint64_t)8, "stats count 8 collections");
	ok(hist_ok, "per generation: callbacks == collections == sum of hist buckets");
	is(rec.pause, dpause, "sum of callback pause_ns == delta of stats pause_total_ns");
	is(rec.ttsp, dttsp, "sum of callback ttsp_ns == delta of stats ttsp_total_ns");
	ok(rec.pause > 0, "pauses are measured (%llu ns)", (unsigned long long)rec.pause);
	ok(max_ok, "stats maxima cover the callbacks' pauses and stay below totals");
	is((uint64_t)rec.collected, dcollected, "sum of callback collected == stats delta");
	is(rec.collected, ret, "... == sum of rs_gc_collect's returns");
	is(ret, 2L + 3 + 4 + 5 + 6 + 7 + 3 + 2, "returns are the garbage sizes");
	is(rec.uncollectable, 0L, "nothing uncollectable");
	is(rec.bad, 0L, "callback infos sane (generation, duration >= pause)");
	ok(pthread_equal(rec.thread, pthread_self()), "callbacks run on the collecting thread");

	/* rs_gc_collect from a gc callback */
	rec.do_collect = 1;
	rec.inner = -99;
	rs_decref(ring(&node_type, 2));
	is(rs_gc_collect(0), 2L, "collect with a callback that collects");
	is(rec.inner, 0L, "... rs_gc_collect inside the callback returned 0");
	rec.do_collect = 0;
	is(rs_gc_remove_callback(gc_cb, &rec), 0, "remove_callback");
	errno = 0;
	ok(rs_gc_remove_callback(gc_cb, &rec) == -1 && errno == ENOENT,
	   "removing it again: ENOENT");
	r = rec.calls;
	rs_gc_collect(0);
	is(rec.calls, r, "removed callback not called");

	/* at most 16 */
	for (i = 0, b = 0; i < 16; i++)
		b += rs_gc_add_callback(other_cb, &args[i]) == 0;
	is(b, 16, "16 callbacks registered");
	errno = 0;
	ok(rs_gc_add_callback(other_cb, &args[16]) == -1 && errno == ENOMEM,
	   "the 17th: ENOMEM");
	for (i = 0, b = 0; i < 16; i++)
		b += rs_gc_remove_callback(other_cb, &args[i]) == 0;
	is(b, 16, "all 16 removed");
}

/* ------------------------------------------------------------------------ */
/* Introspection                                                            */
/* ------------------------------------------------------------------------ */

struct seen {
	void *p[8];
	int n;
};

static void record(void *obj, void *arg)
{
	struct seen *s = (struct seen *)arg;

	if (s->n < 8)
		s->p[s->n] = obj;
	s->n++;
}

static int saw(struct seen *s, void *p)
{
	int i;

	for (i = 0; i < s->n && i < 8; i++)
		if (s->p[i] == p)
			return 1;
	return 0;
}

static void test_introspection(void)
{
	struct node *a, *b, *c, *h, *e;
	void *leaf;
	struct seen s;
	long before = destroyed();

	a = obj_new(&node_type, 1);
	b = obj_new(&node_type, 2);
	c = obj_new(&node_type, 3);
	h = obj_new(&holder_type, 4);
	e = obj_new(&node_type, 5);
	leaf = rs_new(&leaf_type);
	a->kid[0] = (struct node *)rs_incref(b);
	a->kid[1] = (struct node *)rs_incref(b);	/* twice from one referrer */
	c->kid[1] = (struct node *)rs_incref(b);
	h->kid[0] = (struct node *)rs_incref(b);	/* untracked referrer */
	e->kid[0] = (struct node *)leaf;

	is(rs_gc_is_tracked(a), 1, "a node is tracked");
	is(rs_gc_is_tracked(leaf), 0, "a type without traverse is not tracked");
	is(rs_gc_is_tracked(h), 0, "a RS_TYPE_NO_CYCLES type is not tracked");

	memset(&s, 0, sizeof(s));
	is(rs_gc_get_referents(a, record, &s), 0, "get_referents returns 0");
	ok(s.n == 2 && s.p[0] == b && s.p[1] == b, "a's referents: b twice (%d)", s.n);
	memset(&s, 0, sizeof(s));
	rs_gc_get_referents(c, record, &s);
	ok(s.n == 1 && s.p[0] == b, "c's referents: b (NULL skipped) (%d)", s.n);
	memset(&s, 0, sizeof(s));
	rs_gc_get_referents(b, record, &s);
	is(s.n, 0, "b has no referents");

	memset(&s, 0, sizeof(s));
	is(rs_gc_get_referrers(b, record, &s), 2L, "b's referrers: 2 tracked objects");
	ok(s.n == 2 && saw(&s, a) && saw(&s, c), "... a and c, once each (%d calls)", s.n);
	memset(&s, 0, sizeof(s));
	is(rs_gc_get_referrers(leaf, record, &s), 1L, "an untracked object's referrers: 1");
	ok(s.n == 1 && s.p[0] == e, "... e");
	memset(&s, 0, sizeof(s));
	is(rs_gc_get_referrers(a, record, &s), 0L, "a has no referrers");
	is(s.n, 0, "... fn not called");

	rs_decref(a);
	rs_decref(b);
	rs_decref(c);
	rs_decref(h);
	rs_decref(e);
	settle_until(destroyed() - before == 4, 5000);
	is(destroyed() - before, 4L, "all freed by refcounting");
	is(gc_drain(), 0L, "nothing to collect");
}

/* ------------------------------------------------------------------------ */
/* Errors                                                                    */
/* ------------------------------------------------------------------------ */

#define EXPECT_EPERM(call, what)                                              \
	do {                                                                  \
		errno = 0;                                                    \
		ok((call) == -1 && errno == EPERM, "unattached: %s: -1/EPERM", \
		   what);                                                     \
	} while (0)

static struct seen unattached_seen;

static void *unattached(void *arg)
{
	struct rs_gc_stats st;
	long a, b, c;

	EXPECT_EPERM(rs_gc_collect(0), "rs_gc_collect");
	EXPECT_EPERM(rs_gc_enable(), "rs_gc_enable");
	EXPECT_EPERM(rs_gc_is_enabled(), "rs_gc_is_enabled");
	EXPECT_EPERM(rs_gc_set_threshold(1, 1, 1), "rs_gc_set_threshold");
	EXPECT_EPERM(rs_gc_get_threshold(&a, &b, &c), "rs_gc_get_threshold");
	EXPECT_EPERM(rs_gc_get_count(&a, &b, &c), "rs_gc_get_count");
	EXPECT_EPERM(rs_gc_freeze(), "rs_gc_freeze");
	EXPECT_EPERM(rs_gc_get_freeze_count(), "rs_gc_get_freeze_count");
	EXPECT_EPERM(rs_gc_get_stats(0, &st), "rs_gc_get_stats");
	EXPECT_EPERM(rs_gc_add_callback(other_cb, NULL), "rs_gc_add_callback");
	EXPECT_EPERM(rs_gc_garbage_clear(), "rs_gc_garbage_clear");
	EXPECT_EPERM(rs_gc_is_tracked(arg), "rs_gc_is_tracked");
	EXPECT_EPERM(rs_gc_get_referrers(arg, record, &unattached_seen),
		     "rs_gc_get_referrers");
	return NULL;
}

static void test_errors(void)
{
	struct node *n = obj_new(&node_type, 1);
	long t0, t1, t2;
	pthread_t t;

	errno = 0;
	ok(rs_gc_collect(3) == -1 && errno == EINVAL, "collect(3): EINVAL");
	errno = 0;
	ok(rs_gc_collect(-1) == -1 && errno == EINVAL, "collect(-1): EINVAL");
	rs_gc_get_threshold(&t0, &t1, &t2);
	start_thread(&t, unattached, n);
	join_offline(t);
	/* in case the unattached calls changed anything */
	if (rs_gc_remove_callback(other_cb, NULL) == 0)
		diag("the unattached thread's rs_gc_add_callback registered it");
	rs_gc_disable();
	rs_gc_set_threshold(t0, t1, t2);
	rs_decref(n);
	rs_safepoint();
}

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

/* A child run with REFSTORE_GC_THRESHOLDS set: exits 0 if it applied. */
static int thresholds_child(void)
{
	long t0, t1, t2;

	if (rs_init(NULL) || rs_thread_attach())
		return 10;
	if (rs_gc_get_threshold(&t0, &t1, &t2))
		return 11;
	if (t0 != 1234 || t1 != 7 || t2 != 9) {
		fprintf(stderr, "# child thresholds %ld %ld %ld\n", t0, t1, t2);
		return 12;
	}
	return rs_shutdown() == 0 ? 0 : 13;
}

static void test_env(const char *self)
{
	char *argv[] = {(char *)self, (char *)"thresholds-child", NULL};
	char **envp;
	int i, n = 0, status = -1;
	pid_t pid;

	for (i = 0; environ[i]; i++)
		;
	envp = calloc((size_t)i + 2, sizeof(*envp));
	for (i = 0; environ[i]; i++)
		if (strncmp(environ[i], "REFSTORE_GC_THRESHOLDS=", 23))
			envp[n++] = environ[i];
	envp[n++] = (char *)"REFSTORE_GC_THRESHOLDS=1234,7,9";
	envp[n] = NULL;
	fflush(NULL);
	if (posix_spawn(&pid, "/proc/self/exe", NULL, NULL, argv, envp) == 0) {
		rs_offline();
		waitpid(pid, &status, 0);
		rs_online();
	}
	free(envp);
	ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	   "REFSTORE_GC_THRESHOLDS=1234,7,9 sets the thresholds (status 0x%x)", status);
}

int main(int argc, char **argv)
{
	long t0, t1, t2;

	if (argc > 1 && !strcmp(argv[1], "thresholds-child"))
		return thresholds_child();
	ok(rs_init(NULL) == 0 && rs_thread_attach() == 0, "init and attach");
	if (!getenv("REFSTORE_GC_THRESHOLDS")) {
		rs_gc_get_threshold(&t0, &t1, &t2);
		ok(t0 == 2000 && t1 == 10 && t2 == 10, "default thresholds 2000/10/10 "
		   "(got %ld/%ld/%ld)", t0, t1, t2);
		is(rs_gc_is_enabled(), 1, "automatic collection enabled by default");
	}
	test_env(argv[0]);
	is(rs_gc_disable(), 0, "disable automatic collection for exact counts");

	test_errors();
	test_cycles();
	test_survivors();
	test_generations();
	test_thresholds();
	test_long_lived();
	test_finalizers();
	test_saveall();
	test_freeze();
	test_stats();
	test_introspection();
	test_pending_elsewhere();
	test_other_owners();
	test_cascade();
	test_dropped_before_stop();
	test_share();
	test_concurrent();

	is(rs_heap_verify(), 0L, "heap verifies");
	is(rs_shutdown(), 0L, "shutdown: nothing left alive");
	return exit_status();
}
