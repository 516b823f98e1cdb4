/*
 * bench_refcount.c - what a reference count costs in refstore, measured in
 * the same run as the hand-written peers it replaces.  A benchmark, not a
 * test: it prints numbers and ratios, never pass/fail.
 *
 *   1. owner pair      rs_incref(o); rs_decref(o) by the thread that made o
 *                      with rs_new and never published it (biased count:
 *                      plain relaxed loads/stores, no RMW)
 *                      peers: a non-atomic ++/-- pair on a volatile counter,
 *                             a C11 seq_cst atomic_fetch_add/_sub pair.
 *   2. non-owner pair  thread B pairs on an object that attached thread A
 *                      made and rs_publish'ed (A stays attached, offline).
 *                      The incref is an atomic add on the shared word; the
 *                      decref is logged and applied after a grace period at
 *                      B's rs_safepoint, called every 256 pairs: its time is
 *                      INCLUDED in the refstore ns/op and shown apart too.
 *                      peers: a seq_cst fetch_add/fetch_sub pair on one
 *                             counter that A hammers at the same time (a
 *                             shared hand-written atomic refcount), and the
 *                             same pair uncontended.  No safepoints.
 *   3. borrowed read   readers do p = rs_get(&slot); read p->value on a hot
 *                      published object, rs_safepoint every 256 reads; with
 *                      2 threads and with 1.
 *                      peer: the shared_ptr way, atomic incref + read +
 *                            decref on the same object's C11 atomic counter.
 *
 *   4. scaling         the same loops on N threads at once, N = the online
 *                      CPUs, against one thread: owner pairs (each thread
 *                      on its own private object; peers: the non-atomic and
 *                      the C11 pair, each thread on its own counter),
 *                      non-owner pairs on one published object (peer: the
 *                      C11 pair on one shared counter) and borrowed reads
 *                      (peer: the atomic-counting reader).  On a 2-CPU
 *                      machine the 2-thread measures of parts 2 and 3 are
 *                      the N-thread ones and are not run twice.
 *
 *   bench_refcount [seconds-per-measure [runs]]
 *
 * Each measure runs for S seconds (default 0.3) and is repeated R times
 * (default 5), the measures interleaved so drift hits all of them alike;
 * the table shows the median and [min-max] of the R runs.  ns/op is per
 * thread: the wall time of a thread's loop divided by the operations (pairs
 * or reads) it completed.  The "ratio" column is refstore ns / peer ns:
 * below 1 means refstore is cheaper.  "N threads run X x one thread" is the
 * throughput scaling, N * ns(1 thread) / ns(N threads), taken run by run
 * (the 1-thread and N-thread runs of one repeat are neighbours in time) and
 * shown as median [min-max]; N is perfect scaling.  The last lines are the
 * summary rows for bench/report.py (BENCHROW, bench.h).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "refstore.h"
#include "bench.h"

#define MAXREPS 51
#define MAXT 64			/* threads of one measure */
#define CHUNK 256		/* ops between stop checks / safepoints */

static int g_reps = 5;		/* runs of every measure */
static int g_n;			/* N: the online CPUs, at most MAXT - 1 */

struct bobj {			/* 32 bytes: with the header, one cache line */
	atomic_long rc;		/* the peer's hand-written count (part 3) */
	long value;
	long pad[2];
};

static const rs_type bobj_type = {
	"bench_obj", sizeof(struct bobj), NULL, NULL, NULL, RS_TYPE_NO_CYCLES,
};

/* Shared words, each on its own cache line. */
static struct { _Alignas(64) atomic_long v; } g_counter;	/* part 2 peer */
static struct { _Alignas(64) struct bobj *p; } g_slot;	/* rs_get slot */
static struct { _Alignas(64) struct bobj *_Atomic p; } g_plain; /* peer's */
static struct { _Alignas(64) struct bobj *p; } g_foreign;	/* A's object */
static pthread_barrier_t g_start;

enum kind {
	K_OWNER_PAIR, K_PLAIN_PAIR, K_ATOMIC_PAIR, K_IDLE_OWNER,
	K_NONOWNER_PAIR, K_SHARED_PAIR, K_RSGET_READ, K_ATOMIC_READ
};

