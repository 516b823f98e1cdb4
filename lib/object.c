/*
 * object.c - objects, biased reference counts, publication, the destruction
 * cascade and reference fields.
 *
 * Biased counting (after Choi, Shull and Torrellas, PACT 2018)
 * ------------------------------------------------------------
 * The header holds the owner's id (`tid`), the owner's count (`local`) and a
 * shared word (`shared` = count << 2 | state).  Invariant (H1): outside a
 * merge, true count = local + count(shared) in states DEFAULT and QUEUED, and
 * = count(shared) in state MERGED, where local is 0.
 *
 *   owner incref/decref   local +/- 1 with plain (relaxed) stores: no RMW.
 *   non-owner incref      shared += 1 (atomic add).
 *   non-owner decrement   CAS: DEFAULT with count 0 -> count -1, QUEUED, and
 *                         the object goes to its owner (thread.c); otherwise
 *                         count - 1.  MERGED reaching 0 -> destroy.
 *   owner local -> 0      DEFAULT count 0: destroy with no RMW at all (the
 *                         true count is zero, so no other thread holds a
 *                         reference to race with); DEFAULT count > 0: CAS to
 *                         MERGED, tid = MERGED; QUEUED: nothing, the queue
 *                         entry will merge it.
 *   merge (owner at its   CAS QUEUED c -> MERGED (c + local), local = 0,
 *   safepoint, or on      tid = MERGED; total 0 -> destroy.
 *   the spot)
 *
 * Object states (the transitions name who may make them):
 *
 *   owned/DEFAULT --non-owner drives shared < 0--> owned/QUEUED
 *   owned/DEFAULT --owner's local hits 0, shared > 0 (owner)--> merged
 *   owned/QUEUED  --merge (owner at safepoint; a merger if owner offline
 *                   or gone)--> merged (or destroyed if total is 0)
 *   any --count reaches 0 (the thread applying that decrement)--> dying
 *   dying --cascade (same thread)--> destroyed
 *
 * An object that weak references may count (TRYREF, lib/weak.c) reaches
 * zero only through a CAS that writes MERGED 0, on the owner's and the
 * merge's paths too, so rs__tryincref and the last decrement cannot both
 * win.
 *
 * MERGED is terminal for counting: the tid is only written by the merge that
 * leaves DEFAULT/QUEUED, and every merge CASes the shared state first, so a
 * non-owner whose CAS took DEFAULT -> QUEUED read the owner id before any
 * merge could change it.
 *
 * When is a decrement applied?  rs_decref logs it (defer.c) unless the caller
 * owns a private object whose count stays above zero, and the log is applied
 * after a grace period, so a count reaches zero only when every removal of a
 * reference has been followed by a safepoint of every thread that might have
 * borrowed through it.  The owner's immediate path is limited to private
 * objects (never stored by rs_set, the map or rs_publish), which no other
 * thread can borrow; and even there a decrement that would reach zero is
 * logged for the owner's next safepoint, because the owner itself may still
 * hold borrowed references through the object.  See docs/design.md.
 *
 * The cascade
 * -----------
 * A destroyed object gives back its children: traverse visits them and each
 * is decremented at once (rs__decref_now), without a grace period.  That is
 * safe because a borrowed reference to a child obtained through the dying
 * parent needs a borrowed reference to the parent, and those all ended with
 * the grace period that matured the parent's last decrement.  Dying objects
 * are linked through their `tid` field into the thread's `dying` list, so a
 * chain of any length is destroyed in a loop, with no recursion and no
 * allocation.  A thread about to park for a stop may give the children back
 * ahead of the rest (rs__release_dying: same decrements, same safety
 * argument); the object is then marked RELEASED and the cascade only clears
 * its weak references, calls destroy and frees it.
 */
#define RS_BUILDING 1
#include "internal.h"
#include "alloc.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

static inline int64_t shared_word(int64_t count, int state)
{
	return (int64_t)((uint64_t)count << RS__S_SHIFT) | state;
}

