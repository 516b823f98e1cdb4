/*
 * stress_map.c - the keyed object map under concurrent puts, gets, deletes
 * and frees, with values that form cycles and collections running.
 *
 * One long-lived map ("main") is checked exactly; a few ephemeral maps are
 * used by every thread while their owner replaces and frees them
 * (rs_map_free), so operations on them may fail with EBADF and are only
 * checked for the values they return.  Values ("mval") record their key,
 * their writer and the writer's sequence number, and are immutable after
 * the put; one in four is a cycle: a self-loop, a pair of values pointing
 * to each other, or a value pointing back to the map that holds it.
 *
 * Keys of the main map:
 *   - owned keys "o<thread>.<k>": only their thread puts and deletes them,
 *     so it knows their exact contents at every moment: each of its gets
 *     must return exactly the value it put last (or ENOENT after its del),
 *     each of its dels must succeed exactly when the key is present;
 *     other threads read them too and must see the owner's values with
 *     sequence numbers that never go back (reads are atomic and ordered);
 *   - shared keys ("s", a NUL byte, k): every thread puts and deletes them.
 *     Each writer times each of its operations with the monotonic clock
 *     (start before the call, end after it) and keeps, per key, its last
 *     operation that changed the map (a put, or a del that succeeded).
 *     Every operation takes effect at one instant inside its interval
 *     (linearizability), so the operation X that produced the final state
 *     of a key must be the last changing operation of its writer, and no
 *     other writer's last changing operation Y may start after X ended
 *     (Y would have taken effect after X).  The check: if the key holds
 *     value (w, s), w's last change of the key is the put of s and no
 *     other thread's last change started after it ended; if the key is
 *     absent, some thread's last change is a successful del that no other
 *     thread's last change started after (or nobody ever changed it).
 *     This is sound (a correct map never fails it) and catches lost,
 *     resurrected and stale updates that are apart in time.  Between
 *     checkpoints each thread applies the same argument to its own reads:
 *     a value it reads after its own last change C of the key was put
 *     after C took effect, so that put cannot have returned before C
 *     started (values carry the time their put returned).
 *
 * Checkpoints (about every 100 ms, and at the end): all threads meet at a
 * barrier (offline); thread 0 checks every owned and shared key as above,
 * rs_map_count against the number of keys present, rs_map_foreach (each
 * entry once, key matching its value, the same value rs_map_get gives) and
 * rs_heap_verify() == 0.
 *
 * Between checkpoints, every value a thread reads, borrowed or counted, is
 * checked: alive (magic word that destroy overwrites, refstore header not
 * DEAD/FREE/DYING), of the key looked up, with its cycle intact; counted
 * references from rs_map_get_ref are kept across safepoints and checked
 * again after each.  rs_map_foreach runs concurrently with writers too.
 *
 * At the end every map is freed (rs_map_free), full collections run, every
 * value must have been destroyed (births == deaths: the cycles through
 * freed maps were collected) and rs_shutdown() must report 0 live objects.
 */
#include <sched.h>

#include "stress.h"

#define MAGIC_ALIVE 0x3a9a11fe3a9a11feULL
#define MAGIC_DEAD 0xdeadbeefdeadbeefULL

#define NOWN 32		/* owned keys per thread */
#define NSHARED 16	/* shared keys */
#define NEPH 4		/* ephemeral maps */
#define NEPHKEYS 24	/* keys used in them */
#define NHELD 4		/* counted values kept across safepoints */
#define KEYMAX 16

enum cyc { CYC_NONE, CYC_SELF, CYC_PAIR, CYC_MAP };
enum { OP_NONE, OP_PUT, OP_DEL };

struct mval {
	void *next;		/* reference: NULL, itself, its partner, a map */
	_Atomic uint64_t magic;
	uint64_t seq;		/* the writer's sequence number */
	_Atomic uint64_t put_end;	/* shared keys: when the put returned
					   (0 until the writer knows) */
	uint32_t writer;
	uint32_t partner;	/* 1: the second value of a pair */
	uint32_t cyc;
	uint32_t klen;
	unsigned char key[KEYMAX];
};

