/*
 * world.c - safepoints, offline/online, and stopping the world.
 *
 * A safepoint is, at once, an urcu-qsbr quiescent state (borrowed references
 * end), the point where a thread merges objects queued to it and applies its
 * matured decrements, and the point where it parks if a stop was requested.
 * An offline thread (rs_offline .. rs_online) is quiescent for urcu and
 * counts as stopped for the world.
 *
 * Thread states (enum rs__tstate, internal.h), with who moves them:
 *
 *             rs_offline (self)             lease (merger, CAS)
 *   ONLINE  ------------------->  OFFLINE  ------------------>  LEASED
 *     ^  ^  <-------------------     ^     <------------------
 *     |  |   rs_online (self, CAS)   |       unlease (merger)
 *     |  |                           |
 *     |  +--- resume (stopper) --- PARKED   <- safepoint sees a stop (self)
 *     +------ resume (stopper) --- WAITING  <- rs_online sees a stop (self)
 *   ONLINE --detach (self)--> DEAD <--fork child (forking thread)-- any other
 *
 * Stop protocol
 * -------------
 * stopper:  lock world; wait while another stop is in progress (parking
 *           itself meanwhile if it is an online attached thread);
 *           stop_requested = 1 (seq_cst); spin (lock released, at most
 *           RS_STOP_SPIN_NS) until no other thread is ONLINE; then, under the
 *           lock, for each thread t != self: wait until t->state != ONLINE;
 *           unlock.  The world is stopped.
 * resume:   lock world; every PARKED or WAITING thread -> ONLINE;
 *           stop_requested = 0; epoch++; broadcast; unlock.
 * safepoint, stop seen: lock world; state = PARKED; signal the stopper;
 *           wait for the epoch to change; (the stopper made us ONLINE).
 * rs_online: state OFFLINE -> ONLINE (CAS, seq_cst), then load
 *           stop_requested (seq_cst); if set: lock world, recheck, state =
 *           WAITING, signal, wait for the epoch to change.
 * rs_offline: state = OFFLINE (seq_cst), then if stop_requested: lock world,
 *           signal the stopper.
 *
 * Invariants
 * ----------
 * (W1) No mutator code runs while the world is stopped (Dekker, seq_cst).
 * (W2) No lost wake-up: leaving ONLINE during a stop broadcasts under the lock.
 * (W3) No starvation: a stopped thread runs an interval between two stops.
 * (W4) No deadlock with grace periods: every wait here is offline for urcu.
 * (W5) The world lock orders parked threads' and the stopper's writes.
 *
 * The argument: docs/design.md §10.
 */
#define RS_BUILDING 1
#include "internal.h"

#include <sched.h>
#include <stdio.h>
#include <time.h>

int rs__stop_requested;

static rs__mutex world_lock = {PTHREAD_MUTEX_INITIALIZER, RS__L_WORLD};
static pthread_cond_t world_cv = PTHREAD_COND_INITIALIZER;
static pthread_cond_t stopped_cv = PTHREAD_COND_INITIALIZER;

/* All Sync: world lock */
static uint64_t epoch;
/* Which thread holds the world stopped, and a number for this stop (never
 * 0, never reused).  Sync: atomic (relaxed): written by the stopper, read
 * to compare with oneself (rs__world_stop_token). */
static struct rs__thread *stopped_by;
static uint64_t stop_token, stop_count;
static struct rs__thread *stopper;
static uint64_t stop_begin, stop_reached;
static uint64_t nstops, ttsp_max, ttsp_total, pause_max, pause_total;
static uint64_t nstops_given_up;

static void wait_for_resume(void)
{
	uint64_t e = epoch;

	while (epoch == e)
		pthread_cond_wait(&world_cv, &world_lock.m);
}

/* The calling thread leaves ONLINE for `state` and waits for the resume.
 * Called with the world lock held and urcu offline. */
static void stop_self(struct rs__thread *t, int state)
{
	rs__store_seq_cst(&t->state, state);
	pthread_cond_broadcast(&stopped_cv);
	wait_for_resume();
}

static void park(struct rs__thread *t)
{
	RS_TSAN_QUIESCENT();
	urcu_qsbr_thread_offline();
	rs__lock(&world_lock);
	if (rs__load_relaxed(&rs__stop_requested) && stopper != t)
		stop_self(t, RS__T_PARKED);
	rs__unlock(&world_lock);
	urcu_qsbr_thread_online();
}

