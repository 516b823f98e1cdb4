/*
 * alloc.h - the allocator's layout and its two inline fast paths, for the
 * files whose hot paths allocate and free (lib/alloc.c, lib/object.c):
 * rs_new pops from its thread's current slab, and a safepoint pushes a
 * private object's last reference back there, without a call.  The
 * protocol and its invariants are at the top of lib/alloc.c.  Every name
 * here is shared between files and so carries the rs__ (RS__) prefix.
 */
#ifndef RS_ALLOC_H
#define RS_ALLOC_H

#include <string.h>

#include "internal.h"

#define RS__ARENA_SHIFT 22
#define RS__ARENA_SIZE ((size_t)1 << RS__ARENA_SHIFT)
#define RS__SLAB_SHIFT 16
#define RS__SLAB_SIZE ((size_t)1 << RS__SLAB_SHIFT)
#define RS__NSLABS (RS__ARENA_SIZE / RS__SLAB_SIZE)
#define RS__MAX_SMALL 1024

/* A slab's descriptor, in the array of its arena's header.  Each takes a
 * 128-byte block of its own (two cache lines, the pair an adjacent-line
 * prefetcher moves together): the owner writes `free' and `used' on every
 * allocation and free, and two threads whose current slabs sit side by
 * side in one arena must not write the same line (with 80-byte descriptors
 * they did, and two threads ran at a third of the speed of one:
 * docs/performance.md). */
struct rs__slab {
	/* The holder's: the owner, or the lock holder when not owned. */
	_Alignas(128) struct rs__head *free;	/* local free list */
	uint32_t used;			/* carved, not on the local list.
					   Sync: holder, relaxed stores (stats
					   read it relaxed) */
	uint32_t bump;			/* slots carved. Sync: as used */
	/* Set under the lock when the slab is assigned. */
	uint32_t cap, size;
	int cls;			/* -1 when FREE. Sync: lock; relaxed */
	int state;			/* S_*. Sync: lock */
	struct rs__thread *owner;	/* Sync: atomic (relaxed); see top */
	struct rs__head *remote;	/* Sync: atomic (CAS push release,
					   exchange acquire) */
	struct rs__slab *next, *prev;	/* list it is on. Sync: holder */
	uint64_t stamp;			/* S_EMPTY: grace period. Sync: lock */
	unsigned index;			/* in its arena. Sync: immutable */
};

struct rs__arena {
	struct rs__arena *next, *prev;	/* Sync: lock */
	unsigned nassigned;		/* slabs not FREE. Sync: lock */
	struct rs__slab slabs[RS__NSLABS];	/* slabs[0] is this header */
};

_Static_assert(sizeof(struct rs__arena) <= RS__SLAB_SIZE,
	       "the arena header fits in slab 0");

/*
 * Size classes: 32..128 bytes by 16, then eight per doubling up to 1024
 * (RS__NCLS = 31).  RS__CLS(b) is the class of b bytes as a constant
 * expression; every class boundary is a multiple of 16, so the class of any
 * small size is a lookup in a table of 65 entries by its size in 16-byte
 * units, rounded up (rs__cls_of16, lib/alloc.c): no branch on the
 * allocation path.
 */
#define RS__CLS_E(n) ((n) >= 512 ? 9 : (n) >= 256 ? 8 : 7)	/* log2(n) */
#define RS__CLS(b)							\
	((b) <= 32 ? 0 : (b) <= 128 ? ((b) + 15) / 16 - 2 :		\
	 7 + (RS__CLS_E((b) - 1) - 7) * 8 +				\
	 (((b) - 1) >> (RS__CLS_E((b) - 1) - 3)) - 8)
extern const uint8_t rs__cls_of16[RS__MAX_SMALL / 16 + 1];

static inline unsigned rs__size_class(size_t bytes)	/* bytes <= RS__MAX_SMALL */
{
	return rs__cls_of16[(bytes + 15) >> 4];
}

static inline struct rs__arena *rs__arena_of(const void *p)
{
	return (struct rs__arena *)((uintptr_t)p & ~(uintptr_t)(RS__ARENA_SIZE - 1));
}

static inline struct rs__slab *rs__slab_of(const void *p)
{
	return &rs__arena_of(p)->slabs[((uintptr_t)p >> RS__SLAB_SHIFT) % RS__NSLABS];
}

