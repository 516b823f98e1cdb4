/*
 * gc.c - the stop-the-world generational cycle collector.
 *
 * Reference counting frees every object whose count reaches zero; what it
 * cannot free is a cycle.  This collector finds cycles by trial deletion,
 * the algorithm of CPython's gc module (Python/gc.c; Bacon and Rajan's
 * synchronous cycle collection, restricted to generations), run with the
 * world stopped at safepoints, as CPython's free-threaded build does
 * (Python/gc_free_threading.c).
 *
 * Which objects
 * -------------
 * A type is tracked when it has `traverse` and is not RS_TYPE_NO_CYCLES.  A
 * tracked object carries a trailer after its payload (struct rs__gcinfo):
 * the address of its entry in a log, and the header's tid while gc_refs
 * takes its place.  The logs -- a nursery per thread (generation 0) and the
 * global generations 1, 2 and permanent -- are lib/gc_log.c's; the public
 * controls are lib/gc_api.c's.
 *
 * The collection of generations 0..g
 * ----------------------------------
 * With the world stopped (threads/world.c):
 *   1. every thread's logged decrements are applied and every merge queue
 *      is merged (the stop is a grace period for all of them: every thread
 *      is at a safepoint or offline), so counts are exact.  Objects that
 *      reach zero are destroyed after the world resumes (their references
 *      meanwhile count as external, which only keeps more alive);
 *   2. gc_refs = count, for every object of the collected logs (marked GC);
 *   3. every such object's traverse subtracts one from each GC child:
 *      gc_refs is now the number of references from outside the set
 *      (older generations, untracked objects, C variables, queues);
 *   4. objects with gc_refs > 0, and everything they reach through GC
 *      children, are reachable (REACH); the rest is cyclic garbage;
 *   5. the logs are compacted: survivors move to generation g + 1 (2 stays
 *      2), garbage leaves the logs.  Old-to-young references need no write
 *      barrier: they are counted in the young object's count, so it
 *      survives a young collection as it should;
 *   6. weak references to the garbage are cleared (callbacks queued).
 * Then the world resumes and the garbage is freed (references out of it
 * given back first, then each object destroyed), or, if some has a
 * finalizer still to run, the finalizers run first with the world running
 * and a second stop sorts out what they resurrected (PEP 442).
 *
 * Collections of the old generations, from cycle candidates
 * ---------------------------------------------------------
 * Automatic collections never examine the whole heap.  A decrement that
 * leaves an object with references clears its CLEAN bit first
 * (rs__gc_candidate, lib/gc_log.c); an old object then gets a bit in its
 * chunk's candidate bitmap, a young one when it is promoted.  A candidate
 * collection (cand_collection) takes candidates with everything they reach
 * until its region holds REGION_BUDGET objects, runs steps 2-4 over that
 * region -- closed under references, so exact -- marks the survivors CLEAN
 * and frees the garbage as above.  docs/design.md §11 ("Cycle candidates")
 * has the argument that every garbage cycle has a candidate.  An explicit
 * rs_gc_collect(2) still collects the whole heap, and cleans it.
 *
 * The argument for each step, finalizers and resurrection included:
 * docs/design.md §11.
 *
 * Invariants
 * ----------
 * (G1) Outside a stop, a tracked object is either dying/dead with a NULL
 *      entry, or logged exactly once, at trailer.ent, in a chunk whose log
 *      is its generation; or it is held by a collection in progress (its
 *      garbage) or by the uncollectable list of debug mode, unlogged.
 * (G2) The bits GC, REACH and GARBAGE are set only by the collector; GC
 *      and REACH only while the world is stopped.
 * (G3) A collection frees only objects whose every counted reference comes
 *      from other objects of its garbage, as counted with the world
 *      stopped and every decrement applied; user code (finalizers, weak
 *      reference and collection callbacks) never runs with the world
 *      stopped.
 * (K1) CLEAN is set only by rs_new, and by a collection on an object it
 *      examined in a closed region (a candidate region, or the whole heap)
 *      and found reachable; it is cleared before a decrement that may leave
 *      the object with references is applied.
 * (K2) An object logged in generation 1 or 2 without CLEAN has its candidate
 *      bit set, unless a candidate collection holds it in its region.
 * (G4) One thread at a time holds the collector role (lib/gc_sched.c:
 *      collections, freeze, referrers, the uncollectable list); it is
 *      reentrant for its holder,
 *      and rs_gc_collect from the holder returns 0 at once, so a finalizer
 *      or callback that collects neither deadlocks nor recurses.  A thread
 *      waiting for the role waits offline, so it never delays a stop.
 *
 * Phases
 * ------
 *   phase             world    bits set           logs valid   user code
 *   apply decrements  stopped  DYING (new dead)   yes          no
 *   mark / subtract   stopped  GC                 yes          no
 *   reach             stopped  GC, REACH          yes          no
 *   compact           stopped  GARBAGE on garbage survivors    no
 *   finalize          running  FINALIZED          yes          finalizers
 *   resurrection      stopped  GC, REACH (garbage) yes         no
 *   free              running  GARBAGE, DYING     yes          destroy
 *   callbacks         running  -                  yes          weakref, gc
 *
 * A candidate collection has the same phases; its set is the region it grew
 * (GC set on its members) rather than whole logs, survivors get CLEAN and
 * garbage leaves its log by rs__gc_untrack instead of by compaction.
 */
