/*
 * bench.h - helpers shared by refstore's benchmarks: a monotonic clock, a
 * stop flag for timed loops, a sink the compiler cannot drop, a fatal
 * error, finding a file of the source tree (a peer's script), the median of
 * repeated runs, and the machine-readable summary rows (BENCHROW).
 */
#ifndef RS_BENCH_H
#define RS_BENCH_H

#include <limits.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static struct { _Alignas(64) atomic_int v; } g_stop;	/* end of a run */

static inline uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline int stopped(void)
{
	return atomic_load_explicit(&g_stop.v, memory_order_relaxed);
}

static inline void sink(long v)	/* the compiler must compute v */
{
	__asm__ __volatile__("" : : "r"(v));
}

/* The block p escapes, and what was stored into it must be stored: an empty
 * asm that may read memory.  Not a store to a shared `volatile` global:
 * threads writing one line on every iteration ping-pong it between CPUs
 * (it halved every implementation's two-thread figures in bench_alloc). */
static inline void sink_mem(void *p)
{
	__asm__ __volatile__("" : : "r"(p) : "memory");
}

static inline void die(const char *what)
{
	perror(what);
	exit(1);
}

/* A file of the source tree (rel, e.g. "bench/peers/gc_peer.py"): from the
 * current directory, else from the tree this binary was built in
 * (build/<variant>/bench/<program>).  0 and its path in buf, or -1. */
static inline int source_file(const char *rel, char *buf, size_t len)
{
	char exe[PATH_MAX];
	ssize_t k;
	char *s;
	int up;

	if (access(rel, R_OK) == 0) {
		snprintf(buf, len, "%s", rel);
		return 0;
	}
	k = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (k <= 0)
		return -1;
	exe[k] = '\0';
	for (up = 0; up < 4; up++) {
		if (!(s = strrchr(exe, '/')))
			return -1;
		*s = '\0';
	}
	if ((size_t)snprintf(buf, len, "%s/%s", exe, rel) >= len)
		return -1;
	return access(buf, R_OK);
}

/* Median of v[0..n-1] (the mean of the two middle values when n is even),
 * and the smallest and largest in *lo and *hi when they are given.  Sorts v
 * in place (insertion sort: n is a handful of repeats). */
static inline double bench_median(double *v, int n, double *lo, double *hi)
{
	int i, j;
	double x;

	if (n <= 0) {
		if (lo)
			*lo = *hi = 0;
		return 0;
	}
	for (i = 1; i < n; i++) {
		x = v[i];
		for (j = i; j > 0 && v[j - 1] > x; j--)
			v[j] = v[j - 1];
		v[j] = x;
	}
	if (lo) {
		*lo = v[0];
		*hi = v[n - 1];
	}
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/*
 * The summary rows a benchmark prints at its end, one line per (measure,
 * peer), for bench/report.py:
 *
 *   BENCHROW|<measure>|<refstore median>|<unit>|<peer>|<peer median>|<better>
 *
 * better is "lower" when a smaller figure is better (times) and "higher"
 * when a larger one is (throughput, scaling).  Figures are plain decimals
 * with at least four significant digits.  A figure that was not measured
 * (<= 0: a skipped peer) prints no row.  Neither text may contain '|'.
 */
static inline void bench_decimal(char *buf, size_t len, double v)
{
	double a = v < 0 ? -v : v;
	int dec = 3;

	while (a >= 10 && dec > 0) {
		a /= 10;
		dec--;
	}
	while (a > 0 && a < 1 && dec < 12) {
		a *= 10;
		dec++;
	}
	snprintf(buf, len, "%.*f", dec, v);
}

static inline void bench_row(const char *measure, double rs,
			     const char *unit, const char *peer, double pv,
			     int higher_is_better)
{
	char a[64], b[64];

	if (!(rs > 0) || !(pv > 0))
		return;
	bench_decimal(a, sizeof(a), rs);
	bench_decimal(b, sizeof(b), pv);
	printf("BENCHROW|%s|%s|%s|%s|%s|%s\n", measure, a, unit, peer, b,
	       higher_is_better ? "higher" : "lower");
}

#endif /* RS_BENCH_H */
