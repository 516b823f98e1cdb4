/*
 * brc.c - biased reference counting: the counts applied outside the inline
 * fast paths of include/refstore.h (a non-owner's increment, every decrement
 * that is due), the merges that end an object's ownership, the queues
 * through which non-owners hand objects to their owner, and the offline
 * lease under which they merge for an offline owner.  model/brc.pml checks
 * this protocol (docs/testing.md).
 *
 * Biased counting (after Choi, Shull and Torrellas, PACT 2018)
 * ------------------------------------------------------------
 * The header holds the owner's id (`tid`), the owner's count (`local`) and a
 * shared word (`shared` = count << 2 | state).
 *
 *   owner incref/decref   local +/- 1 with plain (relaxed) stores: no RMW.
 *   non-owner incref      shared += 1 (atomic add).
 *   non-owner decrement   CAS: DEFAULT with count 0 -> count -1, QUEUED, and
 *                         the object goes to its owner (queue_to_owner);
 *                         otherwise count - 1.  MERGED reaching 0 -> destroy.
 *   owner local -> 0      DEFAULT count 0: destroy with no RMW at all;
 *                         DEFAULT count > 0: tid = MERGED, then CAS to
 *                         MERGED; QUEUED: nothing, its queue entry merges it.
 *   merge (owner at its   local = 0, tid = MERGED, then CAS QUEUED c ->
 *   safepoint, or on      MERGED (c + local); total 0 -> destroy.
 *   the spot)
 *   queue_to_owner        owner online or stopped: its queue, merged at its
 *                         safepoint; offline: merged on the spot under its
 *                         offline lease; gone: merged on the spot.
 *
 * Object states (the transitions name who may make them):
 *
 *   owned/DEFAULT --non-owner drives shared < 0 (that thread)--> owned/QUEUED
 *   owned/DEFAULT --owner's local reaches 0, shared > 0 (owner)--> merged
 *   owned/QUEUED  --merge (owner at safepoint; a merger with the owner's
 *                   offline lease; any thread if the owner is gone)--> merged
 *   any           --count reaches 0 (the thread applying it)--> dying
 *   dying         --cascade (same thread)--> destroyed
 *
 * Invariants
 * ----------
 * (H1) Outside a merge, count = local + count(shared); MERGED: local is 0.
 * Header writes of a giving-up owner or merger come before the CAS to MERGED.
 * A TRYREF object (lib/weak.c) reaches zero only by a CAS to MERGED 0.
 * No object stays queued to an offline or gone owner.
 *
 * The argument: docs/design.md §5 (and §6 for when a decrement is applied).
 */
#define RS_BUILDING 1
#include "internal.h"

#include <stdlib.h>

static inline int64_t shared_word(int64_t count, int state)
{
	return (int64_t)((uint64_t)count << RS__S_SHIFT) | state;
}

/* Hold an OFFLINE owner offline (OFFLINE -> LEASED) while merging for it:
 * rs_online waits for LEASED to end, so the owner cannot touch a local
 * count meanwhile. */
static bool lease_offline(struct rs__thread *t)
{
	int expected = RS__T_OFFLINE;

	return rs__cas_seq_cst(&t->state, &expected, RS__T_LEASED);
}

/* LEASED -> OFFLINE moves between two stopped states: a stopper needs no
 * wake-up (and qlock is held here, which ranks above the world lock). */
