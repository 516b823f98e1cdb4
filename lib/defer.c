/*
 * defer.c - deferred decrements: per-thread logs, batches, and when they are
 * applied.
 *
 * Algorithm: rs_decref appends the object to the thread's current batch,
 * which is sealed (at a safepoint, going offline, or when full) and submitted
 * to the reclaimer (threads/reclaim.c); at a safepoint after it matured, the
 * same thread applies it: rs__decref_now on each entry, rs__cascade on what
 * reaches zero.  The owner's decrement that would take a private object to
 * zero goes to `priv` instead, applied at the owner's very next safepoint.
 *
 * Invariants
 * ----------
 * (D1) An entry is applied (a) on the thread that logged it, (b) at one of
 *      its safepoints, (c) if in a batch, after a grace period since sealing.
 * (D2) Batches apply in sealing order; a log's entries in any order.
 * (D3) Bytes a thread's logs name <= defer_limit_bytes + one interval's.
 * (D4) A batch node is reused only once marked matured.
 * (D5) pending, pending_bytes == what the logs hold; every entry unapplied.
 *
 * The argument: docs/design.md §7.
 */
#define RS_BUILDING 1
#include "internal.h"

#include <sched.h>
#include <stdlib.h>
#include <string.h>

/* Batches of threads that left without applying them (a fork's dead
 * threads, when the forking thread is not attached).  Sync: registry lock,
 * or the fork child before it returns. */
static struct rs__batch *orphans;

static struct rs__batch *batch_new(void)
{
	struct rs__batch *b = malloc(sizeof(*b) + rs__rt.batch_entries *
					sizeof(b->ent[0]));

	if (b) {
		b->next = b->rnext = NULL;
		b->matured = 0;
		b->submitted = false;
		b->n = 0;
		b->cap = (uint32_t)rs__rt.batch_entries;
		b->bytes = 0;
		b->sealed_ns = 0;
	}
	return b;
}

static bool batch_matured(struct rs__batch *b)
{
	/* pairs with the release store in reclaimer_main (reclaim.c) */
	return rs__load_acquire(&b->matured);
}

static void batch_recycle(struct rs__thread *t, struct rs__batch *b)
{
	if (!t->spare) {
		b->n = 0;
		b->bytes = 0;
		b->next = NULL;
		t->spare = b;
	} else {
		free(b);
	}
}

/* A new current batch: the spare if there is one.  (The test fault fails
 * it as if there were no spare and malloc failed: every seal can fail.) */
static struct rs__batch *batch_fresh(struct rs__thread *t)
{
	struct rs__batch *b = t->spare;

	if (rs__fault(RS__FAULT_BATCH))
		return NULL;
	if (!b)
		return batch_new();
	t->spare = NULL;
	return b;
}

int rs__defer_init(struct rs__thread *t)
{
	if (!t->cur)
		t->cur = batch_fresh(t);
	if (!t->cur) {
		errno = ENOMEM;
		return -1;
	}
	return 0;
}

static void sealed_append(struct rs__thread *t, struct rs__batch *b)
{
	b->next = NULL;
	*t->sealed_tail = b;
	t->sealed_tail = &b->next;
	t->nsealed++;
}

static struct rs__batch *sealed_pop(struct rs__thread *t)
{
	struct rs__batch *b = t->sealed;

	t->sealed = b->next;
	if (!t->sealed)
		t->sealed_tail = &t->sealed;
	t->nsealed--;
	return b;
}

/* Seal the current batch and start a new one.  Fails only if no new batch
 * could be allocated; the sealed batch is submitted either way. */
static int seal(struct rs__thread *t)
{
	struct rs__batch *b = t->cur;

	if (!b || !b->n)
		return 0;
	b->sealed_ns = rs__now_ns();
	sealed_append(t, b);
	rs__bump_owner(&t->c.batches_sealed, 1);
	t->cur = batch_fresh(t);
	b->submitted = rs__reclaim_submit(b);
	if (!b->submitted)
		t->self_sync = true;
	if (!t->cur) {
		errno = ENOMEM;
		return -1;
	}
	return 0;
}

/* Make sure the next n decrements can be logged without failing. */
int rs__log_room(struct rs__thread *t, size_t n)
{
	if (t->cur && t->cur->n + n <= t->cur->cap)
		return 0;
	if (t->cur)
		return seal(t);
	return rs__defer_init(t);
}