#define RS_BUILDING 1
#include "collector.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IMMORTAL_REFS ((int64_t)1 << 40)
#define REGION_BUDGET 8192	/* a candidate collection stops taking
				   candidates once its region is this big */
#define TIDY_ENTRIES 2048	/* log entries a collection may move to keep
				   the generations' logs dense */
#define RETRY_AFTER_GIVE_UP 1000000000u	/* ns without automatic collections
					   after one gave its stop up */
/* ---------------------------------------------------------------------- */
/* Trial deletion (world stopped)                                          */
/* ---------------------------------------------------------------------- */

/* The true count, world stopped and queues merged. */
static inline int64_t true_count(struct rs__head *h)
{
	return (int64_t)rs__load_relaxed(&h->local) +
	       RS__S_COUNT(rs__load_relaxed(&h->shared));
}

/*
 * While the world is stopped, an object of the collected set keeps gc_refs
 * in its header's `tid` (the tid waits in the trailer, restored when the
 * object leaves the set), as CPython's free-threaded collector does with
 * ob_tid: a child visit then touches one cache line, the child's header.
 */
static inline int64_t refs_of(struct rs__head *h)
{
	return rs__gc_refs(h);
}

static void mark(void *o, int64_t minus)
{
	struct rs__head *h = rs__head_of(o);
	uint32_t bits = rs__bits(h);
	int64_t refs = (bits & RS__B_IMMORTAL) ? IMMORTAL_REFS
					       : true_count(h) - minus;

	rs__gc_of(h)->saved = rs__owner_of(h);
	rs__set_gc_refs(h, refs);
	rs__store_relaxed(&h->bits, bits | RS__B_GC);
}

/* The object leaves the set: clear `clear`, set `set`, restore the tid. */
static void unmark(struct rs__head *h, uint32_t set, uint32_t clear)
{
	rs__set_owner(h, rs__gc_of(h)->saved);
	rs__bits_set(h, set, clear);
}

/*
 * The visits of steps 3 and 4 land on random objects.  Each child first
 * waits in a small ring while its header is prefetched, and is examined
 * when RING later children have been seen: the misses overlap instead of
 * following one another.
 */
#define RING 16
struct ring {
	void *v[RING];
	unsigned i, n;
};

static inline void *ring_put(struct ring *r, void *x)
{
	void *old;

	__builtin_prefetch(rs__head_of(x), 1);
	if (r->n < RING) {
		r->v[(r->i + r->n++) % RING] = x;
		return NULL;
	}
	old = r->v[r->i];
	r->v[r->i] = x;
	r->i = (r->i + 1) % RING;
	return old;
}

static inline void *ring_take(struct ring *r)
{
	void *x;

	if (!r->n)
		return NULL;
	x = r->v[r->i];
	r->i = (r->i + 1) % RING;
	r->n--;
	return x;
}

static inline void subtract_one(void *child)
{
	struct rs__head *h = rs__head_of(child);

	if (rs__bits(h) & RS__B_GC)
		rs__set_gc_refs(h, rs__gc_refs(h) - 1);
}

static void visit_subtract(void *child, void *arg)
{
	if (child && (child = ring_put(arg, child)))
		subtract_one(child);
}

static void subtract(void *o, struct ring *r)
{
	rs__head_of(o)->type->traverse(o, visit_subtract, r);
}

static void subtract_done(struct ring *r)
{
	void *x;

	while ((x = ring_take(r)))
		subtract_one(x);
}

struct stack {
	void **v;
	size_t n, cap;
};

struct reach {
	struct stack *s;
	struct ring r;
};

