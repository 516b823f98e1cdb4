/*
 * bench.h - helpers shared by refstore's benchmarks: a monotonic clock, a
 * stop flag for timed loops, a sink the compiler cannot drop, a fatal
 * error, and finding a file of the source tree (a peer's script).
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

#endif /* RS_BENCH_H */
