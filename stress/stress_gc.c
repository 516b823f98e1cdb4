/*
 * stress_gc.c - the cycle collector, weak references and finalizers under
 * concurrent mutation.
 *
 * Every worker thread loops over random operations on object graphs:
 *
 *   - builds structures of 1 to 8 objects: self-loops, rings, doubly-linked
 *     rings (two objects: a doubly-linked pair), chains, rings of objects
 *     with a finalizer, and a node and a map holding each other (a cycle
 *     through a map).  Ring members are of two tracked types of different
 *     sizes ("node", "box"), and may hold an untracked leaf;
 *   - keeps them in its own root slots (C variables holding counted
 *     references), where it also mutates them: it breaks and re-closes the
 *     ring of `next` links and of `prev` links, deletes and puts back the
 *     map entry that closes a node-map cycle, swaps and drops slots;
 *   - exposes other structures, immutable from then on, to every thread:
 *     in the fields of one shared root object (which points to itself) and
 *     in one shared map (rs_map_put / rs_map_del), and reads those back,
 *     borrowed (rs_get, rs_map_get) or counted (rs_get_ref, rs_map_get_ref,
 *     kept across safepoints);
 *   - goes offline and online, collects (rs_gc_collect(0), (1) and (2)),
 *     while automatic collections (young ones, and the old generations'
 *     from cycle candidates) run under low thresholds that thread 0 keeps
 *     changing (rs_gc_set_threshold);
 *   - makes weak references (with callbacks) to its structures.
 *
 * Finalizers (type "fin") run on the collecting thread; the one of the
 * first member of one ring in four resurrects its ring (rs_set into a
 * shared slot, which other threads verify and clear again); others call
 * rs_gc_collect from inside (it must return 0) and allocate new garbage.
 *
 * What the checks prove:
 *   - nothing reachable is freed: every object carries a magic word that
 *     destroy overwrites, and its structure id, index and length; after
 *     every safepoint (rs_safepoint, rs_offline/rs_online, rs_gc_collect)
 *     each thread walks every structure it can reach - its own slots
 *     against its model of their shape, the shared root's fields, map
 *     values, the counted references it keeps, the resurrected rings -
 *     and checks each object's magic, identity, links and refstore header
 *     (not DEAD, FREE or DYING);
 *   - a destroy callback runs once per object (the magic must be alive);
 *     finalizers run at most once (a flag in the object) and exactly once
 *     before a finalizable object is destroyed: finalizable objects live
 *     only in rings nobody breaks, so only the collector can free them;
 *   - weak references: while a structure is in the slot it was made for,
 *     rs_weakref_get returns its head; whatever it returns later is a live
 *     object of that structure or NULL; a callback runs at most once, and
 *     with rs_weakref_get already NULL;
 *   - nothing unreachable survives a full collection: a thread drops a
 *     structure that no other thread ever saw, runs rs_gc_collect(2), and
 *     its weak reference to the structure must give NULL;
 *   - at the end every root is dropped and full collections run: every
 *     object of every type must have been destroyed (births == deaths per
 *     type), every finalizable object finalized exactly once, every weak
 *     reference NULL with its callback run exactly once, rs_heap_verify()
 *     0 (also every ~250 ms during the run), rs_shutdown() 0 live objects.
 */
#include <sched.h>

#include "stress.h"

#define MAGIC_ALIVE 0x5afe5afe0b1ec7edULL
#define MAGIC_DEAD 0xdeaddeaddeaddeadULL

#define MAXN 8		/* objects in a structure */
#define NROOT 12	/* root slots per thread */
#define NWEAK 16	/* weak references kept per thread */
#define NHELD 4		/* counted references to exposed structures kept */
#define NSHARED 16	/* fields of the shared root */
#define NKEYS 48	/* keys of the shared map */
#define NRES 8		/* slots for resurrected rings */

/* Shape flags: a model of a structure's links. */
#define F_CIRC 0x01	/* the last `next` points back to the head */
#define F_PREV 0x02	/* `prev` links (doubly linked) */
#define F_PCIRC 0x04	/* ... and the head's `prev` is the last */
#define F_MAPCYC 0x08	/* a node whose extra is a map holding the node */
#define F_SELF 0x10	/* ... and the map's "self" entry is there */
#define F_FIN 0x20	/* members have a finalizer */

enum kind { K_NODE, K_BOX, K_FIN, K_LEAF, K_ROOT, NKINDS };

static const char *const kind_name[NKINDS] = {
	"node", "box", "fin", "leaf", "root",
};

/* node, box and fin objects.  next, prev and extra are reference fields;
 * the rest is written before the object is published (or, for magic and
 * fin_runs, atomically). */
struct gobj {
	struct gobj *next, *prev;
	void *extra;		/* a leaf, a map (F_MAPCYC) or NULL */
	_Atomic uint64_t magic;
	uint64_t sid;		/* structure id */
	uint32_t idx, n;	/* position in the structure, its length */
	uint32_t flags;		/* shape at build time */
	uint32_t kind;
	atomic_int fin_runs;	/* finalizer calls (fin only) */
};

