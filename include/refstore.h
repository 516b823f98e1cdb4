/*
 * refstore.h - the public API of refstore.
 *
 * refstore manages a graph of objects shared by the threads of a C program:
 * biased reference counts, deferred decrements that mature after an RCU grace
 * period, and safepoints at which threads apply their decrements and stop for
 * a collection.  See docs/api.md for every function and docs/design.md for the
 * reference contract:
 *
 *   1. A counted reference (rs_new, rs_incref, rs_get_ref) keeps its object
 *      alive until the holder gives it back with rs_decref.
 *   2. A borrowed reference (a pointer read with rs_get, or read plainly from a
 *      private object) stays valid until the reading thread's next safepoint.
 *   3. rs_decref never frees at once: the decrement is applied at a later
 *      safepoint of the calling thread, after every thread that could have
 *      borrowed the object has passed a safepoint.
 *
 * Conventions: functions return NULL or -1 and set errno on failure (EPERM
 * when the calling thread is not attached, EINVAL for bad arguments, ENOMEM).
 *
 * This header compiles as C99 or later and as C++.
 */
#ifndef REFSTORE_H
#define REFSTORE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define RS_API __attribute__((visibility("default")))
#else
#define RS_API
#endif

#define REFSTORE_VERSION_MAJOR 0
#define REFSTORE_VERSION_MINOR 1

/* ------------------------------------------------------------------------ */
/* Runtime and threads                                                       */
/* ------------------------------------------------------------------------ */

/* Configuration for rs_init.  Zero fields take the default, which the
 * matching REFSTORE_* environment variable may override. */
typedef struct rs_config {
	/* Bytes of deferred decrements a thread may hold before its safepoint
	 * waits for a grace period (REFSTORE_DEFER_LIMIT; default 1 MiB). */
	size_t defer_limit_bytes;
	/* Entries in one decrement batch (REFSTORE_BATCH; default 2048). */
	size_t batch_entries;
	/* 1 to print a leak summary on stderr at rs_shutdown, -1 to stay
	 * silent (REFSTORE_REPORT_LEAKS; default 1). */
	int report_leaks;
	/* Bytes of completely empty allocator arenas kept for reuse instead
	 * of going back to the system (REFSTORE_ARENA_RETAIN; default 4 MiB,
	 * one arena; the variable may be 0 to return every empty arena). */
	size_t arena_retain_bytes;
} rs_config;

RS_API int rs_init(const rs_config *cfg);
RS_API long rs_shutdown(void);

RS_API int rs_thread_attach(void);
RS_API int rs_thread_detach(void);
RS_API int rs_safepoint(void);
RS_API int rs_offline(void);
RS_API int rs_online(void);

/* ------------------------------------------------------------------------ */
/* Types and objects                                                         */
/* ------------------------------------------------------------------------ */

typedef void (*rs_visit_fn)(void *child, void *arg);

/* Objects of this type never hold references that can form a cycle; the
 * collector does not track them. */
#define RS_TYPE_NO_CYCLES 0x1u
/* Flags from bit 16 up are the library's own (its internal types). */

typedef struct rs_type {
	const char *name;	/* for messages and reports */
	size_t size;		/* bytes of the object, header excluded */
	/* Calls visit(child, arg) for every counted reference the object
	 * holds (NULL fields may be skipped).  Must not change the object. */
	void (*traverse)(void *obj, rs_visit_fn visit, void *arg);
	/* Optional; runs at most once before a collected object dies. */
	void (*finalize)(void *obj);
	/* Optional; releases outside resources.  Never touches other
	 * refstore objects and never changes reference fields. */
	void (*destroy)(void *obj);
	unsigned flags;		/* RS_TYPE_* */
} rs_type;

/* Largest object size rs_new accepts. */
#define RS_MAX_OBJECT_SIZE ((size_t)1 << 32)

RS_API void *rs_new(const rs_type *type);
static inline void *rs_incref(void *obj);
static inline int rs_decref(void *obj);
RS_API int rs_publish(void *obj);
RS_API int rs_immortalize(void *obj);
RS_API long rs_refcount(const void *obj);
RS_API const rs_type *rs_type_of(const void *obj);

/* ------------------------------------------------------------------------ */
/* Reference fields and shared slots                                          */
/* ------------------------------------------------------------------------ */

/* A field is any `T *` member (or global) that holds a counted reference;
 * the functions take its address. */
static inline void *rs_get(const void *field);
RS_API void *rs_get_ref(const void *field);
RS_API int rs_set(void *field, void *val);
RS_API int rs_set_steal(void *field, void *val);
RS_API int rs_clear(void *field);

