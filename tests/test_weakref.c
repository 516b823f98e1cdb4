/*
 * test_weakref.c - weak references (lib/weak.c), against docs/api.md:
 *
 *   - rs_weakref_get gives a counted reference while the target lives and
 *     NULL once it died, by plain refcounting (deferred: loops with
 *     safepoints) or by the collector (cleared while the world is stopped);
 *   - callbacks: exactly once, with the weak reference and its argument, on
 *     the thread that destroyed the target; none when the weak reference
 *     died first; a callback may drop the last reference to other objects,
 *     and may not detach its thread (EDEADLK);
 *   - garbage that a finalizer resurrects still has its weak references
 *     cleared;
 *   - immortal targets are never cleared;
 *   - rs_weakref_get on one thread while another drops the last reference
 *     (refcounting, then the collector), many times: every non-NULL result
 *     is a live object;
 *   - errors: EINVAL, EPERM.
 */
#include "gclib.h"

#if GC_TSAN
#define RACE_ITERS 5000L
#define RACE_GC_ITERS 1000L
#elif GC_SANITIZED
#define RACE_ITERS 8000L
#define RACE_GC_ITERS 2000L
#else
#define RACE_ITERS 10000L
#define RACE_GC_ITERS 3000L
#endif
#define RACE_MS 1200	/* time cap of each race */

/* ---- callback log ---- */

#define MAXCALLS 64

struct call {
	void *wr, *arg;
	pthread_t thread;
	int target_null;	/* rs_weakref_get(wr) was NULL inside */
};

static struct call calls[MAXCALLS];
static int ncalls;		/* atomic */

static void log_cb(void *wr, void *arg)
{
	int i = __atomic_fetch_add(&ncalls, 1, __ATOMIC_RELAXED);
	void *t;

	if (i >= MAXCALLS)
		return;
	calls[i].wr = wr;
	calls[i].arg = arg;
	calls[i].thread = pthread_self();
	t = rs_weakref_get(wr);
	calls[i].target_null = t == NULL;
	rs_decref(t);
}

/* Calls are logged from index call_base (set by each case: addresses of
 * freed weak references are reused). */
static int call_base;

static void calls_reset(void)
{
	call_base = __atomic_load_n(&ncalls, __ATOMIC_RELAXED);
}

static int calls_for(void *wr)
{
	int i, n = 0, k = __atomic_load_n(&ncalls, __ATOMIC_RELAXED);

	for (i = call_base; i < k && i < MAXCALLS; i++)
		n += calls[i].wr == wr;
	return n;
}

static struct call *call_of(void *wr)
{
	int i, k = __atomic_load_n(&ncalls, __ATOMIC_RELAXED);

	for (i = call_base; i < k && i < MAXCALLS; i++)
		if (calls[i].wr == wr)
			return &calls[i];
	return NULL;
}

static int tag1, tag2, tag3;

/* ------------------------------------------------------------------------ */

static void test_basic(void)
{
	struct node *n, *got;
	void *wr;
	long before = destroyed();

	n = obj_new(&node_type, 1);
	wr = rs_weakref_new(n, NULL, NULL);
	ok(wr != NULL, "rs_weakref_new");
	is(rs_refcount(wr), 1L, "the weak reference has one counted reference");
	is(rs_refcount(n), 1L, "the target's count is unchanged");
	is(rs_gc_is_tracked(wr), 0, "weak reference objects are not tracked");
	ok(rs_type_of(wr) != NULL, "the weak reference is an rs object");
	got = rs_weakref_get(wr);
	is_ptr(got, n, "get: the target");
	is(rs_refcount(n), 2L, "... as a counted reference");
	rs_decref(got);	/* n is published: deferred */
	settle_until(rs_refcount(n) == 1, 5000);
	is(rs_refcount(n), 1L, "given back");
	rs_decref(wr);
	settle_until(0, 20);
	is(n->magic, NODE_ALIVE, "dropping the weak reference leaves the target alone");
	rs_decref(n);
	settle_until(destroyed() - before == 1, 5000);
	is(destroyed() - before, 1L, "target freed");
}