static void unlease(struct rs__thread *t)
{
	rs__store_seq_cst(&t->state, RS__T_OFFLINE);
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
	rs__set_owner(h, RS__TID_MERGED);
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
	rs__set_owner(h, RS__TID_MERGED);
	if (on_the_spot)
		rs__bump_owner(&t->c.merges_on_the_spot, 1);
	do {
		if (RS__S_STATE(w) != RS__S_QUEUED)
			rs__die("rs_decref", obj,
				"merge of an object of type '%s' that is not queued",
				rs__type_name(h));
		total = RS__S_COUNT(w) + (int64_t)local;
		if (total < 0)
			rs__die("rs_decref", obj,
				"count underflow on object of type '%s' (more "
				"decrefs than references)", rs__type_name(h));
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

static void merge_queued(struct rs__thread *t, void *obj)
{
	merge(t, obj, false);
}

static void merge_abandoned(struct rs__thread *t, void *obj)
{
	merge(t, obj, true);
}

static void queue_push(struct rs__thread *o, void *obj)
{
	void **q;
	size_t cap;

	if (o->qn == o->qcap) {
		cap = o->qcap ? 2 * o->qcap : 64;
		q = realloc(o->queue, cap * sizeof(*q));
		if (!q)
			rs__die("rs_decref", obj,
				"out of memory queueing the object to its owner");
		o->queue = q;
		o->qcap = cap;
	}
	o->queue[o->qn++] = obj;
	rs__store_relaxed(&o->queue_hint, o->qn);
}

/* Merge, on the spot, an offline owner's whole queue (its lease is held). */
static void drain_leased(struct rs__thread *t, struct rs__thread *o)
{
	size_t i;

	for (i = 0; i < o->qn; i++)
		merge_abandoned(t, o->queue[i]);
	o->qn = 0;
	rs__store_relaxed(&o->queue_hint, 0);
}

/* Out of line: the rare path of rs__decref_now, whose common path (a CAS on
 * the shared word) should stay as short as it was when this was a call into
 * another file. */
static __attribute__((noinline)) void
queue_to_owner(struct rs__thread *t, void *obj, uint64_t owner)
{
	struct rs__thread *o;

	if (owner >> RS_SLOT_BITS == 0) {
		/* no owner id (MERGED, or an id cleared before we read it):
		 * nobody to queue to.  Defensive: a thread that took the
		 * count from DEFAULT 0 to QUEUED held a reference counted
		 * in the shared word, so the owner cannot have merged yet
		 * unless a weak reference (TRYREF) was involved. */
		merge_abandoned(t, obj);
		return;
	}
	o = rs__load_acquire(&rs__slots[RS__TID_SLOT(owner)]);
	rs__lock(&o->qlock);
	if (o->tid != owner) {
		/* the owner is gone */
		rs__unlock(&o->qlock);
		merge_abandoned(t, obj);
		return;
	}
	if (o != t && lease_offline(o)) {
		merge_abandoned(t, obj);
		drain_leased(t, o);
		unlease(o);
		rs__unlock(&o->qlock);
		return;
	}
	queue_push(o, obj);
	rs__unlock(&o->qlock);
	if (t)
		rs__bump_owner(&t->c.merges_queued, 1);
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
	rs__check_alive("rs_decref", h, bits);
	tid = rs__owner_of(h);
	if (tid == rs__tls.tid) {
		local = rs__load_relaxed(&h->local);
		if (RS_UNLIKELY(local == 0))
			rs__die("rs_decref", obj,
				"count underflow on object of type '%s'",
				rs__type_name(h));
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
				"decrefs than references)", rs__type_name(h));
		nw = (int64_t)((uint64_t)w - (uint64_t)RS__S_ONE);
		if (RS__S_STATE(w) == RS__S_DEFAULT && RS__S_COUNT(w) == 0)
			nw = shared_word(-1, RS__S_QUEUED);
	} while (!rs__cas_acq_rel(&h->shared, &w, nw));

	if (RS__S_STATE(nw) == RS__S_MERGED) {
		if (RS__S_COUNT(nw) == 0)
			rs__push_dying(t, h);
	} else if (RS__S_STATE(w) == RS__S_DEFAULT &&
		   RS__S_STATE(nw) == RS__S_QUEUED) {
		queue_to_owner(t, obj, tid);
	}
}

void *rs__incref_slow(void *obj)
{
	struct rs__head *h = rs__head_of(obj);
	uint32_t bits;

	if (RS_UNLIKELY(!rs__api_thread(RS__API_ATTACHED)))
		return NULL;
	bits = rs__load_relaxed(&h->bits);
	if (bits & RS__B_IMMORTAL)
		return obj;
	rs__check_alive("rs_incref", h, bits);
	rs__add_relaxed(&h->shared, RS__S_ONE);
	return obj;
}

/* Take o's whole queue, leaving it empty (o's queue lock held); the caller
 * merges the entries and frees the array. */
static void **queue_take(struct rs__thread *o, size_t *n)
{
	void **q = o->queue;

	*n = o->qn;
	o->queue = NULL;
	o->qn = o->qcap = 0;
	rs__store_relaxed(&o->queue_hint, 0);
	return q;
}

/* Take o's queue and merge it for o: by o itself at a safepoint, or by a
 * collector while the world is stopped.  Objects reaching zero go to by's
 * dying list. */
static void merge_queue(struct rs__thread *o, struct rs__thread *by)
{
	void **q;
	size_t n, i;

	if (!rs__load_relaxed(&o->queue_hint))
		return;
	rs__lock(&o->qlock);
	q = queue_take(o, &n);
	rs__unlock(&o->qlock);
	for (i = 0; i < n; i++)
		merge_queued(by, q[i]);
	free(q);
}

void rs__drain_queue(struct rs__thread *t)
{
	if (!rs__load_relaxed(&t->queue_hint))
		return;
	merge_queue(t, t);
	rs__cascade(t);
}

/* World stopped (a collection): merge every thread's queue now, on `by`. */
void rs__drain_queues_stopped(struct rs__thread *by)
{
	uint32_t slot, n = rs__load_acquire(&rs__nslots);

	for (slot = 1; slot <= n; slot++)
		merge_queue(rs__load_acquire(&rs__slots[slot]), by);
}

/* Clear the thread's id under its queue lock and merge whatever is still
 * queued: from here on, queuers see the owner as gone. */
void rs__give_up_ownership(struct rs__thread *t)
{
	void **q;
	size_t n, i;

	rs__lock(&t->qlock);
	t->tid = 0;
	q = queue_take(t, &n);
	rs__unlock(&t->qlock);
	for (i = 0; i < n; i++)
		merge_abandoned(t, q[i]);
	free(q);
}

