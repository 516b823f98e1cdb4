/*
 * bench_stw.c - how long refstore takes to stop the world (time-to-safepoint,
 * TTSP) and how long the world stays stopped (pause), measured in the same
 * run as a peer: a signal-based stop like the Boehm GC's.  A benchmark, not a
 * test: it prints numbers and ratios, never pass/fail.
 *
 * Workload.  M mutator threads (-m, default 1: the machine this was written
 * on has 2 cores, and the stopper needs the other one) each run work units of
 * about W microseconds (-w, default 5): walk a 4-node published chain through
 * a shared slot (p = rs_get(&slot); p = rs_get(&p->next) ...; sum the
 * values), then a calibrated busy loop that reads and writes 16 KiB of the
 * thread's own memory.  A stopper thread stops the world every I
 * microseconds (-i, default 1000), does P microseconds of its own work while
 * the world is stopped (-p, default 20: the same calibrated loop plus a walk
 * of the chain), and resumes.  Each side runs for D seconds in all (-d,
 * default 2), split into R rounds (-r, default 4) that alternate the sides,
 * so that drift of the machine hits both alike.
 *
 *   refstore  mutators are attached and call rs_safepoint() after every unit;
 *             the stopper is attached, online only around the stop, and calls
 *             rs__world_stop() / rs__world_resume() (the internal API a
 *             collector will use).  TTSP and pause are the library's own
 *             figures (struct rs__stop_stats): TTSP from the store of
 *             stop_requested to "no other thread ONLINE"; pause from then to
 *             the start of the resume.
 *   peer      mutators are plain threads running the same loop without any
 *             safepoint (the chain is read with plain acquire loads): a
 *             signal interrupts them anywhere.  The stopper sends
 *             pthread_kill(SIGUSR1) to each mutator; the handler acknowledges
 *             with sem_post and waits in sigsuspend until SIGUSR2 (after the
 *             stop's epoch moved) resumes it.  TTSP: from before the first
 *             pthread_kill to the last acknowledgement (sem_wait); pause: from
 *             then to the start of the resume (sending SIGUSR2).
 *
 * Both sides also report, measured by the stopper around the calls, the wall
 * time of the stop call (refstore: includes the world lock and the wake-up
 * of the stopper; peer: equals TTSP) and of the resume call (refstore: turn
 * parked threads ONLINE + broadcast; peer: one pthread_kill per mutator).
 *
 * How to read it.  For every measure the table gives p50 / p99 / p99.9 / max
 * / mean in microseconds over all stops of that side, and the ratio
 * refstore / peer (below 1: refstore is faster).  Throughput is work units
 * per second summed over the mutators, with stops and in a baseline without
 * any stopper (the refstore baseline still calls rs_safepoint), so "cost of
 * the stops" is the throughput lost to stopping ~1000 times a second.  The
 * project's target for TTSP: p99 <= 20 us (goal), <= 200 us (floor), with
 * no more threads than cores, each polling a safepoint at least every 10 us.
 * A refstore TTSP is at most one work unit plus the time to wake the
 * stopper; outliers well beyond that mean a thread (mutator or stopper) lost
 * its CPU: see the context-switch and steal-time lines under the table.
 * The table pools every stop of a side; the lines under it take the p50
 * and p99 of each round apart and show the median and [min-max] over the
 * rounds (the repeats), and the summary rows for bench/report.py (BENCHROW,
 * bench.h) carry those medians.
 *
 * Usage: bench_stw [-m mutators] [-w unit-us] [-i interval-us] [-p pause-us]
 *                  [-d seconds-per-side] [-r rounds]
 *
 * Release build only in practice: under ThreadSanitizer the peer hangs (TSan
 * defers a signal until the thread calls an intercepted function, and the
 * peer's mutators call none), and any sanitizer distorts the timings.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define RS_BUILDING 1
#include "internal.h"	/* rs__world_stop, rs__world_resume */
#include "bench.h"