struct gbox {
	struct gobj o;
	char pad[136];		/* another size class */
};

struct leaf {
	_Atomic uint64_t magic;
	uint64_t sid;
};

struct sroot {
	void *self;		/* the root is a cycle of its own */
	struct gobj *f[NSHARED];
	_Atomic uint64_t magic;
};

/* A weak reference's callback record (the callback's argument).  It lives
 * as long as the program, and is reused for a new weak reference only after
 * the old one's target died and its callback ran: a late second callback
 * would still land here, and find another weak reference named. */
struct wrec {
	_Atomic(void *) wr;	/* Sync: atomic; set by the owner thread */
	atomic_int calls;	/* Sync: atomic; the callback adds one */
};

struct slotmodel {
	uint64_t sid;		/* 0: empty */
	uint32_t n, flags;
};

struct wslot {
	void *wr;		/* a field: the weak reference, counted */
	struct wrec rec;	/* its callback's record */
	uint64_t sid;		/* the structure it was made for */
	int root;		/* ... in this root slot */
};

/* Sync: its thread only; main reads the weak slots after joining it. */
struct worker {
	int id;
	struct stress_rng rng;
	uint64_t serial;
	struct gobj *root[NROOT];	/* fields: counted references */
	struct slotmodel model[NROOT];
	struct wslot weak[NWEAK];
	struct gobj *held[NHELD];	/* counted, exposed structures */
};

static struct stress_counter c_ops = { "ops", 0 }, c_built = { "built", 0 },
	c_mutated = { "mutated", 0 }, c_collect = { "collect", 0 },
	c_verified = { "verified", 0 }, c_final = { "finalized", 0 },
	c_resurrect = { "resurrected", 0 }, c_weak = { "weakchecks", 0 },
	c_dead = { "deadchecks", 0 }, c_offline = { "offline", 0 },
	c_heap = { "heapverify", 0 }, c_old = { "oldcollections", 0 };

static struct worker *workers;
static struct sroot *shared_root;	/* counted (a C variable) */
static rs_map *shared_map;		/* counted */
static const rs_type *map_type;		/* refstore's type of maps */
static void *resurrected[NRES];		/* fields, set by finalizers */
static atomic_uint res_next;
static atomic_int final_phase;		/* finalizers stop resurrecting */
static atomic_long births[NKINDS], deaths[NKINDS];

/* ------------------------------------------------------------------------ */
/* Types                                                                    */
/* ------------------------------------------------------------------------ */

static void obj_traverse(void *obj, rs_visit_fn visit, void *arg)
{
	struct gobj *o = obj;

	visit(o->next, arg);
	visit(o->prev, arg);
	visit(o->extra, arg);
}

static void obj_destroy(void *obj)
{
	struct gobj *o = obj;
	uint64_t m = atomic_exchange_explicit(&o->magic, MAGIC_DEAD,
					      memory_order_relaxed);

	stress_check(m == MAGIC_ALIVE, "destroy of %s %p (sid %" PRIx64
		     " idx %u): magic %#" PRIx64 ", destroyed twice?",
		     kind_name[o->kind], obj, o->sid, o->idx, m);
	if (o->kind == K_FIN)
		stress_check(atomic_load(&o->fin_runs) == 1,
			     "fin %p (sid %" PRIx64 " idx %u) destroyed after "
			     "%d finalizer calls (expected exactly 1)", obj,
			     o->sid, o->idx, atomic_load(&o->fin_runs));
	atomic_fetch_add_explicit(&deaths[o->kind], 1, memory_order_relaxed);
}

static void fin_finalize(void *obj);

static const rs_type node_type = {
	"stress_node", sizeof(struct gobj), obj_traverse, NULL, obj_destroy, 0,
};
static const rs_type box_type = {
	"stress_box", sizeof(struct gbox), obj_traverse, NULL, obj_destroy, 0,
};
static const rs_type fin_type = {
	"stress_fin", sizeof(struct gobj), obj_traverse, fin_finalize,
	obj_destroy, 0,
};

static void leaf_destroy(void *obj)
{
	struct leaf *l = obj;
	uint64_t m = atomic_exchange_explicit(&l->magic, MAGIC_DEAD,
					      memory_order_relaxed);

	stress_check(m == MAGIC_ALIVE, "destroy of leaf %p: magic %#" PRIx64,
		     obj, m);
	atomic_fetch_add_explicit(&deaths[K_LEAF], 1, memory_order_relaxed);
}

static const rs_type leaf_type = {
	"stress_leaf", sizeof(struct leaf), NULL, NULL, leaf_destroy, 0,
};

static void root_traverse(void *obj, rs_visit_fn visit, void *arg)
{
	struct sroot *r = obj;

	visit(r->self, arg);
	for (int i = 0; i < NSHARED; i++)
		visit(r->f[i], arg);
}