static void test_refcount_death(void)
{
	struct node *n;
	struct call *c;
	void *wr, *got;
	long before;
	int k;

	idle_ms(5);	/* earlier cases' deferred deaths */
	before = destroyed();
	k = ncalls;
	calls_reset();

	n = obj_new(&node_type, 1);
	wr = rs_weakref_new(n, log_cb, &tag1);
	rs_decref(n);	/* n is published: the decrement waits for a grace period */
	got = rs_weakref_get(wr);
	ok(got == n || got == NULL, "get right after the decref: still n, or NULL");
	rs_decref(got);
	settle_until(destroyed() - before == 1, 5000);
	is(destroyed() - before, 1L, "target dropped: destroyed after safepoints");
	ok(rs_weakref_get(wr) == NULL, "get after its death: NULL");
	is(calls_for(wr), 1, "callback ran once by the end of the destroying safepoint");
	c = call_of(wr);
	ok(c && c->arg == &tag1, "... with its argument");
	ok(c && pthread_equal(c->thread, pthread_self()), "... on the destroying thread");
	ok(c && c->target_null, "... with the target already NULL");
	idle_ms(30);
	is(calls_for(wr), 1, "not again");
	is(ncalls - k, 1, "no other callback ran");
	rs_decref(wr);
	rs_safepoint();

	/* two weak references, one without callback, one with */
	before = destroyed();
	k = ncalls;
	calls_reset();
	{
		void *w1, *w2, *w3;

		n = obj_new(&node_type, 1);
		w1 = rs_weakref_new(n, log_cb, &tag1);
		w2 = rs_weakref_new(n, NULL, NULL);
		w3 = rs_weakref_new(n, log_cb, &tag2);
		rs_decref(n);
		settle_until(destroyed() - before == 1, 5000);
		ok(!rs_weakref_get(w1) && !rs_weakref_get(w2) && !rs_weakref_get(w3),
		   "three weak references to one target: all cleared");
		ok(calls_for(w1) == 1 && calls_for(w3) == 1 && ncalls - k == 2,
		   "both callbacks ran once (%d calls)", ncalls - k);
		ok(call_of(w1) && call_of(w1)->arg == &tag1 && call_of(w3) &&
		   call_of(w3)->arg == &tag2, "... each with its own argument");
		rs_decref(w1);
		rs_decref(w2);
		rs_decref(w3);
	}
	rs_safepoint();
}

static void test_collector_death(void)
{
	struct node *a, *b;
	void *wa, *wb;
	long before;
	int k;

	idle_ms(5);	/* earlier cases' deferred deaths */
	before = destroyed();
	k = ncalls;
	calls_reset();

	a = ring(&node_type, 2);
	b = a->kid[0];
	wa = rs_weakref_new(a, log_cb, &tag1);
	wb = rs_weakref_new(b, log_cb, &tag2);
	rs_decref(a);
	is(rs_gc_collect(0), 2L, "weakly referenced garbage cycle: 2 found");
	is(destroyed() - before, 2L, "... destroyed");
	ok(rs_weakref_get(wa) == NULL && rs_weakref_get(wb) == NULL,
	   "gets after the collection: NULL");
	settle_until(ncalls - k >= 2, 2000);
	ok(calls_for(wa) == 1 && calls_for(wb) == 1, "each callback ran once "
	   "(%d and %d, %d in all)", calls_for(wa), calls_for(wb), ncalls - k);
	ok(call_of(wa) && call_of(wa)->arg == &tag1 && call_of(wb) &&
	   call_of(wb)->arg == &tag2, "... with its argument");
	ok(call_of(wa) && pthread_equal(call_of(wa)->thread, pthread_self()),
	   "... on the collecting thread");
	ok(call_of(wa) && call_of(wa)->target_null, "... target already NULL");
	idle_ms(20);
	rs_gc_collect(2);
	is(ncalls - k, 2, "not again");
	rs_decref(wa);
	rs_decref(wb);
	rs_safepoint();
}

static void test_dropped_first(void)
{
	struct node *n, *a;
	void *wr;
	long base, before;
	int k;

	idle_ms(5);	/* earlier cases' deferred deaths */
	before = destroyed();
	k = ncalls;
	calls_reset();

	n = obj_new(&node_type, 1);
	wr = rs_weakref_new(n, log_cb, &tag3);
	base = live_objects();
	rs_decref(wr);
	settle_until(live_objects() == base - 1, 5000);
	is(live_objects(), base - 1, "weak reference dropped first: freed");
	rs_decref(n);
	settle_until(destroyed() - before == 1, 5000);
	idle_ms(20);
	is(destroyed() - before, 1L, "then the target dies");
	is(ncalls - k, 0, "... and no callback runs");

	/* the same with the collector */
	before = destroyed();
	a = ring(&node_type, 3);
	wr = rs_weakref_new(a, log_cb, &tag3);
	base = live_objects();
	rs_decref(wr);
	settle_until(live_objects() == base - 1, 5000);
	rs_decref(a);
	is(rs_gc_collect(0), 3L, "garbage whose weak reference died first: 3 found");
	idle_ms(20);
	is(destroyed() - before, 3L, "... destroyed");
	is(ncalls - k, 0, "... no callback");
}

