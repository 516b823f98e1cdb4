/*
 * base.c - the bottom layer: what every other file may call and what calls
 * nothing of ours.  Fatal errors (rs__die), the clock, locks whose order is
 * checked in debug builds, the tests' fault-injection sites, and the shared
 * tables every layer reads: the thread identity the API-entry check reads
 * (rs__tls; the check itself is inline in internal.h: rs__api_thread), the
 * configuration in force (rs__rt) and the thread registry's table.  Nothing
 * here knows about objects or the world.
 */
#define RS_BUILDING 1
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* ---------------------------------------------------------------------- */
/* Shared tables: data that every layer reads, written by the top          */
/* ---------------------------------------------------------------------- */

/* Who the calling thread is: its id (0 when not attached) and its record.
 * Written by rs_thread_attach and rs_thread_detach (threads/thread.c). */
__thread struct rs__tls rs__tls __attribute__((tls_model("initial-exec")));

/* The configuration in force: set by rs_init (lib/runtime.c). */
struct rs__runtime rs__rt;

/* The thread registry's table: every thread record ever made, by slot, and
 * the counters of detached threads.  Attach and detach (threads/thread.c)
 * change it; everything that walks the threads reads it. */
struct rs__thread *rs__slots[RS_MAX_THREADS + 1];
uint32_t rs__nslots;
rs__mutex rs__registry_lock = {PTHREAD_MUTEX_INITIALIZER, RS__L_REGISTRY};
struct rs__counters rs__retired;
size_t rs__nattached;	/* Sync: registry lock; relaxed stores, so
			   rs__attached_hint may read it without */

/* The attached threads now or a moment ago, without the lock: for
 * heuristics (lib/gc.c holds_share). */
size_t rs__attached_hint(void)
{
	return rs__load_relaxed(&rs__nattached);
}

size_t rs__attached_count(void)
{
	size_t n;

	rs__lock(&rs__registry_lock);
	n = rs__nattached;
	rs__unlock(&rs__registry_lock);
	return n;
}

/* ---------------------------------------------------------------------- */
/* Diagnostics and the clock                                               */
/* ---------------------------------------------------------------------- */

void rs__die(const char *call, const void *obj, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "refstore: %s(%p): ", call, obj);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fflush(stderr);
	abort();
}

uint64_t rs__now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---------------------------------------------------------------------- */
/* The API-entry check's refusal                                           */
/* ---------------------------------------------------------------------- */

void rs__api_refuse(void)
{
	errno = EPERM;
}

/* ---------------------------------------------------------------------- */
/* Locks: the rank order of enum rs__lock_rank, checked in debug builds    */
/* ---------------------------------------------------------------------- */

static __thread unsigned locks_held;	/* bit per rank. Sync: this thread */

void rs__mutex_init(rs__mutex *m, int rank)
{
	pthread_mutex_init(&m->m, NULL);
	m->rank = rank;
}

void rs__lock(rs__mutex *m)
{
	if (RS_DEBUG && (locks_held >> m->rank))
		rs__die("lock", m, "lock order violated: taking rank %d while "
			"holding ranks 0x%x", m->rank, locks_held);
	pthread_mutex_lock(&m->m);
	locks_held |= 1u << m->rank;
}

void rs__unlock(rs__mutex *m)
{
	locks_held &= ~(1u << m->rank);
	pthread_mutex_unlock(&m->m);
}

void rs__lock_reinit(rs__mutex *m)
{
	pthread_mutex_init(&m->m, NULL);
	locks_held &= ~(1u << m->rank);
}

void rs__assert_no_locks(const char *where)
{
	if (locks_held)
		rs__die(where, NULL, "entered holding locks 0x%x", locks_held);
}

/* ---------------------------------------------------------------------- */
/* Fault injection (tests)                                                  */
/* ---------------------------------------------------------------------- */

/* its own cache lines: the allocation fast path (alloc.h) reads it on
 * every allocation */
long rs__fault_n[RS__FAULT_NSITES] __attribute__((aligned(64)));

void rs__fault_set(int site, long n)
{
	if (site >= 0 && site < RS__FAULT_NSITES)
		rs__store_relaxed(&rs__fault_n[site], n);
}

long rs__fault_left(int site)
{
	return site >= 0 && site < RS__FAULT_NSITES
		       ? rs__load_relaxed(&rs__fault_n[site]) : 0;
}

/* The site is armed: count this call; the one that takes the count from 1
 * to 0 fails.  (Racing calls may take it below 0: still disarmed.) */
bool rs__fault_hit(int site)
{
	return rs__add_relaxed(&rs__fault_n[site], -1) == 1;
}