static void root_destroy(void *obj)
{
	struct sroot *r = obj;

	atomic_store_explicit(&r->magic, MAGIC_DEAD, memory_order_relaxed);
	atomic_fetch_add_explicit(&deaths[K_ROOT], 1, memory_order_relaxed);
}

static const rs_type root_type = {
	"stress_root", sizeof(struct sroot), root_traverse, NULL, root_destroy, 0,
};

static const rs_type *const kind_type[] = {
	&node_type, &box_type, &fin_type, &leaf_type, &root_type,
};

static struct gobj *obj_new(enum kind k, uint64_t sid, uint32_t idx,
			    uint32_t n, uint32_t flags)
{
	struct gobj *o = rs_new(kind_type[k]);

	stress_check(o != NULL, "rs_new(%s) failed: errno %d", kind_name[k], errno);
	atomic_fetch_add_explicit(&births[k], 1, memory_order_relaxed);
	o->sid = sid;
	o->idx = idx;
	o->n = n;
	o->flags = flags;
	o->kind = k;
	atomic_store_explicit(&o->magic, MAGIC_ALIVE, memory_order_relaxed);
	return o;
}

static struct leaf *leaf_new(uint64_t sid)
{
	struct leaf *l = rs_new(&leaf_type);

	stress_check(l != NULL, "rs_new(leaf) failed: errno %d", errno);
	atomic_fetch_add_explicit(&births[K_LEAF], 1, memory_order_relaxed);
	l->sid = sid;
	atomic_store_explicit(&l->magic, MAGIC_ALIVE, memory_order_relaxed);
	return l;
}

/* ------------------------------------------------------------------------ */
/* Checks                                                                   */
/* ------------------------------------------------------------------------ */

static void check_obj(const struct gobj *o, uint64_t sid, uint32_t idx,
		      uint32_t n, int fin)
{
	uint64_t m;

	stress_check(o != NULL, "structure %" PRIx64 ": object %u of %u is "
		     "missing", sid, idx, n);
	m = atomic_load_explicit(&o->magic, memory_order_relaxed);
	stress_check(m == MAGIC_ALIVE && o->kind <= K_FIN, "structure %" PRIx64
		     " (reachable): object %u of %u at %p was destroyed (magic %#"
		     PRIx64 ")", sid, idx, n, (void *)o, m);
	stress_check_header(o, kind_type[o->kind], "object");
	stress_check(o->sid == sid && o->idx == idx && o->n == n,
		     "structure %" PRIx64 ": expected object %u of %u, found "
		     "%p = object %u of %u of structure %" PRIx64
		     " (freed and reused?)", sid, idx, n, (void *)o, o->idx,
		     o->n, o->sid);
	stress_check((o->kind == K_FIN) == fin, "structure %" PRIx64
		     ": object %u has kind %s", sid, idx, kind_name[o->kind]);
	stress_add(&c_verified, 1);
}

static void check_leaf(const struct leaf *l, uint64_t sid)
{
	uint64_t m = atomic_load_explicit(&l->magic, memory_order_relaxed);

	stress_check(m == MAGIC_ALIVE && l->sid == sid, "leaf %p of structure %"
		     PRIx64 " (reachable): magic %#" PRIx64 ", sid %" PRIx64,
		     (void *)l, sid, m, l->sid);
	stress_check_header(l, &leaf_type, "leaf");
}

/*
 * Walks a structure from its head with borrowed loads and checks it
 * against (sid, n, flags): every object alive and in place, `next` links
 * 0 -> 1 -> ... -> n-1 -> (head if F_CIRC, else NULL), `prev` links the
 * reverse (F_PREV; the head's prev is the last if F_PCIRC, else NULL).
 * The caller reaches the head from a root it holds or has borrowed since
 * its last safepoint, so every object here must be alive.
 */
static void verify_struct(struct gobj *head, uint64_t sid, uint32_t n,
			  uint32_t flags)
{
	struct gobj *p = head, *prev = NULL, *q;
	int fin = !!(flags & F_FIN);

	if (flags & F_MAPCYC) {
		rs_map *m;
		void *v;

		check_obj(head, sid, 0, 1, 0);
		m = rs_get(&head->extra);
		stress_check(m != NULL, "structure %" PRIx64 ": map missing", sid);
		stress_check_header(m, map_type, "map");
		v = rs_map_get(m, "self", 4);
		if (flags & F_SELF)
			stress_check(v == head, "structure %" PRIx64 ": map's "
				     "\"self\" is %p, expected %p (errno %d)",
				     sid, v, (void *)head, errno);
		else
			stress_check(v == NULL && errno == ENOENT, "structure %"
				     PRIx64 ": map's \"self\" is %p, expected "
				     "none", sid, v);
		v = rs_map_get(m, "leaf", 4);
		stress_check(v != NULL, "structure %" PRIx64 ": map's \"leaf\" "
			     "missing (errno %d)", sid, errno);
		check_leaf(v, sid);
		return;
	}
	for (uint32_t i = 0; i < n; i++) {
		void *x;

		check_obj(p, sid, i, n, fin);
		x = rs_get(&p->extra);
		if (x)
			check_leaf(x, sid);
		if (flags & F_PREV) {
			q = rs_get(&p->prev);
			if (i > 0)
				stress_check(q == prev, "structure %" PRIx64
					     ": object %u's prev is %p, expected"
					     " %p", sid, i, (void *)q, (void *)prev);
		}
		q = rs_get(&p->next);
		if (i + 1 < n) {
			prev = p;
			p = q;
		} else {
			stress_check(q == (flags & F_CIRC ? head : NULL),
				     "structure %" PRIx64 " (n %u, flags %#x): "
				     "last next is %p, expected %p", sid, n,
				     flags, (void *)q,
				     (void *)(flags & F_CIRC ? head : NULL));
		}
	}
	if (flags & F_PREV) {
		q = rs_get(&head->prev);
		stress_check(q == (flags & F_PCIRC ? p : NULL), "structure %"
			     PRIx64 ": head's prev is %p, expected %p", sid,
			     (void *)q, (void *)(flags & F_PCIRC ? p : NULL));
	}
}