static const char *type_name(const struct rs__head *h)
{
	return h->type && h->type->name ? h->type->name : "?";
}

/* ---------------------------------------------------------------------- */
/* Allocation and destruction                                              */
/* ---------------------------------------------------------------------- */

void *rs_new(const rs_type *type)
{
	struct rs__thread *t = rs__self();
	struct rs__head *h;
	size_t bytes;

	if (!t) {
		errno = EPERM;
		return NULL;
	}
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
		rs__store_relaxed(&h->tid, (uint64_t)RS__TID_DEAD);
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
	rs__store_relaxed(&h->tid, (uint64_t)(uintptr_t)t->dying);
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
	bool may_park = t == rs__self() && t->in_safepoint;

	while ((h = t->dying)) {
		t->dying = (struct rs__head *)(uintptr_t)rs__load_relaxed(&h->tid);
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
		t->dying = (struct rs__head *)(uintptr_t)rs__load_relaxed(&h->tid);
		bits = rs__load_relaxed(&h->bits);
		if (!(bits & RS__B_RELEASED)) {	/* not by an earlier call */
			rs__store_relaxed(&h->bits, bits | RS__B_RELEASED);
			if (h->type->traverse)
				h->type->traverse(h + 1, cascade_visit, t);
		}
		if (last)
			rs__store_relaxed(&last->tid, (uint64_t)(uintptr_t)h);
		else
			done = h;
		last = h;
		n++;
	}
	if (last) {
		rs__store_relaxed(&last->tid, (uint64_t)(uintptr_t)t->dying);
		t->dying = done;
	}
	return n;
}

/* ---------------------------------------------------------------------- */
/* Counting                                                                */
/* ---------------------------------------------------------------------- */

static void check_alive(const char *call, struct rs__head *h, uint32_t bits)
{
	if (RS_UNLIKELY(bits & (RS__B_DEAD | RS__B_DYING)))
		rs__die(call, h + 1,
			"object of type '%s' was already destroyed "
			"(double decref, or use after its last decref)",
			type_name(h));
}

void *rs__incref_slow(void *obj)
{
	struct rs__head *h = rs__head_of(obj);
	uint32_t bits;

	if (RS_UNLIKELY(!rs__tls.tid)) {
		errno = EPERM;
		return NULL;
	}
	bits = rs__load_relaxed(&h->bits);
	if (bits & RS__B_IMMORTAL)
		return obj;
	check_alive("rs_incref", h, bits);
	rs__add_relaxed(&h->shared, RS__S_ONE);
	return obj;
}

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

	if (!RS_DEBUG && RS_LIKELY(rs__load_relaxed(&h->tid) == rs__tls.tid &&
				   !(bits & (RS__B_PUBLISHED | RS__B_TRACKED |
					     RS__B_DYING)) &&
				   rs__load_relaxed(&h->local) == 1) &&
	    rs__log_private_fast(t, obj, RS_HEAD_SIZE + h->type->size))
		return 0;
	if (RS_UNLIKELY(!t || !rs__tls.tid)) {
		errno = EPERM;
		return -1;
	}
	if (bits & RS__B_IMMORTAL)
		return 0;
	check_alive("rs_decref", h, bits);
	private_obj = rs__load_relaxed(&h->tid) == rs__tls.tid &&
		      !(bits & RS__B_PUBLISHED);
	if (RS_DEBUG && private_obj && rs__load_relaxed(&h->local) == 0)
		rs__die("rs_decref", obj, "count underflow on object of type '%s'",
			type_name(h));
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
 * The owner's local count reached zero.  The owner gives up ownership (tid)
 * before the CAS that publishes MERGED: once MERGED is visible another
 * thread may drop the count to zero and free the object, so nothing may
 * touch the header after that CAS.  Until it, nobody else can free the
 * object: a DEFAULT or QUEUED object is freed only by its owner or by the
 * merge of its queue entry.  A non-owner that read the cleared tid and
 * queues the object finds no owner and merges it on the spot, which local
 * == 0 makes harmless.
 */