struct worker {
	_Alignas(64) pthread_t th;
	enum kind kind;
	uint64_t ops, ns, sp_ns;
	volatile long plain;	/* private counters of the part 1 peers */
	atomic_long counter;
};
static struct worker g_w[MAXT];

/* The measures of parts 1-3, then part 4's N-thread ones (nthreads set in
 * main; on 2 CPUs those equal to a part 2 or 3 measure alias it). */
enum {
	M_OWNER, M_PLAIN, M_ATOMIC, M_NONOWNER, M_CONTENDED, M_UNCONT,
	M_RSGET2, M_ATOMREAD2, M_RSGET1, M_ATOMREAD1,
	M_OWNER_N, M_PLAIN_N, M_ATOMIC_N, M_NONOWNER_N, M_SHARED_N,
	M_RSGET_N, M_ATOMREAD_N, NMEAS
};
static struct mdef {
	const char *name;
	int nthreads;
	enum kind first, rest;	/* thread 0's loop, the others' */
	int alias;		/* 0, or 1 + the measure whose runs are these */
} g_meas[NMEAS] = {
	[M_OWNER] = {"owner pair", 1, K_OWNER_PAIR, K_OWNER_PAIR, 0},
	[M_PLAIN] = {"non-atomic ++/-- pair", 1, K_PLAIN_PAIR, K_PLAIN_PAIR, 0},
	[M_ATOMIC] = {"C11 seq_cst atomic pair", 1, K_ATOMIC_PAIR,
		      K_ATOMIC_PAIR, 0},
	[M_NONOWNER] = {"non-owner pair", 2, K_IDLE_OWNER, K_NONOWNER_PAIR, 0},
	[M_CONTENDED] = {"atomic pair, 2 thr contending", 2, K_SHARED_PAIR,
			 K_SHARED_PAIR, 0},
	[M_UNCONT] = {"atomic pair, uncontended", 1, K_SHARED_PAIR,
		      K_SHARED_PAIR, 0},
	[M_RSGET2] = {"rs_get read, 2 threads", 2, K_RSGET_READ,
		      K_RSGET_READ, 0},
	[M_ATOMREAD2] = {"atomic inc+read+dec, 2 thr", 2, K_ATOMIC_READ,
			 K_ATOMIC_READ, 0},
	[M_RSGET1] = {"rs_get read, 1 thread", 1, K_RSGET_READ, K_RSGET_READ, 0},
	[M_ATOMREAD1] = {"atomic inc+read+dec, 1 thr", 1, K_ATOMIC_READ,
			 K_ATOMIC_READ, 0},
	[M_OWNER_N] = {"owner pair, N threads", 0, K_OWNER_PAIR,
		       K_OWNER_PAIR, 0},
	[M_PLAIN_N] = {"non-atomic pair, N threads", 0, K_PLAIN_PAIR,
		       K_PLAIN_PAIR, 0},
	[M_ATOMIC_N] = {"C11 atomic pair, N threads", 0, K_ATOMIC_PAIR,
			K_ATOMIC_PAIR, 0},
	/* the idle owner and N non-owners: nthreads N + 1 */
	[M_NONOWNER_N] = {"non-owner pair, N threads", 0, K_IDLE_OWNER,
			  K_NONOWNER_PAIR, 0},
	[M_SHARED_N] = {"atomic pair, N thr on one ctr", 0, K_SHARED_PAIR,
			K_SHARED_PAIR, 0},
	[M_RSGET_N] = {"rs_get read, N threads", 0, K_RSGET_READ,
		       K_RSGET_READ, 0},
	[M_ATOMREAD_N] = {"atomic inc+read+dec, N thr", 0, K_ATOMIC_READ,
			  K_ATOMIC_READ, 0},
};

static double g_res[NMEAS][MAXREPS];	/* ns/op per thread */
static double g_sp[MAXREPS];		/* rs_safepoint ns/op in M_NONOWNER */

/* ---- the timed loops ----------------------------------------------- */

/* Runs `body` CHUNK times, then `per_chunk`, until told to stop; returns
 * the operations done.  `sum` collects values read, kept live by sink. */
