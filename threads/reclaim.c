/*
 * reclaim.c - the reclaimer: the thread that turns sealed decrement batches
 * into matured ones by waiting for RCU grace periods, and runs the jobs
 * that must not run on an attached thread.
 *
 * Algorithm: take every submitted batch, urcu_qsbr_synchronize_rcu(), mark
 * each batch matured with a release store; its owner applies it at a later
 * safepoint (lib/defer.c).  Jobs (rs__reclaim_job: a map table's resize or
 * destruction, lib/map.c) run in the order queued, one at a time.
 *
 * Invariants
 * ----------
 * (R1) A batch's grace period begins after every entry in it was logged.
 * (R2) When it ends, no borrowed reference from before the logging survives.
 * (R3) The release store of `matured` pairs with batch_matured()'s acquire.
 * Liveness: the reclaimer is a urcu reader only in a job; threads wait offline.
 * Fork: batches mature under pend_lock, jobs leave the queue under job_lock.
 *
 * The argument: docs/design.md §9 ("The reclaimer").
 */
#define RS_BUILDING 1
#include "internal.h"

#include <signal.h>

#ifdef __SANITIZE_THREAD__
char rs__tsan_gp;
#endif

static rs__mutex pend_lock = {PTHREAD_MUTEX_INITIALIZER, RS__L_RECLAIM};
static rs__mutex gp_lock = {PTHREAD_MUTEX_INITIALIZER, RS__L_GP};
static rs__mutex job_lock = {PTHREAD_MUTEX_INITIALIZER, RS__L_JOB};
static pthread_cond_t pend_cv = PTHREAD_COND_INITIALIZER;

/* All Sync: pend_lock */
static struct rs__batch *pending;	/* submitted, not yet taken */
static struct rs__batch *inflight;	/* taken, waiting for the grace period */
static struct rs__job *jobs;		/* rs__reclaim_job, not yet run */
static int jobs_paused;			/* rs__reclaim_jobs_pause, nested */
static bool job_running;
static pthread_cond_t job_cv = PTHREAD_COND_INITIALIZER;
static bool running, started;
static pthread_t reclaimer;
static uint64_t gp_count, lat_total, lat_max, lat_n;
static bool gp_wanted;		/* rs__gp_request: run one even with no batch */
static bool hold_start;		/* fork child repairing urcu: no thread yet */

/*
 * Grace-period sequence numbers, for the allocator's type stability
 * (lib/alloc.c).  Both change only under gp_lock: gp_started is bumped just
 * before urcu_qsbr_synchronize_rcu, gp_done set to the same number just
 * after.  A stamp taken with rs__gp_stamp after an event E is the number of
 * the last grace period that may have started before E; grace period
 * stamp + 1 started after E, so rs__gp_passed (gp_done > stamp) means a
 * whole grace period has run since E.  Sync: atomic (seq_cst), written
 * under gp_lock.
 */
static uint64_t gp_started, gp_done;

static void synchronize_counted(void)
{
	uint64_t n = rs__load_relaxed(&gp_started) + 1;

	rs__store_seq_cst(&gp_started, n);
	urcu_qsbr_synchronize_rcu();
	RS_TSAN_GRACE_PERIOD();
	rs__store_seq_cst(&gp_done, n);
}

/* The fork child's repair is done: requests may start the reclaimer. */
void rs__reclaim_fork_done(void)
{
	bool want;

	rs__lock(&pend_lock);
	hold_start = false;
	want = gp_wanted || jobs;
	rs__unlock(&pend_lock);
	if (want)
		rs__gp_request();
}

uint64_t rs__gp_stamp(void)
{
	return rs__load_seq_cst(&gp_started);
}

bool rs__gp_passed(uint64_t stamp)
{
	return rs__load_seq_cst(&gp_done) > stamp;
}

/* Run the queued jobs, oldest first.  Called with pend_lock held; drops it
 * while the jobs run.  The list is taken only under job_lock, which fork's
 * prepare step takes: a fork never happens between taking jobs and running
 * them, so a child never loses one.  rs_heap_verify pauses jobs (a job frees
 * objects, and the world stop does not stop the reclaimer). */
static void run_jobs_locked(void)
{
	struct rs__job *j, *list, *next;

	while (jobs && !jobs_paused) {
		rs__unlock(&pend_lock);
		rs__lock(&job_lock);
		rs__lock(&pend_lock);
		list = NULL;
		if (!jobs_paused) {
			for (j = jobs, jobs = NULL; j; j = next) {
				next = j->next;
				j->next = list;
				list = j;
			}
		}
		job_running = list != NULL;
		rs__unlock(&pend_lock);
		for (j = list; j; j = next) {
			next = j->next;
			j->fn(j);
		}
		rs__unlock(&job_lock);
		rs__lock(&pend_lock);
		job_running = false;
		pthread_cond_broadcast(&job_cv);
	}
}

/* Hold jobs back, and wait (offline for urcu: a job may wait for a grace
 * period) until none is running. */
void rs__reclaim_jobs_pause(void)
{
	bool online = rs__self() && urcu_qsbr_read_ongoing();

	if (online)
		urcu_qsbr_thread_offline();
	rs__lock(&pend_lock);
	jobs_paused++;
	while (job_running)
		pthread_cond_wait(&job_cv, &pend_lock.m);
	rs__unlock(&pend_lock);
	if (online)
		urcu_qsbr_thread_online();
}

void rs__reclaim_jobs_resume(void)
{
	rs__lock(&pend_lock);
	jobs_paused--;
	pthread_cond_signal(&pend_cv);
	rs__unlock(&pend_lock);
}