/* An exposed structure is immutable: its head describes it. */
static void verify_exposed(struct gobj *head)
{
	uint64_t m = atomic_load_explicit(&head->magic, memory_order_relaxed);

	stress_check(m == MAGIC_ALIVE, "exposed structure head %p (reachable) "
		     "was destroyed (magic %#" PRIx64 ")", (void *)head, m);
	stress_check(head->idx == 0, "exposed value %p is object %u, not a head",
		     (void *)head, head->idx);
	verify_struct(head, head->sid, head->n, head->flags);
}

/* A resurrected ring: all alive, every member finalized at most once (the
 * collection that resurrected it may still be running the finalizers of
 * the other members). */
static void verify_resurrected(struct gobj *p)
{
	verify_struct(p, p->sid, p->n, p->flags);
	for (uint32_t i = 0; i < p->n; i++, p = rs_get(&p->next))
		stress_check(atomic_load(&p->fin_runs) <= 1, "resurrected fin "
			     "%p (sid %" PRIx64 " idx %u): %d finalizer calls",
			     (void *)p, p->sid, p->idx, atomic_load(&p->fin_runs));
}

static void map_key(char *buf, unsigned k)
{
	snprintf(buf, 8, "g%02u", k);
}

/* After every safepoint: everything this thread can reach. */
static void verify_all(struct worker *w)
{
	char key[8];

	for (int k = 0; k < NROOT; k++) {
		struct slotmodel *m = &w->model[k];
		struct gobj *head = rs_get(&w->root[k]);

		if (!m->sid) {
			stress_check(head == NULL, "thread %d: root %d should be "
				     "empty, holds %p", w->id, k, (void *)head);
			continue;
		}
		stress_check(head != NULL, "thread %d: root %d lost structure %"
			     PRIx64, w->id, k, m->sid);
		verify_struct(head, m->sid, m->n, m->flags);
	}
	for (int i = 0; i < NSHARED; i++) {
		struct gobj *p = rs_get(&shared_root->f[i]);

		if (p)
			verify_exposed(p);
	}
	for (int i = 0; i < NHELD; i++)
		if (w->held[i])
			verify_exposed(w->held[i]);
	for (int i = 0; i < NRES; i++) {
		struct gobj *p = rs_get(&resurrected[i]);

		if (p)
			verify_resurrected(p);
	}
	for (int i = 0; i < 2; i++) {
		struct gobj *p;

		map_key(key, (unsigned)stress_below(&w->rng, NKEYS));
		p = rs_map_get(shared_map, key, 3);
		if (p)
			verify_exposed(p);
		else
			stress_check(errno == ENOENT, "rs_map_get(%s): errno %d",
				     key, errno);
	}
}

/* ------------------------------------------------------------------------ */
/* Finalizers and weak-reference callbacks                                  */
/* ------------------------------------------------------------------------ */

/* A finalizable ring walked from any member (inside a finalizer). */
static void verify_ring_from(struct gobj *o)
{
	struct gobj *p = o;

	for (uint32_t i = 0; i < o->n; i++) {
		check_obj(p, o->sid, (o->idx + i) % o->n, o->n, 1);
		p = rs_get(&p->next);
	}
	stress_check(p == o, "fin ring %" PRIx64 " is not a ring", o->sid);
}