static int safepoint_slow(struct rs__thread *t)
{
	if (RS_DEBUG)
		rs__assert_no_locks("rs_safepoint");
	t->no_reentry = 1;
	if (rs__load_relaxed(&rs__stop_requested)) {
		rs__defer_before_park(t);
		park(t);
	}
	rs__drain_queue(t);
	rs__defer_safepoint(t);
	if (t->dying)	/* released before parking: destroy it now */
		rs__cascade(t);
	t->no_reentry = 0;
	/* user code: weak-reference callbacks, then a requested collection
	 * (unless a callback detached the thread) */
	if (t->callbacks || rs__load_relaxed(&rs__weak_orphans))
		rs__weak_run_callbacks(t);
	if (rs__self() == t && rs__load_relaxed(&rs__gc_requested))
		rs__gc_auto(t);
	return 0;
}

int rs_safepoint(void)
{
	struct rs__thread *t = rs__api_thread(RS__API_OR_DETACHING);

	if (RS_UNLIKELY(!t))
		return -1;
	if (RS_DEBUG && t->in_map_walk)
		rs__die("rs_safepoint", NULL, "called inside rs_map_foreach (a "
			"safepoint ends the walk's read-side section)");
	if (RS_UNLIKELY(t->no_reentry))
		return 0;	/* from a destroy callback */
	RS_TSAN_QUIESCENT();
	urcu_qsbr_quiescent_state();
	if (RS_LIKELY(!rs__load_relaxed(&rs__stop_requested) &&
		      !rs__load_relaxed(&t->queue_hint) &&
		      !rs__load_relaxed(&rs__gc_requested) &&
		      !t->callbacks && !rs__defer_has_work(t)))
		return 0;
	return safepoint_slow(t);
}

/* Called between batches of a long cascade or batch application: the thread
 * is at a safepoint (no borrowed references), so it may park. */
void rs__safepoint_poll(struct rs__thread *t)
{
	if (RS_UNLIKELY(rs__load_relaxed(&rs__stop_requested))) {
		if (t->dying)	/* in a cascade: see rs__defer_before_park */
			rs__release_dying(t, RS__RELEASE_AT_PARK);
		park(t);
	}
}

/* After a thread's state turned stopped (seq_cst store): a stopper that
 * may be waiting for it is woken. */
static void wake_stopper(void)
{
	if (rs__load_seq_cst(&rs__stop_requested)) {
		rs__lock(&world_lock);
		pthread_cond_broadcast(&stopped_cv);
		rs__unlock(&world_lock);
	}
}

void rs__set_state(struct rs__thread *t, int state)
{
	rs__store_seq_cst(&t->state, state);
	wake_stopper();
}

int rs_offline(void)
{
	struct rs__thread *t = rs__api_thread(RS__API_OR_DETACHING);

	if (!t)
		return -1;
	if (RS_DEBUG && t->in_map_walk)
		rs__die("rs_offline", NULL, "called inside rs_map_foreach (a "
			"safepoint ends the walk's read-side section)");
	if (t->no_reentry) {
		errno = EDEADLK;
		return -1;
	}
	if (rs__load_relaxed(&t->state) != RS__T_ONLINE)
		return 0;
	/* Going offline is a quiescent point: finish the interval's work so
	 * an offline thread holds back as little as possible.  The state turns
	 * OFFLINE under the queue lock and only with the queue empty: a
	 * non-owner queueing to us (lib/brc.c queue_to_owner, under the same lock)
	 * either came first, and we merge its object before going, or comes
	 * after, finds us OFFLINE and merges on the spot under our lease.
	 * Without the lock an object queued between our safepoint and the
	 * store stayed queued, with all it holds, until we came back or a
	 * collection drained the queues (found by model/brc.pml).  A stopper
	 * is woken after the unlock: the world lock ranks below the queue
	 * lock. */
	for (;;) {
		rs_safepoint();
		rs__defer_seal(t);
		rs__lock(&t->qlock);
		if (!t->qn)
			break;
		rs__unlock(&t->qlock);
	}
	RS_TSAN_QUIESCENT();
	urcu_qsbr_thread_offline();
	rs__store_seq_cst(&t->state, RS__T_OFFLINE);
	rs__unlock(&t->qlock);
	wake_stopper();
	return 0;
}

int rs_online(void)
{
	struct rs__thread *t = rs__api_thread(RS__API_OR_DETACHING);
	int expected;

	if (!t)
		return -1;
	for (;;) {
		expected = RS__T_OFFLINE;
		if (rs__cas_seq_cst(&t->state, &expected, RS__T_ONLINE))
			break;
		if (expected != RS__T_LEASED)
			return 0;	/* already online */
		sched_yield();	/* a merger holds our lease briefly */
	}
	/* Dekker with rs__world_stop: see (W1) */
	if (rs__load_seq_cst(&rs__stop_requested)) {
		rs__lock(&world_lock);
		if (rs__load_relaxed(&rs__stop_requested) && stopper != t)
			stop_self(t, RS__T_WAITING);
		rs__unlock(&world_lock);
	}
	urcu_qsbr_thread_online();
	return 0;
}

