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
 * the address of its entry in a log, and gc_refs.  Logs (struct rs__gclog)
 * are lists of chunks of object pointers:
 *
 *   generation 0   one nursery per thread, appended to by rs_new with no
 *                  atomic operation; so a young collection costs in
 *                  proportion to the young objects, not to the heap;
 *   generations 1, 2 and the permanent one (frozen)   global, changed only
 *                  while the world is stopped.
 *
 * A tracked object whose count reaches zero leaves its log as it becomes
 * dying (object.c: push_dying): it stores NULL into its entry.  A nursery's
 * owner compacts it when holes make up half of it (so the nursery stays in
 * proportion to the live young objects even if no collection runs);
 * another thread's death takes the nursery's lock, which the compaction
 * holds.  Generations need no lock: they are compacted only while the world
 * is stopped, when no death is in progress (a death never parks between
 * its count reaching zero and clearing its entry).
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
 * If no garbage object has a finalizer still to run, the world resumes and
 * the garbage is freed: each object's references to non-garbage objects
 * are given back (rs__decref_now: the garbage is unreachable, so nobody
 * holds a borrowed reference through it), then each is destroyed and
 * freed, in two passes so no pass reads a freed header.
 * Otherwise (PEP 442) the collector takes one counted reference to each
 * garbage object (merging its count: the world is stopped), resumes the
 * world and runs the finalizers, each at most once per object ever
 * (FINALIZED).  Finalizers may do anything a thread may do.  Then it stops
 * the world again, makes counts exact again and repeats steps 2-4 on the
 * garbage alone, with gc_refs = count - 1 (its own reference): what a
 * finalizer made reachable from outside, and all it reaches, is resurrected
 * and goes back to a log; the rest is freed as above.
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
 * (G4) One thread at a time holds the collector role (collections, freeze,
 *      referrers, the uncollectable list); it is reentrant for its holder,
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
 */
#define RS_BUILDING 1
#include "internal.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FLUSH_DELTA 32		/* per-thread births before the shared count */
#define MAX_CALLBACKS 16
#define IMMORTAL_REFS ((int64_t)1 << 40)

enum { GEN_PERM = 3 };

/* Generations 1, 2 and the permanent one; gens[0] is unused (nurseries).
 * Sync: the world stopped, or the role holder for reading. */
static struct rs__gclog gens[4];

/* The collector role (G4). */
static pthread_mutex_t role_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t role_cv = PTHREAD_COND_INITIALIZER;
static struct rs__thread *role_holder;	/* Sync: role_lock */

/* Controls.  Sync: atomic (relaxed). */
static long threshold[RS_GC_GENERATIONS] = {2000, 10, 10};
static int enabled = 1;
static unsigned debug_flags;
static int64_t young_count;		/* births - deaths of young objects */
int rs__gc_requested;

/* Sync: the role (written), atomic relaxed (read by rs_gc_get_count). */
static long gen_count[RS_GC_GENERATIONS];
static size_t long_lived_total, long_lived_pending;	/* Sync: the role */

/* The uncollectable list: each entry holds a counted reference.
 * Sync: the role. */
static void **garbage;
static size_t ngarbage, garbage_cap;

/* Statistics and callbacks.  Sync: stats_lock. */
static pthread_mutex_t stats_lock = PTHREAD_MUTEX_INITIALIZER;
static struct rs_gc_stats stats[RS_GC_GENERATIONS];
static struct {
	rs_gc_callback_fn fn;
	void *arg;
} callbacks[MAX_CALLBACKS];
static int ncallbacks;

/* ---------------------------------------------------------------------- */
/* The collector role                                                      */
/* ---------------------------------------------------------------------- */

/*
 * Take the role (reentrant).  A thread that must wait goes offline first.
 * One that cannot (inside a destroy callback: in_safepoint) must not wait
 * online, or the holder's next stop would wait for it forever: it gets
 * false (and EDEADLK), as when `wait` is false and the role is taken.
 */
static bool role_take(struct rs__thread *t, bool wait)
{
	bool offline = false;

	if (t->gc_depth) {
		t->gc_depth++;
		return true;
	}
	if (!wait && rs__load_relaxed(&role_holder))
		return false;	/* no lock traffic while a collection runs */
	pthread_mutex_lock(&role_lock);
	if (role_holder && (!wait || t->in_safepoint)) {
		pthread_mutex_unlock(&role_lock);
		errno = EDEADLK;
		return false;
	}
	if (role_holder && rs__load_relaxed(&t->state) == RS__T_ONLINE) {
		/* wait offline: the holder may need to stop the world */
		pthread_mutex_unlock(&role_lock);
		rs_offline();
		offline = true;
		pthread_mutex_lock(&role_lock);
	}
	while (role_holder)
		pthread_cond_wait(&role_cv, &role_lock);
	rs__store_relaxed(&role_holder, t);
	t->gc_depth = 1;
	pthread_mutex_unlock(&role_lock);
	if (offline)
		rs_online();
	return true;
}

static void role_give(struct rs__thread *t)
{
	if (--t->gc_depth)
		return;
	pthread_mutex_lock(&role_lock);
	rs__store_relaxed(&role_holder, NULL);
	pthread_cond_broadcast(&role_cv);
	pthread_mutex_unlock(&role_lock);
}

/* ---------------------------------------------------------------------- */
/* Logs                                                                    */
/* ---------------------------------------------------------------------- */

static inline struct rs__chunk *chunk_of(void **ent)
{
	return (struct rs__chunk *)((uintptr_t)ent & ~(RS__CHUNK_BYTES - 1));
}

static struct rs__chunk *chunk_new(struct rs__gclog *log)
{
	struct rs__chunk *c = log->spare;

