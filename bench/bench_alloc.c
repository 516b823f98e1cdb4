/*
 * bench_alloc.c - rs_new + rs_decref (reclaimed) against glibc malloc,
 * jemalloc and mimalloc on the same sizes and pattern.
 *
 *   bench_alloc [seconds per measure [runs]]   (default 0.2 s, 5 runs)
 *
 * Same-thread pattern: allocate, give back, and every BATCH iterations the
 * memory is really released: rs_safepoint applies the private decrements
 * (destroying the objects), the peers free the BATCH blocks they kept.  The
 * peers allocate the same bytes as refstore does (payload + 32-byte header).
 * It runs on 1 thread and on N threads at once (N = the online CPUs), each
 * run of one thread followed by a run of N, so that "N threads run X x one
 * thread" (N * ns(1) / ns(N), throughput) can be taken run by run.
 * Producer/consumer: one thread allocates and passes each block through a
 * ring to another thread that releases it (rs_decref of a published object
 * for refstore, free for the peers).  Prints ns per object (per thread) as
 * the median and [min-max] of the runs, and refstore's speed-up (peer ns /
 * refstore ns, of the medians); the last lines are the summary rows for
 * bench/report.py (BENCHROW, bench.h).
 */
#define _GNU_SOURCE 1
#include <jemalloc/jemalloc.h>
#include <mimalloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "refstore.h"
#include "bench.h"

extern void *__libc_malloc(size_t);
extern void __libc_free(void *);

#define BATCH 64
#define MAXRUNS 51
#define MAXT 64

static double seconds = 0.2;
static int runs = 5;
static int nthr;		/* N: the online CPUs, at most MAXT */

enum impl { RS, GLIBC, JEMALLOC, MIMALLOC, NIMPL };
static const char *impl_name[NIMPL] = {"refstore", "glibc", "jemalloc", "mimalloc"};
static const char *peer_label[NIMPL] = {	/* in the summary rows */
	"refstore", "glibc malloc+free", "jemalloc mallocx+sdallocx",
	"mimalloc mi_malloc+mi_free",
};

static void *peer_alloc(int impl, size_t n)
{
	switch (impl) {
	case GLIBC: return __libc_malloc(n);
	case JEMALLOC: return mallocx(n, 0);
	default: return mi_malloc(n);
	}
}

static void peer_free(int impl, void *p, size_t n)
{
	switch (impl) {
	case GLIBC: __libc_free(p); break;
	case JEMALLOC: sdallocx(p, n, 0); break;
	default: mi_free(p); break;
	}
}

static rs_type type16 = {"b16", 16, NULL, NULL, NULL, RS_TYPE_NO_CYCLES};
static rs_type type64 = {"b64", 64, NULL, NULL, NULL, RS_TYPE_NO_CYCLES};
static rs_type type256 = {"b256", 256, NULL, NULL, NULL, RS_TYPE_NO_CYCLES};

struct job {
	int impl;
	rs_type *type;
	uint64_t iters;
	double ns;
};

/* One thread's same-thread loop; returns ns per object. */
static double same_thread(int impl, rs_type *type, uint64_t iters)
{
	void *keep[BATCH];
	size_t bytes = type->size + 32;
	uint64_t t0, i;
	unsigned k;

	if (impl == RS)
		rs_thread_attach();
	t0 = now_ns();
	for (i = 0; i < iters; i += BATCH) {
		if (impl == RS) {
			for (k = 0; k < BATCH; k++) {
				void *o = rs_new(type);

				((char *)o)[0] = 1;
				sink_mem(o);
				rs_decref(o);
			}
			rs_safepoint();
		} else {
			for (k = 0; k < BATCH; k++) {
				keep[k] = peer_alloc(impl, bytes);
				((char *)keep[k])[0] = 1;
				sink_mem(keep[k]);
			}
			for (k = 0; k < BATCH; k++)
				peer_free(impl, keep[k], bytes);
		}
	}
	t0 = now_ns() - t0;
	if (impl == RS)
		rs_thread_detach();
	return (double)t0 / (double)iters;
}

static void *same_main(void *arg)
{
	struct job *j = arg;

	j->ns = same_thread(j->impl, j->type, j->iters);
	return NULL;
}

static uint64_t calibrate(int impl, rs_type *type)
{
	double ns = same_thread(impl, type, 20000);

	return (uint64_t)(seconds * 1e9 / (ns > 1 ? ns : 1)) / BATCH * BATCH + BATCH;
}

/* One run of nthreads running the same loop at once: ns per object per
 * thread. */
