/*
 * weak.c - weak references: objects that name a target without counting
 * it, are cleared when it dies, and may run a callback then.
 *
 * Algorithm: a global table, under one lock, maps each target (marked
 * WEAKREFS and TRYREF) to the list of its weak references (TRYREF too).
 * rs_weakref_get reads the target under the lock and counts it with
 * rs__tryincref; the cascade clears the target's weak references
 * (rs__weak_clear) and queues their callbacks on the clearing thread.
 *
 * Invariants
 * ----------
 * rs__tryincref never counts MERGED 0, a TRYREF object's only way to zero.
 * A target is read only under the lock, and unlinked under it before freed.
 * Callbacks never run with the world stopped (safepoint, collection, detach).
 *
 * The argument: docs/design.md §12.
 */
#define RS_BUILDING 1
#include "internal.h"

#include <stdlib.h>

struct weakref {
	void *target;		/* Sync: weak lock */
	rs_weakref_fn callback;	/* Sync: immutable after creation */
	void *arg;
	struct weakref *next, *prev;	/* target's list. Sync: weak lock */
	struct weakref *due;	/* queued callback. Sync: the queuing thread */
};

static void weakref_destroy(void *obj);
static void adopt_orphans(struct rs__thread *t);

static const rs_type weakref_type = {
	"rs_weakref", sizeof(struct weakref), NULL, NULL, weakref_destroy, 0,
};

/* Open addressing with linear probing: target -> first weak reference.
 * Deletion shifts the following entries back, so there are no tombstones.
 * All Sync: weak lock. */
struct slot {
	void *key;
	struct weakref *first;
};

static rs__mutex weak_lock = {PTHREAD_MUTEX_INITIALIZER, RS__L_WEAK};
static struct slot *table;
static size_t table_cap, table_n;	/* cap: a power of two, or 0 */

static size_t hash_ptr(const void *p)
{
	uint64_t x = (uint64_t)(uintptr_t)p;

	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	return (size_t)x;
}

static struct slot *lookup(const void *key)
{
	size_t i;

	if (!table_cap)
		return NULL;
	for (i = hash_ptr(key) & (table_cap - 1); table[i].key;
	     i = (i + 1) & (table_cap - 1))
		if (table[i].key == key)
			return &table[i];
	return NULL;
}

static void insert_slot(struct slot *t, size_t cap, void *key,
			struct weakref *first)
{
	size_t i;

	for (i = hash_ptr(key) & (cap - 1); t[i].key; i = (i + 1) & (cap - 1))
		;
	t[i].key = key;
	t[i].first = first;
}

static int grow(void)
{
	size_t cap = table_cap ? 2 * table_cap : 64, i;
	struct slot *t = calloc(cap, sizeof(*t));

	if (!t)
		return -1;
	for (i = 0; i < table_cap; i++)
		if (table[i].key)
			insert_slot(t, cap, table[i].key, table[i].first);
	free(table);
	table = t;
	table_cap = cap;
	return 0;
}

static void delete_slot(struct slot *s)
{
	size_t i = (size_t)(s - table), j = i, k;

	table[i].key = NULL;
	table_n--;
	for (;;) {
		j = (j + 1) & (table_cap - 1);
		if (!table[j].key)
			return;
		k = hash_ptr(table[j].key) & (table_cap - 1);
		/* move j back to i unless its home k lies in (i, j] */
		if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
			continue;
		table[i] = table[j];
		table[j].key = NULL;
		i = j;
	}
}

/* Count h if it is not dead: see the protocol at the top. */
bool rs__tryincref(struct rs__head *h)
{
	uint64_t tid = rs__owner_of(h);
	uint32_t bits = rs__load_relaxed(&h->bits), local;
	int64_t w;

	if (bits & RS__B_IMMORTAL)
		return true;
	if (bits & (RS__B_DYING | RS__B_DEAD))
		return false;
	if (tid == rs__tls.tid) {
		local = rs__load_relaxed(&h->local);
		rs__store_relaxed(&h->local, local + 1);
		return true;
	}
	w = rs__load_acquire(&h->shared);
	do {
		if (RS__S_STATE(w) == RS__S_MERGED && RS__S_COUNT(w) <= 0)
			return false;
	} while (!rs__cas_acq_rel(&h->shared, &w, w + RS__S_ONE));
	return true;
}

