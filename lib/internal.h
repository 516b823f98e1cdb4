/*
 * internal.h - what the files of refstore share with each other.
 *
 * Naming: rs_x() is public API, rs__x() is shared between our files and
 * declared here (grouped by the file that defines it), static helpers carry
 * no prefix.  Every shared field carries a "Sync:" tag saying who writes it
 * and what protects it.
 */
#ifndef RS_INTERNAL_H
#define RS_INTERNAL_H

#ifndef RS_BUILDING
#error "lib/internal.h is internal to refstore"
#endif

/* urcu's inline fast paths (quiescent state, offline/online) use its own
 * inline-assembly atomics, which ThreadSanitizer cannot see: TSan builds call
 * the library's out-of-line versions instead, so no suppression is needed. */
#ifndef __SANITIZE_THREAD__
#define _LGPL_SOURCE 1
#endif
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <urcu/urcu-qsbr.h>

#include "refstore.h"
#include "atomics.h"

#ifndef RS_DEBUG
#define RS_DEBUG 0
#endif

/*
 * The ordering a grace period creates, told to ThreadSanitizer (liburcu is
 * not instrumented): every quiescent point releases rs__tsan_gp, the end of
 * every grace period acquires it.  Why that is RCU's guarantee and no more:
 * docs/design.md §3, "Sanitizers and Valgrind".
 */
#ifdef __SANITIZE_THREAD__
#include <sanitizer/tsan_interface.h>
extern char rs__tsan_gp;
#define RS_TSAN_QUIESCENT() __tsan_release(&rs__tsan_gp)
#define RS_TSAN_GRACE_PERIOD() __tsan_acquire(&rs__tsan_gp)
#else
#define RS_TSAN_QUIESCENT() ((void)0)
#define RS_TSAN_GRACE_PERIOD() ((void)0)
#endif

/* Telling ASan and Valgrind which object memory is free (lib/alloc.c and
 * the debug quarantine in lib/object.c).  Valgrind client requests cost a
 * few instructions even outside Valgrind: on in debug builds and with
 * -DRS_VALGRIND=1. */
#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif
#if !defined(RS_VALGRIND) && RS_DEBUG
#define RS_VALGRIND 1
#endif
#if defined(RS_VALGRIND) && RS_VALGRIND && __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#define VG_ALLOC(p, n) VALGRIND_MALLOCLIKE_BLOCK((p), (n), 0, 0)
#define VG_FREE(p) VALGRIND_FREELIKE_BLOCK((p), 0)
#define VG_NOACCESS(p, n) VALGRIND_MAKE_MEM_NOACCESS((p), (n))
#define VG_UNDEFINED(p, n) VALGRIND_MAKE_MEM_UNDEFINED((p), (n))
#else
#define VG_ALLOC(p, n) ((void)(p), (void)(n))
#define VG_FREE(p) ((void)(p))
#define VG_NOACCESS(p, n) ((void)(p), (void)(n))
#define VG_UNDEFINED(p, n) ((void)(p), (void)(n))
#endif

#define RS_LIKELY(x) __builtin_expect(!!(x), 1)
#define RS_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define RS_HEAD_SIZE sizeof(struct rs__head)

/* ------------------------------------------------------------------------ */
/* Thread ids                                                                */
/*                                                                          */
/* An attached thread's id is (generation << RS_SLOT_BITS) | slot with      */
/* generation >= 1, so ids are never reused and are >= 1 << RS_SLOT_BITS.    */
/* The small values name headers that have no owner.  An unattached thread's */
/* rs__tls.tid is 0, which no header ever holds, so it never takes an owner */
/* fast path.                                                               */
/* ------------------------------------------------------------------------ */
#define RS_SLOT_BITS 16
#define RS_MAX_THREADS ((1u << RS_SLOT_BITS) - 1)
#define RS__TID_MERGED 1u	/* no owner: counts live in `shared` only */
#define RS__TID_IMMORTAL 2u	/* never counted */
#define RS__TID_DEAD 3u		/* destroyed (debug builds keep the header) */
#define RS__TID_SLOT(tid) ((uint32_t)((tid) & ((1u << RS_SLOT_BITS) - 1)))