int rs__log_reserve(struct rs__thread *t)
{
	return rs__log_room(t, 1);
}

int rs__log_decref(struct rs__thread *t, void *obj, bool private_obj)
{
	size_t bytes = rs__obj_bytes(obj), cap;
	void **p;

	if (private_obj) {
		if (rs__fault(RS__FAULT_PRIV))
			goto batch;	/* test: as if full and unable to grow */
		if (t->npriv == t->privcap) {
			cap = t->privcap ? 2 * t->privcap : 256;
			p = realloc(t->priv, cap * sizeof(*p));
			if (!p)
				goto batch;	/* a grace period is always enough */
			t->priv = p;
			t->privcap = cap;
		}
		rs__log_private_append(t, obj, bytes);
		return 0;
	}
batch:
	if (rs__log_reserve(t))
		return -1;
	if (!t->cur->n)
		t->cur->first_ns = rs__now_ns();
	t->cur->ent[t->cur->n++] = obj;
	t->cur->bytes += bytes;
	rs__pending_add(t, 1, (int64_t)bytes);
	return 0;
}

/*
 * Give back a counted reference where the caller may reach a safepoint but
 * has no error to report (after a weak-reference callback, after
 * rs_gc_get_referrers' visits, in rs_gc_garbage_clear): if the log has no
 * room and none can be allocated, the thread does now what the log would
 * have done later -- it waits for a grace period from this quiescent point
 * (D1c) and applies the decrement itself.
 */
void rs__decref_or_wait(struct rs__thread *t, void *obj)
{
	int was;

	if (rs_decref(obj) == 0 || errno != ENOMEM)
		return;
	rs__synchronize();
	was = t->no_reentry;
	t->no_reentry = 1;	/* destroy callbacks must not reenter */
	rs__decref_now(t, obj);
	rs__cascade(t);
	t->no_reentry = was;
}

/*
 * When a safepoint seals the current batch (and so asks for a grace
 * period): once it holds SEAL_ENTRIES entries or its first entry is
 * SEAL_NS old.  Sealing at every safepoint made a thread that calls
 * rs_safepoint between short requests ask for tens of thousands of grace
 * periods a second, each costing the reclaimer a synchronize_rcu and the
 * readers futex wake-ups; the bound on deferred memory (defer_limit) is
 * enforced either way, and going offline seals at once.
 */
#define SEAL_ENTRIES 256
#define SEAL_NS 200000

static bool seal_due(const struct rs__thread *t)
{
	const struct rs__batch *b = t->cur;

	return b && b->n && (b->n >= SEAL_ENTRIES ||
			     rs__now_ns() - b->first_ns >= SEAL_NS);
}

bool rs__defer_has_work(const struct rs__thread *t)
{
	return t->npriv || (t->sealed && (batch_matured(t->sealed) ||
					   t->self_sync)) ||
	       (!t->sealed && seal_due(t)) ||
	       rs__load_relaxed(&t->c.pending_bytes) > rs__rt.defer_limit;
}

/*
 * Application consumes entries from the end of a log, one at a time, and
 * updates the counters with each: the thread may park for a stop in the
 * middle of a cascade (rs__safepoint_poll), and a stopped world (the
 * verifier, a fork child adopting the log) must then see exactly the entries
 * not yet applied (D5).  The order within one log does not matter:
 * decrements commute, and each was allowed to apply from the start.
 */
static void apply_entry(struct rs__thread *t, void *obj)
{
	rs__pending_add(t, -1, -(int64_t)rs__obj_bytes(obj));
	rs__decref_now(t, obj);
}

static void apply_one(struct rs__thread *t, void *obj)
{
	apply_entry(t, obj);
	rs__cascade(t);
}

/* Most private entries are the last reference of a plain object, freed at
 * once (rs__free_private_run); their accounting (pending, and freed) is
 * summed and settled before anything that may park (apply_one's cascade)
 * and at the end, so a stopped world still sees counters that match the
 * entries left (D5). */
static void settle_freed(struct rs__thread *t, int64_t n, int64_t bytes)
{
	rs__pending_add(t, -n, -bytes);
	rs__bump_owner(&t->c.freed, (uint64_t)n);
	rs__bump_owner(&t->c.bytes_freed, (uint64_t)bytes);
}

