/*
 * verify.c - rs_heap_verify: stop the world and check every invariant that
 * can be checked from what the runtime can see.
 *
 * Checked:
 *   thread registry   every live slot's id names the slot; states valid.
 *   logs (D5)         per thread, pending == entries in priv, cur and the
 *                     sealed batches, pending_bytes == their object sizes,
 *                     nsealed == length of the sealed list.
 *   objects in logs   header sane (type set, not dying or destroyed); and
 *                     (H2) count >= decrements still pending for it, since
 *                     count - pending == the object's live counted
 *                     references, never negative.
 *   merge queues      every queued object is in state QUEUED and names the
 *                     queue's thread as owner.
 *
 *   every live object (the allocator's heap walk, lib/alloc.c): type set,
 *                     not destroyed, not dying unless it is on its thread's
 *                     cascade list (a stop may park a long cascade), tid
 *                     names no freed slot; and the allocator's own
 *                     invariants (rs__alloc_validate: slab counts, every
 *                     free-list slot marked free, so no live object is on a
 *                     free list).
 */
#define RS_BUILDING 1
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

struct tally {
	void **key;
	long *n;
	size_t cap, used;
	bool nomem;
};

static size_t hash_ptr(const void *p, size_t cap)
{
	uint64_t x = (uint64_t)(uintptr_t)p;

	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	return (size_t)x & (cap - 1);
}

static bool tally_grow(struct tally *t)
{
	struct tally n = {0};
	size_t i, j;

	n.cap = t->cap ? 2 * t->cap : 1024;
	n.key = calloc(n.cap, sizeof(*n.key));
	n.n = calloc(n.cap, sizeof(*n.n));
	if (!n.key || !n.n) {
		free(n.key);
		free(n.n);
		return false;
	}
	for (i = 0; i < t->cap; i++) {
		if (!t->key[i])
			continue;
		for (j = hash_ptr(t->key[i], n.cap); n.key[j]; j = (j + 1) & (n.cap - 1))
			;
		n.key[j] = t->key[i];
		n.n[j] = t->n[i];
	}
	n.used = t->used;
	free(t->key);
	free(t->n);
	*t = n;
	return true;
}

static void tally_add(struct tally *t, void *obj)
{
	size_t j;

	if (t->nomem)
		return;
	if (2 * (t->used + 1) > t->cap && !tally_grow(t)) {
		t->nomem = true;
		return;
	}
	for (j = hash_ptr(obj, t->cap); t->key[j] && t->key[j] != obj;
	     j = (j + 1) & (t->cap - 1))
		;
	if (!t->key[j]) {
		t->key[j] = obj;
		t->used++;
	}
	t->n[j]++;
}

struct verify {
	long problems;
	struct tally pending;
	struct tally dying;
	size_t live;
};

