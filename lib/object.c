/*
 * object.c - objects: allocation, the decrement entry (rs_decref's slow
 * path, which logs), the destruction cascade, publication and reference
 * fields.  The counts themselves (biased counting: increments and
 * decrements applied, merges, owner queues) are in lib/brc.c.
 *
 * The cascade
 * -----------
 * A dying object is linked through its `tid` field into its thread's `dying`
 * list; the loop pops one, decrements each child at once (traverse with
 * rs__decref_now, no grace period), calls destroy and frees it: no
 * recursion, no allocation.  A thread about to park may give the children
 * back ahead of the rest (rs__release_dying); the object is then RELEASED,
 * and the cascade only clears its weak references, calls destroy and frees.
 *
 * Invariants
 * ----------
 * (P1) A published object's children are published.
 * A dying object's children may be decremented at once: no borrow survives.
 *
 * The argument: docs/design.md §8 (the cascade), §6 (publication).
 */
#define RS_BUILDING 1
#include "internal.h"
#include "alloc.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------- */
/* Allocation and destruction                                              */
/* ---------------------------------------------------------------------- */

void *rs_new(const rs_type *type)
{
	struct rs__thread *t = rs__api_thread(RS__API_OR_DETACHING);
	struct rs__head *h;
	size_t bytes;

	if (!t)
		return NULL;
	if (!type || type->size > RS_MAX_OBJECT_SIZE) {
		errno = EINVAL;
		return NULL;
	}
	/* an offline thread counts as stopped: a collection may be moving
	 * its nursery right now */
	if (RS_DEBUG && rs__load_relaxed(&t->state) != RS__T_ONLINE)
		rs__die("rs_new", NULL, "called by an offline thread (object "
			"of type '%s')", type->name ? type->name : "?");
	bytes = rs__type_bytes(type);
	h = rs__obj_alloc(t, bytes);
	if (!h) {
		errno = ENOMEM;
		return NULL;
	}
	h->tid = rs__tls.tid;
	h->local = 1;
	h->bits = 0;
	h->shared = 0;
	h->type = type;
	if (rs__type_tracked(type)) {
		h->bits = RS__B_TRACKED | RS__B_CLEAN;
		if (rs__gc_track(t, h)) {
			rs__obj_free(h, bytes);
			errno = ENOMEM;
			return NULL;
		}
	}
	rs__bump_owner(&t->c.allocated, 1);
	rs__bump_owner(&t->c.bytes_allocated, bytes);
	return h + 1;
}

/* Debug builds keep destroyed objects, filled with RS_FILL_DEAD and marked
 * DEAD, in a quarantine ring, so a later use is reported rather than
 * corrupting whatever reused the memory. */
#define RS_FILL_DEAD 0xdb
#define RS_QUARANTINE (1u << 16)
static struct rs__head *quarantine[RS_QUARANTINE];
static size_t quarantine_pos;
static pthread_mutex_t quarantine_lock = PTHREAD_MUTEX_INITIALIZER;

static void obj_release(struct rs__head *h, size_t bytes)
{
	struct rs__head *old;

	if (RS_DEBUG) {
		memset(h + 1, RS_FILL_DEAD, h->type->size);
		rs__set_owner(h, RS__TID_DEAD);
		rs__or_relaxed(&h->bits, RS__B_DEAD);
		/* a read of a quarantined object is a use after free */
		POISON(h + 1, h->type->size);
		VG_NOACCESS(h + 1, h->type->size);
		pthread_mutex_lock(&quarantine_lock);
		old = quarantine[quarantine_pos];
		quarantine[quarantine_pos] = h;
		quarantine_pos = (quarantine_pos + 1) % RS_QUARANTINE;
		pthread_mutex_unlock(&quarantine_lock);
		if (old)
			rs__obj_free(old, rs__type_bytes(old->type));
		return;
	}
	rs__obj_free(h, bytes);
}

static void obj_free(struct rs__thread *t, struct rs__head *h)
{
	size_t bytes = rs__type_bytes(h->type);

	rs__bump_owner(&t->c.freed, 1);
	rs__bump_owner(&t->c.bytes_freed, bytes);
	obj_release(h, bytes);
}

/* A thread that is not attached frees an object no one can reach (a dead
 * map's nodes, freed by the reclaimer: lib/map.c); counted globally. */
uint64_t rs__unattached_freed[2];

void rs__obj_free_unattached(struct rs__head *h)
{
	size_t bytes = rs__type_bytes(h->type);

	rs__add_relaxed(&rs__unattached_freed[0], 1);
	rs__add_relaxed(&rs__unattached_freed[1], bytes);
	obj_release(h, bytes);
}

/* The collector frees an object of its garbage (lib/gc.c): unlogged, its
 * weak references cleared, its references given back already. */