/* A thread's last change of a shared key.  Sync: written by its thread,
 * read by thread 0 at a checkpoint (the barrier orders them). */
struct lastop {
	uint64_t start, end;	/* ns, monotonic */
	uint64_t seq;		/* of the put */
	int kind;		/* OP_NONE, OP_PUT, OP_DEL */
};

struct owned {
	uint64_t seq;		/* of the value put last */
	int present;
};

struct held {
	struct mval *v;		/* counted */
	unsigned char key[KEYMAX];
	uint32_t klen;
};

/* Sync: its thread only, except seq (atomic) and own[] and last[], which
 * thread 0 reads at checkpoints (the barrier orders them). */
struct worker {
	int id;
	struct stress_rng rng;
	atomic_ullong seq;	/* last sequence number used; read by others */
	struct owned own[NOWN];
	struct lastop last[NSHARED];
	uint64_t *seen;		/* [thread * NOWN + k]: highest seq read */
	struct held held[NHELD];
	int epoch;
};

static struct stress_counter c_ops = { "ops", 0 }, c_puts = { "puts", 0 },
	c_gets = { "gets", 0 }, c_dels = { "dels", 0 },
	c_foreach = { "foreach", 0 }, c_ebadf = { "ebadf", 0 },
	c_swaps = { "mapswaps", 0 }, c_collect = { "collect", 0 },
	c_checkpoints = { "checkpoints", 0 }, c_verified = { "verified", 0 };

static struct worker *workers;
static rs_map *main_map;		/* counted (a C variable) */
static rs_map *eph[NEPH];		/* fields */
static const rs_type *map_type;
static atomic_long births, deaths;

static pthread_barrier_t cp_barrier;
static atomic_int cp_request;		/* checkpoints asked for */
static atomic_int cp_final;		/* the last one is the end */

/* ------------------------------------------------------------------------ */
/* Values                                                                   */
/* ------------------------------------------------------------------------ */

static void mval_traverse(void *obj, rs_visit_fn visit, void *arg)
{
	visit(((struct mval *)obj)->next, arg);
}

static void mval_destroy(void *obj)
{
	struct mval *v = obj;
	uint64_t m = atomic_exchange_explicit(&v->magic, MAGIC_DEAD,
					      memory_order_relaxed);

	stress_check(m == MAGIC_ALIVE, "value %p destroyed twice (magic %#"
		     PRIx64 ")", obj, m);
	atomic_fetch_add_explicit(&deaths, 1, memory_order_relaxed);
}

static const rs_type mval_type = {
	"stress_mval", sizeof(struct mval), mval_traverse, NULL, mval_destroy, 0,
};

static struct mval *mval_alloc(uint32_t writer, uint64_t seq,
			       const void *key, uint32_t klen, int partner)
{
	struct mval *v = rs_new(&mval_type);

	stress_check(v != NULL, "rs_new failed: errno %d", errno);
	atomic_fetch_add_explicit(&births, 1, memory_order_relaxed);
	v->seq = seq;
	v->writer = writer;
	v->partner = (uint32_t)partner;
	v->klen = klen;
	memcpy(v->key, key, klen);
	atomic_store_explicit(&v->magic, MAGIC_ALIVE, memory_order_relaxed);
	return v;
}