void *rs_weakref_new(void *obj, rs_weakref_fn callback, void *arg)
{
	struct rs__head *h;
	struct weakref *wr;
	struct slot *s;

	if (!rs__api_thread(RS__API_ATTACHED))
		return NULL;
	if (!obj) {
		errno = EINVAL;
		return NULL;
	}
	h = rs__head_of(obj);
	if (rs__load_relaxed(&h->bits) &
	    (RS__B_DYING | RS__B_DEAD | RS__B_GARBAGE)) {
		errno = EINVAL;
		return NULL;
	}
	/* Another thread may get the target through the weak reference:
	 * like a store into a shared field, that publishes it. */
	if (rs_publish(obj))
		return NULL;
	wr = rs_new(&weakref_type);
	if (!wr)
		return NULL;
	rs__or_relaxed(&rs__head_of(wr)->bits, RS__B_TRYREF);
	wr->callback = callback;
	wr->arg = arg;
	wr->target = obj;
	/* linked even when the target is immortal (never cleared then):
	 * rs_immortalize may come after other weak references */
	rs__lock(&weak_lock);
	s = lookup(obj);
	if (!s) {
		/* (the test fault: as if the table had to grow and could
		 * not, so every new target can fail) */
		if (rs__fault(RS__FAULT_WEAKTAB) ||
		    ((table_n + 1) * 2 > table_cap && grow())) {
			rs__unlock(&weak_lock);
			/* never linked, never seen by anyone: free it now
			 * (a logged decrement could itself fail) */
			wr->target = NULL;
			rs__decref_now(rs__self(), wr);
			rs__cascade(rs__self());
			errno = ENOMEM;
			return NULL;
		}
		insert_slot(table, table_cap, obj, NULL);
		table_n++;
		s = lookup(obj);
	}
	wr->prev = NULL;
	wr->next = s->first;
	if (wr->next)
		wr->next->prev = wr;
	s->first = wr;
	rs__or_relaxed(&h->bits, RS__B_WEAKREFS | RS__B_TRYREF);
	rs__unlock(&weak_lock);
	return wr;
}

static bool is_weakref(void *wr)
{
	return wr && rs__head_of(wr)->type == &weakref_type;
}

void *rs_weakref_get(void *ref)
{
	struct weakref *wr = ref;
	void *target;

	if (!rs__api_thread(RS__API_ATTACHED))
		return NULL;
	if (!is_weakref(wr)) {
		errno = EINVAL;
		return NULL;
	}
	rs__lock(&weak_lock);
	target = wr->target;
	if (target && !rs__tryincref(rs__head_of(target)))
		target = NULL;
	rs__unlock(&weak_lock);
	return target;
}

static void unlink_wr(struct weakref *wr)
{
	struct slot *s;

	if (wr->prev) {
		wr->prev->next = wr->next;
	} else {
		s = lookup(wr->target);
		if (!s || s->first != wr)
			return;	/* not linked (rs_weakref_new failed) */
		s->first = wr->next;
		if (!s->first)
			delete_slot(s);
	}
	if (wr->next)
		wr->next->prev = wr->prev;
}

static void weakref_destroy(void *obj)
{
	struct weakref *wr = obj;

	rs__lock(&weak_lock);
	if (wr->target)
		unlink_wr(wr);
	wr->target = NULL;
	rs__unlock(&weak_lock);
}

void rs__weak_clear(struct rs__thread *t, struct rs__head *h)
{
	struct weakref *wr, *next;
	struct slot *s;

	rs__lock(&weak_lock);
	s = lookup(h + 1);
	if (s) {
		for (wr = s->first; wr; wr = next) {
			next = wr->next;
			wr->target = NULL;
			wr->next = wr->prev = NULL;
			if (wr->callback && t &&
			    rs__tryincref(rs__head_of(wr))) {
				wr->due = t->callbacks;
				t->callbacks = wr;
			}
		}
		delete_slot(s);
	}
	rs__unlock(&weak_lock);
}

void rs__weak_run_callbacks(struct rs__thread *t)
{
	struct weakref *wr;

	if (rs__load_relaxed(&rs__weak_orphans))
		adopt_orphans(t);

	while ((wr = t->callbacks)) {
		t->callbacks = wr->due;
		wr->due = NULL;
		t->in_weak_cb++;	/* rs_thread_detach refuses meanwhile */
		wr->callback(wr, wr->arg);
		t->in_weak_cb--;
		rs__decref_or_wait(t, wr);	/* never lost to ENOMEM */
	}
}

/*
 * Callbacks queued on a thread that can no longer run them (its last
 * cascade in rs_thread_detach, a fork's gone threads, rs_shutdown's orphan
 * batches) wait in a global list; the next safepoint of any thread (slow
 * path) or collection takes them.
 */
static struct weakref *orphans;	/* Sync: weak lock */
int rs__weak_orphans;

void rs__weak_orphan_callbacks(struct rs__thread *t)
{
	struct weakref *last;

	if (!t->callbacks)
		return;
	for (last = t->callbacks; last->due; last = last->due)
		;
	rs__lock(&weak_lock);
	last->due = orphans;
	orphans = t->callbacks;
	rs__store_relaxed(&rs__weak_orphans, 1);
	rs__unlock(&weak_lock);
	t->callbacks = NULL;
}

static void adopt_orphans(struct rs__thread *t)
{
	struct weakref *wr, *last;

	rs__lock(&weak_lock);
	wr = orphans;
	orphans = NULL;
	rs__store_relaxed(&rs__weak_orphans, 0);
	rs__unlock(&weak_lock);
	if (!wr)
		return;
	for (last = wr; last->due; last = last->due)
		;
	last->due = t->callbacks;
	t->callbacks = wr;
}

void rs__weak_fork_child(void)
{
	rs__lock_reinit(&weak_lock);
}