/* ---- callbacks that drop the last reference to other objects ---- */

static struct node *victim;	/* a counted reference in a plain global */
static int victim_drops;

static void drop_cb(void *wr, void *arg)
{
	(void)wr;
	(void)arg;
	victim_drops++;
	rs_decref(victim);
	victim = NULL;
}

static void test_callback_drops(void)
{
	struct node *t;
	void *wr;
	long before;

	idle_ms(5);	/* earlier cases' deferred deaths */
	before = destroyed();

	victim = obj_new(&node_type, 2);
	t = obj_new(&node_type, 1);
	wr = rs_weakref_new(t, drop_cb, NULL);
	rs_decref(t);
	settle_until(destroyed() - before == 2, 5000);
	is(victim_drops, 1, "callback ran once");
	is(destroyed() - before, 2L, "target died by refcounting, the callback dropped "
	   "the last reference to another object: freed after safepoints");
	rs_decref(wr);

	before = destroyed();
	victim = obj_new(&node_type, 2);
	rs_publish(victim);
	t = ring(&node_type, 2);
	wr = rs_weakref_new(t, drop_cb, NULL);
	rs_decref(t);
	is(rs_gc_collect(0), 2L, "target cycle collected");
	settle_until(destroyed() - before == 3, 5000);
	is(victim_drops, 2, "callback ran once");
	is(destroyed() - before, 3L, "the object it dropped is freed after safepoints");
	rs_decref(wr);
	rs_safepoint();
}

/* ---- a callback may not detach its thread ----
 *
 * The library still holds the weak reference's count for the call and gives
 * it back after it, which needs an attached thread: rs_thread_detach from
 * a callback is refused (it used to detach, and the weak reference leaked
 * with the EPERM of that last decrement). */

static long detach_ret, detach_errno;

static void detach_cb(void *wr, void *arg)
{
	(void)wr;
	(void)arg;
	errno = 0;
	detach_ret = rs_thread_detach();
	detach_errno = errno;
}

static void test_callback_detach(void)
{
	struct node *t;
	void *wr;
	long base;

	idle_ms(5);
	rs_safepoint();
	base = live_objects();
	t = obj_new(&node_type, 1);
	wr = rs_weakref_new(t, detach_cb, NULL);
	detach_ret = 1;
	rs_decref(t);
	settle_until(detach_ret != 1, 5000);
	ok(detach_ret == -1 && detach_errno == EDEADLK,
	   "rs_thread_detach in a weak-reference callback: -1/EDEADLK");
	is(rs_safepoint(), 0L, "... the thread is still attached");
	rs_decref(wr);
	settle_until(live_objects() == base, 5000);
	is(live_objects(), base, "... target and weak reference freed");
}

/* ---- the target dies on another thread ---- */

static void *remote_wr;
static pthread_t remote_self;

static void *remote_owner(void *arg)
{
	struct node *n;

	(void)arg;
	rs_thread_attach();
	remote_self = pthread_self();
	n = obj_new(&node_type, 1);
	remote_wr = rs_weakref_new(n, log_cb, &tag2);
	rs_publish(remote_wr);	/* handed to the main thread below */
	rs_decref(n);
	settle_until(calls_for(remote_wr) >= 1, 5000);
	rs_thread_detach();
	return NULL;
}

static void test_remote_death(void)
{
	struct call *c;
	pthread_t t;
	int k;

	idle_ms(5);	/* earlier cases' deferred deaths */
	k = ncalls;
	calls_reset();

	start_thread(&t, remote_owner, NULL);
	join_offline(t);
	ok(rs_weakref_get(remote_wr) == NULL, "target dropped by another thread: cleared");
	is(ncalls - k, 1, "one callback");
	c = call_of(remote_wr);
	ok(c && pthread_equal(c->thread, remote_self), "... on the thread that destroyed it");
	ok(c && c->arg == &tag2 && c->target_null, "... with its argument, target NULL");
	rs_decref(remote_wr);
	rs_safepoint();
}

/* ---- resurrected garbage: its weak references are cleared anyway ---- */