/*
 * The header's `tid` word has three uses, one at a time:
 *   - the owner's id, or RS__TID_* for no owner (rs__owner_of,
 *     rs__set_owner): while the object can be counted;
 *   - the next object of a thread's dying list (rs__dying_next,
 *     rs__set_dying_next): from the count reaching zero (DYING) until the
 *     cascade frees it (lib/object.c);
 *   - gc_refs (rs__gc_refs, rs__set_gc_refs): while the world is stopped and
 *     the object is in the set being collected (RS__B_GC), the owner id
 *     waiting in its trailer's `saved` (lib/gc.c).
 * The inline fast paths of include/refstore.h read it as the owner id
 * directly.  All accesses are relaxed atomics.
 */
static inline uint64_t rs__owner_of(const struct rs__head *h)
{
	return rs__load_relaxed(&h->tid);
}

static inline void rs__set_owner(struct rs__head *h, uint64_t owner)
{
	rs__store_relaxed(&h->tid, owner);
}

static inline struct rs__head *rs__dying_next(const struct rs__head *h)
{
	return (struct rs__head *)(uintptr_t)rs__load_relaxed(&h->tid);
}

static inline void rs__set_dying_next(struct rs__head *h,
				      struct rs__head *next)
{
	rs__store_relaxed(&h->tid, (uint64_t)(uintptr_t)next);
}

static inline int64_t rs__gc_refs(const struct rs__head *h)
{
	return (int64_t)rs__load_relaxed(&h->tid);
}

static inline void rs__set_gc_refs(struct rs__head *h, int64_t refs)
{
	rs__store_relaxed(&h->tid, (uint64_t)refs);
}

/* The shared word: count in the high bits, state in the low two. */
#define RS__S_SHIFT 2
#define RS__S_MASK 3
#define RS__S_DEFAULT 0	/* owner live: true count = local + count, count >= 0 */
#define RS__S_QUEUED 1	/* went below zero; the object sits in its owner's queue */
#define RS__S_MERGED 2	/* no owner: true count = count */
#define RS__S_ONE ((int64_t)1 << RS__S_SHIFT)
#define RS__S_COUNT(w) ((w) >> RS__S_SHIFT)
#define RS__S_STATE(w) ((int)((w) & RS__S_MASK))

/* ------------------------------------------------------------------------ */
/* lib/base.c: the bottom layer (calls nothing of ours)                      */
/* ------------------------------------------------------------------------ */
void rs__die(const char *call, const void *obj, const char *fmt, ...)
	__attribute__((noreturn, format(printf, 3, 4)));
uint64_t rs__now_ns(void);

/* Locks.  One enum fixes the order: a thread takes locks only in
 * increasing rank.  Debug builds check it, and check that a safepoint is
 * entered with no lock held. */
enum rs__lock_rank {
	RS__L_REGISTRY = 1,	/* thread registry (thread.c) */
	RS__L_WORLD,		/* stop-the-world state (world.c) */
	RS__L_QUEUE,		/* a thread's merge queue (brc.c) */
	RS__L_JOB,		/* held while the reclaimer runs jobs */
	RS__L_RECLAIM,		/* reclaimer's pending batches (reclaim.c) */
	RS__L_GP,		/* held across a grace period (reclaim.c) */
	RS__L_WEAK,		/* the weak-reference table (weak.c) */
	RS__L_NURSERY,		/* a thread's nursery log (gc_log.c) */
	RS__L_ALLOC,		/* allocator pools and arenas (alloc.c) */
	RS__L_COUNT
};

typedef struct rs__mutex {
	pthread_mutex_t m;
	int rank;
} rs__mutex;