/* How long a stopper spins before it sleeps. */
#define RS_STOP_SPIN_NS 200000u

static bool all_stopped(struct rs__thread *self)
{
	struct rs__thread *o;
	uint32_t slot;

	for (slot = 1; slot <= rs__load_acquire(&rs__nslots); slot++) {
		o = rs__load_acquire(&rs__slots[slot]);
		if (o && o != self && rs__load_seq_cst(&o->state) == RS__T_ONLINE)
			return false;
	}
	return true;
}

static void spin_until_stopped(struct rs__thread *self, uint64_t deadline)
{
	unsigned i = 0;

	while (!all_stopped(self)) {
		if ((++i & 63) == 0) {
			if (rs__now_ns() > deadline)
				return;
			sched_yield();	/* more threads than cores: let them run */
		}
#if defined(__x86_64__) || defined(__i386__)
		__builtin_ia32_pause();
#endif
	}
}

/*
 * Stalls (rs_set_stall_handler).  A stopper that has waited stall_ns for a
 * thread still ONLINE names it -- through the handler, or one line on
 * stderr at most once a second -- once per stop.  The handler runs on the
 * stopper with the world lock released; it must not call refstore.
 */
static rs_stall_fn stall_fn;	/* Sync: world lock, as stall_arg */
static void *stall_arg;
static uint64_t stall_last_line;	/* Sync: world lock */

int rs_set_stall_handler(rs_stall_fn fn, void *arg)
{
	rs__lock(&world_lock);
	stall_fn = fn;
	stall_arg = arg;
	rs__unlock(&world_lock);
	return 0;
}

/* World lock held; released around the report. */
static void stall_report(struct rs__thread *o, uint64_t waited, int gave_up)
{
	struct rs_stall_info info = {0};
	rs_stall_fn fn = stall_fn;
	void *arg = stall_arg;
	uint64_t now = rs__now_ns();

	info.kind = RS_STALL_STOP;
	rs__lock(&o->qlock);		/* tid's lock (internal.h) */
	info.thread_id = o->tid;
	rs__unlock(&o->qlock);
	info.waited_ns = waited;
	info.gave_up = gave_up;
	if (pthread_getname_np(o->pthread, info.name, sizeof(info.name)))
		info.name[0] = 0;
	if (!fn && now - stall_last_line < 1000000000u)
		return;		/* rate-limited */
	if (!fn)
		stall_last_line = now;
	rs__unlock(&world_lock);
	if (fn)
		fn(&info, arg);
	else
		fprintf(stderr, "refstore: a stop of the world has waited %llu ms "
			"for thread %llu (\"%s\"), online and not at a safepoint%s\n",
			(unsigned long long)(waited / 1000000),
			(unsigned long long)info.thread_id, info.name,
			gave_up ? "; the automatic collection gave its stop up" : "");
	rs__lock(&world_lock);
}

/* Undo a stop that did not complete (world lock held): every thread that
 * parked goes on, as at a resume. */
static void stop_cancel(void)
{
	struct rs__thread *o;
	uint32_t slot;
	int st;

	for (slot = 1; slot <= rs__load_acquire(&rs__nslots); slot++) {
		o = rs__load_acquire(&rs__slots[slot]);
		if (!o)
			continue;
		st = rs__load_relaxed(&o->state);
		if (st == RS__T_PARKED || st == RS__T_WAITING)
			rs__store_seq_cst(&o->state, RS__T_ONLINE);
	}
	stopper = NULL;
	rs__store_seq_cst(&rs__stop_requested, 0);
	epoch++;
	pthread_cond_broadcast(&world_cv);
}

/* Wait (world lock held) until o is no longer ONLINE; after stall_ns,
 * report it once, and if give_up, return false at that point. */
static bool wait_stopped(struct rs__thread *o, bool give_up, bool *reported)
{
	uint64_t stall = rs__rt.stall_ns, waited;
	struct timespec ts;

	while (rs__load_seq_cst(&o->state) == RS__T_ONLINE) {
		waited = rs__now_ns() - stop_begin;
		if (stall && waited >= stall && !*reported) {
			*reported = true;
			stall_report(o, waited, give_up);
			if (give_up)
				return rs__load_seq_cst(&o->state) != RS__T_ONLINE;
			continue;
		}
		if (!stall || *reported) {
			pthread_cond_wait(&stopped_cv, &world_lock.m);
			continue;
		}
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 10000000;		/* look again in 10 ms */
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&stopped_cv, &world_lock.m, &ts);
	}
	return true;
}

/*
 * Stop the world.  With give_up (automatic collections), a thread that
 * stays online for the stall time makes the stop fail: the threads already
 * parked go on and false is returned.  Otherwise it waits as long as it
 * takes (naming the straggler once) and returns true.
 */