static inline void reach_one(struct stack *s, void *x)
{
	struct rs__head *h = rs__head_of(x);
	uint32_t bits = rs__bits(h);

	if ((bits & (RS__B_GC | RS__B_REACH)) != RS__B_GC)
		return;
	rs__store_relaxed(&h->bits, bits | RS__B_REACH);
	s->v[s->n++] = x;	/* each object is pushed once: cap = set */
}

static void visit_reach(void *child, void *arg)
{
	struct reach *rc = arg;

	if (child && (child = ring_put(&rc->r, child)))
		reach_one(rc->s, child);
}

static void check_refs(void *o)
{
	struct rs__head *h = rs__head_of(o);

	if (RS_DEBUG && refs_of(h) < 0)
		rs__die("rs_gc_collect", o,
			"object of type '%s' has more references from other "
			"objects than its count (a traverse visits a reference "
			"that is not counted)", h->type->name ? h->type->name : "?");
}

/* Objects with outside references are roots; mark all they reach.  (A
 * negative gc_refs, from a traverse that visits uncounted references, is
 * treated as a root: nothing is freed on inconsistent counts.) */
static void root(void *o, struct reach *rc)
{
	struct rs__head *h = rs__head_of(o);
	uint32_t bits = rs__bits(h);
	void *x;

	check_refs(o);
	if (refs_of(h) == 0 || (bits & RS__B_REACH))
		return;
	rs__store_relaxed(&h->bits, bits | RS__B_REACH);
	rc->s->v[rc->s->n++] = o;
	for (;;) {
		if (rc->s->n) {
			o = rc->s->v[--rc->s->n];
			rs__head_of(o)->type->traverse(o, visit_reach, rc);
		} else if ((x = ring_take(&rc->r))) {
			reach_one(rc->s, x);
		} else {
			break;
		}
	}
}

/* ---------------------------------------------------------------------- */
/* A collection                                                            */
/* ---------------------------------------------------------------------- */

struct coll {
	struct rs__thread *t;
	int gen;
	struct stack stack;	/* the reach stack, then the garbage */
	void **garb;
	size_t ngarb;
	size_t nweak, nfin;	/* garbage with weak references, finalizers */
	long collected, uncollectable;
	uint64_t pause, ttsp, begin;
	size_t cand_examined;	/* a candidate collection's region */
};

/* Destroy what this thread's dying list holds; it may park meanwhile. */
static void cascade(struct rs__thread *t)
{
	int was = t->no_reentry;

	t->no_reentry = 1;
	rs__cascade(t);
	t->no_reentry = was;
}

/* Stop the world and make the counts exact.  An automatic collection's
 * first stop gives up (false) if a thread stays online past the stall time
 * (REFSTORE_STALL_MS): the others go on, and the collection runs later. */
static bool try_stop(struct coll *c, bool give_up)
{
	if (!rs__world_try_stop(give_up)) {
		rs__store_relaxed(&rs__gc.retry_after_ns,
				  rs__now_ns() + RETRY_AFTER_GIVE_UP);
		errno = EAGAIN;
		return false;
	}
	/* (1): counts exact */
	rs__defer_apply_stopped(c->t);
	rs__drain_queues_stopped(c->t);
	return true;
}

static void stop(struct coll *c)
{
	try_stop(c, false);
}

static void resume(struct coll *c)
{
	struct rs__stop_stats st;

	rs__world_resume(&st);
	c->pause += st.pause_ns;
	c->ttsp += st.ttsp_ns;
}

/*
 * (5) for one entry.  A survivor keeps its CLEAN state, and one that lacks
 * it becomes a candidate where it lands (a young collection examines a set
 * that is not closed under references: an old object's reference counts as
 * outside, so it proves nothing about cycles through older objects); a full
 * collection examined everything, so its survivors are CLEAN and no
 * candidate is left.
 */
static int keep_survivor(void *o, void *arg)
{
	struct coll *c = arg;
	struct rs__head *h = rs__head_of(o);
	uint32_t bits = rs__bits(h);

	if (!(bits & RS__B_GC))		/* left out (young_skip): unexamined */
		return (bits & RS__B_CLEAN) ? RS__KEEP : RS__KEEP_CAND;
	if (bits & RS__B_REACH) {
		if (c->gen == RS_GC_GENERATIONS - 1) {
			unmark(h, RS__B_CLEAN, RS__B_GC | RS__B_REACH);
			return RS__KEEP_CLEAN;
		}
		unmark(h, 0, RS__B_GC | RS__B_REACH);
		return (bits & RS__B_CLEAN) ? RS__KEEP : RS__KEEP_CAND;
	}
	unmark(h, RS__B_GARBAGE, RS__B_GC);
	rs__store_relaxed(&rs__gc_of(h)->ent, NULL);
	c->nweak += (bits & RS__B_WEAKREFS) != 0;
	c->nfin += h->type->finalize && !(bits & RS__B_FINALIZED);
	c->garb[c->ngarb++] = o;
	return RS__DROP;
}

