/*
 * collector.h - what the collector's four files share:
 *
 *   lib/gc_log.c   where tracked objects are: the nurseries and the
 *                  generations' logs (track, untrack, candidate bits,
 *                  compact, verify);
 *   lib/gc.c       the algorithm: trial deletion over generations and over
 *                  candidate regions, a collection from stop to free;
 *   lib/gc_sched.c who collects and when: the collector role, the
 *                  automatic triggers, fork's hold on the role;
 *   lib/gc_api.c   the public rs_gc_* controls, statistics, freeze and
 *                  introspection (as CPython's Modules/gcmodule.c is to
 *                  Python/gc.c), and the runtime's init and shutdown hooks.
 *
 * The protocol's argument and invariants (G1)-(G4), (K1)-(K2) are at the
 * top of lib/gc.c.
 */
#ifndef RS_COLLECTOR_H
#define RS_COLLECTOR_H

#ifndef RS_BUILDING
#error "lib/collector.h is internal to refstore"
#endif

#include "internal.h"

#define RS__GC_MAX_CALLBACKS 16
#define RS__GC_FLUSH_DELTA 32	/* per-thread births before the shared count */
#define RS__GEN_PERM 3		/* the permanent generation (frozen) */

/* The collector's state (one per process). */
struct rs__gc_state {
	/* Generations 1, 2 and the permanent one; gens[0] is unused (the
	 * nurseries are per thread).  Sync: the world stopped, or the role
	 * holder for reading. */
	struct rs__gclog gens[RS__GEN_PERM + 1];

	/* Controls.  Sync: atomic (relaxed). */
	long threshold[RS_GC_GENERATIONS];
	int enabled;
	unsigned debug_flags;
	int64_t young_count;	/* births - deaths of young objects */
	size_t candidates;	/* old objects marked as cycle candidates
				   since the last candidate collection */
	uint64_t retry_after_ns;	/* no automatic collection before this
					   (a stop was given up).  Sync: atomic
					   (relaxed) */
	size_t cand_factor;	/* doubles while candidate collections find
				   nothing (rs__gc_cand_trigger) */

	/* Sync: the role (written), atomic relaxed (read by rs_gc_get_count). */
	long gen_count[RS_GC_GENERATIONS];

	/* The uncollectable list: each entry holds a counted reference.
	 * Sync: the role. */
	void **garbage;
	size_t ngarbage, garbage_cap;

	/* Statistics and callbacks.  Sync: stats_lock. */
	pthread_mutex_t stats_lock;
	struct rs_gc_stats stats[RS_GC_GENERATIONS];
	struct {
		rs_gc_callback_fn fn;
		void *arg;
	} callbacks[RS__GC_MAX_CALLBACKS];
	int ncallbacks;
};
extern struct rs__gc_state rs__gc;

/* Candidates that request a collection of the old generations:
 * threshold[2] thousands (10,240 by default), times a factor that doubles
 * while such collections find nothing. */
static inline size_t rs__gc_cand_trigger(void)
{
	return (size_t)rs__load_relaxed(&rs__gc.threshold[2]) * 1024 *
	       rs__load_relaxed(&rs__gc.cand_factor);
}

static inline uint32_t rs__bits(struct rs__head *h)
{
	return rs__load_relaxed(&h->bits);
}

/* Only for bits no other thread changes at the same time (the world is
 * stopped, or the caller owns the transition). */
static inline void rs__bits_set(struct rs__head *h, uint32_t set,
				uint32_t clear)
{
	rs__store_relaxed(&h->bits, (rs__bits(h) | set) & ~clear);
}

/* Every log of the collected generations, oldest first. */
struct rs__logset {
	size_t n;
	struct rs__gclog *v[];
};

/* A log entry is NULL once its object died: no header to fetch then (and
 * NULL minus the header size is undefined behaviour). */
static inline void rs__prefetch_head(void *obj)
{
	if (obj)
		__builtin_prefetch((char *)obj - RS_HEAD_SIZE, 1);
}

/* Run the statement for every live object o of a log set, prefetching
 * headers a few entries ahead. */
#define RS__FOR_EACH_OBJ(set, o, ...)                                        \
	do {                                                                 \
		size_t li_;                                                  \
		struct rs__chunk *c_;                                        \
		uint32_t i_;                                                 \
		for (li_ = 0; li_ < (set)->n; li_++)                         \
			for (c_ = (set)->v[li_]->first; c_; c_ = c_->next)   \
				for (i_ = 0; i_ < c_->n; i_++) {             \
					if (i_ + 8 < c_->n)                  \
						rs__prefetch_head(rs__load_relaxed(&c_->ent[i_ + 8])); \
					o = rs__load_relaxed(&c_->ent[i_]);  \
					if (o) {                             \
						__VA_ARGS__;                 \
					}                                    \
				}                                            \
	} while (0)

/* ------------------------------------------------------------------------ */
/* lib/gc_log.c                                                              */
/* ------------------------------------------------------------------------ */
/* What rs__log_compact does with an entry: drop it, keep it (with its
 * candidate bit), keep it as a cycle candidate, or keep it and clear its
 * candidate bit. */
enum { RS__DROP = 0, RS__KEEP = 1, RS__KEEP_CAND = 2, RS__KEEP_CLEAN = 3 };
typedef int (*rs__keep_fn)(void *obj, void *arg);
int rs__log_append(struct rs__gclog *log, void *obj);
size_t rs__log_compact(struct rs__gclog *log, rs__keep_fn keep, void *arg,
		       struct rs__chunk **rest);
void rs__log_move(struct rs__gclog *to, struct rs__gclog *from);
void rs__chunks_free(struct rs__chunk *c);
void rs__gc_flush_delta(struct rs__thread *t);
struct rs__logset *rs__logset_new(int gen);
void rs__gc_logs_shutdown(void);
size_t rs__gen_tidy(struct rs__gclog *log, size_t budget);
void rs__gc_count_candidates(void);

/* ------------------------------------------------------------------------ */
/* lib/gc_api.c                                                              */
/* ------------------------------------------------------------------------ */
void rs__gc_record(const struct rs_gc_info *info);

/* ------------------------------------------------------------------------ */
/* lib/gc_sched.c                                                            */
/* ------------------------------------------------------------------------ */
bool rs__gc_role_take(struct rs__thread *t, bool wait);
void rs__gc_role_give(struct rs__thread *t);
void rs__gc_count_collection(int gen);

/* ------------------------------------------------------------------------ */
/* lib/gc.c                                                                  */
/* ------------------------------------------------------------------------ */
long rs__gc_collect_gen(struct rs__thread *t, int gen, bool automatic);
long rs__gc_cand_collection(struct rs__thread *t, bool automatic);

#endif /* RS_COLLECTOR_H */
