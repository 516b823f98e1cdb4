/*
 * map.c - the keyed object map: byte-string keys to objects, over liburcu's
 * lock-free resizable hash table (cds_lfht, urcu-qsbr flavour).
 *
 * Layout
 * ------
 * A map is an object of type "rs_map"; each entry of its table is a node, an
 * object of type "rs_map_node" with a copy of the key and a counted
 * reference to the value, never changed once inserted (put replaces the
 * whole node).  The map's traverse visits the values; nodes have none.
 *
 * Invariants
 * ----------
 * (M1) Readers: a lookup takes no lock; what it finds lives to its safepoint.
 * (M2) Writers unlink a node, then rs_decref it and its value (room reserved).
 * (M3) A node's key length is stored with release, loaded with acquire.
 * (M4) With the world stopped the table and the counts agree.
 * (M5) A dead map's values go back by traverse; the reclaimer frees its table.
 * (M6) The table never resizes itself; resize jobs run on the reclaimer.
 * (M7) Walks after the first in one stop read the values it recorded.
 *
 * The argument: docs/design.md §13.
 */
#define RS_BUILDING 1
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <urcu/rculfhash.h>

struct rs_map {
	struct cds_lfht *ht;	/* = job->ht, here for lookups (one load).
				   Sync: immutable after rs_map_new */
	struct map_job *job;	/* its destruction, allocated in advance */
	uint64_t seed;		/* Sync: immutable */
	long count;		/* entries.  Sync: atomic (relaxed) */
	int closed;		/* rs_map_free was called.  Sync: atomic */
};

struct node {
	struct cds_lfht_node lf;	/* Sync: cds_lfht */
	void *value;		/* counted, the map's.  Sync: immutable once
				   inserted; dead nodes chain through it */
	uint32_t klen;		/* Sync: release store after the node is
				   filled, acquire load by every reader */
	unsigned char key[];
};

struct map_job {
	struct rs__job job;	/* destruction (M5) */
	struct cds_lfht *ht;
	struct node *dead;	/* unlinked nodes, through node->value */
	void **snap;		/* the values, as the last walk with the world
				   stopped found them (M7) */
	size_t snap_n, snap_cap;
	uint64_t snap_token;	/* rs__world_stop_token of that walk */
	struct rs__job resize;	/* resizing the table (M6) */
	unsigned long size;	/* buckets asked for.  Sync: atomic */
	int resizing;		/* resize is queued.  Sync: atomic */
};

/* ---------------------------------------------------------------------- */
/* Node types: one per key capacity, so a node costs its key plus a little */
/* ---------------------------------------------------------------------- */

#define NODE_FIXED offsetof(struct node, key)
#define NODE_CLASSES 8
#define NODE_TYPE(cap) \
	{ .name = "rs_map_node", .size = NODE_FIXED + (cap), \
	  .flags = RS_TYPE_NO_CYCLES }
static const rs_type node_types[NODE_CLASSES] = {
	NODE_TYPE(8), NODE_TYPE(24), NODE_TYPE(56), NODE_TYPE(120),
	NODE_TYPE(248), NODE_TYPE(504), NODE_TYPE(760), NODE_TYPE(RS_MAP_KEY_MAX),
};
#undef NODE_TYPE

static const rs_type *node_type(size_t klen)
{
	unsigned i = 0;

	while (node_types[i].size - NODE_FIXED < klen)
		i++;
	return &node_types[i];
}

static struct node *node_of(struct cds_lfht_node *lf)
{
	return caa_container_of(lf, struct node, lf);
}

/* ---------------------------------------------------------------------- */
/* Hashing: 64-bit multiply-xorshift over 8-byte words, seeded per map     */
/* ---------------------------------------------------------------------- */

static inline uint64_t mix(uint64_t x)
{
	x ^= x >> 31;
	x *= 0x7fb5d329728ea185ull;
	x ^= x >> 27;
	x *= 0x81dadef4bc2dd44dull;
	x ^= x >> 33;
	return x;
}