	if (log->owner && rs__fault(RS__FAULT_GCLOG))
		return NULL;	/* a test's injected failure */
	if (c)
		log->spare = c->next;
	else if (!(c = aligned_alloc(RS__CHUNK_BYTES, RS__CHUNK_BYTES)))
		return NULL;
	c->log = log;
	c->next = NULL;
	c->n = 0;
	return c;
}

static void chunk_link(struct rs__gclog *log, struct rs__chunk *c)
{
	if (log->last)
		log->last->next = c;
	else
		log->first = c;
	log->last = c;
}

static inline void put(struct rs__chunk *c, void *obj)
{
	void **e = &c->ent[c->n++];

	rs__store_relaxed(e, obj);
	rs__store_relaxed(&rs__gc_of(rs__head_of(obj))->ent, e);
}

/* Append obj to a log (a generation while stopped, or the owner's nursery). */
static int log_append(struct rs__gclog *log, void *obj)
{
	struct rs__chunk *c = log->last;

	if (!c || c->n == RS__CHUNK_ENTS) {
		if (!(c = chunk_new(log)))
			return -1;
		chunk_link(log, c);
	}
	put(c, obj);
	log->n++;
	return 0;
}

/* Compact a list of chunks in place, keeping entry order: live entries
 * `keep` accepts move down, others are handed to `drop`.  Returns the new
 * last chunk (NULL if no chunk was given); chunks left empty are given to
 * `rest`. */
typedef bool (*keep_fn)(void *obj, void *arg);

static size_t compact(struct rs__gclog *log, keep_fn keep, void *arg,
		      struct rs__chunk **rest)
{
	struct rs__chunk *w = log->first, *r, *next;
	uint32_t wi = 0, i, rn;
	size_t n = 0;
	void *o;

	for (r = log->first; r; r = r->next) {
		rn = r->n;
		for (i = 0; i < rn; i++) {
			o = rs__load_relaxed(&r->ent[i]);
			if (!o || !keep(o, arg))
				continue;
			if (wi == RS__CHUNK_ENTS) {
				w->n = wi;
				w = w->next;
				wi = 0;
			}
			rs__store_relaxed(&w->ent[wi], o);
			rs__store_relaxed(&rs__gc_of(rs__head_of(o))->ent,
					  &w->ent[wi]);
			wi++;
			n++;
		}
	}
	*rest = NULL;
	if (!w)
		return 0;
	if (!n) {
		*rest = log->first;
		log->first = log->last = NULL;
		log->n = 0;
		return 0;
	}
	w->n = wi;
	*rest = w->next;
	w->next = NULL;
	log->last = w;
	log->n = n;
	for (next = *rest; next; next = next->next)
		next->n = 0;
	return n;
}

static bool keep_all(void *obj, void *arg)
{
	(void)obj;
	(void)arg;
	return true;
}

static void chunks_free(struct rs__chunk *c)
{
	struct rs__chunk *next;

	for (; c; c = next) {
		next = c->next;
		free(c);
	}
}

static void chunks_spare(struct rs__gclog *log, struct rs__chunk *c)
{
	struct rs__chunk *next;

	for (; c; c = next) {
		next = c->next;
		c->log = log;
		c->next = log->spare;
		log->spare = c;
	}
}

/* Move every chunk of `from` to the end of `to` (world stopped). */
static void log_move(struct rs__gclog *to, struct rs__gclog *from)
{
	struct rs__chunk *c;

	for (c = from->first; c; c = c->next)
		c->log = to;
	if (from->first) {
		if (to->last)
			to->last->next = from->first;
		else
			to->first = from->first;
		to->last = from->last;
	}
	to->n += from->n;
	from->first = from->last = NULL;
	from->n = from->holes = from->remote_holes = 0;
}

static void flush_delta(struct rs__thread *t)
{
	int64_t c = rs__add_fetch_relaxed(&young_count, (int64_t)t->gc_delta);
	long t0 = rs__load_relaxed(&threshold[0]);

	t->gc_delta = 0;
	if (t0 > 0 && c > t0 && rs__load_relaxed(&enabled) &&
	    !rs__load_relaxed(&rs__gc_requested))
		rs__store_relaxed(&rs__gc_requested, 1);
}

/* The nursery's last chunk is full: compact it if it is half holes (its
 * owner, under its lock: see the top), else add a chunk. */
static int nursery_grow(struct rs__thread *t)
{
	struct rs__gclog *log = &t->nursery;
	struct rs__chunk *c, *rest;

	if (log->n >= RS__CHUNK_ENTS) {
		rs__lock(&log->lock);
		if (2 * (log->holes + log->remote_holes) >= log->n) {
			compact(log, keep_all, NULL, &rest);
			chunks_spare(log, rest);
			log->holes = log->remote_holes = 0;
		}
		rs__unlock(&log->lock);
		if (log->last && log->last->n < RS__CHUNK_ENTS)
			return 0;
	}
	if (!(c = chunk_new(log)))
		return -1;
	chunk_link(log, c);
	return 0;
}

int rs__gc_track(struct rs__thread *t, struct rs__head *h)
{
	struct rs__gclog *log = &t->nursery;

	if (RS_UNLIKELY(!log->last || log->last->n == RS__CHUNK_ENTS) &&
	    nursery_grow(t))
		return -1;
	put(log->last, h + 1);
	log->n++;
	if (++t->gc_delta >= FLUSH_DELTA)
		flush_delta(t);
	return 0;
}