static double run_same(int impl, rs_type *type, int nthreads, uint64_t iters)
{
	struct job j[MAXT];
	pthread_t t[MAXT];
	double ns = 0;
	int i;

	for (i = 0; i < nthreads; i++) {
		j[i] = (struct job){impl, type, iters, 0};
		if (pthread_create(&t[i], NULL, same_main, &j[i]))
			die("pthread_create");
	}
	for (i = 0; i < nthreads; i++) {
		pthread_join(t[i], NULL);
		ns += j[i].ns / nthreads;
	}
	return ns;
}

/* The runs of one (impl, size): v1[r] on one thread, vn[r] on nthr threads
 * (not measured, left 0, on one CPU). */
static void measure_same(int impl, rs_type *type, double *v1, double *vn)
{
	uint64_t iters = calibrate(impl, type);
	int r;

	for (r = 0; r < runs; r++) {
		v1[r] = run_same(impl, type, 1, iters);
		vn[r] = nthr > 1 ? run_same(impl, type, nthr, iters) : 0;
	}
}

/* Median and [min-max] of n runs (v is left as it was). */
static double stats(const double *v, double *lo, double *hi)
{
	double s[MAXRUNS];

	memcpy(s, v, sizeof(s[0]) * (size_t)runs);
	return bench_median(s, runs, lo, hi);
}

static double med(const double *v)
{
	return stats(v, NULL, NULL);
}

/* Run by run, nthr * ns(1 thread) / ns(nthr threads): median, [min-max]. */
static double scaling(const double *v1, const double *vn, double *lo,
		      double *hi)
{
	double s[MAXRUNS];
	int r;

	for (r = 0; r < runs; r++)
		s[r] = vn[r] > 0 ? nthr * v1[r] / vn[r] : 0;
	return bench_median(s, runs, lo, hi);
}

/* One line of the table: each implementation's median [min-max], and
 * refstore's speed-up over each peer. */
static void table_line(const char *label, double v[NIMPL][MAXRUNS])
{
	double m[NIMPL], lo, hi;
	int i;

	printf("%-22s", label);
	for (i = 0; i < NIMPL; i++) {
		m[i] = stats(v[i], &lo, &hi);
		printf(" %8.2f [%7.2f-%7.2f]", m[i], lo, hi);
	}
	printf("   %.2fx %.2fx %.2fx\n", m[GLIBC] / m[RS], m[JEMALLOC] / m[RS],
	       m[MIMALLOC] / m[RS]);
}

/* ---------------------------------------------------------------------- */
/* Producer / consumer through a single-producer single-consumer ring      */
/* ---------------------------------------------------------------------- */

#define RING 1024
static void *ring[RING];
/* atomic; each on its own cache line, as in any single-producer ring: the
 * producer writes the head and the consumer the tail on every block */
static _Alignas(128) uint64_t ring_head;
static _Alignas(128) uint64_t ring_tail;
static int pc_impl;
static rs_type *pc_type;
static uint64_t pc_iters;

static void *consumer(void *unused)
{
	uint64_t i, tail = 0;
	void *p;

	(void)unused;
	if (pc_impl == RS)
		rs_thread_attach();
	for (i = 0; i < pc_iters; i++) {
		while (__atomic_load_n(&ring_head, __ATOMIC_ACQUIRE) == tail)
			if (pc_impl == RS)
				rs_safepoint();
		p = ring[tail % RING];
		__atomic_store_n(&ring_tail, ++tail, __ATOMIC_RELEASE);
		if (pc_impl == RS) {
			rs_decref(p);
			if ((i & (BATCH - 1)) == 0)
				rs_safepoint();
		} else {
			peer_free(pc_impl, p, pc_type->size + 32);
		}
	}
	if (pc_impl == RS)
		rs_thread_detach();
	return NULL;
}

/* The runs of one (impl, size) into v[0..runs-1]. */
static void measure_pc(int impl, rs_type *type, double *v)
{
	uint64_t i, head, t0;
	pthread_t c;
	void *p;
	int r;

	pc_impl = impl;
	pc_type = type;
	pc_iters = (uint64_t)(seconds * 1e9 / 2000);
	for (r = 0; r < runs; r++) {
		ring_head = ring_tail = 0;
		if (impl == RS)
			rs_thread_attach();
		pthread_create(&c, NULL, consumer, NULL);
		t0 = now_ns();
		for (i = 0, head = 0; i < pc_iters; i++) {
			while (head - __atomic_load_n(&ring_tail, __ATOMIC_ACQUIRE) >= RING)
				if (impl == RS)
					rs_safepoint();
			if (impl == RS) {
				p = rs_new(type);
				rs_publish(p);
			} else {
				p = peer_alloc(impl, type->size + 32);
			}
			ring[head % RING] = p;
			__atomic_store_n(&ring_head, ++head, __ATOMIC_RELEASE);
			if (impl == RS && (i & (BATCH - 1)) == 0)
				rs_safepoint();
		}
		if (impl == RS)
			rs_offline();
		pthread_join(c, NULL);
		v[r] = (double)(now_ns() - t0) / (double)pc_iters;
		if (impl == RS) {
			rs_online();
			rs_thread_detach();
		}
	}
}