void rs__mutex_init(rs__mutex *m, int rank);
void rs__lock(rs__mutex *m);
void rs__unlock(rs__mutex *m);
void rs__lock_reinit(rs__mutex *m);
void rs__assert_no_locks(const char *where);

/* Fault injection, for tests: rs__fault_set(site, n) makes the n-th next
 * call of the site fail (once; n <= 0 disarms it), rs__fault_left says how
 * many calls are still to go (<= 0: it fired, or was never armed).  Each
 * site stands for one kind of allocation and fails the way that allocation
 * would; docs/design.md §3 says what the caller sees.
 * An unarmed site costs one relaxed load. */
enum {
	RS__FAULT_ARENA,	/* alloc.c arena_mem: a 4 MiB arena */
	RS__FAULT_SLAB,		/* alloc.c slab_fresh: a slab from an arena */
	RS__FAULT_LARGE,	/* alloc.c large_alloc: an object over 1 KiB */
	RS__FAULT_GCLOG,	/* gc_log.c chunk_new: a chunk of a nursery log */
	RS__FAULT_OBJECT,	/* alloc.h rs__obj_alloc: any object's memory */
	RS__FAULT_BATCH,	/* defer.c batch_fresh: a new decrement batch */
	RS__FAULT_PRIV,		/* defer.c rs__log_decref: the private log */
	RS__FAULT_PUBLISH,	/* object.c walk_add: the publication walk */
	RS__FAULT_THREAD,	/* thread.c slot_take: a thread's state */
	RS__FAULT_WEAKTAB,	/* weak.c: the weak-reference table */
	RS__FAULT_MAP,		/* map.c rs_map_new: its job record, its table */
	RS__FAULT_MAPSNAP,	/* map.c map_traverse: the values record (M7) */
	RS__FAULT_GCWORK,	/* gc.c, gc_log.c: a collection's log set and stacks */
	RS__FAULT_REFERRERS,	/* gc_api.c rs_gc_get_referrers: the list */
	RS__FAULT_NSITES
};
extern long rs__fault_n[RS__FAULT_NSITES];	/* Sync: atomic (relaxed) */
void rs__fault_set(int site, long n);
long rs__fault_left(int site);
bool rs__fault_hit(int site);
static inline bool rs__fault(int site)	/* true once, when the count runs out */
{
	return RS_UNLIKELY(rs__load_relaxed(&rs__fault_n[site]) > 0) &&
	       rs__fault_hit(site);
}

/*
 * The API-entry check, the one spelling of "may this thread call the API":
 * the calling thread's record, or NULL with errno = EPERM.  A thread is
 * attached while its id (rs__tls.tid) is set: from rs_thread_attach until
 * rs_thread_detach clears it, before the last cascade of its detach.  The
 * id is set only while the record is (attach sets the record first, detach
 * clears the id first), so the id alone decides.  RS__API_OR_DETACHING also
 * accepts that last cascade (record set, id cleared: destroy callbacks run
 * there): rs_new and the thread-state calls, whose answers from a destroy
 * callback (rs_safepoint 0, rs_offline EDEADLK) hold in detach's too.
 */
#define RS__API_ATTACHED 0
#define RS__API_OR_DETACHING 1
static inline struct rs__thread *rs__self(void)
{
	return (struct rs__thread *)rs__tls.self;
}
void rs__api_refuse(void) __attribute__((cold));	/* errno = EPERM */
static inline struct rs__thread *rs__api_thread(int how)
{
	struct rs__thread *t;

	if (RS_UNLIKELY(how == RS__API_OR_DETACHING ? rs__tls.self == NULL
						    : rs__tls.tid == 0)) {
		rs__api_refuse();
		return NULL;
	}
	t = rs__self();
	if (!t)		/* never: an id implies a record (see above) */
		__builtin_unreachable();
	return t;
}

