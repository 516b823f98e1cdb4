/*
 * bench.h - helpers shared by refstore's benchmarks: a monotonic clock, a
 * stop flag for timed loops, a sink the compiler cannot drop, and a fatal
 * error.
 */
#ifndef RS_BENCH_H
#define RS_BENCH_H

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

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

#endif /* RS_BENCH_H */