/* (5): survivors of the collected logs go to generation gen + 1 (2 stays
 * 2), in order, in the chunks they occupy; the garbage leaves the logs. */
static void sort_out(struct coll *c, struct rs__logset *set)
{
	struct rs__gclog all = {0}, *dest = &rs__gc.gens[c->gen < 2 ? c->gen + 1 : 2];
	struct rs__chunk *rest;
	size_t i;

	for (i = 0; i < set->n; i++)
		rs__log_move(&all, set->v[i]);
	rs__log_compact(&all, keep_survivor, c, &rest);
	rs__chunks_free(rest);
	rs__log_move(dest, &all);
	/* the chunks just appended are partly filled: merged into the ones
	 * before them, so the log stays in proportion to its live objects
	 * even in a program that never runs a candidate collection */
	rs__gen_tidy(dest, TIDY_ENTRIES);
	rs__gc_count_candidates();
}

/* Steps 2-4 over a set; returns the number of objects examined. */
/*
 * A full collection examines every logged object but the frozen ones, so
 * membership needs no mark: a tracked object that is not dying, dead or
 * frozen is in the set (G1).  Steps 2 and 3 then fuse into one pass over
 * the heap, each object counted when first met, as an element of the set
 * or as a child: one pass over memory fewer.
 */
#define NOT_MEMBER (RS__B_DYING | RS__B_DEAD | RS__B_FROZEN | RS__B_FREE)

static inline void full_one(void *x)
{
	struct rs__head *h = rs__head_of(x);
	uint32_t bits = rs__bits(h);

	if ((bits & (RS__B_TRACKED | NOT_MEMBER)) != RS__B_TRACKED)
		return;
	if (!(bits & RS__B_GC))
		mark(x, 0);
	rs__set_gc_refs(h, rs__gc_refs(h) - 1);
}

static void visit_full(void *child, void *arg)
{
	if (child && (child = ring_put(arg, child)))
		full_one(child);
}

static void full_pass(void *o, struct ring *r)
{
	struct rs__head *h = rs__head_of(o);

	if (!(rs__bits(h) & RS__B_GC))
		mark(o, 0);
	h->type->traverse(o, visit_full, r);
}

static inline bool young_skip(void *o)
{
	return rs__head_of(o)->type->flags & RS__TYPE_NOT_YOUNG;
}

static inline bool member(void *o)
{
	return rs__bits(rs__head_of(o)) & RS__B_GC;
}

static void trial_deletion(struct rs__logset *set, struct stack *s, int gen)
{
	struct reach rc = {.s = s};
	void *o;

	if (gen == RS_GC_GENERATIONS - 1) {
		RS__FOR_EACH_OBJ(set, o, full_pass(o, &rc.r));
		while ((o = ring_take(&rc.r)))
			full_one(o);
	} else {
		/* Young: a map is left out (RS__TYPE_NOT_YOUNG).  Its traverse
		 * visits every entry, so the first young collection after a
		 * map was filled would walk it whole.  Left out, its references
		 * count as outside ones (its values survive) and it is
		 * promoted unexamined, a candidate unless CLEAN
		 * (keep_survivor): a cycle through it is a candidate
		 * collection's to find, as any cycle through older objects. */
		RS__FOR_EACH_OBJ(set, o, if (!young_skip(o)) mark(o, 0));
		RS__FOR_EACH_OBJ(set, o, if (member(o)) subtract(o, &rc.r));
		subtract_done(&rc.r);
		RS__FOR_EACH_OBJ(set, o, if (member(o)) root(o, &rc));
		return;
	}
	RS__FOR_EACH_OBJ(set, o, root(o, &rc));
}

/* ---------------------------------------------------------------------- */
/* Candidate collections (world stopped)                                   */
/* ---------------------------------------------------------------------- */

/*
 * The old generations are collected from their cycle candidates rather than
 * as a whole: a region is grown from a batch of candidates by following
 * references -- every tracked object reachable from them, young or old,
 * frozen ones excepted -- so it is closed under references, and trial
 * deletion over a closed region is exact: an object whose references all
 * come from inside the region and that no object with an outside reference
 * reaches is garbage.  The work is the size of what the candidates reach,
 * not of the heap.  Survivors were examined in a closed region, so they
 * become CLEAN; garbage leaves its log (the region is not a whole log).
 */