#define MAX_MUTATORS 64
#define MAX_ROUNDS 1000
#define CHAIN 4			/* published nodes walked by every unit */
#define BUF_LONGS 2048		/* 16 KiB of private memory per thread */
#define SIG_STOP SIGUSR1
#define SIG_RESUME SIGUSR2

struct node {			/* 32 bytes: with the header, one cache line */
	struct node *next;	/* counted reference */
	long value;
	long pad[2];
};

static void node_traverse(void *obj, rs_visit_fn visit, void *arg)
{
	struct node *n = obj;

	if (n->next)
		visit(n->next, arg);
}

static const rs_type node_type = {
	"bench_stw_node", sizeof(struct node), node_traverse, NULL, NULL,
	RS_TYPE_NO_CYCLES,
};

/* ---- configuration -------------------------------------------------- */

static struct {
	int mutators;
	double unit_us, interval_us, pause_us, secs;
	int rounds;
	unsigned unit_iters, pause_iters;	/* calibrated */
	double unit_measured_us;
} cfg = {1, 5, 1000, 20, 2, 4, 0, 0, 0};

/* ---- shared state, each on its own cache line ----------------------- */

static struct { _Alignas(64) struct node *p; } g_slot;	/* refstore slot */
static struct { _Alignas(64) struct node *p; } g_plain;	/* peer's pointer */
static struct { _Alignas(64) atomic_uint v; } g_epoch;	/* peer's stops */
static sem_t g_ack;			/* peer: "I am stopped" */
static pthread_barrier_t g_start;

enum side { RS, PEER, NSIDES };
static const char *const side_name[NSIDES] = {"refstore", "peer"};

/* One growable array of samples, in nanoseconds. */
struct samples {
	uint64_t *v;
	size_t n, cap;
};

enum metric { TTSP, PAUSE, STOP_CALL, RESUME_CALL, NMETRICS };
static const char *const metric_name[NMETRICS] = {
	"TTSP", "pause", "stop call", "resume call",
};
static struct samples g_samp[NSIDES][NMETRICS];
/* The samples of round r of a side: [g_round[side][r][0], [1]) of each
 * metric's array (all metrics are pushed together, once per stop). */
static size_t g_round[NSIDES][MAX_ROUNDS][2];

struct totals {
	double units, ns;	/* summed over mutator threads */
	long nvcsw, nivcsw;	/* mutators' context switches */
};
/* [side][0]: with stops, [side][1]: baseline without a stopper */
static struct totals g_tot[NSIDES][2];
static long g_stopper_nivcsw[NSIDES];

struct mutator {
	_Alignas(64) pthread_t th;
	enum side side;
	uint64_t units, ns;
	long nvcsw, nivcsw;
	unsigned long buf[BUF_LONGS];
};
static struct mutator g_mut[MAX_MUTATORS];

/* ---- helpers -------------------------------------------------------- */

static void push(struct samples *s, uint64_t v)
{
	uint64_t *nv;

	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 4096;
		nv = realloc(s->v, s->cap * sizeof(*nv));
		if (!nv)
			die("realloc");
		s->v = nv;
	}
	s->v[s->n++] = v;
}

/* The calibrated busy loop: a dependent chain of multiply-adds over the
 * buffer, one cache line per step, so it touches memory and cannot be
 * vectorised away. */
static inline unsigned long busy(unsigned long *buf, unsigned iters,
				 long seed)
{
	unsigned long s = (unsigned long)seed;	/* unsigned: wraps, no UB */
	unsigned i;

	for (i = 0; i < iters; i++) {
		unsigned long *p = &buf[(i * 8u) & (BUF_LONGS - 1)];

		s = s * 31 + *p;
		*p = s;
	}
	return s;
}

/* The chain walk: borrowed loads through the slot (refstore) ... */
static inline long walk_rs(void)
{
	const struct node *n;
	long s = 0;

	for (n = rs_get(&g_slot.p); n; n = rs_get(&n->next))
		s += n->value;
	return s;
}