void rs__obj_destroy(struct rs__thread *t, struct rs__head *h)
{
	rs__store_relaxed(&h->bits, rs__load_relaxed(&h->bits) | RS__B_DYING);
	/* a destroy callback of other garbage may have made one (misuse,
	 * but the table must not keep a freed object) */
	if (rs__load_relaxed(&h->bits) & RS__B_WEAKREFS)
		rs__weak_clear(t, h);
	if (h->type->destroy)
		h->type->destroy(h + 1);
	obj_free(t, h);
}

void rs__quarantine_flush(void)
{
	size_t i;

	pthread_mutex_lock(&quarantine_lock);
	for (i = 0; i < RS_QUARANTINE; i++) {
		if (quarantine[i])
			rs__obj_free(quarantine[i],
				     rs__type_bytes(quarantine[i]->type));
		quarantine[i] = NULL;
	}
	quarantine_pos = 0;
	pthread_mutex_unlock(&quarantine_lock);
}

/* The count is zero: this thread alone may touch the header now, so the
 * bit is set with a plain load and store, not a read-modify-write.  A
 * tracked object leaves its collector log here, before the thread can park
 * in the cascade: a collection never meets a dying object in a log. */
void rs__push_dying(struct rs__thread *t, struct rs__head *h)
{
	uint32_t bits = rs__load_relaxed(&h->bits);

	if (bits & RS__B_TRACKED)
		rs__gc_untrack(t, h);
	rs__store_relaxed(&h->bits, bits | RS__B_DYING);
	rs__set_dying_next(h, t->dying);
	t->dying = h;
}

static void cascade_visit(void *child, void *arg)
{
	if (child)
		rs__decref_now(arg, child);
}

void rs__cascade(struct rs__thread *t)
{
	struct rs__head *h;
	const rs_type *type;
	unsigned n = 0;
	bool may_park = t == rs__self() && t->no_reentry;

	while ((h = t->dying)) {
		t->dying = rs__dying_next(h);
		type = h->type;
		if (rs__load_relaxed(&h->bits) & RS__B_WEAKREFS)
			rs__weak_clear(t, h);
		if (type->traverse &&
		    !(rs__load_relaxed(&h->bits) & RS__B_RELEASED))
			type->traverse(h + 1, cascade_visit, t);
		if (type->destroy)
			type->destroy(h + 1);
		obj_free(t, h);
		/* A long cascade is still a safepoint: let a stop through. */
		if (may_park && (++n & 1023) == 0)
			rs__safepoint_poll(t);
	}
}

/*
 * Give back the references that t's dying objects hold (their traverse, as
 * the cascade would), so that what only they kept alive is dying too, until
 * nothing more dies or `budget` objects were released; and nothing else:
 * weak-reference clearing, destroy callbacks and the memory wait for
 * rs__cascade, which skips the traverse of an object marked RELEASED.  Used
 * by a thread about to park for a stop (rs__defer_before_park): a structure
 * dropped just before the stop must not look alive to the collection.
 * Order: a parent stays before the children it released (they are pushed
 * after it was taken), so a destroy callback still runs before its
 * children are freed; released objects go first, what died meanwhile after
 * them.  Returns the objects released.
 */
size_t rs__release_dying(struct rs__thread *t, size_t budget)
{
	struct rs__head *h, *done = NULL, *last = NULL;
	uint32_t bits;
	size_t n = 0;

	while (n < budget && (h = t->dying)) {
		t->dying = rs__dying_next(h);
		bits = rs__load_relaxed(&h->bits);
		if (!(bits & RS__B_RELEASED)) {	/* not by an earlier call */
			rs__store_relaxed(&h->bits, bits | RS__B_RELEASED);
			if (h->type->traverse)
				h->type->traverse(h + 1, cascade_visit, t);
		}
		if (last)
			rs__set_dying_next(last, h);
		else
			done = h;
		last = h;
		n++;
	}
	if (last) {
		rs__set_dying_next(last, t->dying);
		t->dying = done;
	}
	return n;
}

/* ---------------------------------------------------------------------- */
/* Counting                                                                */
/* ---------------------------------------------------------------------- */

/*
 * Every decrement the inline rs_decref does not apply itself.  The common
 * one first: the owner's last reference to a private untracked object goes
 * to the private log with as few loads as can decide it -- a header whose
 * tid is this thread's is attached, alive (dead and immortal headers carry
 * reserved tids) and not merged; untracked, its size is the type's plus
 * the header.  Debug builds take the general path, which checks more.
 */