static void merge_zero_local(struct rs__thread *t, struct rs__head *h)
{
	int64_t w = rs__load_acquire(&h->shared);
	bool tryref = rs__load_relaxed(&h->bits) & RS__B_TRYREF;

	if (w == shared_word(0, RS__S_DEFAULT) && !tryref) {
		rs__push_dying(t, h);	/* true count 0: nobody else holds it */
		return;
	}
	/* it may keep references: a cycle candidate, while we still may
	 * touch it (the CAS below may let another thread free it) */
	if (rs__load_relaxed(&h->bits) & RS__B_CLEAN)
		rs__gc_candidate(h);
	rs__store_relaxed(&h->tid, (uint64_t)RS__TID_MERGED);
	for (;;) {
		if (RS__S_STATE(w) == RS__S_QUEUED)
			return;	/* its queue entry merges it */
		if (w == shared_word(0, RS__S_DEFAULT) && !tryref) {
			rs__push_dying(t, h);
			return;
		}
		/* A weak reference may count it concurrently (weak.c): zero
		 * is decided by the CAS to MERGED 0, which rs__tryincref
		 * never passes. */
		if (w == shared_word(0, RS__S_DEFAULT)) {
			if (rs__cas_acq_rel(&h->shared, &w,
					    shared_word(0, RS__S_MERGED))) {
				rs__push_dying(t, h);
				return;
			}
			continue;
		}
		if (rs__cas_acq_rel(&h->shared, &w,
				    shared_word(RS__S_COUNT(w), RS__S_MERGED)))
			return;
	}
}

/*
 * Merge a QUEUED object: by its owner at a safepoint (on_the_spot false), or
 * by another thread while the owner is offline (lease held) or gone.  As
 * above, local and tid are cleared before the CAS that publishes MERGED;
 * nobody else frees a QUEUED object, whose queue entry is unique.
 */
static void merge(struct rs__thread *t, void *obj, bool on_the_spot)
{
	struct rs__head *h = rs__head_of(obj);
	uint32_t local = rs__load_relaxed(&h->local);
	int64_t w = rs__load_acquire(&h->shared), total;

	rs__store_relaxed(&h->local, 0);
	rs__store_relaxed(&h->tid, (uint64_t)RS__TID_MERGED);
	if (on_the_spot)
		rs__bump_owner(&t->c.merges_on_the_spot, 1);
	do {
		if (RS__S_STATE(w) != RS__S_QUEUED)
			rs__die("rs_decref", obj,
				"merge of an object of type '%s' that is not queued",
				type_name(h));
		total = RS__S_COUNT(w) + (int64_t)local;
		if (total < 0)
			rs__die("rs_decref", obj,
				"count underflow on object of type '%s' (more "
				"decrefs than references)", type_name(h));
		if (total == 0 && !(rs__load_relaxed(&h->bits) & RS__B_TRYREF)) {
			/* no reference left anywhere: no CAS can race */
			rs__push_dying(t, h);
			return;
		}
	} while (!rs__cas_acq_rel(&h->shared, &w,
				  shared_word(total, RS__S_MERGED)));
	if (total == 0)	/* decided by the CAS to MERGED 0 (weak.c) */
		rs__push_dying(t, h);
}

void rs__merge_queued(struct rs__thread *t, void *obj)
{
	merge(t, obj, false);
}