/* ... or plain acquire loads of the same nodes (peer). */
static inline long walk_plain(void)
{
	const struct node *n;
	long s = 0;

	for (n = __atomic_load_n(&g_plain.p, __ATOMIC_ACQUIRE); n;
	     n = __atomic_load_n(&n->next, __ATOMIC_ACQUIRE))
		s += n->value;
	return s;
}

static void ctxsw(long *nvcsw, long *nivcsw)
{
	struct rusage ru;

	if (getrusage(RUSAGE_THREAD, &ru)) {
		*nvcsw = *nivcsw = 0;
		return;
	}
	*nvcsw = ru.ru_nvcsw;
	*nivcsw = ru.ru_nivcsw;
}

/* Steal time of the whole machine, in ms (the hypervisor ran someone else
 * while a vCPU of ours wanted to run); -1 if unknown. */
static double steal_ms(void)
{
	unsigned long long f[8] = {0};
	FILE *fp = fopen("/proc/stat", "r");
	int n;

	if (!fp)
		return -1;
	n = fscanf(fp, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &f[0],
		   &f[1], &f[2], &f[3], &f[4], &f[5], &f[6], &f[7]);
	fclose(fp);
	if (n != 8)
		return -1;
	return (double)f[7] * 1000.0 / (double)sysconf(_SC_CLK_TCK);
}

/* ---- the signal peer's handlers -------------------------------------- */

static void on_stop_signal(int sig)
{
	int saved = errno;
	unsigned e = atomic_load(&g_epoch.v);
	sigset_t wait_mask;

	(void)sig;
	sem_post(&g_ack);	/* async-signal-safe */
	sigfillset(&wait_mask);
	sigdelset(&wait_mask, SIG_RESUME);
	/* SIG_RESUME is blocked while this handler runs (sa_mask): one sent
	 * before we reach sigsuspend stays pending and wakes it at once. */
	do
		sigsuspend(&wait_mask);
	while (atomic_load(&g_epoch.v) == e);
	errno = saved;
}

static void on_resume_signal(int sig)
{
	(void)sig;
}

static void install_handlers(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop_signal;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaddset(&sa.sa_mask, SIG_RESUME);
	if (sigaction(SIG_STOP, &sa, NULL))
		die("sigaction");
	sa.sa_handler = on_resume_signal;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIG_RESUME, &sa, NULL))
		die("sigaction");
	if (sem_init(&g_ack, 0, 0))
		die("sem_init");
}

/* ---- mutators ------------------------------------------------------- */

static __attribute__((noinline)) uint64_t loop_rs(unsigned long *buf)
{
	uint64_t n = 0;
	unsigned long sum = 0;

	while (!stopped()) {
		sum += busy(buf, cfg.unit_iters, walk_rs());
		rs_safepoint();
		n++;
	}
	sink((long)sum);
	return n;
}

static __attribute__((noinline)) uint64_t loop_plain(unsigned long *buf)
{
	uint64_t n = 0;
	unsigned long sum = 0;

	while (!stopped()) {
		sum += busy(buf, cfg.unit_iters, walk_plain());
		n++;
	}
	sink((long)sum);
	return n;
}

static void *mutator_main(void *arg)
{
	struct mutator *m = arg;
	long v0, iv0, v1, iv1;
	uint64_t t0;

	if (m->side == RS && rs_thread_attach())
		die("rs_thread_attach");
	pthread_barrier_wait(&g_start);
	ctxsw(&v0, &iv0);
	t0 = now_ns();
	m->units = m->side == RS ? loop_rs(m->buf) : loop_plain(m->buf);
	m->ns = now_ns() - t0;
	ctxsw(&v1, &iv1);
	m->nvcsw = v1 - v0;
	m->nivcsw = iv1 - iv0;
	if (m->side == RS && rs_thread_detach())
		die("rs_thread_detach");
	return NULL;
}