static void test_resurrection(void)
{
	struct node *a;
	void *wr;
	long before, fbefore;

	idle_ms(5);	/* earlier cases' deferred deaths */
	before = destroyed();
	fbefore = finalized();

	a = ring_mode(&fin_type, 1, FIN_RESURRECT);
	wr = rs_weakref_new(a, NULL, NULL);
	rs_decref(a);
	rs_gc_collect(0);
	is(finalized() - fbefore, 1L, "finalizer ran");
	is_ptr(fin_saved, a, "... and resurrected the object");
	is(a->magic, NODE_ALIVE, "resurrected object alive");
	ok(rs_weakref_get(wr) == NULL, "its weak reference was cleared with the garbage");
	rs_decref(fin_saved);
	fin_saved = NULL;
	is(rs_gc_collect(2), 1L, "dropped again: collected");
	is(destroyed() - before, 1L, "... destroyed");
	rs_decref(wr);
	rs_safepoint();
}

/* ---- immortal targets ---- */

static void test_immortal(void)
{
	struct node *n, *got;
	void *wr;
	int k;

	idle_ms(5);	/* earlier cases' deferred deaths */
	k = ncalls;
	calls_reset();

	n = obj_new(&node_type, 1);
	is(rs_immortalize(n), 0, "immortalize");
	wr = rs_weakref_new(n, log_cb, &tag1);
	got = rs_weakref_get(wr);
	is_ptr(got, n, "get on an immortal target");
	is(rs_refcount(n), LONG_MAX, "... count LONG_MAX");
	rs_decref(got);
	rs_decref(n);
	settle_until(0, 20);
	rs_gc_collect(2);
	got = rs_weakref_get(wr);
	is_ptr(got, n, "still there after decrefs, safepoints and a collection");
	rs_decref(got);
	is(n->magic, NODE_ALIVE, "... alive");
	is(ncalls - k, 0, "no callback");
	rs_decref(wr);
	rs_safepoint();
}

/* ---- errors ---- */

static void *unattached(void *arg)
{
	void **p = (void **)arg;

	errno = 0;
	ok(rs_weakref_new(p[0], NULL, NULL) == NULL && errno == EPERM,
	   "unattached rs_weakref_new: NULL/EPERM");
	errno = 0;
	ok(rs_weakref_get(p[1]) == NULL && errno == EPERM,
	   "unattached rs_weakref_get: NULL/EPERM");
	return NULL;
}

static void test_errors(void)
{
	struct node *n = obj_new(&node_type, 1);
	void *wr = rs_weakref_new(n, NULL, NULL), *p[2] = {n, wr};
	pthread_t t;
	long base;

	errno = 0;
	ok(rs_weakref_new(NULL, NULL, NULL) == NULL && errno == EINVAL,
	   "rs_weakref_new(NULL): EINVAL");
	errno = 0;
	ok(rs_weakref_get(n) == NULL && errno == EINVAL,
	   "rs_weakref_get on a node: NULL/EINVAL");
	errno = 0;
	ok(rs_weakref_get(NULL) == NULL && errno == EINVAL,
	   "rs_weakref_get(NULL): NULL/EINVAL");
	idle_ms(5);	/* earlier cases' deferred deaths */
	base = live_objects();
	start_thread(&t, unattached, p);
	join_offline(t);
	is(live_objects(), base, "the unattached calls created nothing");
	rs_decref(wr);
	rs_decref(n);
	rs_safepoint();
}

/* ------------------------------------------------------------------------ */
/* rs_weakref_get racing with the target's death                            */
/* ------------------------------------------------------------------------ */

/* The race's targets have a type of their own, so that the deaths it
 * waits for are theirs only (earlier cases may still free nodes). */
static long targets_destroyed;	/* atomic */

static void target_destroy(void *obj)
{
	node_destroy(obj);
	__atomic_fetch_add(&targets_destroyed, 1, __ATOMIC_RELAXED);
}

static const rs_type target_type = {
	"target", sizeof(struct node), node_traverse, NULL, target_destroy, 0,
};

static inline long targets_gone(void)
{
	return __atomic_load_n(&targets_destroyed, __ATOMIC_RELAXED);
}

static void *wslot;		/* the current weak reference (counted) */
static int rquit;
static long rbad, rhits, rnulls, rcb;

static void count_cb(void *wr, void *arg)
{
	(void)wr;
	(void)arg;
	__atomic_fetch_add(&rcb, 1, __ATOMIC_RELAXED);
}

/* Gets in bursts of up to 200 us, then only safepoints for up to 1 ms: a
 * thread that gets without pause keeps the target alive for ever (each get
 * holds a count whose decrement is deferred), so deaths happen in the
 * quiet phases, and the other getter's bursts race with them. */