/* ------------------------------------------------------------------------ */
/* The keyed object map (named roots, over liburcu's cds_lfht)               */
/* ------------------------------------------------------------------------ */

/* A map is itself an object: rs_map_new returns a counted reference, and
 * rs_incref, rs_decref, rs_set and the collector treat it as any other
 * object (a map inside an unreachable cycle is collected with it).  Keys are
 * byte strings of 0 to RS_MAP_KEY_MAX bytes (key may be NULL only when klen
 * is 0); the map copies them.  Values are objects; the map holds a counted
 * reference to each. */
typedef struct rs_map rs_map;

#define RS_MAP_KEY_MAX 1024

/* Called for each entry with a borrowed key and value; a non-zero return
 * stops the iteration. */
typedef int (*rs_map_fn)(const void *key, size_t klen, void *value,
			 void *arg);

RS_API rs_map *rs_map_new(void);
RS_API int rs_map_free(rs_map *map);
RS_API int rs_map_put(rs_map *map, const void *key, size_t klen, void *obj);
RS_API int rs_map_put_steal(rs_map *map, const void *key, size_t klen,
			    void *obj);
RS_API void *rs_map_get(rs_map *map, const void *key, size_t klen);
RS_API void *rs_map_get_ref(rs_map *map, const void *key, size_t klen);
RS_API int rs_map_del(rs_map *map, const void *key, size_t klen);
RS_API int rs_map_add(rs_map *map, const void *key, size_t klen, void *obj);
RS_API int rs_map_cas(rs_map *map, const void *key, size_t klen,
		      void *expected, void *value);
RS_API int rs_map_lookup(rs_map *map, const void *key, size_t klen,
			 void **value);
RS_API long rs_map_clear(rs_map *map);
RS_API long rs_map_count(rs_map *map);
RS_API long rs_map_foreach(rs_map *map, rs_map_fn fn, void *arg);

/* ------------------------------------------------------------------------ */
/* Weak references                                                           */
/* ------------------------------------------------------------------------ */

/* Called with the weak reference (borrowed) after its target died; never
 * while the world is stopped. */
typedef void (*rs_weakref_fn)(void *wr, void *arg);

RS_API void *rs_weakref_new(void *obj, rs_weakref_fn callback, void *arg);
RS_API void *rs_weakref_get(void *wr);

/* ------------------------------------------------------------------------ */
/* The cycle collector (as Python's gc module)                               */
/* ------------------------------------------------------------------------ */

#define RS_GC_GENERATIONS 3
#define RS_GC_HIST_BUCKETS 24	/* pause histogram: bucket i counts pauses
				   in [2^i, 2^(i+1)) microseconds (bucket 0
				   also those under 1 us) */

RS_API long rs_gc_collect(int generation);
RS_API int rs_gc_enable(void);
RS_API int rs_gc_disable(void);
RS_API int rs_gc_is_enabled(void);
RS_API int rs_gc_set_threshold(long t0, long t1, long t2);
RS_API int rs_gc_get_threshold(long *t0, long *t1, long *t2);
RS_API int rs_gc_get_count(long *c0, long *c1, long *c2);
RS_API int rs_gc_freeze(void);
RS_API int rs_gc_unfreeze(void);
RS_API long rs_gc_get_freeze_count(void);

struct rs_gc_stats {
	uint64_t collections;
	uint64_t collected;		/* unreachable objects freed */
	uint64_t uncollectable;		/* unreachable objects kept */
	uint64_t pause_total_ns;	/* world stopped */
	uint64_t pause_max_ns;
	uint64_t ttsp_total_ns;		/* time-to-safepoint */
	uint64_t ttsp_max_ns;
	uint64_t hist[RS_GC_HIST_BUCKETS];	/* pauses per collection */
};
RS_API int rs_gc_get_stats(int generation, struct rs_gc_stats *out);

struct rs_gc_info {
	int generation;
	long collected;
	long uncollectable;
	uint64_t pause_ns;		/* world stopped, all stops summed */
	uint64_t ttsp_ns;		/* time-to-safepoint, summed */
	uint64_t duration_ns;		/* the whole collection */
};
typedef void (*rs_gc_callback_fn)(const struct rs_gc_info *info, void *arg);
RS_API int rs_gc_add_callback(rs_gc_callback_fn fn, void *arg);
RS_API int rs_gc_remove_callback(rs_gc_callback_fn fn, void *arg);