static void problem(struct verify *v, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void problem(struct verify *v, const char *fmt, ...)
{
	va_list ap;

	v->problems++;
	fprintf(stderr, "refstore: rs_heap_verify: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static const char *name_of(const void *obj)
{
	const rs_type *type = rs__head_of(obj)->type;

	return type && type->name ? type->name : "?";
}

static bool check_header(struct verify *v, const void *obj, const char *where)
{
	const struct rs__head *h = rs__head_of(obj);
	uint32_t bits = rs__load_relaxed(&h->bits);

	if (!h->type) {
		problem(v, "%p in %s has no type", obj, where);
		return false;
	}
	if (bits & (RS__B_DYING | RS__B_DEAD)) {
		problem(v, "%p (type '%s') in %s is already destroyed", obj,
			name_of(obj), where);
		return false;
	}
	return true;
}

static void log_entry(struct verify *v, void *obj, size_t *n, size_t *bytes)
{
	(*n)++;
	if (!check_header(v, obj, "a decrement log"))
		return;
	*bytes += rs__obj_bytes(obj);
	tally_add(&v->pending, obj);
}

static void verify_logs(struct verify *v, struct rs__thread *t)
{
	struct rs__batch *b;
	size_t n = 0, bytes = 0, nsealed = 0, i;

	for (i = 0; i < t->npriv; i++)
		log_entry(v, t->priv[i], &n, &bytes);
	if (t->cur)
		for (i = 0; i < t->cur->n; i++)
			log_entry(v, t->cur->ent[i], &n, &bytes);
	for (b = t->sealed; b; b = b->next, nsealed++)
		for (i = 0; i < b->n; i++)
			log_entry(v, b->ent[i], &n, &bytes);
	if (n != t->c.pending || bytes != t->c.pending_bytes)
		problem(v, "thread %p: logs hold %zu decrements (%zu bytes) "
			"but its counters say %zu (%zu bytes)", (void *)t, n,
			bytes, (size_t)t->c.pending, (size_t)t->c.pending_bytes);
	if (nsealed != t->nsealed)
		problem(v, "thread %p: %zu sealed batches, counted %zu",
			(void *)t, nsealed, t->nsealed);
}

static void verify_queue(struct verify *v, struct rs__thread *t)
{
	struct rs__head *h;
	size_t i;

	rs__lock(&t->qlock);
	for (i = 0; i < t->qn; i++) {
		h = rs__head_of(t->queue[i]);
		if (!check_header(v, t->queue[i], "a merge queue"))
			continue;
		/* the owner may have given up ownership (tid MERGED) while
		 * the object waits in its queue */
		if (RS__S_STATE(rs__load_relaxed(&h->shared)) != RS__S_QUEUED ||
		    (rs__owner_of(h) != t->tid &&
		     rs__owner_of(h) != RS__TID_MERGED))
			problem(v, "%p (type '%s') is in a merge queue but not "
				"queued to that thread", t->queue[i],
				name_of(t->queue[i]));
	}
	rs__unlock(&t->qlock);
}

static void walk_visit(void *obj, void *arg)
{
	struct verify *v = arg;
	const struct rs__head *h = rs__head_of(obj);
	uint32_t bits = rs__load_relaxed(&h->bits);
	size_t j;

	v->live++;
	if (!h->type) {
		problem(v, "%p (live in the heap) has no type", obj);
		return;
	}
	if (bits & RS__B_DYING) {
		if (v->dying.key)
			for (j = hash_ptr(obj, v->dying.cap); v->dying.key[j];
			     j = (j + 1) & (v->dying.cap - 1))
				if (v->dying.key[j] == obj)
					return;
		problem(v, "%p (type '%s') is dying but on no cascade list",
			obj, name_of(obj));
		return;
	}
	if (rs__owner_of(h) == RS__TID_DEAD)
		problem(v, "%p (type '%s') is live but its header says freed",
			obj, name_of(obj));
}

long rs_heap_verify(void)
{
	struct verify v = {0};
	struct rs__thread *t;
	struct rs__head *h;
	uint32_t slot;
	size_t i;
	long count;
	int st;

	if (!rs__runtime_up()) {
		errno = EINVAL;
		return -1;
	}
	rs__reclaim_jobs_pause();	/* a job frees objects (a dead map's) */
	rs__world_stop();
	for (slot = 1; slot <= rs__load_acquire(&rs__nslots); slot++) {
		t = rs__slots[slot];
		/* acquire: pairs with the seq_cst store of OFFLINE that ends
		 * rs_thread_attach, after which the fields are written only
		 * by the thread itself, which is now stopped */
		st = rs__load_acquire(&t->state);
		if (st == RS__T_DEAD)
			continue;
		if (st < RS__T_ONLINE || st > RS__T_WAITING)
			problem(&v, "thread %p in state %d (slot %u)",
				(void *)t, st, slot);
		/* id 0: detaching, parked in its last cascade */
		if (t->tid && (RS__TID_SLOT(t->tid) != slot ||
			       (t->tid >> RS_SLOT_BITS) == 0))
			problem(&v, "thread %p has id %llu in slot %u",
				(void *)t, (unsigned long long)t->tid, slot);
		verify_logs(&v, t);
		verify_queue(&v, t);
		for (h = t->dying; h;
		     h = rs__dying_next(h))
			tally_add(&v.dying, h + 1);
	}
	rs__heap_walk(walk_visit, &v);
	v.problems += rs__alloc_validate();
	v.problems += rs__gc_verify();
	for (i = 0; i < v.pending.cap; i++) {
		void *obj = v.pending.key ? v.pending.key[i] : NULL;

		if (!obj || (rs__load_relaxed(&rs__head_of(obj)->bits) &
			     RS__B_IMMORTAL))
			continue;
		count = rs_refcount(obj);
		if (count < v.pending.n[i])
			problem(&v, "%p (type '%s'): count %ld is below the %ld "
				"decrements pending for it (double decref?)", obj,
				name_of(obj), count, v.pending.n[i]);
	}
	if (v.pending.nomem || v.dying.nomem)
		problem(&v, "out of memory: per-object checks incomplete");
	rs__world_resume(NULL);
	rs__reclaim_jobs_resume();
	free(v.pending.key);
	free(v.pending.n);
	free(v.dying.key);
	free(v.dying.n);
	return v.problems;
}