struct region {
	void **v;		/* members: each candidate, then what it reaches */
	uint64_t *saved;	/* their tids while gc_refs takes their place
				   (beside the members: no trailer is touched) */
	size_t n, cap;
	bool failed;		/* out of memory: the region is given up */
	struct ring ring;	/* children waiting while their headers load */
};

static bool region_room(struct region *r)
{
	size_t cap;
	uint64_t *sv;
	void **v;

	if (r->n < r->cap)
		return true;
	if (r->failed)
		return false;
	cap = r->cap ? 2 * r->cap : 1024;
	v = rs__fault(RS__FAULT_GCWORK) ? NULL : realloc(r->v, cap * sizeof(*v));
	if (v)
		r->v = v;
	sv = v ? realloc(r->saved, cap * sizeof(*sv)) : NULL;
	if (!sv) {
		r->failed = true;
		return false;
	}
	r->saved = sv;
	r->cap = cap;
	return true;
}

/* o joins the region (the caller made room): gc_refs = its count, in its
 * header's tid; the tid waits in r->saved. */
static void region_add(struct region *r, void *o)
{
	struct rs__head *h = rs__head_of(o);
	uint32_t bits = rs__bits(h);

	r->saved[r->n] = rs__owner_of(h);
	rs__set_gc_refs(h, (bits & RS__B_IMMORTAL) ? IMMORTAL_REFS
						   : true_count(h));
	rs__store_relaxed(&h->bits, bits | RS__B_GC);
	r->v[r->n++] = o;
}

/* Member i leaves the region: its tid back, bits changed. */
static void region_unmark(struct region *r, size_t i, uint32_t set,
			  uint32_t clear)
{
	struct rs__head *h = rs__head_of(r->v[i]);

	rs__set_owner(h, r->saved[i]);
	rs__bits_set(h, set, clear);
}

#define REGION_OUT (RS__B_DYING | RS__B_DEAD | RS__B_FROZEN | RS__B_FREE)

/* A child of a member: it joins the region when first met, and loses one
 * from gc_refs for this reference (step 3, fused with the discovery). */
static void region_child(struct region *r, void *child)
{
	struct rs__head *h = rs__head_of(child);
	uint32_t bits = rs__bits(h);

	if ((bits & (RS__B_TRACKED | REGION_OUT)) != RS__B_TRACKED)
		return;
	if (!(bits & RS__B_GC)) {
		if (!region_room(r))
			return;	/* given up: see cand_collect */
		region_add(r, child);
	}
	rs__set_gc_refs(h, rs__gc_refs(h) - 1);
}

static void visit_region(void *child, void *arg)
{
	struct region *r = arg;

	if (child && (child = ring_put(&r->ring, child)))
		region_child(r, child);
}

/* Grow the region from members[from..] until it is closed: their children
 * join it, and theirs. */
static void discover(struct region *r, size_t from)
{
	size_t i = from;
	void *x;

	for (;;) {
		for (; i < r->n && !r->failed; i++) {
			if (i + 4 < r->n)
				rs__prefetch_head(r->v[i + 4]);
			x = r->v[i];
			rs__head_of(x)->type->traverse(x, visit_region, r);
		}
		if (r->failed) {
			r->ring.n = 0;	/* given up anyway */
			return;
		}
		if (!(x = ring_take(&r->ring)))
			return;
		region_child(r, x);
	}
}

/* Take candidates off the generations' chunks, a batch at a time (their
 * headers prefetched together), each batch with everything it reaches,
 * until the region holds REGION_BUDGET objects or no candidate is left. */
#define SEED_BATCH 64

/* Where taking candidates goes on from (one collection walks the
 * generations' chunks once, not once per batch). */
struct seed_cursor {
	int g;
	struct rs__chunk *c;
	uint32_t k;
};

static size_t gather_seeds(struct seed_cursor *cur, void **seeds)
{
	struct rs__chunk *c;
	uint64_t w;
	uint32_t i, k;
	size_t n = 0;
	void *o;

	for (; cur->g < RS__GEN_PERM; cur->g++, cur->c = NULL, cur->k = 0) {
		c = cur->c ? cur->c : rs__gc.gens[cur->g].first;
		for (; c; c = c->next, cur->k = 0) {
			cur->c = c;
			if (!rs__load_relaxed(&c->ncand))
				continue;
			for (k = cur->k; k < RS__CHUNK_CAND_WORDS; k++) {
				while ((w = rs__load_relaxed(&c->cand[k]))) {
					if (n == SEED_BATCH) {
						cur->k = k;
						return n;
					}
					i = k * 64 + (uint32_t)__builtin_ctzll(w);
					rs__store_relaxed(&c->cand[k], w & (w - 1));
					rs__store_relaxed(&c->ncand,
							  rs__load_relaxed(&c->ncand) - 1);
					o = i < c->n ? rs__load_relaxed(&c->ent[i])
						     : NULL;
					if (!o)
						continue;	/* died since */
					rs__prefetch_head(o);
					seeds[n++] = o;
				}
			}
		}
	}
	return n;
}