void rs__gc_untrack(struct rs__thread *t, struct rs__head *h)
{
	struct rs__gcinfo *g = rs__gc_of(h);
	void **e = rs__load_relaxed(&g->ent);
	struct rs__gclog *log;

	if (!e)
		return;
	log = chunk_of(e)->log;
	if (!log->owner) {
		rs__store_relaxed(e, NULL);	/* a generation: see the top */
	} else if (log->owner == t) {
		rs__store_relaxed(e, NULL);
		log->holes++;
	} else {
		rs__lock(&log->lock);
		e = rs__load_relaxed(&g->ent);	/* compaction may move it */
		rs__store_relaxed(e, NULL);
		log->remote_holes++;
		rs__unlock(&log->lock);
	}
	rs__store_relaxed(&g->ent, NULL);
	if (log->owner && t) {
		if (--t->gc_delta <= -FLUSH_DELTA)
			flush_delta(t);
	}
}

void rs__gc_thread_init(struct rs__thread *t)
{
	t->nursery.owner = t;
	rs__mutex_init(&t->nursery.lock, RS__L_NURSERY);
}

/* Every log of the collected generations, oldest first. */
struct logset {
	size_t n;
	struct rs__gclog *v[];
};

/* World stopped (threads attaching meanwhile have empty nurseries). */
static struct logset *logset_new(int gen)
{
	uint32_t slot, nslots = rs__load_acquire(&rs__nslots);
	struct logset *s = rs__fault(RS__FAULT_GCWORK) ? NULL :
		malloc(sizeof(*s) + (nslots + 4) * sizeof(s->v[0]));
	int g;

	if (!s)
		return NULL;
	s->n = 0;
	for (g = gen; g >= 1; g--)
		s->v[s->n++] = &gens[g];
	for (slot = 1; slot <= nslots; slot++)
		s->v[s->n++] = &rs__slots[slot]->nursery;
	return s;
}

/* A log entry is NULL once its object died: no header to fetch then (and
 * NULL minus the header size is undefined behaviour). */
static inline void prefetch_head(void *obj)
{
	if (obj)
		__builtin_prefetch((char *)obj - RS_HEAD_SIZE, 1);
}

#define FOR_EACH_OBJ(set, o, ...)                                            \
	do {                                                                 \
		size_t li_;                                                  \
		struct rs__chunk *c_;                                        \
		uint32_t i_;                                                 \
		for (li_ = 0; li_ < (set)->n; li_++)                         \
			for (c_ = (set)->v[li_]->first; c_; c_ = c_->next)   \
				for (i_ = 0; i_ < c_->n; i_++) {             \
					if (i_ + 8 < c_->n)                  \
						prefetch_head(rs__load_relaxed(&c_->ent[i_ + 8])); \
					o = rs__load_relaxed(&c_->ent[i_]);  \
					if (o) {                             \
						__VA_ARGS__;                 \
					}                                    \
				}                                            \
	} while (0)

/* ---------------------------------------------------------------------- */
/* Trial deletion (world stopped)                                          */
/* ---------------------------------------------------------------------- */

static inline uint32_t bits_of(struct rs__head *h)
{
	return rs__load_relaxed(&h->bits);
}

static inline void bits_set(struct rs__head *h, uint32_t set, uint32_t clear)
{
	rs__store_relaxed(&h->bits, (bits_of(h) | set) & ~clear);
}

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
	return (int64_t)rs__load_relaxed(&h->tid);
}

static void mark(void *o, int64_t minus)
{
	struct rs__head *h = rs__head_of(o);
	uint32_t bits = bits_of(h);
	int64_t refs = (bits & RS__B_IMMORTAL) ? IMMORTAL_REFS
					       : true_count(h) - minus;

	rs__gc_of(h)->saved = rs__load_relaxed(&h->tid);
	rs__store_relaxed(&h->tid, (uint64_t)refs);
	rs__store_relaxed(&h->bits, bits | RS__B_GC);
}

/* The object leaves the set: clear `clear`, set `set`, restore the tid. */
static void unmark(struct rs__head *h, uint32_t set, uint32_t clear)
{
	rs__store_relaxed(&h->tid, rs__gc_of(h)->saved);
	bits_set(h, set, clear);
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

	if (bits_of(h) & RS__B_GC)
		rs__store_relaxed(&h->tid, rs__load_relaxed(&h->tid) - 1);
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
	uint32_t bits = bits_of(h);

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
	uint32_t bits = bits_of(h);
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
};

/* Destroy what this thread's dying list holds; it may park meanwhile. */
static void cascade(struct rs__thread *t)
{
	int was = t->in_safepoint;

	t->in_safepoint = 1;
	rs__cascade(t);
	t->in_safepoint = was;
}

static void stop(struct coll *c)
{
	rs__world_stop();
	/* (1): counts exact */
	rs__defer_apply_stopped(c->t);
	rs__drain_queues_stopped(c->t);
}

static void resume(struct coll *c)
{
	struct rs__stop_stats st;

	rs__world_resume(&st);
	c->pause += st.pause_ns;
	c->ttsp += st.ttsp_ns;
}

static bool keep_survivor(void *o, void *arg)
{
	struct coll *c = arg;
	struct rs__head *h = rs__head_of(o);
	uint32_t bits = bits_of(h);

	if (bits & RS__B_REACH) {
		unmark(h, 0, RS__B_GC | RS__B_REACH);
		return true;
	}
	unmark(h, RS__B_GARBAGE, RS__B_GC);
	rs__store_relaxed(&rs__gc_of(h)->ent, NULL);
	c->nweak += (bits & RS__B_WEAKREFS) != 0;
	c->nfin += h->type->finalize && !(bits & RS__B_FINALIZED);
	c->garb[c->ngarb++] = o;
	return false;
}

/* (5): survivors of the collected logs go to generation gen + 1 (2 stays
 * 2), in order, in the chunks they occupy; the garbage leaves the logs. */
