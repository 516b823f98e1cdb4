/*
 * stress.h - the driver every stress program shares (header only).
 *
 * A stress program is run as
 *
 *     stress_<name> [threads [seconds [seed]]]
 *
 * (defaults: 2 threads, 2 seconds, a seed from the clock).  It prints one
 * start line with the seed (so any failure replays with the same three
 * arguments), a progress line about every second with its counters, and
 * exactly one verdict line at the end:
 *
 *     stress_<name>: PASS threads=2 seconds=2 seed=123 ops=... <counters>
 *     stress_<name>: FAIL seed=123: <what went wrong>   (exit status 1)
 *
 * The seed decides every random choice a thread makes (each thread has its
 * own generator derived from the seed and its index); the interleaving of
 * threads is not reproducible, so a replay reruns the same program of
 * operations under a new schedule.
 *
 * Use:
 *     static struct stress_counter c_ops = { "ops", 0 }, c_x = { "x", 0 };
 *     int main(int argc, char **argv)
 *     {
 *         stress_start(argc, argv, "name", (struct stress_counter *[]){
 *                      &c_ops, &c_x, NULL });
 *         ... start stress_threads workers, each looping while
 *             !stress_stopping(), bumping counters with stress_add ...
 *         stress_check(cond, "fmt", ...);      anywhere, any thread
 *         return stress_finish();              after rs_shutdown's check
 *     }
 */
#ifndef RS_STRESS_H
#define RS_STRESS_H

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "refstore.h"

struct stress_counter {
	const char *name;
	_Atomic long value;
};

static const char *stress_name = "stress";
static int stress_threads = 2;
static double stress_seconds = 2;
static uint64_t stress_seed;
static struct stress_counter **stress_counters;
static atomic_int stress_stop_flag;
static uint64_t stress_t0;
static pthread_t stress_monitor_thread;
static int stress_monitor_running;

static inline uint64_t stress_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A small, fast generator (xorshift64*); one per thread. */
struct stress_rng {
	uint64_t s;
};

static inline void stress_rng_init(struct stress_rng *r, uint64_t stream)
{
	/* splitmix64 of seed and stream: distinct, never zero */
	uint64_t z = stress_seed + 0x9e3779b97f4a7c15ULL * (stream + 1);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	r->s = (z ^ (z >> 31)) | 1;
}

static inline uint64_t stress_rand(struct stress_rng *r)
{
	r->s ^= r->s >> 12;
	r->s ^= r->s << 25;
	r->s ^= r->s >> 27;
	return r->s * 0x2545f4914f6cdd1dULL;
}

/* Uniform in [0, n), n > 0. */
__extension__ typedef unsigned __int128 stress_u128;

static inline uint64_t stress_below(struct stress_rng *r, uint64_t n)
{
	return (uint64_t)(((stress_u128)stress_rand(r) * n) >> 64);
}

static inline void stress_add(struct stress_counter *c, long n)
{
	atomic_fetch_add_explicit(&c->value, n, memory_order_relaxed);
}

static inline long stress_get(struct stress_counter *c)
{
	return atomic_load_explicit(&c->value, memory_order_relaxed);
}

static inline int stress_stopping(void)
{
	return atomic_load_explicit(&stress_stop_flag, memory_order_relaxed);
}

static inline void stress_print_counters(FILE *f)
{
	for (struct stress_counter **c = stress_counters; c && *c; c++)
		fprintf(f, " %s=%ld", (*c)->name, stress_get(*c));
}

/* The one FAIL verdict; exits the process (status 1). */
static inline void stress_fail(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));
static inline void stress_fail(const char *fmt, ...)
{
	static pthread_mutex_t fail_lock = PTHREAD_MUTEX_INITIALIZER;
	va_list ap;

	pthread_mutex_lock(&fail_lock);	/* one verdict, even from two threads */
	fflush(stdout);
	printf("%s: FAIL threads=%d seconds=%g seed=%" PRIu64 ": ", stress_name,
	       stress_threads, stress_seconds, stress_seed);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n%s: replay with: %s %d %g %" PRIu64 "\n", stress_name,
	       stress_name, stress_threads, stress_seconds, stress_seed);
	fflush(stdout);
	_exit(1);
}

#define stress_check(cond, ...)                                              \
	do {                                                                 \
		if (!(cond))                                                 \
			stress_fail(__VA_ARGS__);                            \
	} while (0)

/* What the refstore header of an object the caller can reach says that it
 * must not (destroyed, freed, dying), as " DEAD FREE ..." in buf; NULL if
 * nothing: the header is sound. */