/* A new value for `key` in `map` (one counted reference). */
static struct mval *mval_new(struct worker *w, const void *key, uint32_t klen,
			     rs_map *map)
{
	uint64_t seq = atomic_load_explicit(&w->seq, memory_order_relaxed) + 1;
	struct mval *v = mval_alloc((uint32_t)w->id, seq, key, klen, 0);
	unsigned r = (unsigned)stress_below(&w->rng, 16);

	/* others may check seq <= the writer's seq once they see the value */
	atomic_store_explicit(&w->seq, seq, memory_order_relaxed);
	v->cyc = r == 0 ? CYC_SELF : r == 1 ? CYC_PAIR : r == 2 ? CYC_MAP
							  : CYC_NONE;
	/* private: plain stores of counted references */
	if (v->cyc == CYC_SELF) {
		v->next = v;
		rs_incref(v);
	} else if (v->cyc == CYC_PAIR) {
		struct mval *p = mval_alloc((uint32_t)w->id, seq, key, klen, 1);

		p->cyc = CYC_PAIR;
		p->next = v;
		rs_incref(v);
		v->next = p;
	} else if (v->cyc == CYC_MAP) {
		v->next = map;
		rs_incref(map);
	}
	return v;
}

static void check_alive(const struct mval *v, const char *what)
{
	uint64_t m = atomic_load_explicit(&v->magic, memory_order_relaxed);

	stress_check(m == MAGIC_ALIVE, "%s %p was destroyed while reachable "
		     "(magic %#" PRIx64 ")", what, (void *)v, m);
	stress_check_header(v, &mval_type, what);
}

/*
 * A value read under `key` (borrowed or counted since the caller's last
 * safepoint): alive, of that key, its cycle intact; of `writer` unless
 * writer < 0; no newer than its writer's last sequence number.
 */
static void check_val(const struct mval *v, const void *key, uint32_t klen,
		      int writer)
{
	const struct mval *p;

	check_alive(v, "value");
	stress_check(v->klen == klen && !memcmp(v->key, key, klen) &&
		     !v->partner, "value %p under a key of %u bytes has a key "
		     "of %u bytes (partner %u): not the key looked up",
		     (void *)v, klen, v->klen, v->partner);
	stress_check(v->writer < (uint32_t)stress_threads &&
		     (writer < 0 || v->writer == (uint32_t)writer),
		     "value %p: writer %u, expected %d", (void *)v, v->writer,
		     writer);
	stress_check(v->seq <= atomic_load_explicit(&workers[v->writer].seq,
						    memory_order_relaxed),
		     "value %p: seq %" PRIu64 " not yet used by its writer",
		     (void *)v, v->seq);
	p = rs_get(&v->next);
	switch (v->cyc) {
	case CYC_NONE:
		stress_check(p == NULL, "value %p: next %p", (void *)v, (void *)p);
		break;
	case CYC_SELF:
		stress_check(p == v, "value %p: self-loop is %p", (void *)v,
			     (void *)p);
		break;
	case CYC_PAIR:
		stress_check(p != NULL, "value %p: partner missing", (void *)v);
		check_alive(p, "partner");
		stress_check(p->partner && p->seq == v->seq &&
			     p->writer == v->writer && rs_get(&p->next) == v,
			     "value %p: wrong partner %p", (void *)v, (void *)p);
		break;
	case CYC_MAP:
		stress_check(p != NULL, "value %p: map missing", (void *)v);
		stress_check_header(p, map_type, "map of a value");
		break;
	default:
		stress_fail("value %p: cycle kind %u", (void *)v, v->cyc);
	}
	stress_add(&c_verified, 1);
}

/* ------------------------------------------------------------------------ */
/* Keys                                                                     */
/* ------------------------------------------------------------------------ */

static uint32_t owned_key(unsigned char *buf, int t, int k)
{
	return (uint32_t)snprintf((char *)buf, KEYMAX, "o%d.%d", t, k);
}

/* Shared keys hold a NUL byte. */
static uint32_t shared_key(unsigned char *buf, int k)
{
	buf[0] = 's';
	buf[1] = 0;
	buf[2] = (unsigned char)k;
	return 3;
}

static uint32_t eph_key(unsigned char *buf, int k)
{
	return (uint32_t)snprintf((char *)buf, KEYMAX, "e%d", k);
}

/* ------------------------------------------------------------------------ */
/* Operations on the main map                                               */
/* ------------------------------------------------------------------------ */

