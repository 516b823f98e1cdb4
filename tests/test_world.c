/*
 * test_world.c - stopping the world at safepoints.
 *
 * Workers of three kinds run while the main thread stops and resumes the
 * world: busy ones that poll safepoints, one that stays offline, and one that
 * keeps going offline and online.  While the world is stopped, no worker may
 * make progress; between stops, every worker must (a thread coming back
 * online is not starved by back-to-back stops).  Two threads that stop the
 * world concurrently take turns.
 */
#define RS_BUILDING 1
#include "internal.h"
#include "testlib.h"

#define NBUSY 2
static long progress[4];	/* per worker: intervals run */
static int quit;

static void *busy(void *arg)
{
	long *p = (long *)arg;

	rs_thread_attach();
	while (!__atomic_load_n(&quit, __ATOMIC_RELAXED)) {
		__atomic_fetch_add(p, 1, __ATOMIC_RELAXED);
		rs_safepoint();
	}
	rs_thread_detach();
	return NULL;
}

static void *toggler(void *arg)
{
	long *p = (long *)arg;

	rs_thread_attach();
	while (!__atomic_load_n(&quit, __ATOMIC_RELAXED)) {
		rs_offline();
		sched_yield();
		rs_online();
		__atomic_fetch_add(p, 1, __ATOMIC_RELAXED);
		rs_safepoint();
	}
	rs_thread_detach();
	return NULL;
}

static void *sleeper(void *arg)
{
	(void)arg;
	rs_thread_attach();
	rs_offline();
	while (!__atomic_load_n(&quit, __ATOMIC_RELAXED))
		usleep(1000);
	rs_online();
	rs_thread_detach();
	return NULL;
}

static long prog(int i)
{
	return __atomic_load_n(&progress[i], __ATOMIC_RELAXED);
}

static long sum_progress(void)
{
	long s = 0;
	int i;

	for (i = 0; i < 4; i++)
		s += __atomic_load_n(&progress[i], __ATOMIC_RELAXED);
	return s;
}

static void test_stop(void)
{
	pthread_t t[4];
	long moved = 0, p0, p1, before[4], starved = 0;
	struct rs__stop_stats ss;
	uint64_t end;
	int i, stops = 0;

	for (i = 0; i < NBUSY; i++)
		start_thread(&t[i], busy, &progress[i]);
	start_thread(&t[2], toggler, &progress[2]);
	start_thread(&t[3], sleeper, NULL);
	settle_until(sum_progress() > 1000 && prog(2) > 10, 3000);

	for (i = 0; i < 50; i++) {
		rs__world_stop();
		p0 = sum_progress();
		usleep(500);
		p1 = sum_progress();
		moved += p1 != p0;
		rs__world_resume(&ss);
		stops++;
		usleep(200);
	}
	is(moved, 0L, "no worker ran while the world was stopped (%d stops)", stops);

	/* back-to-back stops: each worker must still run between them */
	end = now_ns() + 300 * 1000000ull;
	for (i = 0; i < 4; i++)
		before[i] = prog(i);
	while (now_ns() < end) {
		rs__world_stop();
		rs__world_resume(NULL);
		stops++;
	}
	for (i = 0; i < 3; i++)
		starved += prog(i) == before[i];
	is(starved, 0L, "back-to-back stops starve no worker (toggler ran %ld "
	   "intervals)", prog(2) - before[2]);

	__atomic_store_n(&quit, 1, __ATOMIC_RELAXED);
	rs_offline();
	for (i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	rs_online();
	{
		struct rs_stats st;

		rs_stats(&st);
		ok(st.world_stops >= (uint64_t)stops, "stops counted (%llu)",
		   (unsigned long long)st.world_stops);
		ok(st.ttsp_max_ns > 0 && st.pause_max_ns > 0,
		   "time-to-safepoint max %llu ns, pause max %llu ns",
		   (unsigned long long)st.ttsp_max_ns,
		   (unsigned long long)st.pause_max_ns);
	}
}

/* ---- two stoppers ---- */

static int in_stop, overlap;
static long stopper_rounds[2];

static void *stopper(void *arg)
{
	long *rounds = (long *)arg;
	int i;

	rs_thread_attach();
	for (i = 0; i < 300; i++) {
		rs__world_stop();
		if (__atomic_fetch_add(&in_stop, 1, __ATOMIC_RELAXED))
			__atomic_store_n(&overlap, 1, __ATOMIC_RELAXED);
		sched_yield();
		__atomic_fetch_sub(&in_stop, 1, __ATOMIC_RELAXED);
		rs__world_resume(NULL);
		(*rounds)++;
		rs_safepoint();
	}
	rs_thread_detach();
	return NULL;
}

static void test_two_stoppers(void)
{
	pthread_t t[3];

	__atomic_store_n(&quit, 0, __ATOMIC_RELAXED);
	start_thread(&t[0], stopper, &stopper_rounds[0]);
	start_thread(&t[1], stopper, &stopper_rounds[1]);
	start_thread(&t[2], busy, &progress[0]);
	rs_offline();
	pthread_join(t[0], NULL);
	pthread_join(t[1], NULL);
	__atomic_store_n(&quit, 1, __ATOMIC_RELAXED);
	pthread_join(t[2], NULL);
	rs_online();
	ok(stopper_rounds[0] == 300 && stopper_rounds[1] == 300,
	   "two concurrent stoppers both finish");
	is(overlap, 0, "their stops never overlap");
}

/* ---- attach during a stop ---- */

static int late_attached;

static void *late(void *arg)
{
	(void)arg;
	rs_thread_attach();
	__atomic_store_n(&late_attached, 1, __ATOMIC_RELEASE);
	rs_thread_detach();
	return NULL;
}

static void test_attach_during_stop(void)
{
	pthread_t t;

	rs__world_stop();
	start_thread(&t, late, NULL);
	usleep(20000);
	is(__atomic_load_n(&late_attached, __ATOMIC_ACQUIRE), 0,
	   "a thread attaching during a stop waits for the resume");
	rs__world_resume(NULL);
	join_offline(t);
	is(late_attached, 1, "and then runs");
}

int main(void)
{
	plan(10);
	ok(rs_init(NULL) == 0 && rs_thread_attach() == 0, "init and attach");
	test_stop();
	test_two_stoppers();
	test_attach_during_stop();
	is(rs_shutdown(), 0L, "shutdown clean");
	return exit_status();
}