RS_API int rs_gc_is_tracked(const void *obj);
RS_API int rs_gc_get_referents(void *obj, rs_visit_fn fn, void *arg);
RS_API long rs_gc_get_referrers(void *obj, rs_visit_fn fn, void *arg);
RS_API long rs_gc_garbage(rs_visit_fn fn, void *arg);
RS_API long rs_gc_garbage_clear(void);

#define RS_GC_DEBUG_SAVEALL 0x1u	/* keep all garbage found in the
					   uncollectable list */
RS_API int rs_gc_set_debug(unsigned flags);
RS_API unsigned rs_gc_get_debug(void);

/* ------------------------------------------------------------------------ */
/* Introspection                                                             */
/* ------------------------------------------------------------------------ */

struct rs_stats {
	size_t live_objects;		/* allocated and not yet destroyed */
	size_t live_bytes;		/* their sizes, headers included */
	uint64_t objects_allocated;	/* since rs_init */
	uint64_t objects_freed;
	size_t pending_decrements;	/* logged, not yet applied */
	size_t pending_bytes;		/* bytes of the objects they name */
	size_t pending_bytes_max;	/* high-water mark of pending_bytes
					   of any one thread */
	size_t defer_limit_bytes;	/* the per-thread bound in force */
	uint64_t grace_periods;		/* completed by the reclaimer */
	uint64_t gp_latency_avg_ns;	/* batch sealed -> batch matured */
	uint64_t gp_latency_max_ns;
	uint64_t batches_sealed;
	uint64_t defer_waits;		/* safepoints that waited on the bound */
	uint64_t merges_queued;		/* objects queued to their owner */
	uint64_t merges_on_the_spot;	/* owner offline or gone */
	size_t attached_threads;
	uint64_t world_stops;
	uint64_t ttsp_max_ns;		/* time-to-safepoint, worst stop */
	uint64_t ttsp_total_ns;
	uint64_t pause_max_ns;		/* world stopped, worst stop */
	uint64_t pause_total_ns;
	/* The allocator (objects up to 1 KiB, header included; larger ones
	 * come from malloc and appear only in live_bytes). */
	size_t arena_bytes;		/* arenas held */
	size_t slab_bytes;		/* slabs given to a size class */
	size_t free_list_bytes;		/* free slots in those slabs */
	size_t retained_bytes;		/* slabs with no live object: empty
					   (waiting for a grace period or
					   reuse) or never assigned */
	/* The cycle collector's backlog: old objects a decrement left with
	 * references since a collection last examined them (each may be part of
	 * garbage cycles), and how many make the next collection of the old
	 * generations due. */
	size_t gc_candidates;
	size_t gc_candidate_trigger;
	/* Stops of the world that automatic collections gave up because a
	 * thread stayed online past the stall time (REFSTORE_STALL_MS). */
	uint64_t world_stops_given_up;
};

/* A thread that holds up a stop of the world (rs_set_stall_handler). */
#define RS_STALL_STOP 1
struct rs_stall_info {
	int kind;		/* RS_STALL_STOP */
	uint64_t thread_id;	/* the refstore id of the thread waited for */
	char name[16];		/* its name (pthread_setname_np), or "" */
	uint64_t waited_ns;	/* how long the stop has waited so far */
	int gave_up;		/* 1: an automatic collection gave its stop up */
};
typedef void (*rs_stall_fn)(const struct rs_stall_info *info, void *arg);
RS_API int rs_set_stall_handler(rs_stall_fn fn, void *arg);

RS_API int rs_stats(struct rs_stats *out);
RS_API long rs_heap_verify(void);

/* ======================================================================== */
/* Not part of the API: what the inline fast paths below need.  Field layout */
/* and names may change in any release.                                     */
/* ======================================================================== */

/*
 * Object header, placed just before the object.  Invariant (when no
 * decrement is being applied): true count == local + (shared >> 2), and it
 * is never lower than the number of counted references.
 */
struct rs__head {
	uint64_t tid;		/* three uses, one at a time: the owner
				   id (RS__TID_* for no owner), changed
				   only by a merge (owner, or a merger
				   holding the owner's offline lease); once
				   DYING, the link of its thread's dying
				   list; while the world is stopped for a
				   collection that holds it (RS__B_GC), its
				   gc_refs.  Sync: atomic (relaxed) */
	uint32_t local;		/* owner's count.  Sync: owner thread only
				   (relaxed loads/stores, no RMW) */
	uint32_t bits;		/* RS__B_*.  Sync: atomic (fetch_or) */
	int64_t shared;		/* (count << 2) | RS__S_* state.
				   Sync: atomic (CAS, acq/rel) */
	const rs_type *type;	/* Sync: immutable after rs_new */
};