int rs__decref_slow(void *obj)
{
	struct rs__thread *t = rs__self();
	struct rs__head *h = rs__head_of(obj);
	uint32_t bits = rs__load_relaxed(&h->bits);
	bool private_obj;

	if (!RS_DEBUG && RS_LIKELY(rs__owner_of(h) == rs__tls.tid &&
				   !(bits & (RS__B_PUBLISHED | RS__B_TRACKED |
					     RS__B_DYING)) &&
				   rs__load_relaxed(&h->local) == 1) &&
	    rs__log_private_fast(t, obj, RS_HEAD_SIZE + h->type->size))
		return 0;
	if (RS_UNLIKELY(!rs__api_thread(RS__API_ATTACHED)))
		return -1;
	if (bits & RS__B_IMMORTAL)
		return 0;
	rs__check_alive("rs_decref", h, bits);
	private_obj = rs__owner_of(h) == rs__tls.tid &&
		      !(bits & RS__B_PUBLISHED);
	if (RS_DEBUG && private_obj && rs__load_relaxed(&h->local) == 0)
		rs__die("rs_decref", obj, "count underflow on object of type '%s'",
			rs__type_name(h));
	if (private_obj && (bits & RS__B_CLEAN) &&
	    rs__load_relaxed(&h->local) > 1) {
		/* what the inline path does, once the object is a candidate */
		rs__gc_candidate(h);
		rs__store_relaxed(&h->local, rs__load_relaxed(&h->local) - 1);
		return 0;
	}
	if (private_obj && rs__log_private_fast(t, obj, rs__type_bytes(h->type)))
		return 0;
	return rs__log_decref(t, obj, private_obj);
}

/*
 * The owner's safepoint applies its private decrements from the end of the
 * log.  Most are the last reference of a plain private object -- no bit set
 * at all (not published, tracked, weakly referenced, immortal, finalized),
 * the owner's count 1 and nothing in the shared word -- whose type has no
 * traverse and no destroy: nothing can hold, borrow or be held by it, and
 * destroying it is freeing it.  This frees such entries at once, without
 * the dying list (and, in the thread's current slab, without a call:
 * rs__obj_free_cur), and stops at the first entry that is not one (the
 * caller applies it through rs__decref_now and the cascade, which would do
 * the same in more steps) or at an empty log.  Returns how many it freed
 * and their sizes in *bytes; the caller settles their accounting (pending,
 * freed).  Nothing here parks, so the log shrinks once, at the end.
 */
size_t rs__free_private_run(struct rs__thread *t, int64_t *bytes)
{
	size_t i = t->npriv, b;
	int64_t sum = 0;
	struct rs__head *h;
	const rs_type *type;

	for (; i; i--) {
		h = rs__head_of(t->priv[i - 1]);
		type = h->type;
		if (rs__load_relaxed(&h->bits) != 0 ||
		    rs__load_relaxed(&h->local) != 1 ||
		    rs__owner_of(h) != rs__tls.tid ||
		    rs__load_relaxed(&h->shared) != 0 ||
		    type->traverse || type->destroy)
			break;
		b = RS_HEAD_SIZE + type->size;	/* untracked: no trailer */
		if (RS_DEBUG || !rs__obj_free_cur(t, h, b)) {
			rs__store_relaxed(&h->local, 0);
			obj_release(h, b);
		}
		sum += (int64_t)b;
	}
	b = t->npriv - i;
	t->npriv = i;
	*bytes = sum;
	return b;
}

/* ---------------------------------------------------------------------- */
/* Publication                                                             */
/* ---------------------------------------------------------------------- */

/*
 * Mark obj and every private object it reaches as published.  Invariant
 * (P1): a published object's children are published.  The walk marks what
 * it visits PUBLISHING and keeps it in a list; only when the whole walk has
 * succeeded are they all made PUBLISHED, so running out of memory leaves
 * every bit as it was and (P1) intact.
 */
struct publish_walk {
	void **v;
	size_t n, cap;
	bool failed;
};

static bool walk_add(struct publish_walk *w, void *obj)
{
	struct rs__head *h = rs__head_of(obj);
	void **v;

	if (rs__load_relaxed(&h->bits) &
	    (RS__B_PUBLISHED | RS__B_PUBLISHING | RS__B_IMMORTAL))
		return true;
	if (w->n == w->cap) {
		v = rs__fault(RS__FAULT_PUBLISH) ? NULL :
			realloc(w->v, (w->cap ? 2 * w->cap : 64) * sizeof(*v));
		if (!v)
			return false;
		w->v = v;
		w->cap = w->cap ? 2 * w->cap : 64;
	}
	rs__or_relaxed(&h->bits, RS__B_PUBLISHING);
	w->v[w->n++] = obj;
	return true;
}

static void publish_visit(void *child, void *arg)
{
	struct publish_walk *w = arg;

	if (child && !w->failed && !walk_add(w, child))
		w->failed = true;
}