/* ------------------------------------------------------------------------ */
/* Decrement batches (lib/defer.c)                                           */
/* ------------------------------------------------------------------------ */
struct rs__batch {
	struct rs__batch *next;	/* owner's sealed list.  Sync: owner thread */
	struct rs__batch *rnext; /* reclaimer's lists.  Sync: reclaimer lock */
	int matured;		/* Sync: atomic; release by the reclaimer,
				   acquire by the owner */
	uint32_t n;		/* entries not yet applied. Sync: owner */
	uint32_t cap;		/* room in ent[]: the batch size in force
				   when it was made (a thread's batches
				   outlive rs_shutdown; the next rs_init may
				   choose another size). Sync: immutable */
	bool submitted;		/* the reclaimer has it (else the owner
				   marks it matured itself). Sync: owner */
	size_t bytes;		/* sum of the named objects' sizes */
	uint64_t sealed_ns;	/* Sync: owner, before submission */
	uint64_t first_ns;	/* when the first entry was logged. Sync: owner */
	void *ent[];		/* objects to decrement, in log order */
};

/* Per-thread counters.  Sync: written by the owning thread only (relaxed
 * stores, no RMW); read by anyone with relaxed loads.  On detach they are
 * added to the retired totals under the registry lock. */
struct rs__counters {
	uint64_t allocated, freed;
	uint64_t bytes_allocated, bytes_freed;
	uint64_t pending, pending_bytes, pending_bytes_max;
	uint64_t batches_sealed, defer_waits;
	uint64_t merges_queued, merges_on_the_spot;
};

/* The allocator's per-thread state (lib/alloc.c): per size class, the slab
 * being allocated from and the other slabs the thread owns.  Sync: the
 * owning thread only (or the world stopped, or the fork child, or detach). */
#define RS__NCLS 31
struct rs__slab;
struct rs__heap {
	struct rs__slab *cur[RS__NCLS];
	struct rs__slab *owned[RS__NCLS];	/* list of the others: those
						   that got room back first */
	struct rs__slab *owned_tail[RS__NCLS];
};

/* Collector logs (lib/gc_log.c): which tracked objects are in which
 * generation.  A log is a list of chunks of object pointers; a tracked
 * object's trailer points back at its entry, and a death clears the entry.
 * Chunks are aligned to their size, so an entry finds its chunk, and the
 * chunk its log, by address arithmetic. */
#define RS__CHUNK_BYTES ((size_t)32768)
#define RS__CHUNK_CAND_WORDS 64	/* candidate bits: one per entry */
struct rs__gclog;
struct rs__chunk {
	struct rs__gclog *log;	/* Sync: changed only with the world stopped */
	struct rs__chunk *next;	/* Sync: as the log */
	uint32_t n;		/* entries used. Sync: as the log */
	uint32_t holes;		/* deaths since the chunk was last compacted,
				   in a generation's chunk.  Sync: atomic
				   (relaxed) */
	uint32_t ncand;		/* bits set in cand[].  Sync: atomic (relaxed) */
	uint32_t pad;
	/* Entries of old objects that are cycle candidates (lib/gc.c): set
	 * by rs__gc_candidate in a generation's chunk, cleared while the world
	 * is stopped.  Sync: atomic (relaxed) */
	uint64_t cand[RS__CHUNK_CAND_WORDS];
	void *ent[];		/* Sync: atomic (relaxed); a death stores
				   NULL into its object's entry */
};
#define RS__CHUNK_ENTS ((RS__CHUNK_BYTES - sizeof(struct rs__chunk)) / sizeof(void *))

/* A nursery (per thread: owner set) or a generation (owner NULL).
 * Sync: a nursery is appended to and compacted by its owner thread only,
 * and other threads' deaths take `lock`; generations change only with the
 * world stopped (deaths store NULL into their own entry). */
struct rs__gclog {
	struct rs__chunk *first, *last;
	struct rs__chunk *spare;	/* emptied chunks kept for reuse */
	size_t n;			/* entries, holes included */
	size_t holes;			/* owner's deaths since compaction */
	size_t remote_holes;		/* others' deaths. Sync: lock */
	struct rs__thread *owner;
	rs__mutex lock;
};