#define TIMED_LOOP(body, per_chunk)                                          \
	uint64_t n = 0;                                                      \
	long sum = 0;                                                        \
	int i;                                                               \
	while (!stopped()) {                                                 \
		for (i = 0; i < CHUNK; i++) {                                \
			body;                                                \
		}                                                            \
		per_chunk;                                                   \
		n += CHUNK;                                                  \
	}                                                                    \
	sink(sum);                                                           \
	return n

static uint64_t loop_owner_pair(void *o)
{
	TIMED_LOOP(rs_incref(o); rs_decref(o), (void)0);
}

static uint64_t loop_plain_pair(volatile long *p)
{
	TIMED_LOOP((*p)++; (*p)--, (void)0);
}

static uint64_t loop_atomic_pair(atomic_long *c)
{
	TIMED_LOOP(atomic_fetch_add(c, 1); atomic_fetch_sub(c, 1), (void)0);
}

/* The safepoint applies matured decrements: its time is part of the pair's
 * cost, and is also summed apart in *sp_ns. */
static uint64_t loop_nonowner_pair(void *o, uint64_t *sp_ns)
{
	uint64_t t;

	*sp_ns = 0;
	TIMED_LOOP(rs_incref(o); rs_decref(o),
		   t = now_ns(); rs_safepoint(); *sp_ns += now_ns() - t);
}

/* The shared_ptr way: count a reference to read through it. */
static __attribute__((noinline)) uint64_t loop_atomic_read(void)
{
	struct bobj *p;

	TIMED_LOOP(p = atomic_load_explicit(&g_plain.p, memory_order_acquire);
		   atomic_fetch_add(&p->rc, 1); sum += p->value;
		   atomic_fetch_sub(&p->rc, 1), (void)0);
}

/* The borrowed-read loop: no atomic RMW may appear in it (check with
 * objdump -d); its only call out is rs_safepoint, every CHUNK reads. */
static __attribute__((noinline)) uint64_t loop_rsget_read(void)
{
	uint64_t n = 0;
	long sum = 0;
	int i;

	while (!stopped()) {
		for (i = 0; i < CHUNK; i++) {
			const struct bobj *p = rs_get(&g_slot.p);

			sum += p->value;
		}
		rs_safepoint();
		n += CHUNK;
	}
	sink(sum);
	return n;
}

/* ---- threads and one measure ---------------------------------------- */

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct bobj *own = NULL;
	struct timespec ms = {0, 1000000};
	uint64_t t0;
	int rs = w->kind == K_OWNER_PAIR || w->kind == K_IDLE_OWNER ||
		 w->kind == K_NONOWNER_PAIR || w->kind == K_RSGET_READ;

	if (rs && rs_thread_attach())
		die("rs_thread_attach");
	if ((w->kind == K_OWNER_PAIR || w->kind == K_IDLE_OWNER) &&
	    !(own = rs_new(&bobj_type)))
		die("rs_new");
	if (w->kind == K_IDLE_OWNER) {
		if (rs_publish(own))
			die("rs_publish");
		g_foreign.p = own;	/* the barrier publishes it to B */
		rs_offline();		/* quiescent while it waits */
	}
	w->ops = w->sp_ns = 0;
	pthread_barrier_wait(&g_start);
	t0 = now_ns();
	switch (w->kind) {
	case K_OWNER_PAIR: w->ops = loop_owner_pair(own); break;
	case K_PLAIN_PAIR: w->ops = loop_plain_pair(&w->plain); break;
	case K_ATOMIC_PAIR: w->ops = loop_atomic_pair(&w->counter); break;
	case K_SHARED_PAIR: w->ops = loop_atomic_pair(&g_counter.v); break;
	case K_NONOWNER_PAIR:
		w->ops = loop_nonowner_pair(g_foreign.p, &w->sp_ns);
		break;
	case K_RSGET_READ: w->ops = loop_rsget_read(); break;
	case K_ATOMIC_READ: w->ops = loop_atomic_read(); break;
	case K_IDLE_OWNER:
		while (!stopped())
			nanosleep(&ms, NULL);
		rs_online();
		break;
	}
	w->ns = now_ns() - t0;
	if (own)
		rs_decref(own);
	if (rs)
		rs_thread_detach();
	return NULL;
}