static void sort_out(struct coll *c, struct logset *set)
{
	struct rs__gclog all = {0}, *dest = &gens[c->gen < 2 ? c->gen + 1 : 2];
	struct rs__chunk *rest;
	size_t i, n;

	for (i = 0; i < set->n; i++)
		log_move(&all, set->v[i]);
	n = compact(&all, keep_survivor, c, &rest);
	chunks_free(rest);
	if (c->gen == 1)
		long_lived_pending += n;
	else if (c->gen == 2)
		long_lived_total = n, long_lived_pending = 0;
	log_move(dest, &all);
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
	uint32_t bits = bits_of(h);

	if ((bits & (RS__B_TRACKED | NOT_MEMBER)) != RS__B_TRACKED)
		return;
	if (!(bits & RS__B_GC))
		mark(x, 0);
	rs__store_relaxed(&h->tid, rs__load_relaxed(&h->tid) - 1);
}

static void visit_full(void *child, void *arg)
{
	if (child && (child = ring_put(arg, child)))
		full_one(child);
}

static void full_pass(void *o, struct ring *r)
{
	struct rs__head *h = rs__head_of(o);

	if (!(bits_of(h) & RS__B_GC))
		mark(o, 0);
	h->type->traverse(o, visit_full, r);
}

static void trial_deletion(struct logset *set, struct stack *s, int gen)
{
	struct reach rc = {.s = s};
	void *o;

	if (gen == RS_GC_GENERATIONS - 1) {
		FOR_EACH_OBJ(set, o, full_pass(o, &rc.r));
		while ((o = ring_take(&rc.r)))
			full_one(o);
	} else {
		FOR_EACH_OBJ(set, o, mark(o, 0));
		FOR_EACH_OBJ(set, o, subtract(o, &rc.r));
		subtract_done(&rc.r);
	}
	FOR_EACH_OBJ(set, o, root(o, &rc));
}

/* Take one counted reference to a garbage object (world stopped): its
 * count is merged into the shared word, which only the owner may do
 * otherwise; the owner is stopped. */
static void hold(void *o)
{
	struct rs__head *h = rs__head_of(o);
	int64_t total = true_count(h);

	rs__store_relaxed(&h->local, 0);
	rs__store_relaxed(&h->tid, (uint64_t)RS__TID_MERGED);
	rs__store_relaxed(&h->shared, (int64_t)(((uint64_t)total + 1) <<
						RS__S_SHIFT) | RS__S_MERGED);
}

static void clear_weak(struct coll *c)
{
	size_t i;
	struct rs__head *h;

	for (i = 0; i < c->ngarb; i++) {
		h = rs__head_of(c->garb[i]);
		if (bits_of(h) & RS__B_WEAKREFS)
			rs__weak_clear(c->t, h);
	}
}

static void visit_release(void *child, void *arg)
{
	if (child && !(bits_of(rs__head_of(child)) & RS__B_GARBAGE))
		rs__decref_now(arg, child);
}

/* Free the garbage (world running): references out of it are given back
 * first, then each object is destroyed, so no step reads a freed header. */
static void release(struct coll *c)
{
	struct rs__thread *t = c->t;
	size_t i;
	void *o;

	t->in_safepoint = 1;
	for (i = 0; i < c->ngarb; i++) {
		o = c->garb[i];
		rs__head_of(o)->type->traverse(o, visit_release, t);
	}
	for (i = 0; i < c->ngarb; i++)
		rs__obj_destroy(t, rs__head_of(c->garb[i]));
	c->collected += (long)c->ngarb;
	rs__cascade(t);
	t->in_safepoint = 0;
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
		bits_set(rs__head_of(o), 0, RS__B_GARBAGE);
		if (ngarbage == garbage_cap) {
			cap = garbage_cap ? 2 * garbage_cap : 64;
			v = realloc(garbage, cap * sizeof(*v));
			if (!v)
				rs__die("rs_gc_collect", o,
					"out of memory for the uncollectable list");
			garbage = v;
			garbage_cap = cap;
		}
		hold(o);
		garbage[ngarbage++] = o;
		if (log_append(&gens[2], o))
			rs__die("rs_gc_collect", o,
				"out of memory logging an uncollectable object");
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
		if (!h->type->finalize || (bits_of(h) & RS__B_FINALIZED))
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
	struct rs__gclog *dest = &gens[c->gen < 2 ? c->gen + 1 : 2];
	struct reach rc = {.s = s};
	struct rs__head *h;
	size_t i, n = 0;
	void *o;

	for (i = 0; i < c->ngarb; i++) {
		o = c->garb[i];
		bits_set(rs__head_of(o), 0, RS__B_GARBAGE | RS__B_HELD);
		mark(o, 1);
	}
	for (i = 0; i < c->ngarb; i++)
		subtract(c->garb[i], &rc.r);
	subtract_done(&rc.r);
	for (i = 0; i < c->ngarb; i++) {
		if (s->v)
			root(c->garb[i], &rc);
		else	/* no memory for the walk: everything survives */
			bits_set(rs__head_of(c->garb[i]), RS__B_REACH, 0);
	}
	for (i = 0; i < c->ngarb; i++) {
		o = c->garb[i];
		h = rs__head_of(o);
		if (bits_of(h) & RS__B_REACH) {
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
			if (log_append(dest, o))
				rs__die("rs_gc_collect", o,
					"out of memory logging a resurrected object");
		} else {
			unmark(h, RS__B_GARBAGE, RS__B_GC);
			c->garb[n++] = o;
		}
	}
	c->ngarb = n;
}

