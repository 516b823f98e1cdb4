/*
 * gc_sched.c - who runs a collection, and when.
 *
 * The collector role: one thread at a time collects, freezes, walks
 * referrers or touches the uncollectable list (invariant G4 in lib/gc.c).
 * The automatic triggers: a young collection when the young count passes
 * threshold[0] (run by a thread that holds its share of the young objects),
 * a collection of the old generations from their cycle candidates when they
 * are due (docs/design.md §11, "Cycle candidates").  And fork's hold on the
 * role, so a child never inherits a collection half done.  The algorithm
 * itself is lib/gc.c's.
 */
#define RS_BUILDING 1
#include "collector.h"

#include <stdio.h>

/* The collector role (G4). */
static pthread_mutex_t role_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t role_cv = PTHREAD_COND_INITIALIZER;
static struct rs__thread *role_holder;	/* Sync: role_lock */

/* ---------------------------------------------------------------------- */
/* The collector role                                                      */
/* ---------------------------------------------------------------------- */

/*
 * Take the role (reentrant).  A thread that must wait goes offline first.
 * One that cannot (inside a destroy callback: no_reentry) must not wait
 * online, or the holder's next stop would wait for it forever: it gets
 * false (and EDEADLK), as when `wait` is false and the role is taken.
 */
bool rs__gc_role_take(struct rs__thread *t, bool wait)
{
	bool offline = false;

	if (t->gc_depth) {
		t->gc_depth++;
		return true;
	}
	if (!wait && rs__load_relaxed(&role_holder))
		return false;	/* no lock traffic while a collection runs */
	pthread_mutex_lock(&role_lock);
	if (role_holder && (!wait || t->no_reentry)) {
		pthread_mutex_unlock(&role_lock);
		errno = EDEADLK;
		return false;
	}
	if (role_holder && rs__load_relaxed(&t->state) == RS__T_ONLINE) {
		/* wait offline: the holder may need to stop the world */
		pthread_mutex_unlock(&role_lock);
		rs_offline();
		offline = true;
		pthread_mutex_lock(&role_lock);
	}
	while (role_holder)
		pthread_cond_wait(&role_cv, &role_lock);
	rs__store_relaxed(&role_holder, t);
	t->gc_depth = 1;
	pthread_mutex_unlock(&role_lock);
	if (offline)
		rs_online();
	return true;
}

void rs__gc_role_give(struct rs__thread *t)
{
	if (--t->gc_depth)
		return;
	pthread_mutex_lock(&role_lock);
	rs__store_relaxed(&role_holder, NULL);
	pthread_cond_broadcast(&role_cv);
	pthread_mutex_unlock(&role_lock);
}

/* A collection of generations 0..gen ran (world stopped): the counts that
 * decide the next automatic one start again. */
void rs__gc_count_collection(int gen)
{
	uint32_t slot, nslots = rs__load_acquire(&rs__nslots);
	int g;

	/* world stopped: the young objects were all examined */
	rs__store_relaxed(&rs__gc.young_count, 0);
	for (slot = 1; slot <= nslots; slot++)
		rs__slots[slot]->gc_delta = 0;
	rs__store_relaxed(&rs__gc_requested, 0);
	for (g = 1; g <= gen; g++)
		rs__store_relaxed(&rs__gc.gen_count[g], 0);
	if (gen < 2)
		rs__store_relaxed(&rs__gc.gen_count[gen + 1],
				  rs__load_relaxed(&rs__gc.gen_count[gen + 1]) + 1);
}

#define GEN_CAND RS_GC_GENERATIONS	/* choose_generation: candidates */


/*
 * What an automatic collection collects.  The old generations only through
 * their cycle candidates: when there are rs__gc_cand_trigger() of them, or when
 * there are any and threshold[1] young collections ran since the last
 * candidate collection (so a few candidates do not wait for ever).  A
 * program that makes no candidate never collects its old objects; the
 * whole-heap collections of CPython's scheme (generation 2 after
 * threshold[2] collections of generation 1, gated by the long-lived
 * quarter) and the automatic collections of generation 1 are gone: a
 * cycle through generation 1 has a candidate (lib/gc.c, top), so the
 * candidate collection finds it.  Then the young generation after
 * threshold[0] tracked allocations.
 */
static int choose_generation(void)
{
	size_t cand = rs__load_relaxed(&rs__gc.candidates);

	if (cand && (cand >= rs__gc_cand_trigger() ||
		     rs__load_relaxed(&rs__gc.gen_count[1]) >
			     rs__load_relaxed(&rs__gc.threshold[1])))
		return GEN_CAND;
	if (rs__load_relaxed(&rs__gc.young_count) >
	    rs__load_relaxed(&rs__gc.threshold[0]))
		return 0;
	return -1;
}

