/*
 * test_gc_api.c - the collector's public controls (lib/gc_api.c), against
 * docs/api.md ("The cycle collector"): generations, counts, thresholds and
 * automatic collection, enable/disable, old generations collected through
 * their cycle candidates, the uncollectable list (RS_GC_DEBUG_SAVEALL), freeze across
 * fork, stats and callbacks, introspection, errors, and thresholds from the
 * environment.  The algorithm itself is tested in test_gc.c.
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
#define LONG_LIVED 3000L
#else
#define LONG_LIVED 10000L
#endif

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

/*
 * The old generations are collected through their cycle candidates
 * (objects a decrement left with references), not by whole-heap
 * collections: survivors promoted in bulk cause no such collection, and
 * old cycles dropped do.
 */
static void test_old_candidates(void)
{
	struct rs_gc_stats st[RS_GC_GENERATIONS];
	struct node **ll, **surv, **rings;
	long i, d1, d2, left, n = LONG_LIVED, s = LONG_LIVED / 2, k = 1000;

	ll = malloc((size_t)n * sizeof(*ll));
	surv = malloc((size_t)s * sizeof(*surv));
	rings = malloc((size_t)k * sizeof(*rings));
	for (i = 0; i < n; i++)
		ll[i] = obj_new(&node_type, i);
	rs_gc_collect(2);	/* all of it old, and clean */
	rs_gc_set_threshold(100, 2, 2);
	rs_gc_enable();
	snap(st);
	garbage_pairs(3000, 1);
	d1 = delta(st, 1);
	d2 = delta(st, 2);
	ok(delta(st, 0) >= 5, "thresholds 100/2/2, 6000 allocations of garbage: "
	   "%ld young collections", delta(st, 0));
	is(d1 + d2, 0L, "... and no automatic collection of generation 1 or 2 "
	   "(%ld long-lived, no candidate)", n);
	for (i = 0; i < s; i++) {
		surv[i] = obj_new(&node_type, i);
		rs_decref(ring(&node_type, 2));
		rs_safepoint();
	}
	d1 = delta(st, 1);
	d2 = delta(st, 2);
	diag("promotions: %ld gen-0, %ld gen-1, %ld gen-2 collections",
	     delta(st, 0), d1, d2);
	ok(delta(st, 0) >= 5, "%ld survivors promoted by %ld young collections",
	   s, delta(st, 0));
	is(d1 + d2, 0L, "... and no collection of generation 1 or 2: promotion "
	   "makes no candidate (the whole-heap rule of CPython's long-lived "
	   "quarter is gone)");

	rs_gc_disable();
	for (i = 0; i < k; i++)
		rings[i] = ring(&node_type, 3);
	rs_gc_collect(1);
	rs_gc_collect(1);	/* the rings are in generation 2 now */
	rs_gc_enable();
	snap(st);
	for (i = 0; i < k; i++)
		rs_decref(rings[i]);	/* each ring's head: a candidate */
	garbage_pairs(3000, 1);
	rs_safepoint();
	d2 = delta(st, 2);
	ok(d2 >= 1, "%ld old 3-cycles dropped: %ld collections of generation 2 "
	   "(from their candidates)", k, d2);
	rs_gc_disable();
	left = rs_gc_collect(2);
	ok(left >= 0 && left < 3 * k, "... which freed the rings: a full "
	   "collection finds %ld objects (young pairs only), not %ld", left, 3 * k);

	rs_gc_set_threshold(2000, 10, 10);
	for (i = 0; i < n; i++)
		rs_decref(ll[i]);
	for (i = 0; i < s; i++)
		rs_decref(surv[i]);
	free(ll);
	free(surv);
	free(rings);
	rs_safepoint();
	gc_drain();
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
	/* self (argv[0]), not /proc/self/exe, which under Valgrind is
	 * Valgrind's own tool */
	if (posix_spawn(&pid, self, NULL, NULL, argv, envp) == 0) {
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
	test_generations();
	test_thresholds();
	test_old_candidates();
	test_saveall();
	test_freeze();
	test_stats();
	test_introspection();

	is(rs_heap_verify(), 0L, "heap verifies");
	is(rs_shutdown(), 0L, "shutdown: nothing left alive");
	return exit_status();
}