static void record(struct coll *c)
{
	struct rs_gc_info info;
	struct rs_gc_stats *st = &stats[c->gen];
	uint64_t us = c->pause / 1000;
	int b = 0, i, n;
	struct {
		rs_gc_callback_fn fn;
		void *arg;
	} cb[MAX_CALLBACKS];

	while (us > 1 && b < RS_GC_HIST_BUCKETS - 1) {
		us >>= 1;
		b++;
	}
	info.generation = c->gen;
	info.collected = c->collected;
	info.uncollectable = c->uncollectable;
	info.pause_ns = c->pause;
	info.ttsp_ns = c->ttsp;
	info.duration_ns = rs__now_ns() - c->begin;
	pthread_mutex_lock(&stats_lock);
	st->collections++;
	st->collected += (uint64_t)c->collected;
	st->uncollectable += (uint64_t)c->uncollectable;
	st->pause_total_ns += c->pause;
	if (c->pause > st->pause_max_ns)
		st->pause_max_ns = c->pause;
	st->ttsp_total_ns += c->ttsp;
	if (c->ttsp > st->ttsp_max_ns)
		st->ttsp_max_ns = c->ttsp;
	st->hist[b]++;
	n = ncallbacks;
	memcpy(cb, callbacks, sizeof(cb[0]) * (size_t)n);
	pthread_mutex_unlock(&stats_lock);
	for (i = 0; i < n; i++)
		cb[i].fn(&info, cb[i].arg);
}

static void count_collection(int gen)
{
	uint32_t slot, nslots = rs__load_acquire(&rs__nslots);
	int g;

	/* world stopped: the young objects were all examined */
	rs__store_relaxed(&young_count, 0);
	for (slot = 1; slot <= nslots; slot++)
		rs__slots[slot]->gc_delta = 0;
	rs__store_relaxed(&rs__gc_requested, 0);
	for (g = 1; g <= gen; g++)
		rs__store_relaxed(&gen_count[g], 0);
	if (gen < 2)
		rs__store_relaxed(&gen_count[gen + 1],
				  rs__load_relaxed(&gen_count[gen + 1]) + 1);
}

/* Collect generations 0..gen; the caller holds the role. */
static long collect(struct rs__thread *t, int gen)
{
	struct coll c = {.t = t, .gen = gen, .begin = rs__now_ns()};
	struct stack resurrect = {0};
	struct logset *set;
	size_t cap = 0, i;
	long found;

	stop(&c);
	set = logset_new(gen);
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
	count_collection(gen);
	found = (long)c.ngarb;
	if (c.ngarb) {
		if (c.nweak)
			clear_weak(&c);
		if (rs__load_relaxed(&debug_flags) & RS_GC_DEBUG_SAVEALL) {
			save_all(&c);
		} else if (c.nfin) {
			for (i = 0; i < c.ngarb; i++) {
				hold(c.garb[i]);
				bits_set(rs__head_of(c.garb[i]), RS__B_HELD,
					 RS__B_GARBAGE);
			}
			resume(&c);
			cascade(t);
			finalize(&c);
			resurrect.v = rs__fault(RS__FAULT_GCWORK) ? NULL :
				      malloc(c.ngarb * sizeof(void *));
			stop(&c);
			resurrection(&c, &resurrect);
			free(resurrect.v);
			clear_weak(&c);	/* made by the finalizers */
		}
	}
	resume(&c);
	free(set);
	cascade(t);	/* what reached zero in step 1 */
	release(&c);
	free(c.stack.v);
	rs__weak_run_callbacks(t);
	record(&c);
	return found;
}

static int choose_generation(void)
{
	int g;

	for (g = RS_GC_GENERATIONS - 1; g >= 0; g--) {
		if (g == 0 ? rs__load_relaxed(&young_count) <=
				     rs__load_relaxed(&threshold[0])
			   : rs__load_relaxed(&gen_count[g]) <=
				     rs__load_relaxed(&threshold[g]))
			continue;
		/* the long-lived rule: a full collection only when the
		 * objects promoted into generation 2 since the last one are
		 * a quarter of those that survived it */
		if (g == 2 && long_lived_pending < long_lived_total / 4)
			continue;
		return g;
	}
	return -1;
}

/*
 * Whether t holds its share of the young objects: at least young_count / the
 * attached threads in its own nursery.  An automatic collection is run by a
 * thread that holds its share, at its safepoint, where its own dropped
 * objects are already dead.  Another thread's count is mostly what that
 * thread is building between two of its safepoints (binary-trees: a tree of
 * up to 131,071 nodes per safepoint); a collection started for it waits for
 * that thread to finish, then finds the structure alive and promotes it --
 * with two threads, 2,320 young, 211 middle and 10 full collections in five
 * runs, against 5 young with one.  Some thread always holds its share (the
 * largest nursery does), so collections are delayed until that thread's
 * safepoint, not lost; the young garbage other threads make meanwhile is
 * bounded by what that thread holds, since it counts in their share too.
 */
static bool holds_share(struct rs__thread *t)
{
	struct rs__gclog *log = &t->nursery;
	size_t n = rs__attached_hint();
	int64_t own = (int64_t)log->n - (int64_t)log->holes;

	/* a few owner fields and relaxed loads, no lock: a thread without its
	 * share meets the pending request at each of its safepoints.  Deaths
	 * by other threads (remote_holes, under the nursery's lock) are left
	 * out: that only makes a thread collect sooner. */
	return n <= 1 || own * (int64_t)n >= rs__load_relaxed(&young_count);
}

/* A safepoint saw a request (the caller is at a safepoint, not in one). */
void rs__gc_auto(struct rs__thread *t)
{
	int gen;

	if (t->gc_depth || t->in_safepoint || !rs__load_relaxed(&enabled) ||
	    rs__load_relaxed(&threshold[0]) <= 0) {
		rs__store_relaxed(&rs__gc_requested, 0);
		return;
	}
	if (!holds_share(t))
		return;	/* the request stays for the threads that do */
	if (!role_take(t, false))
		return;	/* another thread is collecting */
	gen = choose_generation();
	if (gen >= 0)
		collect(t, gen);
	else
		rs__store_relaxed(&rs__gc_requested, 0);
	role_give(t);
}