/* ---- stoppers ------------------------------------------------------- */

static unsigned long stopper_buf[BUF_LONGS];

/* What the stopper does while the world is stopped, the same on both sides:
 * walk the chain (as a collector would walk the heap) and busy work. */
static unsigned long collector_work(enum side side)
{
	return busy(stopper_buf, cfg.pause_iters,
		    side == RS ? walk_rs() : walk_plain());
}

static void add_ns(struct timespec *ts, uint64_t ns)
{
	ns += (uint64_t)ts->tv_nsec;
	ts->tv_sec += (time_t)(ns / 1000000000u);
	ts->tv_nsec = (long)(ns % 1000000000u);
}

static void peer_stop(void)
{
	int i;

	for (i = 0; i < cfg.mutators; i++)
		if ((errno = pthread_kill(g_mut[i].th, SIG_STOP)))
			die("pthread_kill");
	for (i = 0; i < cfg.mutators; i++)
		while (sem_wait(&g_ack))
			if (errno != EINTR)
				die("sem_wait");
}

static void peer_resume(void)
{
	int i;

	atomic_fetch_add(&g_epoch.v, 1);
	for (i = 0; i < cfg.mutators; i++)
		if ((errno = pthread_kill(g_mut[i].th, SIG_RESUME)))
			die("pthread_kill");
}

static void *stopper_main(void *arg)
{
	enum side side = *(const enum side *)arg;
	uint64_t interval = (uint64_t)(cfg.interval_us * 1e3), t0, t1, t2, t3;
	struct rs__stop_stats st;
	struct samples *s = g_samp[side];
	struct timespec next;
	unsigned long sum = 0;
	long v0, iv0, v1, iv1;

	if (side == RS && (rs_thread_attach() || rs_offline()))
		die("stopper attach");
	pthread_barrier_wait(&g_start);
	ctxsw(&v0, &iv0);
	clock_gettime(CLOCK_MONOTONIC, &next);
	while (!stopped()) {
		add_ns(&next, interval);
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next,
				       NULL) == EINTR)
			;
		if (stopped())
			break;
		if (side == RS) {
			/* online only while it stops: a collector reads
			 * objects while the world is stopped */
			rs_online();
			t0 = now_ns();
			rs__world_stop();
			t1 = now_ns();
			sum += collector_work(RS);
			t2 = now_ns();
			rs__world_resume(&st);
			t3 = now_ns();
			rs_offline();
			push(&s[TTSP], st.ttsp_ns);
			push(&s[PAUSE], st.pause_ns);
		} else {
			t0 = now_ns();
			peer_stop();
			t1 = now_ns();
			sum += collector_work(PEER);
			t2 = now_ns();
			peer_resume();
			t3 = now_ns();
			push(&s[TTSP], t1 - t0);
			push(&s[PAUSE], t2 - t1);
		}
		push(&s[STOP_CALL], t1 - t0);
		push(&s[RESUME_CALL], t3 - t2);
		/* late (the stopper lost its CPU, or a stop was long):
		 * restart the period rather than stopping back to back */
		if (now_ns() > (uint64_t)next.tv_sec * 1000000000u +
			       (uint64_t)next.tv_nsec + interval)
			clock_gettime(CLOCK_MONOTONIC, &next);
	}
	ctxsw(&v1, &iv1);
	g_stopper_nivcsw[side] += iv1 - iv0;
	sink((long)sum);
	if (side == RS && rs_thread_detach())
		die("stopper detach");
	return NULL;
}

/* ---- one run -------------------------------------------------------- */