static void take_seeds(struct region *r)
{
	struct seed_cursor cur = {.g = 1};
	void *seeds[SEED_BATCH];
	size_t n, i, from;

	while (r->n < REGION_BUDGET && !r->failed &&
	       (n = gather_seeds(&cur, seeds))) {
		from = r->n;
		for (i = 0; i < n; i++) {
			if (rs__bits(rs__head_of(seeds[i])) &
			    (RS__B_CLEAN | RS__B_GC | REGION_OUT))
				continue;
			if (!region_room(r)) {
				/* not taken: a candidate again */
				rs__bits_set(rs__head_of(seeds[i]), RS__B_CLEAN, 0);
				rs__gc_candidate(rs__head_of(seeds[i]));
				continue;
			}
			region_add(r, seeds[i]);
		}
		discover(r, from);
	}
}

/* The region could not grow: put every member back as it was -- the
 * candidates among them candidates again. */
static void region_abandon(struct region *r)
{
	struct rs__head *h;
	size_t i;

	for (i = 0; i < r->n; i++) {
		h = rs__head_of(r->v[i]);
		region_unmark(r, i, 0, RS__B_GC | RS__B_REACH);
		if (!(rs__bits(h) & RS__B_CLEAN)) {
			rs__bits_set(h, RS__B_CLEAN, 0);
			rs__gc_candidate(h);
		}
	}
	r->n = 0;
}

/* Steps 2-5 over the region grown from a batch of candidates; the garbage
 * goes to c->garb.  Returns -1 if it ran out of memory (nothing changed). */
static int cand_collect(struct coll *c, struct region *r, struct stack *s)
{
	struct reach rc = {.s = s};
	struct rs__head *h;
	uint32_t bits;
	size_t i;
	void *o;

	take_seeds(r);
	s->v = r->failed || rs__fault(RS__FAULT_GCWORK) ? NULL :
	       malloc((r->n ? r->n : 1) * sizeof(void *));
	if (!s->v) {
		region_abandon(r);
		return -1;
	}
	s->cap = r->n;
	for (i = 0; i < r->n; i++)
		root(r->v[i], &rc);
	c->garb = r->v;		/* garbage is written over what was read */
	for (i = 0; i < r->n; i++) {
		if (i + 8 < r->n)
			rs__prefetch_head(r->v[i + 8]);
		o = r->v[i];
		h = rs__head_of(o);
		bits = rs__bits(h);
		if (bits & RS__B_REACH) {
			region_unmark(r, i, RS__B_CLEAN, RS__B_GC | RS__B_REACH);
			continue;
		}
		region_unmark(r, i, RS__B_GARBAGE, RS__B_GC);
		rs__gc_untrack(c->t, h);
		c->nweak += (bits & RS__B_WEAKREFS) != 0;
		c->nfin += h->type->finalize && !(bits & RS__B_FINALIZED);
		c->garb[c->ngarb++] = o;
	}
	return 0;
}

/* Take one counted reference to a garbage object (world stopped): its
 * count is merged into the shared word, which only the owner may do
 * otherwise; the owner is stopped. */
static void hold(void *o)
{
	struct rs__head *h = rs__head_of(o);
	int64_t total = true_count(h);

	rs__store_relaxed(&h->local, 0);
	rs__set_owner(h, RS__TID_MERGED);
	rs__store_relaxed(&h->shared, (int64_t)(((uint64_t)total + 1) <<
						RS__S_SHIFT) | RS__S_MERGED);
}

static void clear_weak(struct coll *c)
{
	size_t i;
	struct rs__head *h;

	for (i = 0; i < c->ngarb; i++) {
		h = rs__head_of(c->garb[i]);
		if (rs__bits(h) & RS__B_WEAKREFS)
			rs__weak_clear(c->t, h);
	}
}

static void visit_release(void *child, void *arg)
{
	if (child && !(rs__bits(rs__head_of(child)) & RS__B_GARBAGE))
		rs__decref_now(arg, child);
}

/* Free the garbage (world running): references out of it are given back
 * first, then each object is destroyed, so no step reads a freed header. */