void rs__merge_abandoned(struct rs__thread *t, void *obj)
{
	merge(t, obj, true);
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
		    rs__load_relaxed(&h->tid) != rs__tls.tid ||
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

/* Apply one decrement now.  The caller is at a point where it may (a grace
 * period has passed, or the object is private and this is its owner's
 * safepoint, or the decrement comes from a dying parent). */
void rs__decref_now(struct rs__thread *t, void *obj)
{
	struct rs__head *h = rs__head_of(obj);
	uint32_t bits = rs__load_relaxed(&h->bits), local;
	uint64_t tid;
	int64_t w, nw;

	if (bits & RS__B_IMMORTAL)
		return;
	check_alive("rs_decref", h, bits);
	tid = rs__load_relaxed(&h->tid);
	if (tid == rs__tls.tid) {
		local = rs__load_relaxed(&h->local);
		if (RS_UNLIKELY(local == 0))
			rs__die("rs_decref", obj,
				"count underflow on object of type '%s'",
				type_name(h));
		if (local > 1 && (bits & RS__B_CLEAN))
			rs__gc_candidate(h);	/* references stay */
		rs__store_relaxed(&h->local, local - 1);
		if (local == 1)
			merge_zero_local(t, h);
		return;
	}
	w = rs__load_relaxed(&h->shared);
	do {
		/* Unless this is the last reference of a merged object, some
		 * may stay: a cycle candidate, marked before the CAS after
		 * which another thread may free the object. */
		if ((bits & RS__B_CLEAN) &&
		    !(RS__S_STATE(w) == RS__S_MERGED && RS__S_COUNT(w) <= 1)) {
			rs__gc_candidate(h);
			bits &= ~RS__B_CLEAN;
		}
		if (RS__S_STATE(w) == RS__S_MERGED && RS__S_COUNT(w) <= 0)
			rs__die("rs_decref", obj,
				"count underflow on object of type '%s' (more "
				"decrefs than references)", type_name(h));
		nw = (int64_t)((uint64_t)w - (uint64_t)RS__S_ONE);
		if (RS__S_STATE(w) == RS__S_DEFAULT && RS__S_COUNT(w) == 0)
			nw = shared_word(-1, RS__S_QUEUED);
	} while (!rs__cas_acq_rel(&h->shared, &w, nw));

	if (RS__S_STATE(nw) == RS__S_MERGED) {
		if (RS__S_COUNT(nw) == 0)
			rs__push_dying(t, h);
	} else if (RS__S_STATE(w) == RS__S_DEFAULT &&
		   RS__S_STATE(nw) == RS__S_QUEUED) {
		rs__queue_to_owner(t, obj, tid);
	}
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
	if (!rs__tls.tid) {
		errno = EPERM;
		return -1;
	}
	return obj ? publish(obj) : 0;
}

int rs_immortalize(void *obj)
{
	struct rs__head *h;

	if (!rs__tls.tid) {
		errno = EPERM;
		return -1;
	}
	if (!obj) {
		errno = EINVAL;
		return -1;
	}
	h = rs__head_of(obj);
	check_alive("rs_immortalize", h, rs__load_relaxed(&h->bits));
	if (publish(obj))
		return -1;
	rs__or_relaxed(&h->bits, RS__B_IMMORTAL);
	rs__store_relaxed(&h->tid, (uint64_t)RS__TID_IMMORTAL);
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

void *rs__get_unattached(void)
{
	errno = EPERM;
	return NULL;
}

void *rs_get_ref(const void *field)
{
	void *v;

	if (!rs__tls.tid)
		return rs__get_unattached();
	v = rs__load_acquire((void *const *)field);
	return rs_incref(v);
}

/* Store val (whose reference the caller gives up) into field: publish val,
 * make room in the log for the old value's decrement, then swap.  Nothing
 * changes if a step fails. */
static int set_steal(void *field, void *val)
{
	struct rs__thread *t = rs__self();
	void *old;

	if (!t || !rs__tls.tid) {
		errno = EPERM;
		return -1;
	}
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
	return set_steal(field, val);
}

int rs_set(void *field, void *val)
{
	if (!rs__tls.tid) {
		errno = EPERM;
		return -1;
	}
	rs_incref(val);
	if (set_steal(field, val) == 0)
		return 0;
	/* undo the increment: val is alive, so this only lowers the count */
	rs__decref_now(rs__self(), val);
	return -1;
}

int rs_clear(void *field)
{
	return set_steal(field, NULL);
}