static void run(enum side side, int with_stops, double secs)
{
	static enum side arg;
	struct timespec dur;
	struct totals *tot = &g_tot[side][with_stops ? 0 : 1];
	pthread_t stopper;
	int i, nthreads = cfg.mutators + (with_stops ? 1 : 0);

	arg = side;
	dur.tv_sec = (time_t)secs;
	dur.tv_nsec = (long)((secs - (double)dur.tv_sec) * 1e9);
	atomic_store(&g_stop.v, 0);
	if (pthread_barrier_init(&g_start, NULL, (unsigned)nthreads + 1))
		die("pthread_barrier_init");
	for (i = 0; i < cfg.mutators; i++) {
		g_mut[i].side = side;
		if ((errno = pthread_create(&g_mut[i].th, NULL, mutator_main,
					    &g_mut[i])))
			die("pthread_create");
	}
	if (with_stops &&
	    (errno = pthread_create(&stopper, NULL, stopper_main, &arg)))
		die("pthread_create");
	pthread_barrier_wait(&g_start);
	nanosleep(&dur, NULL);
	atomic_store(&g_stop.v, 1);
	/* the stopper first: it must not signal a mutator that has exited */
	if (with_stops)
		pthread_join(stopper, NULL);
	for (i = 0; i < cfg.mutators; i++) {
		pthread_join(g_mut[i].th, NULL);
		tot->units += (double)g_mut[i].units;
		tot->ns += (double)g_mut[i].ns;
		tot->nvcsw += g_mut[i].nvcsw;
		tot->nivcsw += g_mut[i].nivcsw;
	}
	pthread_barrier_destroy(&g_start);
}

/* ---- calibration ---------------------------------------------------- */

static double time_units(unsigned iters, int units)
{
	uint64_t t0, best = UINT64_MAX;
	unsigned long sum = 0;
	int rep, i;

	for (rep = 0; rep < 7; rep++) {
		t0 = now_ns();
		for (i = 0; i < units; i++)
			sum += busy(stopper_buf, iters, walk_plain());
		t0 = now_ns() - t0;
		if (t0 < best)
			best = t0;
	}
	sink((long)sum);
	return (double)best / 1e3 / units;	/* us per unit, fastest run */
}

static void calibrate(void)
{
	const unsigned probe = 100000;
	double per_iter_us = time_units(probe, 1) / probe;

	cfg.unit_iters = (unsigned)(cfg.unit_us / per_iter_us + 0.5);
	cfg.pause_iters = (unsigned)(cfg.pause_us / per_iter_us + 0.5);
	if (!cfg.unit_iters)
		cfg.unit_iters = 1;
	cfg.unit_measured_us = time_units(cfg.unit_iters, 1000);
}

/* ---- reporting ------------------------------------------------------ */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

enum { P50, P99, P999, PMAX, MEAN, NSTATS };

/* Nearest-rank percentiles (sorts the samples), in microseconds. */
static void summarize(struct samples *s, double out[NSTATS])
{
	static const double q[3] = {0.50, 0.99, 0.999};
	double sum = 0;
	size_t i, k;

	memset(out, 0, NSTATS * sizeof(out[0]));
	if (!s->n)
		return;
	qsort(s->v, s->n, sizeof(s->v[0]), cmp_u64);
	for (i = 0; i < 3; i++) {
		k = (size_t)ceil(q[i] * (double)s->n);
		out[i] = (double)s->v[k ? k - 1 : 0] / 1e3;
	}
	out[PMAX] = (double)s->v[s->n - 1] / 1e3;
	for (i = 0; i < s->n; i++)
		sum += (double)s->v[i];
	out[MEAN] = sum / (double)s->n / 1e3;
}

static size_t count_above(const struct samples *s, double us)
{
	size_t i, n = 0;

	for (i = 0; i < s->n; i++)
		n += (double)s->v[i] > us * 1e3;
	return n;
}

static double rate(const struct totals *t)	/* units/s, all mutators */
{
	/* each thread's rate, summed: units / (mean thread time) */
	return t->ns > 0 ? t->units / (t->ns / cfg.mutators / 1e9) : 0;
}

/* Nearest-rank percentile q of the samples [from, to) of s, in us; the
 * samples themselves are left as they are.  0 if the range is empty. */