/*
 * Whether t holds its share of the young objects: at least rs__gc.young_count / the
 * attached threads in its own nursery.  An automatic collection is run by a
 * thread that holds its share, at its safepoint, where its own dropped
 * objects are already dead.  Another thread's count is mostly what that
 * thread is building between two of its safepoints (binary-trees: a tree of
 * up to 131,071 nodes per safepoint); a collection started for it waits for
 * that thread to finish, then finds the structure alive and promotes it --
 * with two threads, 2,320 young, 211 middle and 10 full collections in five
 * runs, against 5 young with one.  Some thread always holds its share (the
 * largest nursery does), so collections are delayed until that thread's
 * safepoint, not lost; the young garbage other threads make meanwhile is
 * bounded by what that thread holds, since it counts in their share too.
 */
static bool holds_share(struct rs__thread *t)
{
	struct rs__gclog *log = &t->nursery;
	size_t n = rs__attached_hint();
	int64_t own = (int64_t)log->n - (int64_t)log->holes;

	/* a few owner fields and relaxed loads, no lock: a thread without its
	 * share meets the pending request at each of its safepoints.  Deaths
	 * by other threads (remote_holes, under the nursery's lock) are left
	 * out: that only makes a thread collect sooner. */
	return n <= 1 || own * (int64_t)n >= rs__load_relaxed(&rs__gc.young_count);
}

/* A safepoint saw a request (the caller is at a safepoint, not in one). */
void rs__gc_auto(struct rs__thread *t)
{
	size_t trig;
	long found;
	int gen;

	if (t->gc_depth || t->no_reentry || !rs__load_relaxed(&rs__gc.enabled) ||
	    rs__load_relaxed(&rs__gc.threshold[0]) <= 0) {
		rs__store_relaxed(&rs__gc_requested, 0);
		return;
	}
	if (RS_UNLIKELY(rs__load_relaxed(&rs__gc.retry_after_ns)) &&
	    rs__now_ns() < rs__load_relaxed(&rs__gc.retry_after_ns))
		return;	/* a stop was given up lately: the request waits */
	gen = choose_generation();
	if (gen < 0) {
		rs__store_relaxed(&rs__gc_requested, 0);
		return;
	}
	if (gen != GEN_CAND && !holds_share(t))
		return;	/* the request stays for the threads that do */
	if (!rs__gc_role_take(t, false))
		return;	/* another thread is collecting */
	gen = choose_generation();	/* with the role: counts are settled */
	if (gen == GEN_CAND) {
		found = rs__gc_cand_collection(t, true);
		trig = rs__load_relaxed(&rs__gc.cand_factor);
		trig = found > 0 ? 1 : found < 0 ? trig :
		       trig < 64 ? 2 * trig : trig;
		rs__store_relaxed(&rs__gc.cand_factor, trig);
	} else if (gen >= 0) {
		rs__gc_collect_gen(t, gen, true);
	} else {
		rs__store_relaxed(&rs__gc_requested, 0);
	}
	/* a young collection may have made the candidates due (t1) */
	if (choose_generation() == GEN_CAND)
		rs__store_relaxed(&rs__gc_requested, 1);
	rs__gc_role_give(t);
}

/* fork: the child must not inherit a collection in progress.  The forking
 * thread takes the role first (it waits offline), unless it holds it.  From
 * a destroy callback it cannot wait: if another thread collects, the child
 * inherits that collection's held garbage, which then stays allocated (the
 * collecting thread does not exist there), but nothing is freed twice. */
static bool fork_took;

void rs__gc_fork_prepare(void)
{
	struct rs__thread *t = rs__self();

	fork_took = false;
	if (!rs__runtime_up())
		return;
	if (t && rs__tls.tid) {
		if (!t->gc_depth)
			fork_took = rs__gc_role_take(t, true);
		return;
	}
	pthread_mutex_lock(&role_lock);
	while (role_holder)
		pthread_cond_wait(&role_cv, &role_lock);
	rs__store_relaxed(&role_holder, (struct rs__thread *)&role_holder);
	pthread_mutex_unlock(&role_lock);
	fork_took = true;
}

static void fork_release(void)
{
	struct rs__thread *t = rs__self();

	if (!fork_took)
		return;
	if (t && rs__tls.tid) {
		rs__gc_role_give(t);
		return;
	}
	pthread_mutex_lock(&role_lock);
	rs__store_relaxed(&role_holder, NULL);
	pthread_cond_broadcast(&role_cv);
	pthread_mutex_unlock(&role_lock);
}

void rs__gc_fork_parent(void)
{
	fork_release();
}

void rs__gc_fork_child(void)
{
	uint32_t slot;
	struct rs__thread *t = rs__self();

	pthread_mutex_init(&role_lock, NULL);
	pthread_cond_init(&role_cv, NULL);
	if (!fork_took && !(t && t->gc_depth))
		rs__store_relaxed(&role_holder, NULL);	/* its holder is gone */
	pthread_mutex_init(&rs__gc.stats_lock, NULL);
	for (slot = 1; slot <= rs__nslots; slot++)
		rs__lock_reinit(&rs__slots[slot]->nursery.lock);
	rs__weak_fork_child();
	fork_release();
}