static inline const char *stress_header_wrong(const void *p, char *buf,
					      size_t n)
{
	uint32_t bits = __atomic_load_n(&rs__head_of(p)->bits, __ATOMIC_RELAXED);

	if (!(bits & (RS__B_DEAD | RS__B_FREE | RS__B_DYING)))
		return NULL;
	snprintf(buf, n, "%s%s%s (bits %#x)", bits & RS__B_DEAD ? " DEAD" : "",
		 bits & RS__B_FREE ? " FREE" : "",
		 bits & RS__B_DYING ? " DYING" : "", bits);
	return buf;
}

/* Fails unless the header of p, reachable by the caller, is sound and
 * names the type expected. */
static inline void stress_check_header(const void *p, const rs_type *type,
				       const char *what)
{
	char buf[64];
	const char *wrong = stress_header_wrong(p, buf, sizeof(buf));

	stress_check(!wrong, "%s %p is reachable but its header says%s", what,
		     p, wrong);
	stress_check(rs_type_of(p) == type, "%s %p has type '%s', expected '%s'",
		     what, p, rs_type_of(p) ? rs_type_of(p)->name : "?",
		     type->name);
}

static void *stress_monitor(void *arg)
{
	uint64_t end = stress_t0 + (uint64_t)(stress_seconds * 1e9);
	uint64_t next = stress_t0 + 1000000000u;

	(void)arg;
	for (;;) {
		uint64_t now = stress_now_ns();

		if (now >= end)
			break;
		if (now >= next) {
			printf("%s: %.0f s", stress_name, (double)(now - stress_t0) / 1e9);
			stress_print_counters(stdout);
			putchar('\n');
			fflush(stdout);
			next += 1000000000u;
		}
		usleep(20000);
	}
	atomic_store(&stress_stop_flag, 1);
	return NULL;
}

/* Parses the arguments, prints the start line, starts the clock (the
 * monitor thread, which is not attached to refstore, raises the stop flag
 * when the time is up).  `counters` ends with NULL. */
static inline void stress_start(int argc, char **argv, const char *name,
				struct stress_counter **counters)
{
	stress_name = name;
	stress_counters = counters;
	stress_seed = stress_now_ns() ^ ((uint64_t)getpid() << 32);
	if (argc > 1)
		stress_threads = atoi(argv[1]);
	if (argc > 2)
		stress_seconds = atof(argv[2]);
	if (argc > 3)
		stress_seed = strtoull(argv[3], NULL, 0);
	if (argc > 4 || stress_threads < 1 || stress_threads > 256 ||
	    !(stress_seconds > 0)) {
		fprintf(stderr, "usage: %s [threads (1-256) [seconds [seed]]]\n", name);
		exit(2);
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("%s: start threads=%d seconds=%g seed=%" PRIu64 "\n", name,
	       stress_threads, stress_seconds, stress_seed);
	stress_t0 = stress_now_ns();
	if (pthread_create(&stress_monitor_thread, NULL, stress_monitor, NULL))
		stress_fail("pthread_create (monitor) failed");
	stress_monitor_running = 1;
}

/* Waits for the clock if it is still running, then prints PASS. */
static inline int stress_finish(void)
{
	if (stress_monitor_running) {
		pthread_join(stress_monitor_thread, NULL);
		stress_monitor_running = 0;
	}
	printf("%s: PASS threads=%d seconds=%g seed=%" PRIu64, stress_name,
	       stress_threads, stress_seconds, stress_seed);
	stress_print_counters(stdout);
	putchar('\n');
	return 0;
}

/* rs_shutdown, checked: every object must be gone (pass the number of
 * objects the program made immortal on purpose, usually 0). */
static inline void stress_shutdown(long expected_live)
{
	long live = rs_shutdown();

	stress_check(live == expected_live,
		     "rs_shutdown: %ld objects alive at the end (expected %ld)",
		     live, expected_live);
}

/* Starts n threads running fn(index); fails the run if one cannot start. */
static inline void stress_spawn(pthread_t *t, int n, void *(*fn)(void *))
{
	for (int i = 0; i < n; i++)
		if (pthread_create(&t[i], NULL, fn, (void *)(intptr_t)i))
			stress_fail("pthread_create failed");
}

/* Joins n threads while the caller (if attached) is offline. */
static inline void stress_join(pthread_t *t, int n)
{
	int attached = rs_offline() == 0;

	for (int i = 0; i < n; i++)
		pthread_join(t[i], NULL);
	if (attached)
		rs_online();
}

/* ------------------------------------------------------------------------ */
/* Helpers for programs that hand references between threads and churn     */
/* threads (stress_counts, stress_alloc).                                   */
/* ------------------------------------------------------------------------ */

/* rs_thread_attach, checked. */
static inline void stress_attach(void)
{
	if (rs_thread_attach())
		stress_fail("rs_thread_attach: %s", strerror(errno));
}

/* A mailbox of parcels: n counted references to obj, handed from one
 * thread to another by the program's own means.  The lock is held only
 * around the array update, never across a refstore call, so an online
 * thread may take it. */
struct stress_parcel {
	void *obj;
	long n;
};

struct stress_box {
	pthread_mutex_t lock;
	struct stress_parcel *v;	/* Sync: lock */
	size_t n, cap;			/* Sync: lock */
	atomic_size_t size;		/* n as last set under the lock */
};

static inline void stress_box_init(struct stress_box *b)
{
	pthread_mutex_init(&b->lock, NULL);
	b->v = NULL;
	b->n = b->cap = 0;
	atomic_init(&b->size, 0);
}

static inline void stress_box_put(struct stress_box *b, void *obj, long n)
{
	struct stress_parcel *v;

	pthread_mutex_lock(&b->lock);
	if (b->n == b->cap) {
		b->cap = b->cap ? 2 * b->cap : 64;
		v = realloc(b->v, b->cap * sizeof(*v));
		if (!v)
			stress_fail("out of memory for a mailbox");
		b->v = v;
	}
	b->v[b->n++] = (struct stress_parcel){ obj, n };
	atomic_store_explicit(&b->size, b->n, memory_order_relaxed);
	pthread_mutex_unlock(&b->lock);
}

/* Takes the oldest-placed parcel (the last one moves into its place, so
 * parcels do not sit at the bottom for ever); 0 when the box is empty. */
static inline int stress_box_take(struct stress_box *b,
				  struct stress_parcel *out)
{
	int got = 0;