static double slice_pct(const struct samples *s, size_t from, size_t to,
			double q)
{
	uint64_t *v;
	size_t n = to - from, k;
	double x;

	if (to <= from || to > s->n)
		return 0;
	if (!(v = malloc(n * sizeof(*v))))
		die("malloc");
	memcpy(v, s->v + from, n * sizeof(*v));
	qsort(v, n, sizeof(*v), cmp_u64);
	k = (size_t)ceil(q * (double)n);
	x = (double)v[k ? k - 1 : 0] / 1e3;
	free(v);
	return x;
}

/* Percentile q of metric m, round by round, for one side: median over the
 * rounds that had stops, and [min-max] in *lo, *hi. */
static double per_round(enum side side, enum metric m, double q, double *lo,
			double *hi)
{
	double v[MAX_ROUNDS];
	int r, n = 0;

	for (r = 0; r < cfg.rounds; r++)
		if (g_round[side][r][1] > g_round[side][r][0])
			v[n++] = slice_pct(&g_samp[side][m],
					   g_round[side][r][0],
					   g_round[side][r][1], q);
	return bench_median(v, n, lo, hi);
}

static void usage(const char *prog)
{
	fprintf(stderr, "usage: %s [-m mutators (1..%d)] [-w unit-us] "
		"[-i interval-us] [-p pause-us] [-d seconds-per-side] "
		"[-r rounds]\n", prog, MAX_MUTATORS);
	exit(2);
}

static void parse(int argc, char **argv)
{
	int c;

	while ((c = getopt(argc, argv, "m:w:i:p:d:r:h")) != -1) {
		switch (c) {
		case 'm': cfg.mutators = atoi(optarg); break;
		case 'w': cfg.unit_us = strtod(optarg, NULL); break;
		case 'i': cfg.interval_us = strtod(optarg, NULL); break;
		case 'p': cfg.pause_us = strtod(optarg, NULL); break;
		case 'd': cfg.secs = strtod(optarg, NULL); break;
		case 'r': cfg.rounds = atoi(optarg); break;
		default: usage(argv[0]);
		}
	}
	if (optind != argc || cfg.mutators < 1 || cfg.mutators > MAX_MUTATORS ||
	    !(cfg.unit_us > 0 && cfg.unit_us <= 1e6) ||
	    !(cfg.interval_us >= 10 && cfg.interval_us <= 1e7) ||
	    !(cfg.pause_us >= 0 && cfg.pause_us <= 1e6) ||
	    !(cfg.secs > 0 && cfg.secs <= 3600) ||
	    cfg.rounds < 1 || cfg.rounds > MAX_ROUNDS)
		usage(argv[0]);
}