/* The trailer of a tracked object, after its payload. */
struct rs__gcinfo {
	void **ent;		/* its log entry, NULL when not logged.
				   Sync: atomic (relaxed); see struct rs__gclog */
	uint64_t saved;		/* the header's tid while the collector keeps
				   gc_refs there (world stopped) */
};

/* A tracked type whose objects young collections leave out (lib/gc.c): a
 * map, one object whose traverse visits every entry, which a young
 * collection would otherwise walk whole while the map is young. */
#define RS__TYPE_NOT_YOUNG 0x10000u

static inline bool rs__type_tracked(const rs_type *type)
{
	return type->traverse && !(type->flags & RS_TYPE_NO_CYCLES);
}

static inline size_t rs__payload_bytes(const rs_type *type)
{
	return (type->size + 7) & ~(size_t)7;
}

static inline struct rs__gcinfo *rs__gc_of(struct rs__head *h)
{
	return (struct rs__gcinfo *)((char *)(h + 1) +
				     rs__payload_bytes(h->type));
}

/*
 * Thread states.  Each transition names the thread allowed to make it.
 *
 *   (attach, self) -> OFFLINE --rs_online (self)--> ONLINE
 *   ONLINE --rs_offline (self)--> OFFLINE
 *   OFFLINE --lease (a merger, CAS)--> LEASED --unlease (that merger)--> OFFLINE
 *   ONLINE --safepoint during a stop (self)--> PARKED
 *   ONLINE --rs_online sees a stop (self)--> WAITING
 *   PARKED, WAITING --resume (the stopper)--> ONLINE
 *   ONLINE --detach (self)--> DEAD
 *
 * A stop counts every state but ONLINE as stopped.
 */
enum rs__tstate {
	RS__T_DEAD = 0,
	RS__T_ONLINE,
	RS__T_OFFLINE,
	RS__T_LEASED,
	RS__T_PARKED,
	RS__T_WAITING
};

struct rs__thread {
	uint64_t tid;		/* Sync: written under qlock (attach, death),
				   read by others under qlock */
	int state;		/* enum rs__tstate. Sync: atomic (seq_cst) */
	uint32_t slot;		/* Sync: immutable after creation */
	pthread_t pthread;	/* Sync: owner thread only */

	/* Objects other threads queued for this owner to merge. */
	rs__mutex qlock;
	void **queue;		/* Sync: qlock */
	size_t qn, qcap;	/* Sync: qlock */
	size_t queue_hint;	/* Sync: atomic; qn as last seen under qlock */

	/* Deferred decrements.  Sync: owner thread only (or the world
	 * stopped, or the fork child). */
	struct rs__batch *cur;		/* being filled */
	struct rs__batch *sealed;	/* waiting to mature, oldest first */
	struct rs__batch **sealed_tail;
	struct rs__batch *spare;	/* one empty batch kept for reuse */
	size_t nsealed;
	void **priv;			/* private decrements: next safepoint */
	size_t npriv, privcap;
	struct rs__head *dying;		/* destruction cascade, linked by
					   rs__dying_next */
	int no_reentry;			/* set while this thread applies
					   decrements and runs the cascade
					   (a safepoint's work, a flush, a
					   collection's frees, detach, the fork
					   child): destroy callbacks run then and
					   must not reenter (rs_safepoint does
					   nothing, rs_offline and
					   rs_thread_detach refuse) */

	bool self_sync;			/* reclaimer unavailable: wait for
					   grace periods at safepoints */

	struct rs__counters c;
	struct rs__heap heap;