/* ---------------------------------------------------------------------- */
/* The API                                                                 */
/* ---------------------------------------------------------------------- */

static struct rs__thread *attached(void)
{
	struct rs__thread *t = rs__self();

	if (!t || !rs__tls.tid)
		errno = EPERM;
	return rs__tls.tid ? t : NULL;
}

long rs_gc_collect(int gen)
{
	struct rs__thread *t = attached();
	bool was_offline;
	long n;

	if (!t)
		return -1;
	if (gen < 0 || gen >= RS_GC_GENERATIONS) {
		errno = EINVAL;
		return -1;
	}
	if (t->gc_depth || t->in_safepoint)
		return 0;	/* from a callback of a collection, or a destroy */
	was_offline = rs__load_relaxed(&t->state) != RS__T_ONLINE;
	if (was_offline)
		rs_online();
	if (!role_take(t, true))
		return -1;
	rs_safepoint();	/* with the role held: no automatic collection */
	n = collect(t, gen);
	role_give(t);
	if (was_offline)
		rs_offline();
	return n;
}

/* Every function needs an attached thread, as the rest of the API. */
#define NEED_ATTACHED()                                                      \
	do {                                                                 \
		if (!rs__tls.tid) {                                          \
			errno = EPERM;                                       \
			return -1;                                           \
		}                                                            \
	} while (0)

int rs_gc_enable(void)
{
	NEED_ATTACHED();
	rs__store_relaxed(&enabled, 1);
	return 0;
}

int rs_gc_disable(void)
{
	NEED_ATTACHED();
	rs__store_relaxed(&enabled, 0);
	return 0;
}

int rs_gc_is_enabled(void)
{
	NEED_ATTACHED();
	return rs__load_relaxed(&enabled);
}

int rs_gc_set_threshold(long t0, long t1, long t2)
{
	NEED_ATTACHED();
	if (t0 < 0 || t1 < 0 || t2 < 0) {
		errno = EINVAL;
		return -1;
	}
	rs__store_relaxed(&threshold[0], t0);
	rs__store_relaxed(&threshold[1], t1);
	rs__store_relaxed(&threshold[2], t2);
	return 0;
}

int rs_gc_get_threshold(long *t0, long *t1, long *t2)
{
	NEED_ATTACHED();
	if (t0)
		*t0 = rs__load_relaxed(&threshold[0]);
	if (t1)
		*t1 = rs__load_relaxed(&threshold[1]);
	if (t2)
		*t2 = rs__load_relaxed(&threshold[2]);
	return 0;
}

int rs_gc_get_count(long *c0, long *c1, long *c2)
{
	struct rs__thread *t = rs__self();
	int64_t y;

	NEED_ATTACHED();
	if (t->gc_delta)
		flush_delta(t);
	y = rs__load_relaxed(&young_count);
	if (c0)
		*c0 = y > 0 ? (long)y : 0;
	if (c1)
		*c1 = rs__load_relaxed(&gen_count[1]);
	if (c2)
		*c2 = rs__load_relaxed(&gen_count[2]);
	return 0;
}

int rs_gc_set_debug(unsigned flags)
{
	NEED_ATTACHED();
	rs__store_relaxed(&debug_flags, flags);
	return 0;
}

unsigned rs_gc_get_debug(void)
{
	return rs__load_relaxed(&debug_flags);
}

/* World stopped: mark (or unmark) the permanent generation's objects, so
 * a full collection knows them without a mark pass. */
static void set_frozen(uint32_t set, uint32_t clear)
{
	struct rs__chunk *c;
	uint32_t i;
	void *o;

	for (c = gens[GEN_PERM].first; c; c = c->next)
		for (i = 0; i < c->n; i++)
			if ((o = rs__load_relaxed(&c->ent[i])))
				bits_set(rs__head_of(o), set, clear);
}

/* Take the role, stop the world and list every log of generations 0-2;
 * NULL (errno set, nothing held) on failure. */
static struct logset *stop_all(struct rs__thread *t)
{
	struct logset *set;

	if (!role_take(t, true))
		return NULL;
	rs__world_stop();
	if (!(set = logset_new(2))) {
		rs__world_resume(NULL);
		role_give(t);
		errno = ENOMEM;
	}
	return set;
}

int rs_gc_freeze(void)
{
	struct rs__thread *t = attached();
	struct logset *set;
	size_t i;

	if (!t || !(set = stop_all(t)))
		return -1;
	for (i = 0; i < set->n; i++)
		log_move(&gens[GEN_PERM], set->v[i]);
	set_frozen(RS__B_FROZEN, 0);
	count_collection(2);
	rs__store_relaxed(&gen_count[1], 0);
	long_lived_total = long_lived_pending = 0;
	rs__world_resume(NULL);
	role_give(t);
	free(set);
	return 0;
}

int rs_gc_unfreeze(void)
{
	struct rs__thread *t = attached();

	if (!t)
		return -1;
	if (!role_take(t, true))
		return -1;
	rs__world_stop();
	long_lived_total += gens[GEN_PERM].n;
	set_frozen(0, RS__B_FROZEN);
	log_move(&gens[2], &gens[GEN_PERM]);
	rs__world_resume(NULL);
	role_give(t);
	return 0;
}

static long count_live(struct rs__gclog *log)
{
	struct rs__chunk *c;
	uint32_t i;
	long n = 0;

	for (c = log->first; c; c = c->next)
		for (i = 0; i < c->n; i++)
			n += rs__load_relaxed(&c->ent[i]) != NULL;
	return n;
}