static void own_op(struct worker *w)
{
	int k = (int)stress_below(&w->rng, NOWN);
	struct owned *o = &w->own[k];
	unsigned char key[KEYMAX];
	uint32_t klen = owned_key(key, w->id, k);
	unsigned r = (unsigned)stress_below(&w->rng, 10);
	struct mval *v;
	int rc;

	if (r < 4) {
		v = mval_new(w, key, klen, main_map);
		rc = rs_map_put(main_map, key, klen, v);
		stress_check(rc == 0, "rs_map_put(own) failed: errno %d", errno);
		o->seq = v->seq;
		o->present = 1;
		rs_decref(v);
		stress_add(&c_puts, 1);
	} else if (r < 6) {
		rc = rs_map_del(main_map, key, klen);
		stress_check(o->present ? rc == 0 : rc == -1 && errno == ENOENT,
			     "thread %d: rs_map_del of its key %d (present %d) "
			     "returned %d, errno %d", w->id, k, o->present, rc,
			     errno);
		o->present = 0;
		stress_add(&c_dels, 1);
	} else {
		int counted = r == 9;

		v = counted ? rs_map_get_ref(main_map, key, klen)
			    : rs_map_get(main_map, key, klen);
		if (o->present) {
			stress_check(v != NULL, "thread %d: its key %d lost value "
				     "%" PRIu64 " (errno %d)", w->id, k, o->seq,
				     errno);
			check_val(v, key, klen, w->id);
			stress_check(v->seq == o->seq, "thread %d: its key %d "
				     "holds seq %" PRIu64 ", it put %" PRIu64,
				     w->id, k, v->seq, o->seq);
		} else {
			stress_check(v == NULL && errno == ENOENT, "thread %d: "
				     "its deleted key %d holds %p (errno %d)",
				     w->id, k, (void *)v, errno);
		}
		if (counted)
			rs_decref(v);
		stress_add(&c_gets, 1);
	}
}

/* Reads another thread's key: the owner's value, never older than the last
 * one read. */
static void other_get(struct worker *w)
{
	int t = (int)stress_below(&w->rng, (uint64_t)stress_threads);
	int k = (int)stress_below(&w->rng, NOWN);
	unsigned char key[KEYMAX];
	uint32_t klen = owned_key(key, t, k);
	struct mval *v = rs_map_get(main_map, key, klen);
	uint64_t *seen = &w->seen[t * NOWN + k];

	stress_add(&c_gets, 1);
	if (!v) {
		stress_check(errno == ENOENT, "rs_map_get: errno %d", errno);
		return;
	}
	check_val(v, key, klen, t);
	stress_check(v->seq >= *seen, "key %s: read seq %" PRIu64 " after seq %"
		     PRIu64 " (reads went back in time)", (char *)key, v->seq,
		     *seen);
	*seen = v->seq;
}

/*
 * A value read from shared key k after this thread's last change C of the
 * key: the put of that value took effect after C did (it is what the key
 * holds now), so it cannot have returned before C started.  Catches a stale
 * value surviving a put or del that had completed.
 */
static void check_after(struct worker *w, int k, struct mval *v)
{
	unsigned char key[KEYMAX];
	uint32_t klen = shared_key(key, k);
	const struct lastop *c = &w->last[k];
	uint64_t e;

	check_val(v, key, klen, -1);
	e = atomic_load_explicit(&v->put_end, memory_order_relaxed);
	stress_check(c->kind == OP_NONE || e == 0 || e >= c->start,
		     "shared key %d: thread %d read (thread %u, seq %" PRIu64
		     "), put before its own %s (seq %" PRIu64 ") started: "
		     "a lost update", k, w->id, v->writer, v->seq,
		     c->kind == OP_PUT ? "put" : "del", c->seq);
}