/* Runs measure m once for `secs`; returns ns/op averaged over the threads
 * that did operations, and the safepoint share in *sp. */
static double run_measure(int m, double secs, double *sp)
{
	const struct mdef *d = &g_meas[m];
	struct timespec dur;
	double sum = 0;
	int i, n = 0;

	dur.tv_sec = (time_t)secs;
	dur.tv_nsec = (long)((secs - (double)dur.tv_sec) * 1e9);
	atomic_store(&g_stop.v, 0);
	pthread_barrier_init(&g_start, NULL, (unsigned)d->nthreads + 1);
	for (i = 0; i < d->nthreads; i++) {
		g_w[i].kind = i ? d->rest : d->first;
		if (pthread_create(&g_w[i].th, NULL, worker_main, &g_w[i]))
			die("pthread_create");
	}
	pthread_barrier_wait(&g_start);
	nanosleep(&dur, NULL);
	atomic_store(&g_stop.v, 1);
	*sp = 0;
	for (i = 0; i < d->nthreads; i++) {
		pthread_join(g_w[i].th, NULL);
		if (!g_w[i].ops)
			continue;
		sum += (double)g_w[i].ns / (double)g_w[i].ops;
		*sp += (double)g_w[i].sp_ns / (double)g_w[i].ops;
		n++;
	}
	pthread_barrier_destroy(&g_start);
	*sp /= n ? n : 1;
	return n ? sum / n : 0;
}

/* ---- reporting ------------------------------------------------------ */

/* Median of the g_reps runs, and their min and max if lo/hi are given. */
static double median(const double *v, double *lo, double *hi)
{
	double s[MAXREPS];

	memcpy(s, v, sizeof(s[0]) * (size_t)g_reps);
	return bench_median(s, g_reps, lo, hi);
}

/* The runs of measure m (those of the measure it aliases, if it does). */
static const double *res(int m)
{
	return g_res[g_meas[m].alias ? g_meas[m].alias - 1 : m];
}

#define med(m) median(res(m), NULL, NULL)

/* Throughput scaling of measure mn (nt threads) over m1 (one thread), run
 * by run: nt * ns(m1) / ns(mn); median and [min-max]. */
static double scaling(int mn, int m1, int nt, double *lo, double *hi)
{
	double v[MAXREPS];
	int r;

	for (r = 0; r < g_reps; r++)
		v[r] = res(mn)[r] > 0 ? nt * res(m1)[r] / res(mn)[r] : 0;
	return bench_median(v, g_reps, lo, hi);
}

/* One line of part 4: who's N-thread measure mn over its 1-thread m1. */
static void scaling_line(const char *what, const char *who, int mn, int m1)
{
	double lo, hi, x = scaling(mn, m1, g_n, &lo, &hi);

	printf("  %-30s %-26s %d threads run %5.2fx [%5.2f-%5.2f] one thread\n",
	       what, who, g_n, x, lo, hi);
}

static void row(const char *measure, int rs, int peer)
{
	double rlo, rhi, plo, phi;
	double r = median(res(rs), &rlo, &rhi);
	double p = median(res(peer), &plo, &phi);

	printf("%-26s | %7.2f [%6.2f-%6.2f] | %-29s | %7.2f [%6.2f-%6.2f] | %6.2f\n",
	       measure, r, rlo, rhi, g_meas[peer].name, p, plo, phi, r / p);
}