static void apply_priv(struct rs__thread *t, bool cascade)
{
	int64_t bytes;
	size_t n;

	/* a destroy callback that misuses rs_decref may append: re-read */
	while (t->npriv) {
		n = rs__free_private_run(t, &bytes);
		if (n)
			settle_freed(t, (int64_t)n, bytes);
		if (!t->npriv)
			break;
		if (cascade)
			apply_one(t, t->priv[--t->npriv]);
		else
			apply_entry(t, t->priv[--t->npriv]);
	}
}

static void apply_batch(struct rs__thread *t, struct rs__batch *b)
{
	void *obj;

	while (b->n) {
		obj = b->ent[--b->n];
		b->bytes -= rs__obj_bytes(obj);
		apply_one(t, obj);
	}
}

/* Apply every sealed batch after waiting for a grace period ourselves
 * (D1c).  Batches the reclaimer was given stay on the list, empty, until it
 * marks them (D4); those it never got are marked here. */
static void apply_all_sealed(struct rs__thread *t)
{
	struct rs__batch *b;

	rs__synchronize();
	for (b = t->sealed; b; b = b->next) {
		apply_batch(t, b);
		if (!b->submitted)
			rs__store_release(&b->matured, 1);
	}
	t->self_sync = false;
	while (t->sealed && batch_matured(t->sealed))
		batch_recycle(t, sealed_pop(t));
}

void rs__defer_safepoint(struct rs__thread *t)
{
	apply_priv(t, true);
	while (t->sealed && batch_matured(t->sealed)) {
		apply_batch(t, t->sealed);	/* popped only once empty */
		batch_recycle(t, sealed_pop(t));
		rs__safepoint_poll(t);
	}
	if (!t->sealed && seal_due(t))
		seal(t);
	if (rs__load_relaxed(&t->c.pending_bytes) > rs__rt.defer_limit ||
	    (t->self_sync && t->sealed)) {
		seal(t);
		rs__bump_owner(&t->c.defer_waits, 1);
		apply_all_sealed(t);
	}
}

/*
 * A stop is requested and this thread is about to park at a safepoint.  It
 * applies its private decrements first (legal: this is its safepoint) and
 * gives back what the resulting deaths reference (rs__release_dying), but
 * runs no destroy callback and frees nothing: the cascade does that once the
 * world runs again.  Without this, a structure its thread dropped just
 * before the stop was still counted by its root's pending decrement, and a
 * collection promoted all of it.  The owner releases its own objects with
 * plain count decrements; RS__RELEASE_AT_PARK bounds the work a stop waits for.
 */
void rs__defer_before_park(struct rs__thread *t)
{
	apply_priv(t, false);
	if (t->dying)
		rs__release_dying(t, RS__RELEASE_AT_PARK);
}

/* Going offline: seal what is logged, so its grace period can pass while
 * the thread is away. */
void rs__defer_seal(struct rs__thread *t)
{
	if (!t->sealed)
		seal(t);
}

/* Detach: apply everything this thread logged. */
void rs__defer_flush(struct rs__thread *t)
{
	do {
		if (t->npriv)
			apply_priv(t, true);
		seal(t);
		if (t->sealed)
			apply_all_sealed(t);
	} while (t->npriv || (t->cur && t->cur->n));
}

/* Detach, last step: wait (offline) for the reclaimer to let go of our
 * empty batch nodes, then free them.  cur and spare stay with the slot. */
void rs__defer_release(struct rs__thread *t)
{
	bool online = urcu_qsbr_read_ongoing();

	if (online && t->sealed)
		urcu_qsbr_thread_offline();
	while (t->sealed) {
		while (!batch_matured(t->sealed))
			sched_yield();
		free(sealed_pop(t));
	}
	if (online && !urcu_qsbr_read_ongoing())
		urcu_qsbr_thread_online();
}

/*
 * Move `from`'s logged decrements (a thread gone in a fork child) to `to`'s
 * sealed list, or to the orphans if `to` is NULL.  With from == NULL, `to`
 * (attaching, under the registry lock, before it becomes visible to a
 * stopped world) takes the orphans.  Unmatured batches are submitted by the
 * caller (rs__defer_resubmit_all) or here for adopted orphans.
 */