long rs_gc_get_freeze_count(void)
{
	struct rs__thread *t = attached();
	long n;

	if (!t)
		return -1;
	if (!role_take(t, true))
		return -1;
	n = count_live(&gens[GEN_PERM]);
	role_give(t);
	return n;
}

int rs_gc_get_stats(int gen, struct rs_gc_stats *out)
{
	NEED_ATTACHED();
	if (gen < 0 || gen >= RS_GC_GENERATIONS || !out) {
		errno = EINVAL;
		return -1;
	}
	pthread_mutex_lock(&stats_lock);
	*out = stats[gen];
	pthread_mutex_unlock(&stats_lock);
	return 0;
}

int rs_gc_add_callback(rs_gc_callback_fn fn, void *arg)
{
	int r = 0;

	NEED_ATTACHED();
	if (!fn) {
		errno = EINVAL;
		return -1;
	}
	pthread_mutex_lock(&stats_lock);
	if (ncallbacks == MAX_CALLBACKS) {
		errno = ENOMEM;
		r = -1;
	} else {
		callbacks[ncallbacks].fn = fn;
		callbacks[ncallbacks].arg = arg;
		ncallbacks++;
	}
	pthread_mutex_unlock(&stats_lock);
	return r;
}

int rs_gc_remove_callback(rs_gc_callback_fn fn, void *arg)
{
	int i, r = -1;

	NEED_ATTACHED();
	pthread_mutex_lock(&stats_lock);
	for (i = 0; i < ncallbacks; i++) {
		if (callbacks[i].fn == fn && callbacks[i].arg == arg) {
			memmove(&callbacks[i], &callbacks[i + 1],
				sizeof(callbacks[0]) * (size_t)(ncallbacks - i - 1));
			ncallbacks--;
			r = 0;
			break;
		}
	}
	pthread_mutex_unlock(&stats_lock);
	if (r)
		errno = ENOENT;
	return r;
}

int rs_gc_is_tracked(const void *obj)
{
	uint32_t bits;

	NEED_ATTACHED();
	if (!obj)
		return 0;
	bits = rs__load_relaxed(&rs__head_of(obj)->bits);
	return (bits & RS__B_TRACKED) && !(bits & (RS__B_DYING | RS__B_DEAD));
}

struct referents {
	rs_visit_fn fn;
	void *arg;
};

static void visit_referent(void *child, void *arg)
{
	struct referents *r = arg;

	if (child)
		r->fn(child, r->arg);
}

int rs_gc_get_referents(void *obj, rs_visit_fn fn, void *arg)
{
	struct referents r = {fn, arg};
	const rs_type *type;

	if (!rs__tls.tid) {
		errno = EPERM;
		return -1;
	}
	if (!obj || !fn) {
		errno = EINVAL;
		return -1;
	}
	type = rs__head_of(obj)->type;
	if (type->traverse)
		type->traverse(obj, visit_referent, &r);
	return 0;
}

struct referrers {
	void *target;
	bool found;
};

static void visit_referrer(void *child, void *arg)
{
	struct referrers *r = arg;

	if (child == r->target)
		r->found = true;
}

long rs_gc_get_referrers(void *obj, rs_visit_fn fn, void *arg)
{
	struct rs__thread *t = attached();
	struct logset *set;
	struct referrers r = {obj, false};
	struct stack s = {0};
	size_t i;
	void *o, **v;
	bool failed = false;

	if (!t)
		return -1;
	if (!obj || !fn) {
		errno = EINVAL;
		return -1;
	}
	if (!(set = stop_all(t)))
		return -1;
	set->v[set->n++] = &gens[GEN_PERM];
	FOR_EACH_OBJ(set, o, {
		r.found = false;
		rs__head_of(o)->type->traverse(o, visit_referrer, &r);
		if (r.found && !failed) {
			if (s.n == s.cap) {
				s.cap = s.cap ? 2 * s.cap : 16;
				v = rs__fault(RS__FAULT_REFERRERS) ? NULL :
				    realloc(s.v, s.cap * sizeof(*v));
				if (!v) {
					failed = true;
					continue;
				}
				s.v = v;
			}
			/* counted, so it stays valid once the world runs */
			rs_incref(o);
			s.v[s.n++] = o;
		}
	});
	rs__world_resume(NULL);
	role_give(t);
	free(set);
	for (i = 0; i < s.n; i++) {
		if (!failed)
			fn(s.v[i], arg);
		rs__decref_or_wait(t, s.v[i]);
	}
	free(s.v);
	if (failed) {
		errno = ENOMEM;
		return -1;
	}
	return (long)s.n;
}

long rs_gc_garbage(rs_visit_fn fn, void *arg)
{
	struct rs__thread *t = attached();
	size_t i, n;

	if (!t)
		return -1;
	if (!role_take(t, true))
		return -1;
	n = ngarbage;
	for (i = 0; fn && i < ngarbage; i++)
		fn(garbage[i], arg);
	role_give(t);
	return (long)n;
}

long rs_gc_garbage_clear(void)
{
	struct rs__thread *t = attached();
	void **v;
	size_t i, n;

	if (!t)
		return -1;
	if (!role_take(t, true))
		return -1;
	v = garbage;
	n = ngarbage;
	garbage = NULL;
	ngarbage = garbage_cap = 0;
	role_give(t);
	for (i = 0; i < n; i++)
		rs__decref_or_wait(t, v[i]);
	free(v);
	return (long)n;
}

/* ---------------------------------------------------------------------- */
/* Runtime glue                                                            */
/* ---------------------------------------------------------------------- */