	pthread_mutex_lock(&b->lock);
	if (b->n) {
		*out = b->v[0];
		b->v[0] = b->v[--b->n];
		atomic_store_explicit(&b->size, b->n, memory_order_relaxed);
		got = 1;
	}
	pthread_mutex_unlock(&b->lock);
	return got;
}

/* Parcels in the box, without the lock (a hint). */
static inline size_t stress_box_size(struct stress_box *b)
{
	return atomic_load_explicit(&b->size, memory_order_relaxed);
}

/* Thread churn: lane i runs fn(lane) on a new thread, again and again,
 * until the time is up.  Each run is a generation: a new thread that
 * attaches and exits anew; fn decides how long it lives and must return
 * soon after stress_stopping().  The lane threads themselves are never
 * attached. */
struct stress_lane {
	int index;		/* 0 .. n-1 */
	long generation;	/* 0, 1, ...; read by the generation's thread */
	void *(*fn)(void *);	/* called with this struct */
	pthread_t thread;
};

static struct stress_lane stress_lanes[256];
static int stress_nlanes;

static inline void *stress_lane_main(void *arg)
{
	struct stress_lane *l = arg;
	pthread_t t;

	do {
		if (pthread_create(&t, NULL, l->fn, l))
			stress_fail("pthread_create (lane %d) failed", l->index);
		pthread_join(t, NULL);
		l->generation++;
	} while (!stress_stopping());
	return NULL;
}

static inline void stress_lanes_start(int n, void *(*fn)(void *))
{
	stress_nlanes = n;
	for (int i = 0; i < n; i++) {
		stress_lanes[i] = (struct stress_lane){ i, 0, fn, 0 };
		if (pthread_create(&stress_lanes[i].thread, NULL,
				   stress_lane_main, &stress_lanes[i]))
			stress_fail("pthread_create (lane) failed");
	}
}

/* Waits for every lane's last generation (offline if the caller is
 * attached). */
static inline void stress_lanes_join(void)
{
	int attached = rs_offline() == 0;

	for (int i = 0; i < stress_nlanes; i++)
		pthread_join(stress_lanes[i].thread, NULL);
	if (attached)
		rs_online();
}

/* A generation's generator: distinct for every lane and generation. */
static inline void stress_lane_rng(const struct stress_lane *l,
				   struct stress_rng *r)
{
	stress_rng_init(r, (uint64_t)l->generation * 256 + (uint64_t)l->index);
}

#endif /* RS_STRESS_H */
