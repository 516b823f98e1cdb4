/*
 * bench_alloc.c - rs_new + rs_decref (reclaimed) against glibc malloc,
 * jemalloc and mimalloc on the same sizes and pattern.
 *
 *   bench_alloc [seconds per measure]   (default 0.2)
 *
 * Same-thread pattern: allocate, give back, and every BATCH iterations the
 * memory is really released: rs_safepoint applies the private decrements
 * (destroying the objects), the peers free the BATCH blocks they kept.  The
 * peers allocate the same bytes as refstore does (payload + 32-byte header).
 * Producer/consumer: one thread allocates and passes each block through a
 * ring to another thread that releases it (rs_decref of a published object
 * for refstore, free for the peers).  Prints ns per object and ratios.
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

#include "refstore.h"

extern void *__libc_malloc(size_t);
extern void __libc_free(void *);

#define BATCH 64
#define RUNS 5

static double seconds = 0.2;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

enum impl { RS, GLIBC, JEMALLOC, MIMALLOC, NIMPL };
static const char *impl_name[NIMPL] = {"refstore", "glibc", "jemalloc", "mimalloc"};

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

static void *volatile sink;

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
				sink = o;
				rs_decref(o);
			}
			rs_safepoint();
		} else {
			for (k = 0; k < BATCH; k++) {
				keep[k] = peer_alloc(impl, bytes);
				((char *)keep[k])[0] = 1;
				sink = keep[k];
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

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v)
{
	qsort(v, RUNS, sizeof(*v), cmp_double);
	return v[RUNS / 2];
}

/* nthreads running the same loop at once: ns per object per thread */
static double measure_same(int impl, rs_type *type, int nthreads)
{
	double v[RUNS];
	uint64_t iters = calibrate(impl, type);
	struct job j[2];
	pthread_t t[2];
	int r, i;

	for (r = 0; r < RUNS; r++) {
		for (i = 0; i < nthreads; i++) {
			j[i] = (struct job){impl, type, iters, 0};
			pthread_create(&t[i], NULL, same_main, &j[i]);
		}
		v[r] = 0;
		for (i = 0; i < nthreads; i++) {
			pthread_join(t[i], NULL);
			v[r] += j[i].ns / nthreads;
		}
	}
	return median(v);
}

/* ---------------------------------------------------------------------- */
/* Producer / consumer through a single-producer single-consumer ring      */
/* ---------------------------------------------------------------------- */

#define RING 1024
static void *ring[RING];
static uint64_t ring_head, ring_tail;	/* atomic */
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

static double measure_pc(int impl, rs_type *type)
{
	double v[RUNS];
	uint64_t i, head, t0;
	pthread_t c;
	void *p;
	int r;

	pc_impl = impl;
	pc_type = type;
	pc_iters = (uint64_t)(seconds * 1e9 / 2000);
	for (r = 0; r < RUNS; r++) {
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
	return median(v);
}

int main(int argc, char **argv)
{
	rs_type *types[3] = {&type16, &type64, &type256};
	struct rs_config cfg;
	double ns[NIMPL];
	int s, impl, nt;

	if (argc > 1)
		seconds = atof(argv[1]);
	memset(&cfg, 0, sizeof(cfg));
	cfg.report_leaks = -1;
	rs_init(&cfg);
	printf("rs_new+rs_decref (freed at the next safepoint, every %d) vs "
	       "malloc+free of the same bytes; ns per object, median of %d\n",
	       BATCH, RUNS);
	printf("%-22s %9s %9s %9s %9s   %s\n", "pattern", "refstore", "glibc",
	       "jemalloc", "mimalloc", "refstore speed-up vs glibc/jemalloc/mimalloc");
	for (nt = 1; nt <= 2; nt++) {
		for (s = 0; s < 3; s++) {
			for (impl = 0; impl < NIMPL; impl++)
				ns[impl] = measure_same(impl, types[s], nt);
			printf("same thread %zu B, %dT %9.2f %9.2f %9.2f %9.2f   "
			       "%.2fx %.2fx %.2fx\n", types[s]->size, nt, ns[0],
			       ns[1], ns[2], ns[3], ns[1] / ns[0], ns[2] / ns[0],
			       ns[3] / ns[0]);
		}
	}
	for (s = 0; s < 3; s++) {
		for (impl = 0; impl < NIMPL; impl++)
			ns[impl] = measure_pc(impl, types[s]);
		printf("prod/cons %zu B        %9.2f %9.2f %9.2f %9.2f   "
		       "%.2fx %.2fx %.2fx\n", types[s]->size, ns[0], ns[1], ns[2],
		       ns[3], ns[1] / ns[0], ns[2] / ns[0], ns[3] / ns[0]);
	}
	(void)impl_name;
	rs_shutdown();
	return 0;
}