/* REFSTORE_GC_THRESHOLDS="t0,t1,t2" */
void rs__gc_init(void)
{
	const char *s = getenv("REFSTORE_GC_THRESHOLDS");
	long v[RS_GC_GENERATIONS];
	char *end;
	int i;

	if (!s || !*s)
		return;
	for (i = 0; i < RS_GC_GENERATIONS; i++) {
		v[i] = strtol(s, &end, 10);
		if (end == s || v[i] < 0)
			break;
		s = end + (*end == ',');
		if (!*end)
			break;
	}
	if (i < RS_GC_GENERATIONS - 1 || *end) {
		fprintf(stderr, "refstore: ignoring REFSTORE_GC_THRESHOLDS "
			"(expected t0,t1,t2)\n");
		return;
	}
	for (i = 0; i < RS_GC_GENERATIONS; i++)
		rs__store_relaxed(&threshold[i], v[i]);
}

/* Detach and rs_shutdown: the counts this thread still holds. */
void rs__gc_thread_exit(struct rs__thread *t)
{
	if (t->gc_delta)
		flush_delta(t);
}

/* rs_shutdown, no thread attached: forget the logs (what is still alive
 * is reported as a leak). */
void rs__gc_shutdown(void)
{
	uint32_t slot;
	int g;
	struct rs__gclog *log;

	for (g = 1; g <= GEN_PERM; g++) {
		chunks_free(gens[g].first);
		chunks_free(gens[g].spare);
		gens[g].first = gens[g].last = gens[g].spare = NULL;
		gens[g].n = 0;
	}
	for (slot = 1; slot <= rs__nslots; slot++) {
		log = &rs__slots[slot]->nursery;
		chunks_free(log->first);
		chunks_free(log->spare);
		log->first = log->last = log->spare = NULL;
		log->n = log->holes = log->remote_holes = 0;
	}
	rs__store_relaxed(&young_count, 0);
	rs__store_relaxed(&rs__gc_requested, 0);
	memset(gen_count, 0, sizeof(gen_count));
	long_lived_total = long_lived_pending = 0;
	pthread_mutex_lock(&stats_lock);
	memset(stats, 0, sizeof(stats));
	pthread_mutex_unlock(&stats_lock);
}

/* fork: the child must not inherit a collection in progress.  The forking
 * thread takes the role first (it waits offline), unless it holds it.  From
 * a destroy callback it cannot wait: if another thread collects, the child
 * inherits that collection's held garbage, which then stays allocated (the
 * collecting thread does not exist there), but nothing is freed twice. */
static bool fork_took;

void rs__gc_fork_prepare(void)
{
	struct rs__thread *t = rs__self();

	fork_took = false;
	if (!rs__runtime_up())
		return;
	if (t && rs__tls.tid) {
		if (!t->gc_depth)
			fork_took = role_take(t, true);
		return;
	}
	pthread_mutex_lock(&role_lock);
	while (role_holder)
		pthread_cond_wait(&role_cv, &role_lock);
	rs__store_relaxed(&role_holder, (struct rs__thread *)&role_holder);
	pthread_mutex_unlock(&role_lock);
	fork_took = true;
}

static void fork_release(void)
{
	struct rs__thread *t = rs__self();

	if (!fork_took)
		return;
	if (t && rs__tls.tid) {
		role_give(t);
		return;
	}
	pthread_mutex_lock(&role_lock);
	rs__store_relaxed(&role_holder, NULL);
	pthread_cond_broadcast(&role_cv);
	pthread_mutex_unlock(&role_lock);
}

void rs__gc_fork_parent(void)
{
	fork_release();
}

void rs__gc_fork_child(void)
{
	uint32_t slot;
	struct rs__thread *t = rs__self();

	pthread_mutex_init(&role_lock, NULL);
	pthread_cond_init(&role_cv, NULL);
	if (!fork_took && !(t && t->gc_depth))
		rs__store_relaxed(&role_holder, NULL);	/* its holder is gone */
	pthread_mutex_init(&stats_lock, NULL);
	for (slot = 1; slot <= rs__nslots; slot++)
		rs__lock_reinit(&rs__slots[slot]->nursery.lock);
	rs__weak_fork_child();
	fork_release();
}

/* Every live tracked object is logged (G1), unless a collection in progress
 * holds it as garbage: a full collection relies on it (full_one). */
static void verify_logged(void *obj, void *arg)
{
	struct rs__head *h = rs__head_of(obj);
	uint32_t bits = bits_of(h);
	long *bad = arg;

	if ((bits & (RS__B_TRACKED | RS__B_DYING | RS__B_DEAD | RS__B_FREE |
		     RS__B_GARBAGE | RS__B_HELD)) == RS__B_TRACKED &&
	    !rs__load_relaxed(&rs__gc_of(h)->ent)) {
		fprintf(stderr, "refstore: rs_heap_verify: tracked object %p "
			"(type '%s') is in no collector log\n", obj,
			h->type->name ? h->type->name : "?");
		(*bad)++;
	}
}

/* rs_heap_verify (world stopped): (G1) for every logged object. */
long rs__gc_verify(void)
{
	struct logset *set = logset_new(2);
	long bad = 0;
	void *o;
	struct rs__head *h;

	if (!set)
		return 0;
	set->v[set->n++] = &gens[GEN_PERM];
	FOR_EACH_OBJ(set, o, {
		h = rs__head_of(o);
		if (!(bits_of(h) & RS__B_TRACKED) ||
		    (bits_of(h) & (RS__B_DYING | RS__B_DEAD | RS__B_FREE)) ||
		    rs__load_relaxed(&rs__gc_of(h)->ent) != &c_->ent[i_] ||
		    c_->log != set->v[li_]) {
			fprintf(stderr, "refstore: rs_heap_verify: collector log "
				"entry %p is not a live tracked object logged "
				"there\n", o);
			bad++;
		}
	});
	free(set);
	rs__heap_walk(verify_logged, &bad);
	return bad;
}