static void shared_op(struct worker *w)
{
	int k = (int)stress_below(&w->rng, NSHARED);
	unsigned char key[KEYMAX];
	uint32_t klen = shared_key(key, k);
	unsigned r = (unsigned)stress_below(&w->rng, 10);
	struct lastop *l = &w->last[k];
	uint64_t start;
	struct mval *v;
	int rc;

	if (r < 3) {
		v = mval_new(w, key, klen, main_map);
		start = stress_now_ns();
		rc = rs_map_put(main_map, key, klen, v);
		*l = (struct lastop){ start, stress_now_ns(), v->seq, OP_PUT };
		atomic_store_explicit(&v->put_end, l->end, memory_order_relaxed);
		stress_check(rc == 0, "rs_map_put(shared) failed: errno %d", errno);
		rs_decref(v);
		stress_add(&c_puts, 1);
	} else if (r < 5) {
		start = stress_now_ns();
		rc = rs_map_del(main_map, key, klen);
		if (rc == 0)
			*l = (struct lastop){ start, stress_now_ns(), 0, OP_DEL };
		else
			stress_check(errno == ENOENT, "rs_map_del(shared): "
				     "errno %d", errno);
		stress_add(&c_dels, 1);
	} else {
		v = rs_map_get(main_map, key, klen);
		if (v)
			check_after(w, k, v);
		else
			stress_check(errno == ENOENT, "rs_map_get: errno %d", errno);
		stress_add(&c_gets, 1);
	}
}

/* Keeps a counted value (main or an ephemeral map) across safepoints. */
static void hold(struct worker *w)
{
	struct held *h = &w->held[stress_below(&w->rng, NHELD)];
	int k;

	rs_decref(h->v);
	if (stress_below(&w->rng, 2)) {
		k = (int)stress_below(&w->rng, NSHARED);
		h->klen = shared_key(h->key, k);
		h->v = rs_map_get_ref(main_map, h->key, h->klen);
		if (h->v)
			check_after(w, k, h->v);
		else
			stress_check(errno == ENOENT, "rs_map_get_ref: errno %d",
				     errno);
		return;
	}
	k = (int)stress_below(&w->rng, NEPHKEYS);
	h->klen = eph_key(h->key, k);
	h->v = rs_map_get_ref(rs_get(&eph[stress_below(&w->rng, NEPH)]), h->key,
			      h->klen);
	if (h->v)
		check_val(h->v, h->key, h->klen, -1);
	else
		stress_check(errno == ENOENT || errno == EBADF,
			     "rs_map_get_ref: errno %d", errno);
}

static void verify_held(struct worker *w)
{
	for (int i = 0; i < NHELD; i++)
		if (w->held[i].v)
			check_val(w->held[i].v, w->held[i].key, w->held[i].klen,
				  -1);
}

struct walk {
	rs_map *map;
	long n;
	int exact;		/* thread 0 at a checkpoint */
	unsigned char seen_shared[NSHARED];
};