static inline struct rs__head *rs__link_of(struct rs__head *h)
{
	return (struct rs__head *)(uintptr_t)rs__load_relaxed(&h->shared);
}

static inline void rs__set_link(struct rs__head *h, struct rs__head *next)
{
	rs__store_relaxed(&h->shared, (int64_t)(uintptr_t)next);
}

/*
 * Small payloads are zeroed with aligned 16-byte stores, rounded up to 16
 * bytes: a slot is a multiple of 16 bytes and its payload starts 32 bytes
 * in, so the rounding stays inside the slot (it may clear part of the slot's
 * unused tail, which nobody reads).  gcc expands a memset of unknown length
 * into `rep stos`, whose start-up cost dominated the whole allocation, and
 * 8-byte stores took 8 ns of a 256-byte object's life cycle.  The empty asm
 * keeps gcc from turning the loop back into a memset call.  Sanitizer and
 * Valgrind builds clear exactly the payload: the tail is poisoned there.
 */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__) || \
	(defined(RS_VALGRIND) && RS_VALGRIND)
#define RS__ZERO_EXACT 1
#else
#define RS__ZERO_EXACT 0
#endif

typedef uint64_t rs__zero16 __attribute__((vector_size(16)));

static inline void rs__zero_payload(void *p, size_t n)
{
	rs__zero16 *w = p;
	size_t i;

	if (RS__ZERO_EXACT || n > 256) {
		memset(p, 0, n);
		return;
	}
	for (i = 0; i < (n + 15) / 16; i++) {
		w[i] = (rs__zero16){0, 0};
		__asm__("" : "+r"(w));
	}
}

/* The pop from the current slab of the class: zeroed memory for an object
 * of `bytes` (header included), or NULL when anything else is needed (an
 * armed fault site, a large object, a slab to carve, collect or change:
 * rs__obj_alloc_slow). */
static inline struct rs__head *rs__obj_alloc_fast(struct rs__thread *t,
						   size_t bytes)
{
	struct rs__slab *s;
	struct rs__head *h;

	if (RS_UNLIKELY(bytes > RS__MAX_SMALL ||
			rs__load_relaxed(&rs__fault_n[RS__FAULT_OBJECT]) > 0))
		return NULL;
	s = t->heap.cur[rs__size_class(bytes)];
	if (RS_UNLIKELY(!s || !(h = s->free)))
		return NULL;
	s->free = rs__link_of(h);
	rs__store_relaxed(&s->used, rs__load_relaxed(&s->used) + 1);
	UNPOISON(h + 1, bytes - RS_HEAD_SIZE);
	VG_ALLOC(h + 1, bytes - RS_HEAD_SIZE);
	rs__zero_payload(h + 1, bytes - RS_HEAD_SIZE);
	return h;
}

void *rs__obj_alloc_slow(struct rs__thread *t, size_t bytes);

/* Zeroed memory for an object of `bytes` (header included), or NULL. */
static inline struct rs__head *rs__obj_alloc(struct rs__thread *t,
					     size_t bytes)
{
	struct rs__head *h = rs__obj_alloc_fast(t, bytes);

	return RS_LIKELY(h) ? h : rs__obj_alloc_slow(t, bytes);
}

/* The owner frees a small object of its current slab of the class with
 * plain stores, as rs__obj_free would (the safepoint's fast path for a
 * private object's last reference).  Leaf; false if the object is not in
 * such a slab, and then nothing was done. */
static inline bool rs__obj_free_cur(struct rs__thread *t, struct rs__head *h, size_t bytes)
{
	struct rs__slab *s;

	if (RS_UNLIKELY(bytes > RS__MAX_SMALL))
		return false;
	s = rs__slab_of(h);
	if (RS_UNLIKELY(t->heap.cur[rs__size_class(bytes)] != s))
		return false;
	rs__set_owner(h, RS__TID_DEAD);
	rs__store_relaxed(&h->bits, RS__B_FREE | RS__B_DEAD);
	rs__store_relaxed(&h->local, 0);
	VG_FREE(h + 1);
	POISON(h + 1, s->size - RS_HEAD_SIZE);
	rs__set_link(h, s->free);
	s->free = h;
	rs__store_relaxed(&s->used, rs__load_relaxed(&s->used) - 1);
	return true;
}

#endif /* RS_ALLOC_H */