static uint64_t hash_key(const void *key, size_t n, uint64_t seed)
{
	const unsigned char *p = key;
	uint64_t h = seed ^ (n * 0x9e3779b97f4a7c15ull), w;

	for (; n >= 8; n -= 8, p += 8) {
		memcpy(&w, p, 8);
		h = (h ^ mix(w)) * 0x9e3779b97f4a7c15ull;
		h = (h << 29) | (h >> 35);
	}
	w = 0;
	if (n)
		memcpy(&w, p, n);
	return mix(h ^ mix(w ^ ((uint64_t)n << 56)));
}

struct lookup {
	const void *key;
	size_t klen;
};

static int match(struct cds_lfht_node *lf, const void *arg)
{
	const struct node *n = node_of(lf);
	const struct lookup *k = arg;

	return rs__load_acquire(&n->klen) == k->klen &&
	       (k->klen == 0 || memcmp(n->key, k->key, k->klen) == 0);
}

/* ---------------------------------------------------------------------- */
/* The map as an object                                                    */
/* ---------------------------------------------------------------------- */

/* Walk the table; with the world stopped by this thread, also record the
 * values, so the next walk in the same stop reads an array instead (M7). */
static void map_traverse(void *obj, rs_visit_fn visit, void *arg)
{
	struct rs_map *m = obj;
	struct map_job *mj = m->job;
	struct cds_lfht_iter it;
	struct cds_lfht_node *lf;
	struct node *n;
	uint64_t token;
	size_t i, cap;
	void **p;
	bool keep;

	if (!m->ht)
		return;
	token = rs__world_stop_token();
	if (token && mj->snap_token == token) {
		for (i = 0; i < mj->snap_n; i++)
			visit(mj->snap[i], arg);
		return;
	}
	keep = token != 0;
	if (keep) {	/* only a stopper touches the record */
		mj->snap_token = 0;
		mj->snap_n = 0;
	}
	cds_lfht_for_each(m->ht, &it, lf) {
		n = node_of(lf);
		(void)rs__load_acquire(&n->klen);	/* (M3) */
		if (keep && mj->snap_n == mj->snap_cap) {
			cap = mj->snap_cap ? 2 * mj->snap_cap : 1024;
			p = rs__fault(RS__FAULT_MAPSNAP) ? NULL :
				realloc(mj->snap, cap * sizeof(*p));
			if (p) {
				mj->snap = p;
				mj->snap_cap = cap;
			} else {
				keep = false;
			}
		}
		if (keep)
			mj->snap[mj->snap_n++] = n->value;
		visit(n->value, arg);
	}
	if (keep)
		mj->snap_token = token;
}

/* (M5) Runs on the reclaimer, after every resize job queued before it.
 * Unlinking walks the table, so the reclaimer is a urcu reader meanwhile;
 * once it is done no thread can reach the nodes. */
static void map_job_run(struct rs__job *j)
{
	struct map_job *mj = caa_container_of(j, struct map_job, job);
	struct cds_lfht_iter it;
	struct cds_lfht_node *lf;
	struct node *n, *next;
	int err;

	urcu_qsbr_register_thread();
	cds_lfht_for_each(mj->ht, &it, lf) {
		if (cds_lfht_del(mj->ht, lf))
			continue;
		n = node_of(lf);
		n->value = mj->dead;
		mj->dead = n;
	}
	urcu_qsbr_unregister_thread();
	err = cds_lfht_destroy(mj->ht, NULL);
	if (err)
		fprintf(stderr, "refstore: destroying a map's table failed "
			"(%d); its memory is lost\n", err);
	for (n = mj->dead; n; n = next) {
		next = n->value;
		rs__obj_free_unattached(rs__head_of(n));
	}
	free(mj->snap);
	free(mj);
}

/* (M6) Runs on the reclaimer, which registers as a urcu reader for the
 * duration: cds_lfht_resize walks the table inside read-side sections and
 * waits for grace periods (urcu-qsbr's synchronize_rcu lets an online
 * caller through). */