static void *reclaimer_main(void *unused)
{
	struct rs__batch *b, *next;
	uint64_t now, lat;

	(void)unused;
	rs__lock(&pend_lock);
	for (;;) {
		while (!pending && !gp_wanted && (!jobs || jobs_paused) &&
		       running)
			pthread_cond_wait(&pend_cv, &pend_lock.m);
		run_jobs_locked();
		if (!pending && !gp_wanted) {
			if (running)
				continue;
			break;
		}
		inflight = pending;
		pending = NULL;
		gp_wanted = false;
		rs__unlock(&pend_lock);

		rs__lock(&gp_lock);
		synchronize_counted();
		rs__unlock(&gp_lock);
		/* emptied slabs whose grace period this was (no lock held) */
		if (rs__alloc_reap_wanted())
			rs__alloc_reap();

		rs__lock(&pend_lock);
		now = rs__now_ns();
		for (b = inflight; b; b = next) {
			next = b->rnext; /* the owner may reuse b once matured */
			lat = now - b->sealed_ns;
			lat_total += lat;
			lat_n++;
			if (lat > lat_max)
				lat_max = lat;
			/* pairs with the acquire load in batch_matured (defer.c) */
			rs__store_release(&b->matured, 1);
		}
		inflight = NULL;
		gp_count++;
	}
	rs__unlock(&pend_lock);
	return NULL;
}

static void start_locked(void)
{
	sigset_t all, old;

	/* The reclaimer never handles the program's signals. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	running = true;
	if (pthread_create(&reclaimer, NULL, reclaimer_main, NULL) == 0)
		started = true;
	else
		running = false;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

bool rs__reclaim_submit(struct rs__batch *b)
{
	struct rs__batch **p;

	b->matured = 0;
	b->rnext = NULL;
	rs__lock(&pend_lock);
	for (p = &pending; *p; p = &(*p)->rnext)
		;
	*p = b;
	if (!started)
		start_locked();
	if (!started) {
		/* No thread could be created: the submitter waits for the
		 * grace period itself at its next safepoint (defer.c). */
		*p = NULL;
		rs__unlock(&pend_lock);
		return false;
	}
	pthread_cond_signal(&pend_cv);
	rs__unlock(&pend_lock);
	return true;
}

void rs__reclaim_job(struct rs__job *j)
{
	rs__lock(&pend_lock);
	j->next = jobs;
	jobs = j;
	if (!started && !hold_start)
		start_locked();
	pthread_cond_signal(&pend_cv);
	rs__unlock(&pend_lock);
}

/*
 * Wait for a full grace period from a quiescent point of the calling thread
 * (a safepoint or detach).  The caller goes offline for urcu while it waits,
 * so it never waits on itself.
 */
void rs__synchronize(void)
{
	bool online = rs__self() && urcu_qsbr_read_ongoing();

	RS_TSAN_QUIESCENT();
	if (online)
		urcu_qsbr_thread_offline();
	rs__lock(&gp_lock);
	synchronize_counted();
	rs__unlock(&gp_lock);
	if (online)
		urcu_qsbr_thread_online();
}

/* Ask for a grace period even if no batch is pending (the allocator waits
 * for one before it reuses an emptied slab for another size class). */
void rs__gp_request(void)
{
	rs__lock(&pend_lock);
	gp_wanted = true;
	if (!started && !hold_start)
		start_locked();
	pthread_cond_signal(&pend_cv);
	rs__unlock(&pend_lock);
}

void rs__reclaim_stop(void)
{
	bool join;

	rs__lock(&pend_lock);
	join = started;
	running = false;
	pthread_cond_signal(&pend_cv);
	rs__unlock(&pend_lock);
	if (join)
		pthread_join(reclaimer, NULL);
	rs__lock(&pend_lock);
	started = false;
	/* jobs queued when no reclaimer could be started: the caller (the
	 * last thread, detached) is not a urcu reader either */
	run_jobs_locked();
	rs__unlock(&pend_lock);
}

void rs__reclaim_stats(uint64_t *gps, uint64_t *avg, uint64_t *max)
{
	rs__lock(&pend_lock);
	*gps = gp_count;
	*avg = lat_n ? lat_total / lat_n : 0;
	*max = lat_max;
	rs__unlock(&pend_lock);
}

/* fork: hold both locks, so the reclaimer is neither inside a grace period
 * (urcu's own locks are free) nor between taking and marking batches.  The
 * caller is offline for urcu, so the grace period in progress can end. */
void rs__reclaim_fork_prepare(void)
{
	rs__lock(&job_lock);	/* no job (a map's table resize) half done */
	rs__lock(&pend_lock);
	rs__lock(&gp_lock);
}

void rs__reclaim_fork_parent(void)
{
	rs__unlock(&gp_lock);
	rs__unlock(&pend_lock);
	rs__unlock(&job_lock);
}

/* The child has no reclaimer thread and forgets the batch lists: every
 * batch not yet matured is still on its owner's sealed list, and
 * rs__defer_resubmit_all (defer.c) submits each of them again. */
void rs__reclaim_fork_child(void)
{
	rs__lock_reinit(&pend_lock);
	rs__lock_reinit(&gp_lock);
	rs__lock_reinit(&job_lock);
	pthread_cond_init(&pend_cv, NULL);
	pthread_cond_init(&job_cv, NULL);
	jobs_paused = 0;	/* a pausing thread is gone */
	job_running = false;
	pending = inflight = NULL;
	running = started = false;
	gp_wanted = false;
	hold_start = true;
}