int main(int argc, char **argv)
{
	struct node *nodes[CHAIN];
	double st[NSIDES][NSTATS], steal0, steal1, per, r0, r1, p0, p1, rs99 = 0;
	double rr[NSIDES][3], rl[NSIDES][3], rh[NSIDES][3];	/* per round */
	static const char *const rname[3] = {
		"TTSP p50", "TTSP p99", "pause p99",
	};
	struct rs_stats rst;
	char name[96];
	int i, m, round, k;
	long ncpu;

	parse(argc, argv);
	ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	install_handlers();
	if (rs_init(NULL) || rs_thread_attach())
		die("refstore init");
	/* The chain: built private (plain stores), published with the slot's
	 * store.  The slot holds it for the whole run; the peer reads the
	 * same nodes through a plain pointer. */
	for (i = CHAIN - 1; i >= 0; i--) {
		if (!(nodes[i] = rs_new(&node_type)))
			die("rs_new");
		nodes[i]->value = i + 1;
		nodes[i]->next = i + 1 < CHAIN ? nodes[i + 1] : NULL;
	}
	if (rs_set_steal(&g_slot.p, nodes[0]))
		die("rs_set_steal");
	__atomic_store_n(&g_plain.p, nodes[0], __ATOMIC_RELEASE);
	calibrate();
	rs_offline();	/* main only sleeps now: counts as stopped */

	printf("bench_stw: %d mutator(s) on %ld CPUs, work unit %.1f us "
	       "(%u iterations, measured %.2f us), stop every %.0f us, "
	       "stopper work %.1f us per stop,\n           %.2f s per side in "
	       "%d interleaved rounds, plus a no-stop baseline of half that\n",
	       cfg.mutators, ncpu, cfg.unit_us, cfg.unit_iters,
	       cfg.unit_measured_us, cfg.interval_us, cfg.pause_us, cfg.secs,
	       cfg.rounds);
	if (cfg.mutators + 1 > ncpu)
		printf("note: %d mutators + the stopper > %ld CPUs: stops wait "
		       "for the scheduler, not only for safepoints\n",
		       cfg.mutators, ncpu);
	fflush(stdout);

	per = cfg.secs / cfg.rounds;
	steal0 = steal_ms();
	for (round = 0; round < cfg.rounds; round++) {
		/* alternate which side goes first */
		for (k = 0; k < NSIDES; k++) {
			enum side sd = (enum side)((k + round) % NSIDES);

			g_round[sd][round][0] = g_samp[sd][TTSP].n;
			run(sd, 1, per);
			g_round[sd][round][1] = g_samp[sd][TTSP].n;
		}
		for (k = 0; k < NSIDES; k++)
			run((enum side)((k + round) % NSIDES), 0, per / 2);
	}
	steal1 = steal_ms();

	/* round by round first: summarize() sorts the pooled samples */
	for (k = 0; k < NSIDES; k++) {
		rr[k][0] = per_round((enum side)k, TTSP, 0.50, &rl[k][0],
				     &rh[k][0]);
		rr[k][1] = per_round((enum side)k, TTSP, 0.99, &rl[k][1],
				     &rh[k][1]);
		rr[k][2] = per_round((enum side)k, PAUSE, 0.99, &rl[k][2],
				     &rh[k][2]);
	}

	printf("\n%-12s %-9s %6s %8s %8s %8s %8s %8s   (us)\n", "measure",
	       "side", "stops", "p50", "p99", "p99.9", "max", "mean");
	printf("------------------------------------------------------------"
	       "--------------------\n");
	for (m = 0; m < NMETRICS; m++) {
		for (k = 0; k < NSIDES; k++) {
			summarize(&g_samp[k][m], st[k]);
			printf("%-12s %-9s %6zu %8.2f %8.2f %8.2f %8.2f %8.2f\n",
			       k ? "" : metric_name[m], side_name[k],
			       g_samp[k][m].n, st[k][P50], st[k][P99],
			       st[k][P999], st[k][PMAX], st[k][MEAN]);
		}
		printf("%-12s %-9s %6s", "", "rs/peer", "");
		for (i = 0; i < NSTATS; i++)
			printf(" %8.2f", st[PEER][i] > 0
			       ? st[RS][i] / st[PEER][i] : 0.0);
		printf("\n");
		if (m == TTSP)
			rs99 = st[RS][P99];
	}

	printf("\nround by round (%d rounds): median [min-max] over the rounds "
	       "of each round's percentile, us\n", cfg.rounds);
	for (i = 0; i < 3; i++)
		printf("  %-10s refstore %8.2f [%8.2f-%8.2f]   peer %8.2f "
		       "[%8.2f-%8.2f]   rs/peer %.2f\n", rname[i], rr[RS][i],
		       rl[RS][i], rh[RS][i], rr[PEER][i], rl[PEER][i],
		       rh[PEER][i], rr[PEER][i] > 0 ? rr[RS][i] / rr[PEER][i]
		       : 0.0);

	printf("\nTTSP over 20 us / over 200 us: refstore %zu / %zu, "
	       "peer %zu / %zu (of %zu / %zu stops)\n",
	       count_above(&g_samp[RS][TTSP], 20),
	       count_above(&g_samp[RS][TTSP], 200),
	       count_above(&g_samp[PEER][TTSP], 20),
	       count_above(&g_samp[PEER][TTSP], 200),
	       g_samp[RS][TTSP].n, g_samp[PEER][TTSP].n);
	printf("target: TTSP p99 <= 20 us (goal), <= 200 us (floor), with "
	       "threads <= cores each polling every <= 10 us;\n        "
	       "refstore p99 here %.2f us: %s\n", rs99,
	       rs99 <= 20 ? "within the goal" :
	       rs99 <= 200 ? "above the goal, within the floor" :
	       "above the floor");

	r0 = rate(&g_tot[RS][0]);
	r1 = rate(&g_tot[RS][1]);
	p0 = rate(&g_tot[PEER][0]);
	p1 = rate(&g_tot[PEER][1]);
	printf("\nmutator throughput, work units/s (all mutators):\n");
	printf("  refstore  with stops %10.0f   without %10.0f   cost of the "
	       "stops %5.1f%%\n", r0, r1, r1 > 0 ? 100 * (1 - r0 / r1) : 0);
	printf("  peer      with stops %10.0f   without %10.0f   cost of the "
	       "stops %5.1f%%\n", p0, p1, p1 > 0 ? 100 * (1 - p0 / p1) : 0);
	printf("  rs/peer   with stops %10.3f   without %10.3f   (the "
	       "refstore loop also pays rs_safepoint per unit)\n",
	       p0 > 0 ? r0 / p0 : 0, p1 > 0 ? r1 / p1 : 0);

	printf("\ncontext switches during the stop runs: mutators voluntary / "
	       "involuntary: refstore %ld / %ld, peer %ld / %ld;\n"
	       "  stopper involuntary: refstore %ld, peer %ld\n",
	       g_tot[RS][0].nvcsw, g_tot[RS][0].nivcsw, g_tot[PEER][0].nvcsw,
	       g_tot[PEER][0].nivcsw, g_stopper_nivcsw[RS],
	       g_stopper_nivcsw[PEER]);
	if (steal0 >= 0 && steal1 >= 0)
		printf("steal time (all vCPUs) during the runs: %.0f ms\n",
		       steal1 - steal0);

	rs_online();
	rs_stats(&rst);
	printf("\nrefstore rs_stats: %llu world stops, TTSP max %.2f us / "
	       "avg %.2f us, pause max %.2f us / avg %.2f us\n",
	       (unsigned long long)rst.world_stops,
	       (double)rst.ttsp_max_ns / 1e3,
	       rst.world_stops ? (double)rst.ttsp_total_ns / 1e3 /
				 (double)rst.world_stops : 0.0,
	       (double)rst.pause_max_ns / 1e3,
	       rst.world_stops ? (double)rst.pause_total_ns / 1e3 /
				 (double)rst.world_stops : 0.0);
	__atomic_store_n(&g_plain.p, NULL, __ATOMIC_RELEASE);
	if (rs_clear(&g_slot.p))
		die("rs_clear");
	rs_thread_detach();
	for (k = 0; k < NSIDES; k++)
		for (m = 0; m < NMETRICS; m++)
			free(g_samp[k][m].v);
	printf("rs_shutdown() = %ld (live objects; expect 0)\n", rs_shutdown());

	/* the summary rows: medians over the rounds */
	printf("\n");
	bench_row("time-to-safepoint p99", rr[RS][1], "us",
		  "signal stop (Boehm-style)", rr[PEER][1], 0);
	bench_row("time-to-safepoint p50", rr[RS][0], "us",
		  "signal stop (Boehm-style)", rr[PEER][0], 0);
	snprintf(name, sizeof(name), "stop-the-world pause p99, %.0f us of "
		 "work inside", cfg.pause_us);
	bench_row(name, rr[RS][2], "us", "signal stop (Boehm-style)",
		  rr[PEER][2], 0);
	return 0;
}