static void fin_finalize(void *obj)
{
	struct gobj *o = obj;
	int runs = atomic_fetch_add(&o->fin_runs, 1);
	uint64_t m = atomic_load_explicit(&o->magic, memory_order_relaxed);

	stress_check(m == MAGIC_ALIVE, "finalizer of %p (sid %" PRIx64 " idx %u)"
		     " called on a destroyed object", obj, o->sid, o->idx);
	stress_check(runs == 0, "finalizer of %p (sid %" PRIx64 " idx %u) ran "
		     "%d times", obj, o->sid, o->idx, runs + 1);
	stress_add(&c_final, 1);
	verify_ring_from(o);	/* the collector holds the whole ring */
	if (o->idx == 0 && (o->sid * 0x9e3779b97f4a7c15ULL) >> 62 == 0 &&
	    !atomic_load(&final_phase)) {
		unsigned slot = atomic_fetch_add(&res_next, 1) % NRES;

		stress_check(rs_set(&resurrected[slot], o) == 0,
			     "rs_set from a finalizer failed: errno %d", errno);
		stress_add(&c_resurrect, 1);
	} else if (o->idx == 1) {
		struct gobj *g;
		long r = rs_gc_collect(0);

		stress_check(r == 0, "rs_gc_collect from a finalizer returned "
			     "%ld (expected 0)", r);
		g = obj_new(K_NODE, 1, 0, 1, F_CIRC);	/* new garbage */
		g->next = g;		/* the field's reference: */
		rs_incref(g);
		rs_decref(g);
	}
}

/* Counts itself last: once calls is 1 the record may be reused. */
static void weak_callback(void *wr, void *arg)
{
	struct wrec *rec = arg;
	void *named = atomic_load(&rec->wr), *t = rs_weakref_get(wr);
	int calls;

	stress_check(named == wr, "weak reference callback got %p, its record "
		     "names %p (a second callback for an old one?)", wr, named);
	stress_check(t == NULL, "weak reference %p: callback ran while its "
		     "target %p is still alive", wr, t);
	calls = atomic_fetch_add(&rec->calls, 1);
	stress_check(calls == 0, "weak reference %p: callback ran %d times",
		     wr, calls + 1);
}

/* ------------------------------------------------------------------------ */
/* Building                                                                 */
/* ------------------------------------------------------------------------ */

/* A new structure (private, one counted reference to its head). */
static struct gobj *build(struct worker *w, uint32_t *np, uint32_t *flagsp)
{
	struct gobj *v[MAXN];
	uint64_t sid = ((uint64_t)(w->id + 2) << 40) | ++w->serial;
	uint32_t n, flags;
	unsigned shape = (unsigned)stress_below(&w->rng, 12);

	stress_add(&c_built, 1);
	if (shape == 0) {		/* node <-> map */
		struct gobj *o = obj_new(K_NODE, sid, 0, 1, F_MAPCYC | F_SELF);
		rs_map *m = rs_map_new();
		struct leaf *l = leaf_new(sid);

		stress_check(m != NULL, "rs_map_new failed: errno %d", errno);
		o->extra = m;		/* private: a plain store */
		stress_check(rs_map_put(m, "leaf", 4, l) == 0 &&
			     rs_map_put(m, "self", 4, o) == 0,
			     "rs_map_put failed: errno %d", errno);
		rs_decref(l);
		*np = 1;
		*flagsp = F_MAPCYC | F_SELF;
		return o;
	}
	switch (shape) {
	case 1: n = 1; flags = F_CIRC; break;			/* self-loop */
	case 2: n = 2; flags = F_CIRC | F_PREV | F_PCIRC; break;	/* pair */
	case 3: case 4: n = 2 + (uint32_t)stress_below(&w->rng, MAXN - 1);
		flags = F_CIRC | F_PREV | F_PCIRC; break;
	case 5: n = 1 + (uint32_t)stress_below(&w->rng, MAXN);
		flags = 0; break;				/* chain */
	case 6: case 7: n = 1 + (uint32_t)stress_below(&w->rng, MAXN);
		flags = F_CIRC | F_FIN; break;			/* fin ring */
	default: n = 1 + (uint32_t)stress_below(&w->rng, MAXN);
		flags = F_CIRC; break;				/* ring */
	}
	for (uint32_t i = 0; i < n; i++) {
		enum kind k = flags & F_FIN ? K_FIN :
			      stress_below(&w->rng, 3) == 0 ? K_BOX : K_NODE;

		v[i] = obj_new(k, sid, i, n, flags);
		if (!(flags & F_FIN) && stress_below(&w->rng, 3) == 0)
			v[i]->extra = leaf_new(sid);
	}
	/* links: each takes one counted reference */
	for (uint32_t i = 0; i + 1 < n; i++)
		v[i]->next = rs_incref(v[i + 1]);
	if (flags & F_CIRC)
		v[n - 1]->next = rs_incref(v[0]);
	if (flags & F_PREV) {
		for (uint32_t i = 1; i < n; i++)
			v[i]->prev = rs_incref(v[i - 1]);
		v[0]->prev = rs_incref(v[n - 1]);
	}
	for (uint32_t i = 1; i < n; i++)
		rs_decref(v[i]);	/* still held by a link */
	*np = n;
	*flagsp = flags;
	return v[0];
}

/* ------------------------------------------------------------------------ */
/* Operations                                                               */
/* ------------------------------------------------------------------------ */

/*
 * Weak slot i gets a weak reference (with a callback) to root k's head,
 * unless its current one is still in use: its target alive, or its
 * callback not run yet.  Or, one time in four, a weak reference without
 * callback that dies at once, while its target lives.
 */