#define RS__B_PUBLISHED 0x1u	/* other threads may borrow it */
#define RS__B_IMMORTAL 0x2u	/* never counted, never freed */
#define RS__B_DYING 0x4u	/* count reached zero, being destroyed */
#define RS__B_DEAD 0x8u		/* destroyed (kept in debug builds) */
#define RS__B_PUBLISHING 0x10u	/* marked by a publication in progress */
#define RS__B_FREE 0x20u	/* a free slot of the allocator (with DEAD) */
#define RS__B_TRACKED 0x40u	/* followed by a collector trailer */
#define RS__B_TRYREF 0x80u	/* may be counted by rs_weakref_get: every
				   transition to a zero count is a CAS */
#define RS__B_WEAKREFS 0x100u	/* weak references point to it */
#define RS__B_FINALIZED 0x200u	/* finalize has run */
#define RS__B_GC 0x400u		/* in the set being collected (stopped) */
#define RS__B_REACH 0x800u	/* ... and reachable (stopped) */
#define RS__B_GARBAGE 0x1000u	/* found unreachable, being freed */
#define RS__B_FROZEN 0x2000u	/* in the permanent generation */
#define RS__B_HELD 0x4000u	/* garbage held while its finalizers run */
#define RS__B_RELEASED 0x8000u	/* dying, its references given back already */
#define RS__B_CLEAN 0x10000u	/* tracked, and no decrement has left it with
				   references since a collection found it
				   alive (or since rs_new): not a cycle
				   candidate.  The inline rs_decref leaves it
				   to the slow path, which records the
				   candidate (lib/gc.c) */

struct rs__tls {
	uint64_t tid;		/* 0 when the thread is not attached */
	void *self;		/* the thread's state, internal */
};

extern RS_API __thread struct rs__tls rs__tls
	__attribute__((tls_model("initial-exec")));

RS_API void *rs__incref_slow(void *obj);
RS_API int rs__decref_slow(void *obj);
RS_API void *rs__get_refused(const void *field);

static inline struct rs__head *rs__head_of(const void *obj)
{
	return (struct rs__head *)obj - 1;
}

/* Owner of a private object: plain increment.  Others: rs__incref_slow. */
static inline void *rs_incref(void *obj)
{
	struct rs__head *h;

	if (!obj)
		return obj;
	h = rs__head_of(obj);
	if (__builtin_expect(__atomic_load_n(&h->tid, __ATOMIC_RELAXED) ==
			     rs__tls.tid, 1)) {
		__atomic_store_n(&h->local,
				 __atomic_load_n(&h->local, __ATOMIC_RELAXED) + 1,
				 __ATOMIC_RELAXED);
		return obj;
	}
	return rs__incref_slow(obj);
}

/* The owner of a private object whose count stays above zero decrements at
 * once; everything else is logged and applied later (rs__decref_slow),
 * including the first such decrement of a CLEAN object, which makes it a
 * cycle candidate. */
static inline int rs_decref(void *obj)
{
	struct rs__head *h;
	uint32_t local;

	if (!obj)
		return 0;
	h = rs__head_of(obj);
	if (__builtin_expect(__atomic_load_n(&h->tid, __ATOMIC_RELAXED) ==
				     rs__tls.tid &&
			     !(__atomic_load_n(&h->bits, __ATOMIC_RELAXED) &
			       (RS__B_PUBLISHED | RS__B_CLEAN)), 1)) {
		local = __atomic_load_n(&h->local, __ATOMIC_RELAXED);
		if (__builtin_expect(local > 1, 1)) {
			__atomic_store_n(&h->local, local - 1, __ATOMIC_RELAXED);
			return 0;
		}
	}
	return rs__decref_slow(obj);
}

/* A borrowed load: no count, no atomic write; valid until the caller's next
 * safepoint.  Acquire pairs with the release exchange in rs_set.  An
 * unattached caller (EPERM) or a NULL field (EINVAL) gets NULL from
 * rs__get_refused. */
static inline void *rs_get(const void *field)
{
	if (__builtin_expect(rs__tls.tid == 0 || !field, 0))
		return rs__get_refused(field);
	return __atomic_load_n((void *const *)field, __ATOMIC_ACQUIRE);
}

#ifdef __cplusplus
}
#endif

#endif /* REFSTORE_H */