static int walk_entry(const void *key, size_t klen, void *value, void *arg)
{
	struct walk *wk = arg;
	const unsigned char *kb = key;
	int writer = -1;

	wk->n++;
	stress_check(klen > 0 && klen < KEYMAX, "foreach: key of %zu bytes", klen);
	if (kb[0] == 'o') {
		writer = atoi((const char *)kb + 1);
	} else if (kb[0] == 's' && wk->exact) {
		stress_check(klen == 3 && kb[2] < NSHARED && !wk->seen_shared[kb[2]],
			     "foreach: shared key %u twice or malformed", kb[2]);
		wk->seen_shared[kb[2]] = 1;
	}
	check_val(value, key, (uint32_t)klen, writer);
	if (wk->exact)		/* nobody writes: the entry is the lookup's */
		stress_check(rs_map_get(wk->map, key, klen) == value,
			     "foreach and rs_map_get disagree on a key");
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Ephemeral maps                                                           */
/* ------------------------------------------------------------------------ */

/* A burst of operations on one ephemeral map, borrowed: its owner may
 * free it meanwhile (EBADF). */
static void eph_op(struct worker *w)
{
	rs_map *m = rs_get(&eph[stress_below(&w->rng, NEPH)]);
	int burst = 1 + (int)stress_below(&w->rng, 8);

	for (int b = 0; b < burst; b++) {
		unsigned char key[KEYMAX];
		uint32_t klen = eph_key(key, (int)stress_below(&w->rng, NEPHKEYS));
		unsigned r = (unsigned)stress_below(&w->rng, 16);
		struct mval *v;
		int rc;

		if (r < 5) {
			v = mval_new(w, key, klen, m);
			rc = rs_map_put(m, key, klen, v);
			stress_check(rc == 0 || errno == EBADF,
				     "rs_map_put(eph): errno %d", errno);
			rs_decref(v);
			stress_add(rc ? &c_ebadf : &c_puts, 1);
		} else if (r < 8) {
			rc = rs_map_del(m, key, klen);
			stress_check(rc == 0 || errno == ENOENT || errno == EBADF,
				     "rs_map_del(eph): errno %d", errno);
			stress_add(rc && errno == EBADF ? &c_ebadf : &c_dels, 1);
		} else if (r < 15) {
			v = rs_map_get(m, key, klen);
			if (v)
				check_val(v, key, klen, -1);
			else
				stress_check(errno == ENOENT || errno == EBADF,
					     "rs_map_get(eph): errno %d", errno);
			stress_add(!v && errno == EBADF ? &c_ebadf : &c_gets, 1);
		} else {
			struct walk wk = { m, 0, 0, { 0 } };
			long n = rs_map_foreach(m, walk_entry, &wk);

			stress_check(n == wk.n ||
				     (n == -1 && errno == EBADF && !wk.n),
				     "rs_map_foreach(eph): %ld, %ld calls, "
				     "errno %d", n, wk.n, errno);
			stress_add(&c_foreach, 1);
		}
	}
}

/* The owner of an ephemeral slot replaces its map and frees the old one
 * while others may still use it; or drops it (a map in cycles with its
 * values: the collector's work). */
static void eph_swap(struct worker *w)
{
	int i = w->id + stress_threads * (int)stress_below(&w->rng, NEPH);
	rs_map *old, *m;

	if (i >= NEPH)
		return;
	old = rs_get_ref(&eph[i]);
	m = rs_map_new();
	stress_check(m != NULL, "rs_map_new failed: errno %d", errno);
	rs_set_steal(&eph[i], m);
	if (stress_below(&w->rng, 4)) {
		stress_check(rs_map_free(old) == 0, "rs_map_free: errno %d",
			     errno);
	} else {
		rs_decref(old);
	}
	stress_add(&c_swaps, 1);
}

/* ------------------------------------------------------------------------ */
/* Checkpoints                                                              */
/* ------------------------------------------------------------------------ */

/* Thread 0, every other thread waiting offline: the exact contents. */
static void check_main_map(void)
{
	unsigned char key[KEYMAX];
	long present = 0, n, count;
	struct walk wk = { main_map, 0, 1, { 0 } };

	for (int t = 0; t < stress_threads; t++) {
		for (int k = 0; k < NOWN; k++) {
			struct owned *o = &workers[t].own[k];
			uint32_t klen = owned_key(key, t, k);
			struct mval *v = rs_map_get(main_map, key, klen);

			if (!o->present) {
				stress_check(!v && errno == ENOENT, "checkpoint: "
					     "deleted key %s holds %p", key,
					     (void *)v);
				continue;
			}
			stress_check(v != NULL, "checkpoint: key %s lost its "
				     "value (seq %" PRIu64 ")", key, o->seq);
			check_val(v, key, klen, t);
			stress_check(v->seq == o->seq, "checkpoint: key %s holds "
				     "seq %" PRIu64 ", expected %" PRIu64, key,
				     v->seq, o->seq);
			present++;
		}
	}
	for (int k = 0; k < NSHARED; k++) {
		uint32_t klen = shared_key(key, k);
		struct mval *v = rs_map_get(main_map, key, klen);
		const struct lastop *x = NULL;
		int any = 0, who = -1;

		for (int t = 0; t < stress_threads; t++)
			any |= workers[t].last[k].kind != OP_NONE;
		if (v) {
			check_val(v, key, klen, -1);
			who = (int)v->writer;
			x = &workers[who].last[k];
			stress_check(x->kind == OP_PUT && x->seq == v->seq,
				     "shared key %d holds (thread %d, seq %" PRIu64
				     "), but that thread's last change of it "
				     "was %s seq %" PRIu64, k, who, v->seq,
				     x->kind == OP_PUT ? "put" :
				     x->kind == OP_DEL ? "del" : "none", x->seq);
			present++;
		} else {
			stress_check(errno == ENOENT, "rs_map_get: errno %d", errno);
			for (int t = 0; t < stress_threads && !x; t++) {
				const struct lastop *d = &workers[t].last[k];
				int later = 0;

				if (d->kind != OP_DEL)
					continue;
				for (int u = 0; u < stress_threads; u++)
					later |= u != t &&
						 workers[u].last[k].kind &&
						 workers[u].last[k].start > d->end;
				if (!later) {
					x = d;
					who = t;
				}
			}
			stress_check(x || !any, "shared key %d is absent, but no "
				     "thread's del of it can have been last", k);
		}
		for (int u = 0; x && u < stress_threads; u++) {
			const struct lastop *y = &workers[u].last[k];

			stress_check(u == who || !y->kind || y->start <= x->end,
				     "shared key %d: the state left by thread %d's "
				     "%s (ended at %" PRIu64 ") survived thread "
				     "%d's %s that started later (at %" PRIu64
				     "): a lost update", k, who,
				     x->kind == OP_PUT ? "put" : "del", x->end, u,
				     y->kind == OP_PUT ? "put" : "del", y->start);
		}
	}
	count = rs_map_count(main_map);
	stress_check(count == present, "checkpoint: rs_map_count %ld, %ld keys "
		     "present", count, present);
	n = rs_map_foreach(main_map, walk_entry, &wk);
	stress_check(n == present && wk.n == present, "checkpoint: "
		     "rs_map_foreach returned %ld after %ld calls, %ld keys "
		     "present", n, wk.n, present);
	stress_check(rs_heap_verify() == 0, "checkpoint: rs_heap_verify failed");
	stress_add(&c_checkpoints, 1);
}

static void barrier_offline(void)
{
	rs_offline();
	pthread_barrier_wait(&cp_barrier);
	rs_online();
}

/* All threads meet; thread 0 checks while the others wait. */
static void checkpoint(struct worker *w)
{
	barrier_offline();
	if (w->id == 0)
		check_main_map();
	barrier_offline();
	verify_held(w);
	w->epoch++;
}

static void one_op(struct worker *w)
{
	unsigned op = (unsigned)stress_below(&w->rng, 1000);

	if (op < 300) {
		own_op(w);
	} else if (op < 420) {
		other_get(w);
	} else if (op < 700) {
		shared_op(w);
	} else if (op < 900) {
		eph_op(w);
	} else if (op < 910) {
		eph_swap(w);
	} else if (op < 930) {
		hold(w);
	} else if (op < 933) {
		struct walk wk = { main_map, 0, 0, { 0 } };
		long n = rs_map_foreach(main_map, walk_entry, &wk);
		long c = rs_map_count(main_map);

		stress_check(n == wk.n && c >= 0 &&
			     c <= NOWN * stress_threads + NSHARED,
			     "rs_map_foreach %ld (%ld calls), rs_map_count %ld",
			     n, wk.n, c);
		stress_add(&c_foreach, 1);
	} else if (op < 936) {
		int g = (int)stress_below(&w->rng, 8);

		stress_check(rs_gc_collect(g < 5 ? 0 : g < 7 ? 1 : 2) >= 0,
			     "rs_gc_collect failed: errno %d", errno);
		stress_add(&c_collect, 1);
		verify_held(w);
	} else if (op < 946) {
		rs_offline();
		sched_yield();
		rs_online();
		verify_held(w);
	} else {
		rs_safepoint();
		verify_held(w);
	}
}

static void *worker_main(void *arg)
{
	struct worker *w = &workers[(intptr_t)arg];
	uint64_t next_cp = stress_now_ns() + 100000000u;

	stress_check(rs_thread_attach() == 0, "rs_thread_attach failed");
	for (;;) {
		if (atomic_load(&cp_request) != w->epoch) {
			int final = atomic_load(&cp_final);

			checkpoint(w);
			if (final)
				break;
		}
		for (int i = 0; i < 32; i++)
			one_op(w);
		stress_add(&c_ops, 32);
		if (w->id == 0 && (stress_stopping() || stress_now_ns() >= next_cp)) {
			atomic_store(&cp_final, stress_stopping());
			atomic_fetch_add(&cp_request, 1);
			next_cp = stress_now_ns() + 100000000u;
		}
	}
	for (int i = 0; i < NHELD; i++)
		rs_decref(w->held[i].v);
	rs_thread_detach();
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t *t;
	uint64_t end;

	stress_start(argc, argv, "stress_map", (struct stress_counter *[]){
		     &c_ops, &c_puts, &c_gets, &c_dels, &c_foreach, &c_ebadf,
		     &c_swaps, &c_collect, &c_checkpoints, &c_verified, NULL });
	stress_check(rs_init(NULL) == 0 && rs_thread_attach() == 0,
		     "rs_init/rs_thread_attach failed");
	rs_gc_set_threshold(300, 5, 5);
	workers = calloc((size_t)stress_threads, sizeof(*workers));
	t = calloc((size_t)stress_threads, sizeof(*t));
	stress_check(workers && t, "out of memory");
	for (int i = 0; i < stress_threads; i++) {
		workers[i].id = i;
		stress_rng_init(&workers[i].rng, (uint64_t)i);
		workers[i].seen = calloc((size_t)stress_threads * NOWN,
					 sizeof(uint64_t));
		stress_check(workers[i].seen != NULL, "out of memory");
	}
	pthread_barrier_init(&cp_barrier, NULL, (unsigned)stress_threads);
	main_map = rs_map_new();
	stress_check(main_map != NULL, "rs_map_new failed");
	map_type = rs_type_of(main_map);
	for (int i = 0; i < NEPH; i++)
		rs_set_steal(&eph[i], rs_map_new());

	stress_spawn(t, stress_threads, worker_main);
	stress_join(t, stress_threads);

	stress_check(rs_map_free(main_map) == 0, "rs_map_free(main): errno %d",
		     errno);
	for (int i = 0; i < NEPH; i++) {
		rs_map *m = rs_get_ref(&eph[i]);

		rs_clear(&eph[i]);
		stress_check(rs_map_free(m) == 0, "rs_map_free(eph): errno %d",
			     errno);
	}
	end = stress_now_ns() + 5000000000u;
	do {
		stress_check(rs_gc_collect(2) >= 0, "rs_gc_collect failed");
		rs_safepoint();
	} while (atomic_load(&births) != atomic_load(&deaths) &&
		 stress_now_ns() < end);
	stress_check(atomic_load(&births) == atomic_load(&deaths),
		     "%ld values of %ld alive after the maps were freed and "
		     "full collections ran", atomic_load(&births) -
		     atomic_load(&deaths), atomic_load(&births));
	stress_check(rs_heap_verify() == 0, "rs_heap_verify at the end");
	stress_shutdown(0);
	pthread_barrier_destroy(&cp_barrier);
	for (int i = 0; i < stress_threads; i++)
		free(workers[i].seen);
	free(workers);
	free(t);
	return stress_finish();
}