static void weak_make(struct worker *w, int i, int k)
{
	struct wslot *ws = &w->weak[i];
	struct gobj *head = rs_get(&w->root[k]), *t;
	void *wr = rs_get(&ws->wr);

	if (!head)
		return;
	if (stress_below(&w->rng, 4) == 0) {
		wr = rs_weakref_new(head, NULL, NULL);
		stress_check(wr != NULL, "rs_weakref_new failed: errno %d", errno);
		t = rs_weakref_get(wr);
		stress_check(t == head, "a new weak reference to %p gave %p",
			     (void *)head, (void *)t);
		rs_decref(t);
		rs_decref(wr);
		return;
	}
	if (wr) {
		t = rs_weakref_get(wr);
		if (t) {
			rs_decref(t);
			return;
		}
		if (atomic_load(&ws->rec.calls) != 1)
			return;		/* the callback is still to come */
		rs_clear(&ws->wr);
	}
	atomic_store(&ws->rec.calls, 0);
	wr = rs_weakref_new(head, weak_callback, &ws->rec);
	stress_check(wr != NULL, "rs_weakref_new failed: errno %d", errno);
	atomic_store(&ws->rec.wr, wr);
	rs_set_steal(&ws->wr, wr);
	ws->sid = w->model[k].sid;
	ws->root = k;
}

/* rs_weakref_get: the head while the slot still holds the structure;
 * otherwise NULL or a live object of that structure. */
static void weak_check(struct worker *w, int i)
{
	struct wslot *ws = &w->weak[i];
	struct gobj *t;
	void *wr = rs_get(&ws->wr);

	if (!wr)
		return;
	t = rs_weakref_get(wr);
	stress_add(&c_weak, 1);
	if (w->model[ws->root].sid == ws->sid)
		stress_check(t == rs_get(&w->root[ws->root]), "thread %d: weak "
			     "reference to the head of structure %" PRIx64
			     " (root %d) gave %p", w->id, ws->sid, ws->root,
			     (void *)t);
	if (t) {
		uint64_t m = atomic_load_explicit(&t->magic, memory_order_relaxed);

		stress_check(m == MAGIC_ALIVE && t->sid == ws->sid && t->idx == 0,
			     "thread %d: weak reference to structure %" PRIx64
			     " gave %p: magic %#" PRIx64 ", sid %" PRIx64, w->id,
			     ws->sid, (void *)t, m, t->sid);
		stress_check_header(t, kind_type[t->kind], "weak reference target");
		rs_decref(t);
	}
}

static void drop_root(struct worker *w, int k)
{
	rs_clear(&w->root[k]);
	w->model[k].sid = 0;
}

/*
 * Drops root k, which no other thread ever saw, with a weak reference to
 * its head, and collects everything: the weak reference must be cleared
 * (its target freed, or, for a finalizable ring, at least found garbage:
 * the collector clears weak references before finalizers resurrect).
 */
static void drop_and_collect(struct worker *w, int k)
{
	struct gobj *head = rs_get(&w->root[k]);
	uint64_t sid = w->model[k].sid;
	void *wr, *t;
	long r;

	if (!head)
		return;
	wr = rs_weakref_new(head, NULL, NULL);
	stress_check(wr != NULL, "rs_weakref_new failed: errno %d", errno);
	drop_root(w, k);
	r = rs_gc_collect(2);
	stress_check(r >= 0, "rs_gc_collect(2): %ld, errno %d", r, errno);
	stress_add(&c_collect, 1);
	t = rs_weakref_get(wr);
	stress_check(t == NULL, "thread %d: structure %" PRIx64 " was dropped "
		     "unreachable, but is alive after rs_gc_collect(2) (%p)",
		     w->id, sid, t);
	rs_decref(wr);
	stress_add(&c_dead, 1);
	verify_all(w);
}

/* Changes the links of a structure only this thread sees. */
static void mutate(struct worker *w, int k)
{
	struct slotmodel *m = &w->model[k];
	struct gobj *head = rs_get(&w->root[k]), *last;
	int rc;

	if (!m->sid || (m->flags & F_FIN))
		return;			/* fin rings are never broken */
	stress_add(&c_mutated, 1);
	if (m->flags & F_MAPCYC) {
		rs_map *map = rs_get(&head->extra);

		if (m->flags & F_SELF)
			rc = rs_map_del(map, "self", 4);
		else
			rc = rs_map_put(map, "self", 4, head);
		stress_check(rc == 0, "map of structure %" PRIx64 ": %s failed: "
			     "errno %d", m->sid, m->flags & F_SELF ? "del" : "put",
			     errno);
		m->flags ^= F_SELF;
		return;
	}
	last = head;
	for (uint32_t i = 1; i < m->n; i++)
		last = rs_get(&last->next);
	if ((m->flags & F_PREV) && stress_below(&w->rng, 2)) {
		rc = m->flags & F_PCIRC ? rs_clear(&head->prev)
					: rs_set(&head->prev, last);
		m->flags ^= F_PCIRC;
	} else {
		rc = m->flags & F_CIRC ? rs_clear(&last->next)
				       : rs_set(&last->next, head);
		m->flags ^= F_CIRC;
	}
	stress_check(rc == 0, "rs_set/rs_clear failed: errno %d", errno);
}