	/* The collector (lib/gc.c) and weak references (lib/weak.c). */
	struct rs__gclog nursery;	/* tracked objects born here */
	int gc_delta;			/* tracked births - deaths not yet
					   added to the young count.
					   Sync: owner (or world stopped) */
	int gc_depth;			/* holds the collector role, nested */
	int in_weak_cb;			/* running a weak-reference callback */
	int in_map_walk;		/* inside rs_map_foreach: no safepoint
					   (debug builds check).  Sync: owner */
	void *callbacks;		/* weak references whose callbacks
					   are due. Sync: owner */
};

struct rs__runtime {
	int initialized;	/* Sync: init lock */
	size_t defer_limit;	/* Sync: immutable after init */
	size_t batch_entries;	/* Sync: immutable after init */
	int report_leaks;	/* Sync: immutable after init */
	size_t arena_retain;	/* Sync: immutable after init */
	uint64_t stall_ns;	/* a stop waiting this long names the thread
				   it waits for; 0: never.  Sync: immutable
				   after init */
};

/* ------------------------------------------------------------------------ */
/* lib/base.c: the shared tables (written by the top, read by every layer)   */
/* ------------------------------------------------------------------------ */
extern struct rs__runtime rs__rt;
static inline bool rs__runtime_up(void)
{
	return rs__load_acquire(&rs__rt.initialized);
}
/* The thread registry's table (attach and detach: threads/thread.c). */
extern struct rs__thread *rs__slots[RS_MAX_THREADS + 1];
extern uint32_t rs__nslots;		/* Sync: atomic; slots 1..n in use */
extern rs__mutex rs__registry_lock;
extern struct rs__counters rs__retired;	/* Sync: registry lock */
extern size_t rs__nattached;		/* Sync: registry lock (relaxed) */
size_t rs__attached_count(void);
size_t rs__attached_hint(void);

/* ------------------------------------------------------------------------ */
/* lib/runtime.c (the top: rs_init, rs_shutdown, rs_stats)                  */
/* ------------------------------------------------------------------------ */
int rs__ensure_init(void);

/* ------------------------------------------------------------------------ */
/* lib/alloc.c                                                               */
/* ------------------------------------------------------------------------ */
void rs__obj_free(void *p, size_t bytes);
typedef void (*rs__walk_fn)(void *obj, void *arg);
void rs__heap_walk(rs__walk_fn fn, void *arg);
long rs__alloc_validate(void);
void rs__alloc_thread_exit(struct rs__thread *t, bool ask_gp);
void rs__alloc_reap(void);
bool rs__alloc_reap_wanted(void);
void rs__alloc_stats(struct rs_stats *out);
void rs__alloc_fork_prepare(void);
void rs__alloc_fork_parent(void);
void rs__alloc_fork_child(void);
int rs__alloc_slab_class(const void *obj);	/* -1: not in a class */
static inline size_t rs__type_bytes(const rs_type *type)
{
	return RS_HEAD_SIZE + (rs__type_tracked(type)
			       ? rs__payload_bytes(type) + sizeof(struct rs__gcinfo)
			       : type->size);
}

static inline size_t rs__obj_bytes(const void *obj)
{
	return rs__type_bytes(rs__head_of(obj)->type);
}

/* ------------------------------------------------------------------------ */
/* lib/object.c                                                              */
/* ------------------------------------------------------------------------ */
static inline const char *rs__type_name(const struct rs__head *h)
{
	return h->type && h->type->name ? h->type->name : "?";
}

/* Misuse that errno cannot report: a count change on a destroyed object. */
static inline void rs__check_alive(const char *call, struct rs__head *h,
				   uint32_t bits)
{
	if (RS_UNLIKELY(bits & (RS__B_DEAD | RS__B_DYING)))
		rs__die(call, h + 1,
			"object of type '%s' was already destroyed "
			"(double decref, or use after its last decref)",
			rs__type_name(h));
}

