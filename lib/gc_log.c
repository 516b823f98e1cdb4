/*
 * gc_log.c - where the collector finds tracked objects: logs.
 *
 * A log (struct rs__gclog, lib/internal.h) is a list of chunks of object
 * pointers.  Generation 0 is one nursery per thread, appended to by rs_new
 * with no atomic operation, so a young collection costs in proportion to the
 * young objects, not to the heap; generations 1, 2 and the permanent one are
 * global and change only while the world is stopped.  A tracked object's
 * trailer (struct rs__gcinfo) points back at its entry; a death stores NULL
 * into the entry (rs__gc_untrack).  Chunks are aligned to their size, so an
 * entry finds its chunk, and the chunk its log, by address arithmetic.
 *
 * Who may change a log (the invariant G1 is stated in lib/gc.c):
 *   - a nursery is appended to and compacted by its owner only; another
 *     thread's death of one of its objects takes the nursery's lock, which
 *     the owner's compaction holds;
 *   - a generation is changed only with the world stopped; a death stores
 *     NULL into its own entry (no death is in progress while the world is
 *     stopped: a death never parks between its count reaching zero and
 *     clearing its entry).
 */
#define RS_BUILDING 1
#include "collector.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(RS__CHUNK_ENTS <= RS__CHUNK_CAND_WORDS * 64,
	       "a chunk's candidate bits cover its entries");

/* The collector's state (lib/collector.h), here at the bottom of the
 * collector's files: every tracked birth and death reads it. */
struct rs__gc_state rs__gc = {
	.threshold = {2000, 10, 10},
	.cand_factor = 1,
	.enabled = 1,
	.stats_lock = PTHREAD_MUTEX_INITIALIZER,
};
int rs__gc_requested;

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
	c->holes = 0;
	c->ncand = 0;
	memset(c->cand, 0, sizeof(c->cand));
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
int rs__log_append(struct rs__gclog *log, void *obj)
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

/* A chunk's candidate bit for entry i.  The world is stopped, or the chunk
 * is a nursery's (whose bits nobody else touches): plain updates. */
static inline bool cand_take(struct rs__chunk *c, uint32_t i)
{
	uint64_t w = rs__load_relaxed(&c->cand[i / 64]), b = 1ull << (i % 64);

	if (!(w & b))
		return false;
	rs__store_relaxed(&c->cand[i / 64], w & ~b);
	return true;
}

static inline void cand_put(struct rs__chunk *c, uint32_t i)
{
	rs__store_relaxed(&c->cand[i / 64],
			  rs__load_relaxed(&c->cand[i / 64]) | 1ull << (i % 64));
}

static void cand_recount(struct rs__chunk *c)
{
	uint32_t n = 0, i;

	for (i = 0; i < RS__CHUNK_CAND_WORDS; i++)
		n += (uint32_t)__builtin_popcountll(rs__load_relaxed(&c->cand[i]));
	rs__store_relaxed(&c->ncand, n);
}

/* Compact a list of chunks in place, keeping entry order: live entries that
 * `keep` accepts move down, with their candidate bits (and a new bit where
 * `keep` says RS__KEEP_CAND); the others are dropped.  Returns the entries
 * kept; chunks left empty (their bits clear) are given to `rest`. */
size_t rs__log_compact(struct rs__gclog *log, rs__keep_fn keep, void *arg,
		      struct rs__chunk **rest)
{
	struct rs__chunk *w = log->first, *r, *next;
	uint32_t wi = 0, i, rn;
	size_t n = 0;
	bool cand;
	int k;
	void *o;