/* Builds a structure and gives it to every thread (immutable from now). */
static void expose(struct worker *w)
{
	uint32_t n, flags;
	struct gobj *head = build(w, &n, &flags);
	char key[8];

	if (stress_below(&w->rng, 2)) {
		rs_set_steal(&shared_root->f[stress_below(&w->rng, NSHARED)], head);
		return;
	}
	map_key(key, (unsigned)stress_below(&w->rng, NKEYS));
	stress_check(rs_map_put(shared_map, key, 3, head) == 0,
		     "rs_map_put(%s) failed: errno %d", key, errno);
	rs_decref(head);
}

/* Takes a counted reference to an exposed structure, kept across
 * safepoints. */
static void hold(struct worker *w)
{
	int i = (int)stress_below(&w->rng, NHELD);
	struct gobj *p;
	char key[8];

	rs_decref(w->held[i]);
	if (stress_below(&w->rng, 2)) {
		p = rs_get_ref(&shared_root->f[stress_below(&w->rng, NSHARED)]);
	} else {
		map_key(key, (unsigned)stress_below(&w->rng, NKEYS));
		p = rs_map_get_ref(shared_map, key, 3);
		stress_check(p || errno == ENOENT, "rs_map_get_ref: errno %d",
			     errno);
	}
	w->held[i] = p;
	if (p)
		verify_exposed(p);
}

static void one_op(struct worker *w)
{
	int k = (int)stress_below(&w->rng, NROOT);
	unsigned op = (unsigned)stress_below(&w->rng, 1000);
	char key[8];

	if (op < 200) {				/* build into a root */
		uint32_t n, flags;
		struct gobj *head = build(w, &n, &flags);

		rs_set_steal(&w->root[k], head);
		w->model[k] = (struct slotmodel){ head->sid, n, flags };
	} else if (op < 450) {
		mutate(w, k);
	} else if (op < 530) {
		expose(w);
	} else if (op < 560) {
		map_key(key, (unsigned)stress_below(&w->rng, NKEYS));
		stress_check(rs_map_del(shared_map, key, 3) == 0 || errno == ENOENT,
			     "rs_map_del(%s): errno %d", key, errno);
	} else if (op < 600) {
		hold(w);
	} else if (op < 640) {			/* swap two roots */
		int j = (int)stress_below(&w->rng, NROOT);
		struct gobj *a = rs_get_ref(&w->root[k]), *b = rs_get_ref(&w->root[j]);
		struct slotmodel t = w->model[k];

		rs_set_steal(&w->root[k], b);
		rs_set_steal(&w->root[j], a);
		w->model[k] = w->model[j];
		w->model[j] = t;
		for (int i = 0; i < NWEAK; i++)	/* weak slots follow */
			if (w->weak[i].root == k || w->weak[i].root == j)
				w->weak[i].root ^= k ^ j;
	} else if (op < 680) {
		drop_root(w, k);
	} else if (op < 720) {
		weak_make(w, (int)stress_below(&w->rng, NWEAK), k);
	} else if (op < 840) {
		weak_check(w, (int)stress_below(&w->rng, NWEAK));
	} else if (op < 850) {
		int r = (int)stress_below(&w->rng, NRES);
		struct gobj *p = rs_get(&resurrected[r]);

		if (p)
			verify_resurrected(p);
		rs_clear(&resurrected[r]);	/* garbage again */
	} else if (op < 853) {
		drop_and_collect(w, k);
	} else if (op < 858) {
		int g = (int)stress_below(&w->rng, 10);
		long r = rs_gc_collect(g < 6 ? 0 : g < 9 ? 1 : 2);

		stress_check(r >= 0, "rs_gc_collect: %ld, errno %d", r, errno);
		stress_add(&c_collect, 1);
		verify_all(w);
	} else if (op < 870) {
		rs_offline();
		if (stress_below(&w->rng, 4) == 0)
			usleep(20);
		else
			sched_yield();
		rs_online();
		stress_add(&c_offline, 1);
		verify_all(w);
	} else if (op < 1000) {
		rs_safepoint();
		verify_all(w);
	}
}