static void release(struct coll *c)
{
	struct rs__thread *t = c->t;
	size_t i;
	void *o;

	t->no_reentry = 1;
	for (i = 0; i < c->ngarb; i++) {
		o = c->garb[i];
		rs__head_of(o)->type->traverse(o, visit_release, t);
	}
	for (i = 0; i < c->ngarb; i++)
		rs__obj_destroy(t, rs__head_of(c->garb[i]));
	c->collected += (long)c->ngarb;
	rs__cascade(t);
	t->no_reentry = 0;
}

/* Keep the garbage in the uncollectable list (debug SAVEALL), logged in
 * generation 2 again so it can be collected once the list lets go. */
static void save_all(struct coll *c)
{
	size_t i, cap;
	void **v;
	void *o;

	for (i = 0; i < c->ngarb; i++) {
		o = c->garb[i];
		rs__bits_set(rs__head_of(o), 0, RS__B_GARBAGE);
		if (rs__gc.ngarbage == rs__gc.garbage_cap) {
			cap = rs__gc.garbage_cap ? 2 * rs__gc.garbage_cap : 64;
			v = realloc(rs__gc.garbage, cap * sizeof(*v));
			if (!v)
				rs__die("rs_gc_collect", o,
					"out of memory for the uncollectable list");
			rs__gc.garbage = v;
			rs__gc.garbage_cap = cap;
		}
		hold(o);
		rs__gc.garbage[rs__gc.ngarbage++] = o;
		if (rs__log_append(&rs__gc.gens[2], o))
			rs__die("rs_gc_collect", o,
				"out of memory logging an uncollectable object");
		/* (K2): a logged old object without CLEAN is a candidate */
		rs__bits_set(rs__head_of(o), RS__B_CLEAN, 0);
		rs__gc_candidate(rs__head_of(o));
	}
	c->uncollectable += (long)c->ngarb;
	c->ngarb = 0;
}

static void finalize(struct coll *c)
{
	size_t i;
	struct rs__head *h;

	for (i = 0; i < c->ngarb; i++) {
		h = rs__head_of(c->garb[i]);
		if (!h->type->finalize || (rs__bits(h) & RS__B_FINALIZED))
			continue;
		rs__or_relaxed(&h->bits, RS__B_FINALIZED);
		h->type->finalize(c->garb[i]);
	}
}

/*
 * After the finalizers, world stopped again: which held objects are still
 * garbage?  Steps 2-4 over the garbage alone, minus the collector's own
 * reference.  The resurrected go back to a log and lose that reference
 * (their count stays >= 1: each is referenced from outside or from another
 * resurrected object); the rest stays in garb.
 */
static void resurrection(struct coll *c, struct stack *s)
{
	struct rs__gclog *dest = &rs__gc.gens[c->gen < 2 ? c->gen + 1 : 2];
	struct reach rc = {.s = s};
	struct rs__head *h;
	size_t i, n = 0;
	void *o;

	for (i = 0; i < c->ngarb; i++) {
		o = c->garb[i];
		rs__bits_set(rs__head_of(o), 0, RS__B_GARBAGE | RS__B_HELD);
		mark(o, 1);
	}
	for (i = 0; i < c->ngarb; i++)
		subtract(c->garb[i], &rc.r);
	subtract_done(&rc.r);
	for (i = 0; i < c->ngarb; i++) {
		if (s->v)
			root(c->garb[i], &rc);
		else	/* no memory for the walk: everything survives */
			rs__bits_set(rs__head_of(c->garb[i]), RS__B_REACH, 0);
	}
	for (i = 0; i < c->ngarb; i++) {
		o = c->garb[i];
		h = rs__head_of(o);
		if (rs__bits(h) & RS__B_REACH) {
			unmark(h, 0, RS__B_GC | RS__B_REACH);
			if (RS__S_COUNT(rs__load_relaxed(&h->shared)) == 1) {
				/* only the collector's reference is left (no
				 * memory for the walk, or inconsistent counts):
				 * it dies as any object whose count reaches 0 */
				rs__store_relaxed(&h->shared,
						  (int64_t)RS__S_MERGED);
				rs__push_dying(c->t, h);
				continue;
			}
			rs__add_relaxed(&h->shared, -RS__S_ONE);
			if (rs__log_append(dest, o))
				rs__die("rs_gc_collect", o,
					"out of memory logging a resurrected object");
			/* the collector's reference given back leaves others:
			 * a candidate, like any such decrement */
			rs__bits_set(h, RS__B_CLEAN, 0);
			rs__gc_candidate(h);
		} else {
			unmark(h, RS__B_GARBAGE, RS__B_GC);
			c->garb[n++] = o;
		}
	}
	c->ngarb = n;
}