bool rs__world_try_stop(bool give_up)
{
	struct rs__thread *t = rs__self(), *o;
	bool online = t && urcu_qsbr_read_ongoing(), reported = false, ok = true;
	uint32_t slot;

	RS_TSAN_QUIESCENT();
	if (online)
		urcu_qsbr_thread_offline();
	rs__lock(&world_lock);
	while (rs__load_relaxed(&rs__stop_requested)) {
		/* Another stop is in progress: count as stopped meanwhile. */
		if (t && rs__load_relaxed(&t->state) == RS__T_ONLINE)
			stop_self(t, RS__T_PARKED);
		else
			wait_for_resume();
	}
	rs__store_seq_cst(&rs__stop_requested, 1);
	stopper = t;
	stop_begin = rs__now_ns();
	/* Spin first, with the lock released: threads that poll safepoints
	 * often park within microseconds, and being woken from a condition
	 * variable costs more than that on a virtual machine (measured: the
	 * wake-up made up most of the time-to-safepoint).  Then block. */
	rs__unlock(&world_lock);
	spin_until_stopped(t, stop_begin + RS_STOP_SPIN_NS);
	rs__lock(&world_lock);
	for (slot = 1; ok && slot <= rs__load_acquire(&rs__nslots); slot++) {
		o = rs__load_acquire(&rs__slots[slot]);
		if (o && o != t)
			ok = wait_stopped(o, give_up, &reported);
	}
	if (!ok) {
		stop_cancel();
		nstops_given_up++;
	} else {
		stop_reached = rs__now_ns();
		rs__store_relaxed(&stop_token, ++stop_count);
		rs__store_relaxed(&stopped_by, t);
	}
	rs__unlock(&world_lock);
	if (online)
		urcu_qsbr_thread_online();
	return ok;
}

void rs__world_stop(void)
{
	rs__world_try_stop(false);
}

/* Non-zero, and the same number throughout, while the calling (attached)
 * thread holds the world stopped: what is cached under it stays true until
 * the world resumes (lib/map.c). */
uint64_t rs__world_stop_token(void)
{
	struct rs__thread *t = rs__self();

	if (!t || rs__load_relaxed(&stopped_by) != t)
		return 0;
	return rs__load_relaxed(&stop_token);
}

void rs__world_resume(struct rs__stop_stats *out)
{
	struct rs__thread *o;
	uint64_t now, ttsp, pause;
	uint32_t slot;
	int st;

	rs__lock(&world_lock);
	now = rs__now_ns();
	for (slot = 1; slot <= rs__load_acquire(&rs__nslots); slot++) {
		o = rs__load_acquire(&rs__slots[slot]);
		st = rs__load_relaxed(&o->state);
		if (st == RS__T_PARKED || st == RS__T_WAITING)
			rs__store_seq_cst(&o->state, RS__T_ONLINE);
	}
	ttsp = stop_reached - stop_begin;
	pause = now - stop_reached;
	nstops++;
	ttsp_total += ttsp;
	pause_total += pause;
	if (ttsp > ttsp_max)
		ttsp_max = ttsp;
	if (pause > pause_max)
		pause_max = pause;
	stopper = NULL;
	rs__store_relaxed(&stopped_by, NULL);
	rs__store_seq_cst(&rs__stop_requested, 0);
	epoch++;
	pthread_cond_broadcast(&world_cv);
	rs__unlock(&world_lock);
	if (out) {
		out->ttsp_ns = ttsp;
		out->pause_ns = pause;
	}
}

void rs__world_stats(uint64_t *stops, uint64_t *tmax, uint64_t *ttot,
		     uint64_t *pmax, uint64_t *ptot, uint64_t *given_up)
{
	rs__lock(&world_lock);
	*stops = nstops;
	*tmax = ttsp_max;
	*ttot = ttsp_total;
	*pmax = pause_max;
	*ptot = pause_total;
	*given_up = nstops_given_up;
	rs__unlock(&world_lock);
}


/* fork: the stop (taken by fork.c) already holds everyone else; the child
 * starts with no stop in progress and fresh synchronisation objects. */
void rs__world_fork_child(void)
{
	rs__lock_reinit(&world_lock);
	pthread_cond_init(&world_cv, NULL);
	pthread_cond_init(&stopped_cv, NULL);
	stopper = NULL;
	epoch++;
	rs__store_seq_cst(&rs__stop_requested, 0);
}

void rs__world_reset(void)
{
	rs__lock(&world_lock);
	nstops = ttsp_max = ttsp_total = pause_max = pause_total = 0;
	nstops_given_up = 0;
	rs__unlock(&world_lock);
}