static void map_resize_run(struct rs__job *j)
{
	struct map_job *mj = caa_container_of(j, struct map_job, resize);

	urcu_qsbr_register_thread();
	cds_lfht_resize(mj->ht, rs__load_relaxed(&mj->size));
	urcu_qsbr_unregister_thread();
	rs__store_release(&mj->resizing, 0);
}

/* Ask for a table of one bucket per one or two entries (M6). */
static void resize(struct rs_map *m, long count)
{
	struct map_job *mj = m->job;
	unsigned long want = 16;

	while (want * 2 <= (unsigned long)count)
		want <<= 1;
	if (want == rs__load_relaxed(&mj->size) ||
	    rs__xchg_acquire(&mj->resizing, 1))
		return;
	rs__store_relaxed(&mj->size, want);
	mj->resize.fn = map_resize_run;
	rs__reclaim_job(&mj->resize);
}

static inline void check_size(struct rs_map *m, long count)
{
	unsigned long size = rs__load_relaxed(&m->job->size);

	/* A del (or rs_map_free's sweep) may count its node out before the
	 * put that inserted it counts it in: count is then briefly negative,
	 * and the put's own check follows. */
	if (RS_UNLIKELY(count < 0))
		return;
	if (RS_UNLIKELY((unsigned long)count > size * 2 ||
			((unsigned long)count < size / 4 && size > 16)))
		resize(m, count);
}

/* The values were given back through traverse already (M5); the table
 * and the nodes go to the reclaimer. */
static void map_destroy(void *obj)
{
	struct rs_map *m = obj;
	struct map_job *mj = m->job;

	if (!m->ht) {
		free(mj->snap);
		free(mj);
		return;
	}
	mj->job.fn = map_job_run;
	rs__reclaim_job(&mj->job);
}

static const rs_type map_type = {
	.name = "rs_map",
	.size = sizeof(struct rs_map),
	.traverse = map_traverse,
	.destroy = map_destroy,
	.flags = RS__TYPE_NOT_YOUNG,	/* lib/gc.c trial_deletion */
};

/* ---------------------------------------------------------------------- */
/* Argument checks                                                         */
/* ---------------------------------------------------------------------- */

/* The calling thread must be attached and online (M1). */
static struct rs__thread *online_self(const char *call, const void *m)
{
	struct rs__thread *t = rs__api_thread(RS__API_ATTACHED);

	if (RS_UNLIKELY(!t))
		return NULL;
	if (RS_UNLIKELY(rs__load_relaxed(&t->state) != RS__T_ONLINE)) {
		if (RS_DEBUG)
			rs__die(call, m, "called from an offline thread");
		errno = EPERM;
		return NULL;
	}
	return t;
}

/* ... and the map must be a map that rs_map_free has not closed. */
static struct rs__thread *check(const char *call, struct rs_map *m)
{
	struct rs__thread *t = online_self(call, m);
	struct rs__head *h;
	uint32_t bits;

	if (!t)
		return NULL;
	if (RS_UNLIKELY(!m)) {
		errno = EINVAL;
		return NULL;
	}
	h = rs__head_of(m);
	bits = rs__load_relaxed(&h->bits);
	if (RS_UNLIKELY(bits & (RS__B_DEAD | RS__B_DYING | RS__B_FREE))) {
		if (RS_DEBUG)
			rs__die(call, m, "the map was already destroyed "
				"(use after rs_map_free or its last decref)");
		errno = EBADF;
		return NULL;
	}
	if (RS_UNLIKELY(h->type != &map_type)) {
		errno = EINVAL;
		return NULL;
	}
	if (RS_UNLIKELY(rs__load_acquire(&m->closed))) {
		errno = EBADF;
		return NULL;
	}
	return t;
}