void rs__defer_adopt(struct rs__thread *to, struct rs__thread *from)
{
	struct rs__batch *b, *list = NULL, **tail = &list;
	size_t i;

	if (!from) {	/* caller holds the registry lock */
		list = orphans;
		orphans = NULL;
		for (b = list; b; b = list) {
			list = b->next;
			sealed_append(to, b);
			rs__pending_add(to, b->n, (int64_t)b->bytes);
			if (!batch_matured(b)) {
				b->submitted = rs__reclaim_submit(b);
				to->self_sync |= !b->submitted;
			}
		}
		return;
	}
	/* private entries first: they were logged before the current batch's
	 * own entries were applied in no particular order anyway, and need no
	 * more than a grace period */
	for (i = 0; i < from->npriv; i++) {
		if (!from->cur || from->cur->n == from->cur->cap) {
			if (from->cur && from->cur->n)
				sealed_append(from, from->cur);
			from->cur = batch_new();
			if (!from->cur)
				rs__die("fork", from->priv[i],
					"out of memory adopting a gone thread's log");
		}
		from->cur->ent[from->cur->n++] = from->priv[i];
		from->cur->bytes += rs__obj_bytes(from->priv[i]);
	}
	from->npriv = 0;
	if (from->cur && from->cur->n) {
		sealed_append(from, from->cur);
		from->cur = NULL;
	}
	while (from->sealed) {
		b = sealed_pop(from);
		b->next = NULL;
		if (to) {
			sealed_append(to, b);
			rs__pending_add(to, b->n, (int64_t)b->bytes);
		} else {
			*tail = b;
			tail = &b->next;
		}
	}
	*tail = orphans;
	orphans = list;
	from->c.pending_bytes_max = rs__pending_peak(&from->c);	/* a decrease */
	from->c.pending = 0;
	from->c.pending_bytes = 0;
}

/* Fork child: every batch not yet matured goes to the new reclaimer. */
void rs__defer_resubmit_all(void)
{
	struct rs__thread *t = rs__self();
	struct rs__batch *b;

	if (!t)
		return;
	for (b = t->sealed; b; b = b->next) {
		if (!batch_matured(b)) {
			b->submitted = rs__reclaim_submit(b);
			t->self_sync |= !b->submitted;
		}
	}
}

/*
 * The world is stopped (a collection, lib/gc.c): every thread is at a
 * safepoint or offline, so the stop ends a grace period for every logged
 * decrement, and `by` applies them all now, for their threads.  Objects that
 * reach zero go to by's dying list, destroyed once the world runs again.
 */
static void drain_stopped(struct rs__thread *x, struct rs__batch *b,
			  struct rs__thread *by)
{
	void *obj;

	while (b->n) {
		obj = b->ent[--b->n];
		b->bytes -= rs__obj_bytes(obj);
		rs__pending_add(x, -1, -(int64_t)rs__obj_bytes(obj));
		rs__decref_now(by, obj);
	}
}

void rs__defer_apply_stopped(struct rs__thread *by)
{
	uint32_t slot, n = rs__load_acquire(&rs__nslots);
	struct rs__thread *x;
	struct rs__batch *b;
	void *obj;

	for (slot = 1; slot <= n; slot++) {
		x = rs__load_acquire(&rs__slots[slot]);
		/* acquire: pairs with the seq_cst store of OFFLINE that ends
		 * rs_thread_attach, which wrote the logs just before */
		if (rs__load_acquire(&x->state) == RS__T_DEAD)
			continue;
		while (x->npriv) {
			obj = x->priv[--x->npriv];
			rs__pending_add(x, -1, -(int64_t)rs__obj_bytes(obj));
			rs__decref_now(by, obj);
		}
		for (b = x->sealed; b; b = b->next)
			drain_stopped(x, b, by);
		if (x->cur)
			drain_stopped(x, x->cur, by);
	}
}

/* rs_shutdown with no thread attached: nobody can hold a borrowed
 * reference, so the orphans apply at once. */
void rs__defer_apply_orphans(void)
{
	static struct rs__thread ctx;
	struct rs__batch *b;

	rs__lock(&rs__registry_lock);
	while ((b = orphans)) {
		orphans = b->next;
		rs__unlock(&rs__registry_lock);
		apply_batch(&ctx, b);
		free(b);
		rs__lock(&rs__registry_lock);
	}
	rs__weak_orphan_callbacks(&ctx);
	ctx.c.pending = ctx.c.pending_bytes = 0;
	rs__retired.freed += ctx.c.freed;
	rs__retired.bytes_freed += ctx.c.bytes_freed;
	memset(&ctx.c, 0, sizeof(ctx.c));
	rs__unlock(&rs__registry_lock);
}