int main(int argc, char **argv)
{
	double secs = argc > 1 ? strtod(argv[1], NULL) : 0.3, lo, hi, sp;
	struct bobj *hot;
	struct rs_stats st;
	char name[96];
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	int rep, m;

	if (argc > 2)
		g_reps = atoi(argv[2]);
	if (!(secs > 0 && secs < 3600) || argc > 3 || g_reps < 1 ||
	    g_reps > MAXREPS) {
		fprintf(stderr, "usage: %s [seconds-per-measure > 0 [runs "
			"1..%d]]\n", argv[0], MAXREPS);
		return 2;
	}
	/* Part 4: N threads (N + 1 with the idle owner); none on one CPU. */
	g_n = ncpu < 1 ? 1 : ncpu > MAXT - 1 ? MAXT - 1 : (int)ncpu;
	for (m = M_OWNER_N; m < NMEAS; m++)
		g_meas[m].nthreads = g_n < 2 ? 0 : g_n + (m == M_NONOWNER_N);
	if (g_n == 2) {
		g_meas[M_SHARED_N].alias = 1 + M_CONTENDED;
		g_meas[M_RSGET_N].alias = 1 + M_RSGET2;
		g_meas[M_ATOMREAD_N].alias = 1 + M_ATOMREAD2;
	}
	if (rs_init(NULL) || rs_thread_attach())
		die("refstore init");
	/* The hot object of part 3, held by the slot; the peer reads it
	 * through a plain atomic pointer and counts with its rc field. */
	if (!(hot = rs_new(&bobj_type)))
		die("rs_new");
	atomic_init(&hot->rc, 1);
	hot->value = 42;
	if (rs_set_steal(&g_slot.p, hot))	/* the slot takes our reference */
		die("rs_set_steal");
	atomic_store(&g_plain.p, hot);
	rs_offline();	/* main only sleeps now: never hold back a grace period */

	printf("bench_refcount: %.3f s per measure, %d runs each, median "
	       "[min-max], ns per op per thread; N = %d online CPUs\n", secs,
	       g_reps, g_n);
	fflush(stdout);
	for (rep = 0; rep < g_reps; rep++)
		for (m = 0; m < NMEAS; m++)
			if (g_meas[m].nthreads && !g_meas[m].alias)
				g_res[m][rep] = run_measure(
					m, secs, m == M_NONOWNER ? &g_sp[rep]
					: &sp);

	printf("\n%-26s | %-23s | %-29s | %-23s | %s\n", "measure",
	       "refstore ns/op", "peer", "peer ns/op", "ratio (rs/peer)");
	printf("---------------------------+-------------------------+"
	       "-------------------------------+-------------------------+"
	       "----------------\n");
	row("owner pair", M_OWNER, M_PLAIN);
	row("owner pair", M_OWNER, M_ATOMIC);
	row("non-owner pair (+safepts)", M_NONOWNER, M_CONTENDED);
	row("non-owner pair (+safepts)", M_NONOWNER, M_UNCONT);
	row("borrowed read, 2 threads", M_RSGET2, M_ATOMREAD2);
	row("borrowed read, 1 thread", M_RSGET1, M_ATOMREAD1);
	row("borrowed read, 2 threads", M_RSGET2, M_RSGET1);

	printf("\n1. owner pair is %.2fx the non-atomic pair; "
	       "C11 atomic pair / owner pair = %.2fx faster\n",
	       med(M_OWNER) / med(M_PLAIN), med(M_ATOMIC) / med(M_OWNER));
	sp = median(g_sp, &lo, &hi);
	printf("2. non-owner pair: %.2f ns/op, of which rs_safepoint (every %d "
	       "pairs, applies the deferred decrements) %.2f [%.2f-%.2f] ns/op "
	       "= %.0f%%\n", med(M_NONOWNER), CHUNK, sp, lo, hi,
	       100 * sp / med(M_NONOWNER));
	printf("   contended atomic pair / non-owner pair = %.2fx; "
	       "uncontended atomic pair / non-owner pair = %.2fx\n",
	       med(M_CONTENDED) / med(M_NONOWNER),
	       med(M_UNCONT) / med(M_NONOWNER));
	printf("3. rs_get: 2 threads run %.2fx one thread (goal >= 1.8x); "
	       "atomic-counting reader: 2 threads run %.2fx one thread\n",
	       2 * med(M_RSGET1) / med(M_RSGET2),
	       2 * med(M_ATOMREAD1) / med(M_ATOMREAD2));
	printf("   with 2 threads, atomic-counting read / rs_get read = %.2fx "
	       "faster\n", med(M_ATOMREAD2) / med(M_RSGET2));

	if (g_n < 2) {
		printf("4. scaling: one online CPU, not measured\n");
	} else {
		printf("4. scaling on N = %d threads (N online CPUs), throughput "
		       "run by run, median [min-max]; %dx is perfect:\n",
		       g_n, g_n);
		scaling_line("owner pair, private objects", "refstore",
			     M_OWNER_N, M_OWNER);
		scaling_line("", "non-atomic pair", M_PLAIN_N, M_PLAIN);
		scaling_line("", "C11 seq_cst atomic pair", M_ATOMIC_N,
			     M_ATOMIC);
		scaling_line("non-owner pair, one object", "refstore (+safepts)",
			     M_NONOWNER_N, M_NONOWNER);
		scaling_line("", "C11 atomic, one counter", M_SHARED_N,
			     M_UNCONT);
		scaling_line("borrowed read, one object", "refstore rs_get",
			     M_RSGET_N, M_RSGET1);
		scaling_line("", "atomic inc+read+dec", M_ATOMREAD_N,
			     M_ATOMREAD1);
	}

	rs_online();
	rs_stats(&st);
	printf("\nrefstore: %llu grace periods (avg %.1f us, max %.1f us), "
	       "%llu batches sealed, %llu defer waits, pending max %zu bytes\n",
	       (unsigned long long)st.grace_periods,
	       (double)st.gp_latency_avg_ns / 1e3,
	       (double)st.gp_latency_max_ns / 1e3,
	       (unsigned long long)st.batches_sealed,
	       (unsigned long long)st.defer_waits, st.pending_bytes_max);
	rs_clear(&g_slot.p);
	atomic_store(&g_plain.p, NULL);
	rs_thread_detach();
	printf("rs_shutdown() = %ld (live objects; expect 0)\n", rs_shutdown());

	/* the summary rows (medians) */
	printf("\n");
	bench_row("owner incref+decref pair, private object", med(M_OWNER),
		  "ns/op", "non-atomic ++/-- pair", med(M_PLAIN), 0);
	bench_row("owner incref+decref pair, private object", med(M_OWNER),
		  "ns/op", "C11 seq_cst atomic pair", med(M_ATOMIC), 0);
	bench_row("non-owner pair, safepoints included", med(M_NONOWNER),
		  "ns/op", "C11 atomic pair, 2 threads on one counter",
		  med(M_CONTENDED), 0);
	bench_row("non-owner pair, safepoints included", med(M_NONOWNER),
		  "ns/op", "C11 atomic pair, uncontended", med(M_UNCONT), 0);
	bench_row("borrowed read of a hot object, 2 threads", med(M_RSGET2),
		  "ns/op", "atomic incref+read+decref, 2 threads",
		  med(M_ATOMREAD2), 0);
	bench_row("borrowed read of a hot object, 1 thread", med(M_RSGET1),
		  "ns/op", "atomic incref+read+decref, 1 thread",
		  med(M_ATOMREAD1), 0);
	if (g_n >= 2) {
		snprintf(name, sizeof(name), "owner incref+decref pair, scaling "
			 "%d threads over 1", g_n);
		bench_row(name, scaling(M_OWNER_N, M_OWNER, g_n, NULL, NULL),
			  "x", "non-atomic pair", scaling(M_PLAIN_N, M_PLAIN,
			  g_n, NULL, NULL), 1);
		bench_row(name, scaling(M_OWNER_N, M_OWNER, g_n, NULL, NULL),
			  "x", "C11 seq_cst atomic pair", scaling(M_ATOMIC_N,
			  M_ATOMIC, g_n, NULL, NULL), 1);
		snprintf(name, sizeof(name), "non-owner pair on one object, "
			 "scaling %d threads over 1", g_n);
		bench_row(name, scaling(M_NONOWNER_N, M_NONOWNER, g_n, NULL,
			  NULL), "x", "C11 atomic pair on one counter",
			  scaling(M_SHARED_N, M_UNCONT, g_n, NULL, NULL), 1);
		snprintf(name, sizeof(name), "borrowed read of a hot object, "
			 "scaling %d threads over 1", g_n);
		bench_row(name, scaling(M_RSGET_N, M_RSGET1, g_n, NULL, NULL),
			  "x", "atomic incref+read+decref", scaling(
			  M_ATOMREAD_N, M_ATOMREAD1, g_n, NULL, NULL), 1);
	}
	return 0;
}