static int publish(void *obj)
{
	struct publish_walk w = {0};
	const rs_type *type;
	size_t i;
	uint32_t set, clear = ~RS__B_PUBLISHING;

	if (rs__load_relaxed(&rs__head_of(obj)->bits) & RS__B_PUBLISHED)
		return 0;
	if (!walk_add(&w, obj))
		goto nomem;
	for (i = 0; i < w.n && !w.failed; i++) {
		type = rs__head_of(w.v[i])->type;
		if (type->traverse)
			type->traverse(w.v[i], publish_visit, &w);
	}
	set = w.failed ? 0 : RS__B_PUBLISHED;
	for (i = 0; i < w.n; i++) {
		struct rs__head *h = rs__head_of(w.v[i]);

		rs__or_relaxed(&h->bits, set);
		__atomic_fetch_and(&h->bits, clear, __ATOMIC_RELAXED);
	}
	free(w.v);
	if (!w.failed)
		return 0;
nomem:
	errno = ENOMEM;
	return -1;
}

int rs_publish(void *obj)
{
	if (!rs__api_thread(RS__API_ATTACHED))
		return -1;
	return obj ? publish(obj) : 0;
}

int rs_immortalize(void *obj)
{
	struct rs__head *h;

	if (!rs__api_thread(RS__API_ATTACHED))
		return -1;
	if (!obj) {
		errno = EINVAL;
		return -1;
	}
	h = rs__head_of(obj);
	rs__check_alive("rs_immortalize", h, rs__load_relaxed(&h->bits));
	if (publish(obj))
		return -1;
	rs__or_relaxed(&h->bits, RS__B_IMMORTAL);
	rs__set_owner(h, RS__TID_IMMORTAL);
	return 0;
}

long rs_refcount(const void *obj)
{
	struct rs__head *h = rs__head_of(obj);

	if (rs__load_relaxed(&h->bits) & RS__B_IMMORTAL)
		return LONG_MAX;
	return (long)rs__load_relaxed(&h->local) +
	       (long)RS__S_COUNT(rs__load_relaxed(&h->shared));
}

const rs_type *rs_type_of(const void *obj)
{
	return rs__head_of(obj)->type;
}

/* ---------------------------------------------------------------------- */
/* Reference fields                                                        */
/* ---------------------------------------------------------------------- */

/* rs_get's refusals: the inline rs_get tests the id and the field itself
 * (one predictable branch each) and calls this for either. */
void *rs__get_refused(const void *field)
{
	if (rs__api_thread(RS__API_ATTACHED) && !field)
		errno = EINVAL;
	return NULL;
}

/* The entry of the functions that take a field: an attached caller and a
 * field (EPERM, EINVAL). */
static inline struct rs__thread *field_thread(const void *field,
					     const char *call)
{
	struct rs__thread *t = rs__api_thread(RS__API_ATTACHED);

	if (RS_UNLIKELY(t && !field)) {
		errno = EINVAL;
		return NULL;
	}
	/* an offline thread counts as stopped: a collection may be reading
	 * the objects it would change */
	if (RS_DEBUG && t && rs__load_relaxed(&t->state) != RS__T_ONLINE)
		rs__die(call, field, "called by an offline thread (rs_offline "
			"without rs_online)");
	return t;
}

void *rs_get_ref(const void *field)
{
	void *v;

	if (!field_thread(field, "rs_get_ref"))
		return NULL;
	v = rs__load_acquire((void *const *)field);
	return rs_incref(v);
}

/* Store val (whose reference the caller gives up) into field: publish val,
 * make room in the log for the old value's decrement, then swap.  Nothing
 * changes if a step fails. */
static int set_steal(struct rs__thread *t, void *field, void *val)
{
	void *old;

	if (val && publish(val))
		return -1;
	if (rs__log_reserve(t))
		return -1;
	/* release pairs with the acquire load in rs_get / rs_get_ref: the
	 * value's initialisation is visible to every reader of the field */
	old = rs__xchg_acq_rel((void **)field, val);
	if (old)
		rs_decref(old);
	return 0;
}

int rs_set_steal(void *field, void *val)
{
	struct rs__thread *t = field_thread(field, "rs_set_steal");

	return t ? set_steal(t, field, val) : -1;
}

int rs_set(void *field, void *val)
{
	struct rs__thread *t = field_thread(field, "rs_set");

	if (!t)
		return -1;
	rs_incref(val);
	if (set_steal(t, field, val) == 0)
		return 0;
	/* undo the increment: val is alive, so this only lowers the count */
	if (val)
		rs__decref_now(t, val);
	return -1;
}

int rs_clear(void *field)
{
	struct rs__thread *t = field_thread(field, "rs_clear");

	return t ? set_steal(t, field, NULL) : -1;
}
