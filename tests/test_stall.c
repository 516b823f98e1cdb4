/*
 * test_stall.c - a thread that blocks while online (threads/world.c,
 * rs_set_stall_handler; docs/api.md "Stalls"):
 *
 *   - an explicit collection waits for the stalled thread, as long as it
 *     takes, and names it once through the handler (its pthread name, how
 *     long the stop had waited, gave_up 0);
 *   - an automatic collection gives its stop up after the stall time: the
 *     thread that ran it goes on long before the stalled one wakes, the
 *     handler says gave_up 1, rs_stats counts the stop given up, and
 *     collections run again once the stalled thread is back.
 *
 * The stall time is the default, 100 ms; the stalled thread sleeps for
 * much longer, so the checks hold on a slow (sanitized) build.
 */
#include "testlib.h"

#include <string.h>

static struct {
	int calls, gave_up;	/* atomic */
	char name[16];
	uint64_t waited_ns, thread_id;
} seen;

static void on_stall(const struct rs_stall_info *info, void *arg)
{
	(void)arg;
	if (__atomic_fetch_add(&seen.calls, 1, __ATOMIC_ACQ_REL) == 0) {
		memcpy(seen.name, info->name, sizeof(seen.name));
		seen.waited_ns = info->waited_ns;
		seen.thread_id = info->thread_id;
	}
	if (info->gave_up)
		__atomic_fetch_add(&seen.gave_up, 1, __ATOMIC_RELAXED);
}

static int sleeper_state;	/* 1: attached and about to sleep online */
static unsigned sleeper_ms;

static void *sleeper(void *arg)
{
	(void)arg;
	pthread_setname_np(pthread_self(), "stall-sleeper");
	rs_thread_attach();
	__atomic_store_n(&sleeper_state, 1, __ATOMIC_RELEASE);
	usleep(sleeper_ms * 1000u);	/* online, no safepoint: a stall */
	rs_safepoint();
	rs_thread_detach();
	return NULL;
}

static void start_sleeper(pthread_t *th, unsigned ms)
{
	sleeper_ms = ms;
	__atomic_store_n(&sleeper_state, 0, __ATOMIC_RELAXED);
	memset(&seen, 0, sizeof(seen));
	start_thread(th, sleeper, NULL);
	while (!__atomic_load_n(&sleeper_state, __ATOMIC_ACQUIRE))
		sched_yield();
}

static void test_explicit(void)
{
	pthread_t th;
	uint64_t t0, took;
	long r;

	start_sleeper(&th, 600);
	t0 = now_ns();
	r = rs_gc_collect(0);
	took = now_ns() - t0;
	ok(r >= 0, "an explicit collection while a thread sleeps online: %ld", r);
	ok(took >= 300000000u, "... it waited for the sleeper (%.0f ms)",
	   took / 1e6);
	is(__atomic_load_n(&seen.calls, __ATOMIC_ACQUIRE), 1,
	   "... and named it once through the handler");
	ok(!strcmp(seen.name, "stall-sleeper"), "... by its name (\"%s\")",
	   seen.name);
	ok(seen.thread_id != 0, "... and its id (%llu)",
	   (unsigned long long)seen.thread_id);
	ok(seen.waited_ns >= 100000000u && seen.waited_ns < 400000000u,
	   "... when the stop had waited the stall time (%.0f ms)",
	   seen.waited_ns / 1e6);
	is(seen.gave_up, 0, "... an explicit collection does not give up");
	join_offline(th);
}

static void test_automatic(void)
{
	struct rs_stats st0, st1;
	struct node *keep[64];
	pthread_t th;
	uint64_t t0, took;
	int i;

	rs_stats(&st0);
	rs_gc_set_threshold(1, 10, 10);
	rs_gc_enable();
	start_sleeper(&th, 1500);
	for (i = 0; i < 64; i++)	/* a young collection is due */
		keep[i] = node_new(i);
	t0 = now_ns();
	rs_safepoint();		/* runs it: its stop gives up */
	took = now_ns() - t0;
	rs_stats(&st1);
	ok(took < 1000000000u, "an automatic collection's safepoint returned "
	   "after %.0f ms, while the sleeper still sleeps", took / 1e6);
	ok(st1.world_stops_given_up > st0.world_stops_given_up,
	   "rs_stats counts the stop given up (%llu)",
	   (unsigned long long)(st1.world_stops_given_up -
				st0.world_stops_given_up));
	ok(__atomic_load_n(&seen.gave_up, __ATOMIC_ACQUIRE) >= 1,
	   "the handler was told the stop was given up");
	ok(!strcmp(seen.name, "stall-sleeper"), "... and named the sleeper");
	join_offline(th);
	usleep(1100000);	/* past the pause after a stop given up */
	for (i = 0; i < 64; i++)
		rs_decref(keep[i]);
	rs_stats(&st0);
	for (i = 0; i < 64; i++)
		rs_decref(node_new(i));
	for (i = 0; i < 64; i++)
		keep[i] = node_new(i);
	rs_safepoint();
	rs_stats(&st1);
	ok(st1.world_stops > st0.world_stops, "with the sleeper back, the "
	   "automatic collection ran (%llu stops)",
	   (unsigned long long)(st1.world_stops - st0.world_stops));
	for (i = 0; i < 64; i++)
		rs_decref(keep[i]);
	rs_gc_disable();
	rs_gc_set_threshold(2000, 10, 10);
}

int main(void)
{
	ok(rs_init(NULL) == 0 && rs_thread_attach() == 0, "init and attach");
	is(rs_gc_disable(), 0, "automatic collection off to begin with");
	is(rs_set_stall_handler(on_stall, NULL), 0, "rs_set_stall_handler");
	test_explicit();
	test_automatic();
	is(rs_set_stall_handler(NULL, NULL), 0, "back to the default report");
	rs_safepoint();
	rs_gc_collect(2);
	is(rs_shutdown(), 0L, "shutdown: nothing left alive");
	return exit_status();
}