	for (r = log->first; r; r = r->next) {
		rn = r->n;
		for (i = 0; i < rn; i++) {
			o = rs__load_relaxed(&r->ent[i]);
			cand = cand_take(r, i);
			if (!o || !(k = keep(o, arg)))
				continue;
			if (wi == RS__CHUNK_ENTS) {
				w->n = wi;
				w = w->next;
				wi = 0;
			}
			rs__store_relaxed(&w->ent[wi], o);
			rs__store_relaxed(&rs__gc_of(rs__head_of(o))->ent,
					  &w->ent[wi]);
			if ((cand && k != RS__KEEP_CLEAN) || k == RS__KEEP_CAND)
				cand_put(w, wi);
			wi++;
			n++;
		}
	}
	for (r = log->first; r; r = r->next) {
		rs__store_relaxed(&r->holes, 0);
		cand_recount(r);
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

static int keep_all(void *obj, void *arg)
{
	(void)obj;
	(void)arg;
	return RS__KEEP;
}

void rs__chunks_free(struct rs__chunk *c)
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
void rs__log_move(struct rs__gclog *to, struct rs__gclog *from)
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

void rs__gc_flush_delta(struct rs__thread *t)
{
	int64_t c = rs__add_fetch_relaxed(&rs__gc.young_count, (int64_t)t->gc_delta);
	long t0 = rs__load_relaxed(&rs__gc.threshold[0]);

	t->gc_delta = 0;
	if (t0 > 0 && c > t0 && rs__load_relaxed(&rs__gc.enabled) &&
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
			rs__log_compact(log, keep_all, NULL, &rest);
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
	if (++t->gc_delta >= RS__GC_FLUSH_DELTA)
		rs__gc_flush_delta(t);
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
		rs__add_relaxed(&chunk_of(e)->holes, 1);
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
		if (--t->gc_delta <= -RS__GC_FLUSH_DELTA)
			rs__gc_flush_delta(t);
	}
}

/*
 * A decrement is about to leave the object with references (lib/object.c):
 * it may be the one that makes a cycle garbage, so the object becomes a
 * cycle candidate -- it loses CLEAN, once.  An old object's entry gets its
 * candidate bit, which the next candidate collection starts from (lib/gc.c);
 * a young one is examined by the young collection anyway, and its bit is
 * set when it is promoted, since its header still lacks CLEAN
 * (keep_survivor in lib/gc.c).  The caller holds a reference, so the object
 * is alive; a generation's entry cannot move under us (generations change
 * only while the world is stopped, and this thread is not stopped -- or is
 * the one that stopped it); a nursery's may (its owner compacts it), but it
 * stays in a chunk of that nursery, which is all we look at.
 */
void rs__gc_candidate(struct rs__head *h)
{
	uint32_t old = rs__and_relaxed(&h->bits, ~RS__B_CLEAN);
	void **e;
	struct rs__chunk *c;
	uint32_t i;
	size_t n;

	if (!(old & RS__B_CLEAN))
		return;		/* another decrement was first */
	e = rs__load_relaxed(&rs__gc_of(h)->ent);
	if (!e)
		return;		/* held by a collection, or not logged */
	c = chunk_of(e);
	if (c->log->owner)
		return;		/* young */
	i = (uint32_t)(e - c->ent);
	rs__or_relaxed(&c->cand[i / 64], 1ull << (i % 64));
	rs__add_relaxed(&c->ncand, 1);
	n = rs__add_fetch_relaxed(&rs__gc.candidates, 1);
	if (n >= rs__gc_cand_trigger() &&
	    rs__load_relaxed(&rs__gc.enabled) &&
	    !rs__load_relaxed(&rs__gc_requested))
		rs__store_relaxed(&rs__gc_requested, 1);
}

/* World stopped: the candidates count is the bits set in the generations
 * (entries whose object died since keep theirs until they are looked at). */
void rs__gc_count_candidates(void)
{
	struct rs__chunk *c;
	size_t n = 0;
	int g;

	for (g = 1; g < RS__GEN_PERM; g++)
		for (c = rs__gc.gens[g].first; c; c = c->next)
			n += rs__load_relaxed(&c->ncand);
	rs__store_relaxed(&rs__gc.candidates, n);
}

/* For tests: a generation's chunks, and the entries they hold (holes
 * included).  Racy unless the world is stopped or one thread runs. */
size_t rs__gc_log_chunks(int gen, size_t *entries)
{
	struct rs__chunk *c;
	size_t n = 0, e = 0;

	for (c = rs__gc.gens[gen].first; c; c = c->next, n++)
		e += c->n;
	if (entries)
		*entries = e;
	return n;
}

/* Move chunk `from`'s live entries, in order and with their candidate bits,
 * to chunk `to` from its entry wi on (world stopped); `to` may be `from`
 * itself (wi 0: compaction in place, every write at or below the read).
 * Returns the new end of `to`. */
static uint32_t chunk_pack(struct rs__chunk *to, uint32_t wi,
			   struct rs__chunk *from)
{
	uint32_t i, n = from->n;
	bool cand;
	void *o;

	for (i = 0; i < n; i++) {
		o = rs__load_relaxed(&from->ent[i]);
		cand = cand_take(from, i);
		if (!o)
			continue;
		rs__store_relaxed(&to->ent[wi], o);
		rs__store_relaxed(&rs__gc_of(rs__head_of(o))->ent, &to->ent[wi]);
		if (cand)
			cand_put(to, wi);
		wi++;
	}
	return wi;
}

/* Unlink chunk c (prev before it, or NULL) from the log and free it. */
static void chunk_drop(struct rs__gclog *log, struct rs__chunk *prev,
		       struct rs__chunk *c)
{
	if (prev)
		prev->next = c->next;
	else
		log->first = c->next;
	if (log->last == c)
		log->last = prev;
	free(c);
}

/*
 * World stopped: keep a generation's log in proportion to its live objects
 * although no collection compacts the whole of it any more.  Walking its
 * chunks in order, a chunk whose live entries fit in the room left in the
 * chunk before it is emptied into that one and freed (young collections
 * append a partly filled chunk at each promotion: these merge); a chunk at
 * least half holes is compacted within itself.  Entries keep their order
 * and candidate bits.  Moving stops once `budget` entries moved (each move
 * writes the object's trailer: the cost is per entry); the last chunk may
 * overshoot it.  Returns the entries moved.
 */
size_t rs__gen_tidy(struct rs__gclog *log, size_t budget)
{
	struct rs__chunk *c, *next, *prev = NULL;
	uint32_t n, holes, live, end;
	size_t moved = 0;

	for (c = log->first; c && moved < budget; c = next) {
		next = c->next;
		n = c->n;
		holes = rs__load_relaxed(&c->holes);
		live = holes < n ? n - holes : 0;
		if (prev && prev->n + live <= RS__CHUNK_ENTS &&
		    (holes || prev->n + n <= RS__CHUNK_ENTS)) {
			end = chunk_pack(prev, prev->n, c);	/* merge */
			moved += end - prev->n;
			log->n -= n - (end - prev->n);
			prev->n = end;
			cand_recount(prev);
			chunk_drop(log, prev, c);
			continue;
		}
		if (n && 2 * holes >= n) {		/* compact in place */
			end = chunk_pack(c, 0, c);
			moved += end;
			log->n -= n - end;
			c->n = end;
			rs__store_relaxed(&c->holes, 0);
			cand_recount(c);
			if (!end) {
				chunk_drop(log, prev, c);
				continue;
			}
		}
		prev = c;
	}
	return moved;
}

void rs__gc_thread_init(struct rs__thread *t)
{
	t->nursery.owner = t;
	rs__mutex_init(&t->nursery.lock, RS__L_NURSERY);
}

/* World stopped (threads attaching meanwhile have empty nurseries). */
struct rs__logset *rs__logset_new(int gen)
{
	uint32_t slot, nslots = rs__load_acquire(&rs__nslots);
	struct rs__logset *s = rs__fault(RS__FAULT_GCWORK) ? NULL :
		malloc(sizeof(*s) + (nslots + 4) * sizeof(s->v[0]));
	int g;

	if (!s)
		return NULL;
	s->n = 0;
	for (g = gen; g >= 1; g--)
		s->v[s->n++] = &rs__gc.gens[g];
	for (slot = 1; slot <= nslots; slot++)
		s->v[s->n++] = &rs__slots[slot]->nursery;
	return s;
}

/* A young survivor of the runtime that stops becomes old as a collection
 * would promote it (keep_survivor in lib/gc.c): a candidate unless CLEAN. */
static int keep_young(void *obj, void *arg)
{
	(void)arg;
	return (rs__bits(rs__head_of(obj)) & RS__B_CLEAN) ? RS__KEEP
							  : RS__KEEP_CAND;
}

/*
 * rs_shutdown, no thread attached: the objects still alive stay logged for
 * the next runtime (docs/design.md, "Restarting the runtime").  Their
 * trailers point at their entries, so the chunks that hold them are kept;
 * the nurseries' survivors move to generation 1 (as a young collection
 * would move them), every generation is compacted, and the chunks left
 * empty and the spare chunks are freed.  With nothing alive, nothing is
 * kept.
 */
void rs__gc_logs_shutdown(void)
{
	struct rs__gclog young = {0}, *log;
	struct rs__chunk *rest;
	uint32_t slot;
	int g;

	for (slot = 1; slot <= rs__nslots; slot++) {
		log = &rs__slots[slot]->nursery;
		rs__log_move(&young, log);
		rs__chunks_free(log->spare);
		log->spare = NULL;
	}
	rs__log_compact(&young, keep_young, NULL, &rest);
	rs__chunks_free(rest);
	rs__log_move(&rs__gc.gens[1], &young);
	for (g = 1; g <= RS__GEN_PERM; g++) {
		log = &rs__gc.gens[g];
		rs__log_compact(log, keep_all, NULL, &rest);
		rs__chunks_free(rest);
		rs__chunks_free(log->spare);
		log->spare = NULL;
	}
	rs__gc_count_candidates();
}

/* Every live tracked object is logged (G1), unless a collection in progress
 * holds it as garbage: a full collection relies on it (full_one). */
static void verify_logged(void *obj, void *arg)
{
	struct rs__head *h = rs__head_of(obj);
	uint32_t bits = rs__bits(h);
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
	struct rs__logset *set = rs__logset_new(2);
	long bad = 0;
	void *o;
	struct rs__head *h;

	if (!set)
		return 0;
	set->v[set->n++] = &rs__gc.gens[RS__GEN_PERM];
	RS__FOR_EACH_OBJ(set, o, {
		h = rs__head_of(o);
		if (!(rs__bits(h) & RS__B_TRACKED) ||
		    (rs__bits(h) & (RS__B_DYING | RS__B_DEAD | RS__B_FREE)) ||
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