static void *getter(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg;
	struct node *t;
	void *w;
	long k = 0, hits = 0, nulls = 0;
	uint64_t phase_end;

	rs_thread_attach();
	while (!__atomic_load_n(&rquit, __ATOMIC_RELAXED)) {
		phase_end = now_ns() + (uint64_t)(rand_r(&seed) % 200) * 1000;
		while (now_ns() < phase_end) {
			w = rs_get(&wslot);
			if (w) {
				t = (struct node *)rs_weakref_get(w);
				if (t) {
					if (__atomic_load_n(&t->magic, __ATOMIC_RELAXED) !=
					    NODE_ALIVE)
						__atomic_fetch_add(&rbad, 1,
								   __ATOMIC_RELAXED);
					hits++;
					rs_decref(t);
				} else {
					nulls++;
				}
			}
			if (++k % 4 == 0)
				rs_safepoint();
		}
		phase_end = now_ns() + (uint64_t)(rand_r(&seed) % 1000) * 1000;
		while (now_ns() < phase_end &&
		       !__atomic_load_n(&rquit, __ATOMIC_RELAXED)) {
			rs_safepoint();
			sched_yield();
		}
	}
	__atomic_fetch_add(&rhits, hits, __ATOMIC_RELAXED);
	__atomic_fetch_add(&rnulls, nulls, __ATOMIC_RELAXED);
	rs_thread_detach();
	return NULL;
}

static void *race_collector(void *arg)
{
	long i = 0;

	(void)arg;
	rs_thread_attach();
	while (!__atomic_load_n(&rquit, __ATOMIC_RELAXED)) {
		rs_gc_collect((int)(i++ % 3));
		if (i % 8 == 0) {
			rs_offline();
			usleep(100);
			rs_online();
		}
	}
	rs_thread_detach();
	return NULL;
}

static void race(int by_gc)
{
	long iters = by_gc ? RACE_GC_ITERS : RACE_ITERS, i, per = by_gc ? 2 : 1;
	long base, before = targets_gone();
	uint64_t end = now_ns() + RACE_MS * 1000000ull;
	pthread_t t[3];
	int nt = 0, j;
	struct node *n;

	settle_until(0, 20);	/* let earlier cases' deaths happen */
	base = live_objects();
	rbad = rhits = rnulls = rcb = 0;
	rquit = 0;
	start_thread(&t[nt++], getter, (void *)1);
	start_thread(&t[nt++], getter, (void *)2);
	if (by_gc)
		start_thread(&t[nt++], race_collector, NULL);
	for (i = 0; i < iters && now_ns() < end; i++) {
		n = by_gc ? ring(&target_type, 2) : obj_new(&target_type, i);
		rs_set_steal(&wslot, rs_weakref_new(n, count_cb, NULL));
		rs_decref(n);
		/* the getters keep getting while the target dies */
		settle_until(targets_gone() - before >= (i + 1) * per, 5000);
		if (targets_gone() - before < (i + 1) * per) {
			diag("iteration %ld: target not freed", i);
			break;
		}
	}
	__atomic_store_n(&rquit, 1, __ATOMIC_RELAXED);
	for (j = 0; j < nt; j++)
		join_offline(t[j]);
	diag("%s: %ld iterations in %.0f ms, %ld gets found the target, %ld found NULL",
	     by_gc ? "collector" : "refcounting", i,
	     (now_ns() + RACE_MS * 1000000ull - end) / 1e6, rhits, rnulls);
	is(rbad, 0L, "%s: every object rs_weakref_get returned was alive",
	   by_gc ? "collector" : "refcounting");
	ok(i >= 100, "... over %ld deaths", i);
	settle_until(rcb == i, 2000);
	is(rcb, i, "... one callback per death");
	rs_clear(&wslot);
	settle_until(live_objects() == base, 5000);
	is(live_objects(), base, "... everything freed");
}

int main(void)
{
	rs_config cfg = {0};

	cfg.report_leaks = -1;	/* the immortal object stays */
	ok(rs_init(&cfg) == 0 && rs_thread_attach() == 0, "init and attach");
	rs_gc_disable();
	test_basic();
	test_refcount_death();
	test_collector_death();
	test_dropped_first();
	test_callback_drops();
	test_callback_detach();
	test_remote_death();
	test_resurrection();
	test_immortal();
	test_errors();
	race(0);
	race(1);
	is(rs_heap_verify(), 0L, "heap verifies");
	is(rs_shutdown(), 1L, "shutdown: only the immortal object left");
	return exit_status();
}