static void *worker_main(void *arg)
{
	struct worker *w = &workers[(intptr_t)arg];
	uint64_t next_verify = 0, next_threshold = 0;
	static const long t0s[] = { 50, 200, 700, 2000 };

	stress_check(rs_thread_attach() == 0, "rs_thread_attach failed");
	while (!stress_stopping()) {
		for (int i = 0; i < 64; i++)
			one_op(w);
		stress_add(&c_ops, 64);
		if (w->id == 0 && stress_now_ns() >= next_verify) {
			long bad = rs_heap_verify();

			stress_check(bad == 0, "rs_heap_verify: %ld problems", bad);
			stress_add(&c_heap, 1);
			next_verify = stress_now_ns() + 250000000u;
			verify_all(w);
		}
		if (w->id == 0 && stress_now_ns() >= next_threshold) {
			rs_gc_set_threshold(t0s[stress_below(&w->rng, 4)],
					    2 + (long)stress_below(&w->rng, 9),
					    2 + (long)stress_below(&w->rng, 9));
			next_threshold = stress_now_ns() + 400000000u;
		}
	}
	rs_safepoint();
	verify_all(w);
	for (int k = 0; k < NROOT; k++)
		drop_root(w, k);
	for (int i = 0; i < NHELD; i++) {
		rs_decref(w->held[i]);
		w->held[i] = NULL;
	}
	/* the weak slots stay for the final check (fields: main reads them) */
	rs_thread_detach();
	return NULL;
}

/* ------------------------------------------------------------------------ */
/* The end                                                                  */
/* ------------------------------------------------------------------------ */

static long alive_of(int k)
{
	return atomic_load(&births[k]) - atomic_load(&deaths[k]);
}

static long alive_total(void)
{
	long sum = 0;

	for (int k = 0; k < NKINDS; k++)
		sum += alive_of(k);
	return sum;
}

static void final_checks(void)
{
	uint64_t end = stress_now_ns() + 5000000000u;
	int rounds = 0;

	atomic_store(&final_phase, 1);
	rs_decref(shared_root);		/* a garbage cycle (self) now */
	stress_check(rs_map_free(shared_map) == 0, "rs_map_free failed: errno %d",
		     errno);
	do {
		for (int i = 0; i < NRES; i++)
			rs_clear(&resurrected[i]);
		stress_check(rs_gc_collect(2) >= 0, "rs_gc_collect failed");
		rs_safepoint();
		rounds++;
	} while ((alive_total() || rounds < 3) && stress_now_ns() < end);
	for (int k = 0; k < NKINDS; k++)
		stress_check(alive_of(k) == 0, "unreachable objects survive full "
			     "collections: %ld %s objects alive of %ld made "
			     "(%d rounds)", alive_of(k), kind_name[k],
			     atomic_load(&births[k]), rounds);
	stress_check(stress_get(&c_final) == atomic_load(&births[K_FIN]),
		     "%ld finalizer calls for %ld finalizable objects",
		     stress_get(&c_final), atomic_load(&births[K_FIN]));
	for (int t = 0; t < stress_threads; t++) {
		struct worker *w = &workers[t];

		for (int i = 0; i < NWEAK; i++) {
			struct wslot *ws = &w->weak[i];
			void *wr = rs_get(&ws->wr), *x;

			if (!wr)
				continue;
			x = rs_weakref_get(wr);
			stress_check(x == NULL, "weak reference %p to structure %"
				     PRIx64 " still gives %p after all died",
				     wr, ws->sid, x);
			stress_check(atomic_load(&ws->rec.calls) == 1,
				     "weak reference %p to structure %" PRIx64
				     ": %d callbacks, expected 1", wr, ws->sid,
				     atomic_load(&ws->rec.calls));
			rs_clear(&ws->wr);
		}
	}
	stress_check(rs_heap_verify() == 0, "rs_heap_verify at the end");
}

int main(int argc, char **argv)
{
	pthread_t *t;

	stress_start(argc, argv, "stress_gc", (struct stress_counter *[]){
		     &c_ops, &c_built, &c_mutated, &c_collect, &c_verified,
		     &c_final, &c_resurrect, &c_weak, &c_dead, &c_offline,
		     &c_heap, &c_old, NULL });
	stress_check(rs_init(NULL) == 0 && rs_thread_attach() == 0,
		     "rs_init/rs_thread_attach failed");
	rs_gc_set_threshold(200, 5, 5);
	workers = calloc((size_t)stress_threads, sizeof(*workers));
	t = calloc((size_t)stress_threads, sizeof(*t));
	stress_check(workers && t, "out of memory");
	for (int i = 0; i < stress_threads; i++) {
		workers[i].id = i;
		stress_rng_init(&workers[i].rng, (uint64_t)i);
	}
	shared_root = rs_new(&root_type);
	stress_check(shared_root != NULL, "rs_new(root) failed");
	atomic_fetch_add(&births[K_ROOT], 1);
	atomic_store(&shared_root->magic, MAGIC_ALIVE);
	shared_root->self = rs_incref(shared_root);
	rs_publish(shared_root);
	shared_map = rs_map_new();
	stress_check(shared_map != NULL, "rs_map_new failed");
	map_type = rs_type_of(shared_map);

	stress_spawn(t, stress_threads, worker_main);
	stress_join(t, stress_threads);
	{	/* collections of generation 2 while the workers ran: the
		 * explicit ones and the automatic ones from cycle candidates */
		struct rs_gc_stats st;

		if (rs_gc_get_stats(2, &st) == 0)
			stress_add(&c_old, (long)st.collections);
	}
	final_checks();
	stress_shutdown(0);
	free(workers);
	free(t);
	return stress_finish();
}