/* The collection's figures to the statistics and callbacks (gc_api.c). */
static void record(struct coll *c)
{
	struct rs_gc_info info = {
		.generation = c->gen,
		.collected = c->collected,
		.uncollectable = c->uncollectable,
		.pause_ns = c->pause,
		.ttsp_ns = c->ttsp,
		.duration_ns = rs__now_ns() - c->begin,
	};

	rs__gc_record(&info);
}


/*
 * The garbage of a collection, found with the world stopped: weak
 * references cleared, finalizers run (PEP 442) with the world resumed and
 * the resurrected sorted out with it stopped again, then the world resumed
 * and the garbage freed.  Returns the unreachable objects found.
 */
static long finish(struct coll *c)
{
	struct stack resurrect = {0};
	long found = (long)c->ngarb;
	size_t i;

	if (c->ngarb) {
		if (c->nweak)
			clear_weak(c);
		if (rs__load_relaxed(&rs__gc.debug_flags) & RS_GC_DEBUG_SAVEALL) {
			save_all(c);
		} else if (c->nfin) {
			for (i = 0; i < c->ngarb; i++) {
				hold(c->garb[i]);
				rs__bits_set(rs__head_of(c->garb[i]), RS__B_HELD,
					     RS__B_GARBAGE);
			}
			resume(c);
			cascade(c->t);
			finalize(c);
			resurrect.v = rs__fault(RS__FAULT_GCWORK) ? NULL :
				      malloc(c->ngarb * sizeof(void *));
			stop(c);
			resurrection(c, &resurrect);
			free(resurrect.v);
			clear_weak(c);	/* made by the finalizers */
		}
	}
	resume(c);
	cascade(c->t);	/* what reached zero in step 1 */
	release(c);
	rs__weak_run_callbacks(c->t);
	record(c);
	return found;
}

/* Collect generations 0..gen; the caller holds the role. */
long rs__gc_collect_gen(struct rs__thread *t, int gen, bool automatic)
{
	struct coll c = {.t = t, .gen = gen, .begin = rs__now_ns()};
	struct rs__logset *set;
	size_t cap = 0, i;
	long found;

	if (!try_stop(&c, automatic))
		return -1;
	set = rs__logset_new(gen);
	for (i = 0; set && i < set->n; i++)
		cap += set->v[i]->n;
	c.stack.v = !set || rs__fault(RS__FAULT_GCWORK) ? NULL :
		    malloc((cap ? cap : 1) * sizeof(void *));
	if (!c.stack.v) {
		rs__store_relaxed(&rs__gc_requested, 0);
		resume(&c);
		free(set);
		cascade(t);
		errno = ENOMEM;
		return -1;
	}
	c.stack.cap = cap;
	c.garb = c.stack.v;
	trial_deletion(set, &c.stack, gen);
	sort_out(&c, set);
	rs__gc_count_collection(gen);
	free(set);
	found = finish(&c);
	free(c.stack.v);
	return found;
}

/*
 * A candidate collection (the caller holds the role): one region grown from
 * a batch of the old generations' candidates, and a few of their chunks
 * that deaths left half empty compacted.  Recorded as a collection of
 * generation 2.  Returns the unreachable objects found, or -1 (ENOMEM: the
 * candidates are kept for a later collection).
 */
long rs__gc_cand_collection(struct rs__thread *t, bool automatic)
{
	struct coll c = {.t = t, .gen = 2, .begin = rs__now_ns()};
	struct region r = {0};
	size_t moved;
	long found;

	if (!try_stop(&c, automatic))
		return -1;
	if (cand_collect(&c, &r, &c.stack)) {
		rs__store_relaxed(&rs__gc_requested, 0);
		resume(&c);
		free(r.v);
		free(r.saved);
		cascade(t);
		errno = ENOMEM;
		return -1;
	}
	/* generation 1 first: young collections promote into it, a partly
	 * filled chunk each time, and nothing else compacts it since
	 * generation 1 is not collected on its own */
	moved = rs__gen_tidy(&rs__gc.gens[1], TIDY_ENTRIES);
	if (moved < TIDY_ENTRIES)	/* it may overshoot by a chunk */
		rs__gen_tidy(&rs__gc.gens[2], TIDY_ENTRIES - moved);
	rs__gc_count_candidates();
	rs__store_relaxed(&rs__gc.gen_count[1], 0);
	rs__store_relaxed(&rs__gc_requested, 0);
	c.cand_examined = r.n;
	found = finish(&c);
	free(c.stack.v);
	free(r.v);
	free(r.saved);
	return found;
}