/* same[size][impl][run], on 1 thread and on nthr threads; pc: producer /
 * consumer */
static double same1[3][NIMPL][MAXRUNS], samen[3][NIMPL][MAXRUNS];
static double pc[3][NIMPL][MAXRUNS];

int main(int argc, char **argv)
{
	rs_type *types[3] = {&type16, &type64, &type256};
	struct rs_config cfg;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	double lo, hi, x;
	char label[96], cell[64];
	int s, impl;

	if (argc > 1)
		seconds = atof(argv[1]);
	if (argc > 2)
		runs = atoi(argv[2]);
	if (argc > 3 || !(seconds > 0 && seconds < 3600) || runs < 1 ||
	    runs > MAXRUNS) {
		fprintf(stderr, "usage: %s [seconds-per-measure [runs 1..%d]]\n",
			argv[0], MAXRUNS);
		return 2;
	}
	nthr = ncpu < 1 ? 1 : ncpu > MAXT ? MAXT : (int)ncpu;
	memset(&cfg, 0, sizeof(cfg));
	cfg.report_leaks = -1;
	rs_init(&cfg);
	printf("rs_new+rs_decref (freed at the next safepoint, every %d) vs "
	       "malloc+free of the same bytes;\nns per object per thread, "
	       "median [min-max] of %d runs, %.3f s each; N = %d online CPUs\n",
	       BATCH, runs, seconds, nthr);
	fflush(stdout);
	for (s = 0; s < 3; s++)
		for (impl = 0; impl < NIMPL; impl++)
			measure_same(impl, types[s], same1[s][impl],
				     samen[s][impl]);
	for (s = 0; s < 3; s++)
		for (impl = 0; impl < NIMPL; impl++)
			measure_pc(impl, types[s], pc[s][impl]);

	printf("%-22s %26s %26s %26s %26s   %s\n", "pattern", "refstore",
	       "glibc", "jemalloc", "mimalloc",
	       "refstore speed-up vs glibc/jemalloc/mimalloc");
	for (s = 0; s < 3; s++) {
		snprintf(label, sizeof(label), "same thread %zu B, 1T",
			 types[s]->size);
		table_line(label, same1[s]);
	}
	for (s = 0; nthr > 1 && s < 3; s++) {
		snprintf(label, sizeof(label), "same thread %zu B, %dT",
			 types[s]->size, nthr);
		table_line(label, samen[s]);
	}
	for (s = 0; s < 3; s++) {
		snprintf(label, sizeof(label), "prod/cons %zu B",
			 types[s]->size);
		table_line(label, pc[s]);
	}

	if (nthr > 1) {
		printf("\nscaling of the same-thread pattern: %d threads run X "
		       "x one thread (throughput, run by run, median "
		       "[min-max]; %dx is perfect)\n", nthr, nthr);
		printf("%-22s", "");
		for (impl = 0; impl < NIMPL; impl++)
			printf(" %26s", impl_name[impl]);
		printf("\n");
		for (s = 0; s < 3; s++) {
			snprintf(label, sizeof(label), "same thread %zu B",
				 types[s]->size);
			printf("%-22s", label);
			for (impl = 0; impl < NIMPL; impl++) {
				x = scaling(same1[s][impl], samen[s][impl],
					    &lo, &hi);
				snprintf(cell, sizeof(cell), "%5.2fx [%5.2f-%5.2f]",
					 x, lo, hi);
				printf(" %26s", cell);
			}
			printf("\n");
		}
	} else {
		printf("\nscaling: one online CPU, not measured\n");
	}
	rs_shutdown();

	/* the summary rows: the 64-byte life cycle, and the scaling */
	printf("\n");
	for (impl = GLIBC; impl < NIMPL; impl++)
		bench_row("rs_new+rs_decref 64 B, 1 thread", med(same1[1][RS]),
			  "ns/object", peer_label[impl], med(same1[1][impl]), 0);
	if (nthr > 1) {
		snprintf(label, sizeof(label), "rs_new+rs_decref 64 B, %d "
			 "threads", nthr);
		for (impl = GLIBC; impl < NIMPL; impl++)
			bench_row(label, med(samen[1][RS]), "ns/object",
				  peer_label[impl], med(samen[1][impl]), 0);
		snprintf(label, sizeof(label), "rs_new+rs_decref 64 B, scaling "
			 "%d threads over 1", nthr);
		for (impl = GLIBC; impl < NIMPL; impl++)
			bench_row(label, scaling(same1[1][RS], samen[1][RS],
				  NULL, NULL), "x", peer_label[impl],
				  scaling(same1[1][impl], samen[1][impl], NULL,
				  NULL), 1);
	}
	return 0;
}