size_t rs__free_private_run(struct rs__thread *t, int64_t *bytes);
void rs__cascade(struct rs__thread *t);
size_t rs__release_dying(struct rs__thread *t, size_t budget);
/* objects a thread releases before it parks (lib/defer.c) */
#define RS__RELEASE_AT_PARK ((size_t)1 << 16)
void rs__quarantine_flush(void);
void rs__obj_destroy(struct rs__thread *t, struct rs__head *h);
void rs__obj_free_unattached(struct rs__head *h);
extern uint64_t rs__unattached_freed[2];	/* objects, bytes.  Sync: atomic */
void rs__push_dying(struct rs__thread *t, struct rs__head *h);

/* ------------------------------------------------------------------------ */
/* lib/brc.c (biased counting: counts applied, merges, owner queues, lease)  */
/* ------------------------------------------------------------------------ */
void rs__decref_now(struct rs__thread *t, void *obj);
void rs__drain_queue(struct rs__thread *t);
void rs__drain_queues_stopped(struct rs__thread *by);
void rs__give_up_ownership(struct rs__thread *t);

/* ------------------------------------------------------------------------ */
/* lib/defer.c                                                               */
/* ------------------------------------------------------------------------ */
/* Deferred-decrement accounting: n entries of `bytes` logged (or, negative,
 * applied).  Owner thread only; relaxed stores, read by rs_stats.  The
 * high-water mark is taken before each decrease, not at each increase:
 * pending bytes only grow between decreases, so their maximum so far is
 * the larger of the mark and the current value (which rs_stats takes). */
static inline uint64_t rs__pending_peak(const struct rs__counters *c)
{
	uint64_t pbm = rs__load_relaxed(&c->pending_bytes_max);
	uint64_t pb = rs__load_relaxed(&c->pending_bytes);

	return pb > pbm ? pb : pbm;
}

static inline void rs__pending_add(struct rs__thread *t, int64_t n,
				   int64_t bytes)
{
	uint64_t pb = rs__load_relaxed(&t->c.pending_bytes);

	if (bytes < 0)	/* a decrease: take the mark first */
		rs__store_relaxed(&t->c.pending_bytes_max,
				  rs__pending_peak(&t->c));
	rs__bump_owner(&t->c.pending, (uint64_t)n);
	rs__store_relaxed(&t->c.pending_bytes, pb + (uint64_t)bytes);
}

/* Log the owner's decrement of a private object, for its next safepoint;
 * the caller made sure there is room. */
static inline void rs__log_private_append(struct rs__thread *t, void *obj,
					  size_t bytes)
{
	t->priv[t->npriv++] = obj;
	rs__pending_add(t, 1, (int64_t)bytes);
}

/* The same when there is room already and no fault is armed: true if
 * logged (rs_decref's common case), else the caller takes rs__log_decref. */
static inline bool rs__log_private_fast(struct rs__thread *t, void *obj,
					size_t bytes)
{
	if (RS_UNLIKELY(t->npriv == t->privcap ||
			rs__load_relaxed(&rs__fault_n[RS__FAULT_PRIV]) > 0))
		return false;
	rs__log_private_append(t, obj, bytes);
	return true;
}

int rs__log_decref(struct rs__thread *t, void *obj, bool private_obj);
void rs__decref_or_wait(struct rs__thread *t, void *obj);
int rs__log_reserve(struct rs__thread *t);
int rs__log_room(struct rs__thread *t, size_t n);
bool rs__defer_has_work(const struct rs__thread *t);
void rs__defer_safepoint(struct rs__thread *t);
void rs__defer_before_park(struct rs__thread *t);
void rs__defer_seal(struct rs__thread *t);
int rs__defer_init(struct rs__thread *t);
void rs__defer_flush(struct rs__thread *t);
void rs__defer_release(struct rs__thread *t);
void rs__defer_adopt(struct rs__thread *to, struct rs__thread *from);
void rs__defer_resubmit_all(void);
void rs__defer_apply_orphans(void);
void rs__defer_apply_stopped(struct rs__thread *by);