static int check_key(const void *key, size_t klen)
{
	if (RS_UNLIKELY(!key && klen)) {
		errno = EINVAL;
		return -1;
	}
	if (RS_UNLIKELY(klen > RS_MAP_KEY_MAX)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

/* Room in the log for a node's decrement and its value's (M2). */
static int reserve2(struct rs__thread *t)
{
	return rs__log_room(t, 2);
}

static void give_back(struct node *n)
{
	rs_decref(n->value);
	rs_decref(n);
}

/* ---------------------------------------------------------------------- */
/* API                                                                     */
/* ---------------------------------------------------------------------- */

rs_map *rs_map_new(void)
{
	struct rs_map *m;
	struct map_job *mj;
	uint64_t seed;

	if (!online_self("rs_map_new", NULL))
		return NULL;
	mj = rs__fault(RS__FAULT_MAP) ? NULL : calloc(1, sizeof(*mj));
	if (!mj) {
		errno = ENOMEM;
		return NULL;
	}
	m = rs_new(&map_type);
	if (!m) {
		free(mj);
		return NULL;
	}
	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != sizeof(seed))
		seed = mix(rs__now_ns() ^ (uint64_t)(uintptr_t)m);
	m->seed = seed;
	m->job = mj;
	mj->size = 16;
	mj->ht = rs__fault(RS__FAULT_MAP) ? NULL :
		 cds_lfht_new_flavor(16, 16, 0, 0, &urcu_qsbr_flavor, NULL);
	m->ht = mj->ht;
	if (!m->ht) {
		rs__decref_now(rs__self(), m);	/* private, count 1 */
		rs__cascade(rs__self());
		errno = ENOMEM;
		return NULL;
	}
	/* Maps exist to be shared: published from the start (it holds no
	 * values yet, so there is nothing else to publish). */
	rs__or_relaxed(&rs__head_of(m)->bits, RS__B_PUBLISHED);
	return m;
}

/* A new node for key, holding a counted reference to obj (the caller's,
 * if steal); not yet in the table.  NULL: ENOMEM. */
static struct node *node_new(const void *key, size_t klen, void *obj,
			     bool steal)
{
	struct node *n = rs_new(node_type(klen));

	if (!n)
		return NULL;
	/* read by other threads from now on: its last decrement must wait
	 * for a grace period; it has no children to publish */
	rs__or_relaxed(&rs__head_of(n)->bits, RS__B_PUBLISHED);
	n->value = steal ? obj : rs_incref(obj);
	if (klen)
		memcpy(n->key, key, klen);
	rs__store_release(&n->klen, (uint32_t)klen);	/* (M3) */
	cds_lfht_node_init(&n->lf);
	return n;
}

/* rs_map_put (steal false) and rs_map_put_steal (true). */
static int put(const char *call, rs_map *m, const void *key, size_t klen,
	       void *obj, bool steal)
{
	struct rs__thread *t = check(call, m);
	struct lookup k = {key, klen};
	struct cds_lfht_node *old;
	struct node *n;
	uint64_t h;

	if (!t || check_key(key, klen))
		return -1;
	if (!obj) {
		errno = EINVAL;
		return -1;
	}
	/* Everything that can fail happens before the table changes (M2). */
	if (rs_publish(obj) || reserve2(t) || !(n = node_new(key, klen, obj, steal)))
		return -1;
	h = hash_key(key, klen, m->seed);
	old = cds_lfht_add_replace(m->ht, h, match, &k, &n->lf);
	if (old)
		give_back(node_of(old));
	else
		check_size(m, rs__add_fetch_relaxed(&m->count, 1));
	return 0;
}

int rs_map_put(rs_map *m, const void *key, size_t klen, void *obj)
{
	return put("rs_map_put", m, key, klen, obj, false);
}

int rs_map_put_steal(rs_map *m, const void *key, size_t klen, void *obj)
{
	return put("rs_map_put_steal", m, key, klen, obj, true);
}

static struct node *find(struct rs_map *m, const void *key, size_t klen,
			 struct cds_lfht_iter *it)
{
	struct lookup k = {key, klen};
	struct cds_lfht_node *lf;

	cds_lfht_lookup(m->ht, hash_key(key, klen, m->seed), match, &k, it);
	lf = cds_lfht_iter_get_node(it);
	return lf ? node_of(lf) : NULL;
}

void *rs_map_get(rs_map *m, const void *key, size_t klen)
{
	struct cds_lfht_iter it;
	struct node *n;

	if (!check("rs_map_get", m) || check_key(key, klen))
		return NULL;
	n = find(m, key, klen, &it);
	if (!n) {
		errno = ENOENT;
		return NULL;
	}
	return n->value;
}

void *rs_map_get_ref(rs_map *m, const void *key, size_t klen)
{
	struct cds_lfht_iter it;
	struct node *n;

	if (!check("rs_map_get_ref", m) || check_key(key, klen))
		return NULL;
	n = find(m, key, klen, &it);
	if (!n) {
		errno = ENOENT;
		return NULL;
	}
	/* alive until our next safepoint (M1), so it can be counted */
	return rs_incref(n->value);
}

int rs_map_del(rs_map *m, const void *key, size_t klen)
{
	struct rs__thread *t = check("rs_map_del", m);
	struct cds_lfht_iter it;
	struct node *n;

	if (!t || check_key(key, klen) || reserve2(t))
		return -1;
	for (;;) {
		n = find(m, key, klen, &it);
		if (!n) {
			errno = ENOENT;
			return -1;
		}
		/* lost only to a concurrent del or replace: look again */
		if (cds_lfht_del(m->ht, &n->lf) == 0)
			break;
	}
	give_back(n);
	check_size(m, rs__add_fetch_relaxed(&m->count, -1));
	return 0;
}

int rs_map_add(rs_map *m, const void *key, size_t klen, void *obj)
{
	struct rs__thread *t = check("rs_map_add", m);
	struct lookup k = {key, klen};
	struct cds_lfht_node *lf;
	struct node *n;

	if (!t || check_key(key, klen))
		return -1;
	if (!obj) {
		errno = EINVAL;
		return -1;
	}
	if (rs_publish(obj) || reserve2(t) || !(n = node_new(key, klen, obj, false)))
		return -1;
	lf = cds_lfht_add_unique(m->ht, hash_key(key, klen, m->seed), match, &k,
				 &n->lf);
	if (lf != &n->lf) {	/* the key is there: nothing changed */
		give_back(n);
		errno = EEXIST;
		return -1;
	}
	check_size(m, rs__add_fetch_relaxed(&m->count, 1));
	return 0;
}

/*
 * Compare and swap one entry: the entry holds `expected` (NULL: the key is
 * absent) and becomes `value` (NULL: removed), or nothing changes.  The
 * comparison and the change are one step for every other put, del, add or
 * cas of the key: a replacement is cds_lfht_replace of the very node that
 * held `expected`, which fails if another writer removed that node first,
 * and an insertion is cds_lfht_add_unique.
 */
int rs_map_cas(rs_map *m, const void *key, size_t klen, void *expected,
	       void *value)
{
	struct rs__thread *t = check("rs_map_cas", m);
	struct lookup k = {key, klen};
	struct cds_lfht_iter it;
	struct cds_lfht_node *lf;
	struct node *n, *nn = NULL;
	uint64_t h;

	if (!t || check_key(key, klen))
		return -1;
	if ((value && rs_publish(value)) || reserve2(t) ||
	    (value && !(nn = node_new(key, klen, value, false))))
		return -1;
	h = hash_key(key, klen, m->seed);
	for (;;) {
		cds_lfht_lookup(m->ht, h, match, &k, &it);
		lf = cds_lfht_iter_get_node(&it);
		n = lf ? node_of(lf) : NULL;
		if ((n ? n->value : NULL) != expected)
			break;				/* not what was expected */
		if (!n && !nn)
			return 1;			/* absent stays absent */
		if (!n) {
			if (cds_lfht_add_unique(m->ht, h, match, &k, &nn->lf) !=
			    &nn->lf)
				continue;		/* added meanwhile */
			check_size(m, rs__add_fetch_relaxed(&m->count, 1));
			return 1;
		}
		if (!nn) {
			if (cds_lfht_del(m->ht, &n->lf))
				continue;		/* removed meanwhile */
			give_back(n);
			check_size(m, rs__add_fetch_relaxed(&m->count, -1));
			return 1;
		}
		if (cds_lfht_replace(m->ht, &it, h, match, &k, &nn->lf))
			continue;			/* removed meanwhile */
		give_back(n);
		return 1;
	}
	if (nn)
		give_back(nn);	/* never in the table */
	return 0;
}

int rs_map_lookup(rs_map *m, const void *key, size_t klen, void **out)
{
	struct cds_lfht_iter it;
	struct node *n;

	if (!check("rs_map_lookup", m) || check_key(key, klen))
		return -1;
	if (!out) {
		errno = EINVAL;
		return -1;
	}
	n = find(m, key, klen, &it);
	*out = n ? n->value : NULL;
	return n != NULL;
}

long rs_map_clear(rs_map *m)
{
	struct rs__thread *t = check("rs_map_clear", m);
	struct cds_lfht_iter it;
	struct cds_lfht_node *lf;
	long n = 0;

	if (!t)
		return -1;
	cds_lfht_for_each(m->ht, &it, lf) {
		if (reserve2(t))
			return -1;	/* ENOMEM: the rest stays */
		if (cds_lfht_del(m->ht, lf))
			continue;	/* another writer removed it */
		(void)rs__load_acquire(&node_of(lf)->klen);	/* (M3) */
		give_back(node_of(lf));
		check_size(m, rs__add_fetch_relaxed(&m->count, -1));
		n++;
	}
	return n;
}

long rs_map_count(rs_map *m)
{
	long count;

	if (!check("rs_map_count", m))
		return -1;
	count = rs__load_relaxed(&m->count);
	return count < 0 ? 0 : count;	/* see check_size */
}

long rs_map_foreach(rs_map *m, rs_map_fn fn, void *arg)
{
	struct cds_lfht_iter it;
	struct cds_lfht_node *lf;
	struct node *n;
	uint32_t klen;
	long seen = 0;

	struct rs__thread *t = check("rs_map_foreach", m);

	if (!t)
		return -1;
	if (!fn) {
		errno = EINVAL;
		return -1;
	}
	t->in_map_walk++;	/* the walk is a read-side section */
	cds_lfht_for_each(m->ht, &it, lf) {
		n = node_of(lf);
		klen = rs__load_acquire(&n->klen);	/* (M3) */
		seen++;
		if (fn(n->key, klen, n->value, arg))
			break;
	}
	t->in_map_walk--;
	return seen;
}

/* Close the map, give back every entry, and give back the caller's
 * reference.  Entries a racing put adds after the sweep are given back when
 * the map itself dies. */
int rs_map_free(rs_map *m)
{
	struct rs__thread *t = check("rs_map_free", m);

	if (RS_DEBUG && t && t->in_map_walk)
		rs__die("rs_map_free", m, "called inside rs_map_foreach (the "
			"walk may be of this very map)");
	struct cds_lfht_iter it;
	struct cds_lfht_node *lf;
	int was = 0, swept = 1;

	if (!t)
		return -1;
	if (!__atomic_compare_exchange_n(&m->closed, &was, 1, 0,
					 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
		errno = EBADF;
		return -1;
	}
	cds_lfht_for_each(m->ht, &it, lf) {
		if (reserve2(t)) {
			swept = 0;	/* the rest goes when the map dies */
			break;
		}
		if (cds_lfht_del(m->ht, lf))
			continue;
		(void)rs__load_acquire(&node_of(lf)->klen);	/* (M3) */
		rs__add_relaxed(&m->count, -1);
		give_back(node_of(lf));
	}
	if (!swept || rs__log_room(t, 1)) {
		errno = ENOMEM;
		return -1;
	}
	return rs_decref(m);
}