/* ------------------------------------------------------------------------ */
/* lib/gc_log.c, gc.c, gc_sched.c, gc_api.c (the collector; collector.h    */
/* holds what only those four share)                                        */
/* ------------------------------------------------------------------------ */
/* gc_log.c */
extern int rs__gc_requested;	/* Sync: atomic (relaxed) */
int rs__gc_track(struct rs__thread *t, struct rs__head *h);
void rs__gc_untrack(struct rs__thread *t, struct rs__head *h);
void rs__gc_candidate(struct rs__head *h);
size_t rs__gc_log_chunks(int gen, size_t *entries);
void rs__gc_thread_init(struct rs__thread *t);
long rs__gc_verify(void);
/* gc_sched.c */
void rs__gc_auto(struct rs__thread *t);
void rs__gc_fork_prepare(void);
void rs__gc_fork_parent(void);
void rs__gc_fork_child(void);
/* gc_api.c */
void rs__gc_init(void);
void rs__gc_thread_exit(struct rs__thread *t);
void rs__gc_shutdown(void);
void rs__gc_stats(struct rs_stats *out);

/* ------------------------------------------------------------------------ */
/* lib/weak.c                                                                */
/* ------------------------------------------------------------------------ */
bool rs__tryincref(struct rs__head *h);
void rs__weak_clear(struct rs__thread *t, struct rs__head *h);
void rs__weak_run_callbacks(struct rs__thread *t);
void rs__weak_orphan_callbacks(struct rs__thread *t);
extern int rs__weak_orphans;	/* Sync: atomic (relaxed) */
void rs__weak_fork_child(void);

/* ------------------------------------------------------------------------ */
/* threads/thread.c                                                          */
/* ------------------------------------------------------------------------ */
void rs__thread_fork_child(void);

/* ------------------------------------------------------------------------ */
/* threads/world.c                                                           */
/* ------------------------------------------------------------------------ */
extern int rs__stop_requested;	/* Sync: atomic (seq_cst) */
struct rs__stop_stats {
	uint64_t ttsp_ns, pause_ns;
};
void rs__safepoint_poll(struct rs__thread *t);
void rs__world_stop(void);
bool rs__world_try_stop(bool give_up);
void rs__world_resume(struct rs__stop_stats *out);
uint64_t rs__world_stop_token(void);
void rs__world_stats(uint64_t *stops, uint64_t *ttsp_max, uint64_t *ttsp_total,
		     uint64_t *pause_max, uint64_t *pause_total,
		     uint64_t *given_up);
void rs__set_state(struct rs__thread *t, int state);
void rs__world_fork_child(void);
void rs__world_reset(void);

/* ------------------------------------------------------------------------ */
/* threads/reclaim.c                                                         */
/* ------------------------------------------------------------------------ */
bool rs__reclaim_submit(struct rs__batch *b);
/* Work that must not run on an attached thread (resizing or destroying a
 * map's cds_lfht, which wait for grace periods): queued, and run in order by
 * the reclaimer with no lock held but the job lock, or by rs__reclaim_stop. */
struct rs__job {
	struct rs__job *next;	/* Sync: reclaimer lock */
	void (*fn)(struct rs__job *j);
};
void rs__reclaim_job(struct rs__job *j);
void rs__reclaim_jobs_pause(void);
void rs__reclaim_jobs_resume(void);
void rs__synchronize(void);
void rs__reclaim_stop(void);
void rs__reclaim_stats(uint64_t *gps, uint64_t *lat_avg, uint64_t *lat_max);
void rs__reclaim_fork_prepare(void);
void rs__reclaim_fork_parent(void);
void rs__reclaim_fork_child(void);
uint64_t rs__gp_stamp(void);
bool rs__gp_passed(uint64_t stamp);
void rs__gp_request(void);
void rs__reclaim_fork_done(void);

/* ------------------------------------------------------------------------ */
/* threads/fork.c                                                            */
/* ------------------------------------------------------------------------ */
void rs__fork_install(void);

#endif /* RS_INTERNAL_H */
