/*
 * test_map.c - the keyed object map (lib/map.c), against docs/api.md:
 *
 *   - put / get / get_ref / del / count / foreach, replacement, every key
 *     length from 0 to RS_MAP_KEY_MAX, keys with NUL bytes, enough keys to
 *     make the table resize;
 *   - references: the map holds one count per value; replaced and deleted
 *     values are given back (deferred); rs_map_free gives back every value;
 *   - bad input: NULL map, non-map object, NULL key, key too long, NULL
 *     value, NULL callback, closed map, unattached and offline threads;
 *   - concurrency: threads put/get/del the same keys, then each writes its
 *     own final set: exact final contents; a borrowed value stays valid
 *     while other threads replace it, until the reader's safepoint; one
 *     key put and deleted at once (the count dips below zero for a moment);
 *   - the collector: values survive collections, a map in an unreachable
 *     cycle is collected with its values, referents and referrers;
 *   - fork with a map in use; live objects 0 at rs_shutdown (a dead map's
 *     nodes are freed by the reclaimer).
 */
#include <string.h>

#include "gclib.h"

#if GC_SANITIZED
#define MANY_KEYS 5000
#define RACE_KEYS 256
#define RACE_OPS 20000
#define BORROW_ROUNDS 200
#else
#define MANY_KEYS 50000
#define RACE_KEYS 1024
#define RACE_OPS 200000
#define BORROW_ROUNDS 2000
#endif
#define NTHREADS 3

static long baseline;

static int keyf(char *buf, long i)
{
	return sprintf(buf, "key-%ld", i);
}

/* ---- basics ---- */

static void test_basics(void)
{
	rs_map *m = rs_map_new();
	struct node *a = node_new(1), *b = node_new(2), *v;
	char key[RS_MAP_KEY_MAX + 1];
	long ra, rb;

	ok(m != NULL, "rs_map_new");
	is(rs_map_count(m), 0L, "new map is empty");
	errno = 0;
	ok(rs_map_get(m, "a", 1) == NULL && errno == ENOENT,
	   "get of a missing key: NULL, ENOENT");
	ra = rs_refcount(a);
	is(rs_map_put(m, "a", 1, a), 0, "put");
	is(rs_refcount(a), ra + 1, "the map holds one count");
	is_ptr(rs_map_get(m, "a", 1), a, "get gives the value");
	is(rs_map_count(m), 1L, "count 1");
	v = rs_map_get_ref(m, "a", 1);
	is_ptr(v, a, "get_ref gives the value");
	is(rs_refcount(a), ra + 2, "... counted");
	rs_decref(v);

	rb = rs_refcount(b);
	is(rs_map_put(m, "a", 1, b), 0, "put replaces");
	is_ptr(rs_map_get(m, "a", 1), b, "get gives the new value");
	is(rs_map_count(m), 1L, "replacing keeps the count");
	settle_until(rs_refcount(a) == ra, 2000);
	is(rs_refcount(a), ra, "the old value was given back");

	is(rs_map_put(m, "", 0, a), 0, "zero-length key");
	is(rs_map_put(m, NULL, 0, a), 0, "NULL zero-length key is the same key");
	is(rs_map_count(m), 2L, "count 2");
	is_ptr(rs_map_get(m, "", 0), a, "get of the empty key");
	is(rs_map_put(m, "x\0y", 3, a), 0, "key with a NUL byte");
	ok(rs_map_get(m, "x\0z", 3) == NULL, "... differs from another");
	ok(rs_map_get(m, "x", 1) == NULL, "... and from its prefix");
	is_ptr(rs_map_get(m, "x\0y", 3), a, "... found");

	memset(key, 'k', sizeof(key));
	is(rs_map_put(m, key, RS_MAP_KEY_MAX, b), 0, "key of RS_MAP_KEY_MAX bytes");
	is_ptr(rs_map_get(m, key, RS_MAP_KEY_MAX), b, "... found");
	errno = 0;
	ok(rs_map_put(m, key, RS_MAP_KEY_MAX + 1, b) == -1 &&
	   errno == ENAMETOOLONG, "longer key: ENAMETOOLONG");
	errno = 0;
	ok(rs_map_get(m, key, RS_MAP_KEY_MAX + 1) == NULL &&
	   errno == ENAMETOOLONG, "get with a longer key: ENAMETOOLONG");

	is(rs_map_del(m, "a", 1), 0, "del");
	errno = 0;
	ok(rs_map_del(m, "a", 1) == -1 && errno == ENOENT, "del again: ENOENT");
	ok(rs_map_get(m, "a", 1) == NULL, "deleted key is gone");
	is(rs_map_count(m), 3L, "count after del");

	is(rs_map_free(m), 0, "rs_map_free");
	settle_until(rs_refcount(a) == ra && rs_refcount(b) == rb, 2000);
	is(rs_refcount(a), ra, "rs_map_free gave back every count of a");
	is(rs_refcount(b), rb, "... and of b");
	rs_decref(a);
	rs_decref(b);
}

/* ---- every key length, many keys, foreach ---- */

struct seen {
	long n, bad;
	unsigned char *hit;
	long stop_at;
	rs_map *del_from;
};

static int seen_fn(const void *key, size_t klen, void *value, void *arg)
{
	struct seen *s = arg;
	struct node *n = value;
	char buf[32];
	int len;

	if (n->magic != NODE_ALIVE || n->value < 0 || n->value >= MANY_KEYS) {
		s->bad++;
		return 0;
	}
	len = keyf(buf, n->value);
	if ((size_t)len != klen || memcmp(buf, key, klen))
		s->bad++;
	else
		s->hit[n->value]++;
	if (s->del_from && rs_map_del(s->del_from, key, klen))
		s->bad++;
	return ++s->n == s->stop_at;
}

/* rs_map_put_steal: the map takes the caller's reference, and the value
 * stays clean (no decrement made it a cycle candidate). */
static void test_put_steal(void)
{
	rs_map *m = rs_map_new();
	struct node *a = node_new(1), *b = node_new(2);
	struct rs_stats st0, st1;

	rs_stats(&st0);
	is(rs_map_put_steal(m, "a", 1, a), 0, "put_steal");
	is(rs_refcount(a), 1L, "the map holds the caller's count, no new one");
	is_ptr(rs_map_get(m, "a", 1), a, "get gives the value");
	errno = 0;
	ok(rs_map_put_steal(m, "b", 1, NULL) == -1 && errno == EINVAL,
	   "NULL value: EINVAL");
	ok(rs_map_put_steal(m, NULL, 1, b) == -1 && errno == EINVAL,
	   "NULL key with a length: EINVAL (the caller keeps its reference)");
	is(rs_refcount(b), 1L, "... its count untouched");
	is(rs_map_put_steal(m, "a", 1, b), 0, "put_steal replaces");
	settle_until(live_objects() == baseline + 3, 2000);
	is(live_objects(), baseline + 3, "the old value and its node were given "
	   "back and freed (the map, its node and b remain)");
	rs_stats(&st1);
	is((long)(st1.gc_candidates - st0.gc_candidates), 0L,
	   "no cycle candidate made");
	is(rs_map_free(m), 0, "map freed");
	settle_until(live_objects() == baseline, 2000);
	is(live_objects(), baseline, "everything freed");
}

/* rs_map_add, rs_map_cas, rs_map_lookup and rs_map_clear, one thread. */
static void test_add_cas(void)
{
	rs_map *m = rs_map_new();
	struct node *a = node_new(1), *b = node_new(2), *c = node_new(3);
	void *v = (void *)1;
	long ra = rs_refcount(a);

	is(rs_map_add(m, "k", 1, a), 0, "add of an absent key");
	is(rs_refcount(a), ra + 1, "... the map holds its own count");
	errno = 0;
	ok(rs_map_add(m, "k", 1, b) == -1 && errno == EEXIST,
	   "add of a present key: -1/EEXIST");
	is_ptr(rs_map_get(m, "k", 1), a, "... the value is unchanged");
	is(rs_map_lookup(m, "k", 1, &v), 1, "lookup finds it: 1");
	is_ptr(v, a, "... and gives the value");
	is(rs_map_lookup(m, "x", 1, &v), 0, "lookup of a missing key: 0");
	ok(v == NULL, "... and NULL");
	errno = 0;
	ok(rs_map_lookup(m, "x", 1, NULL) == -1 && errno == EINVAL,
	   "lookup with no place for the value: -1/EINVAL");
	errno = 0;
	ok(rs_map_lookup(NULL, "x", 1, &v) == -1 && errno == EINVAL,
	   "lookup in no map: -1/EINVAL (an error, not a miss)");

	is(rs_map_cas(m, "k", 1, b, c), 0, "cas with the wrong expected "
	   "value: 0");
	is_ptr(rs_map_get(m, "k", 1), a, "... nothing changed");
	is(rs_map_cas(m, "k", 1, a, b), 1, "cas a -> b: 1");
	is_ptr(rs_map_get(m, "k", 1), b, "... b is there");
	is(rs_map_cas(m, "n", 1, NULL, c), 1, "cas absent -> c: inserts");
	is_ptr(rs_map_get(m, "n", 1), c, "... c is there");
	is(rs_map_cas(m, "n", 1, NULL, a), 0, "cas absent -> a on a present "
	   "key: 0");
	is(rs_map_cas(m, "n", 1, c, NULL), 1, "cas c -> absent: removes");
	ok(rs_map_get(m, "n", 1) == NULL, "... gone");
	is(rs_map_cas(m, "n", 1, NULL, NULL), 1, "cas absent -> absent: 1");
	is(rs_map_count(m), 1L, "count 1");
	settle_until(rs_refcount(a) == ra, 2000);
	is(rs_refcount(a), ra, "a, replaced, was given back");

	is(rs_map_put(m, "p", 1, c), 0, "put a third entry");
	is(rs_map_clear(m), 2L, "clear removes both entries");
	is(rs_map_count(m), 0L, "... count 0");
	ok(rs_map_get(m, "k", 1) == NULL, "... the map is empty");
	is(rs_map_add(m, "k", 1, a), 0, "the map is still open after clear");
	rs_decref(a);
	rs_decref(b);
	rs_decref(c);
	is(rs_map_free(m), 0, "map freed");
	settle_until(live_objects() == baseline, 2000);
	is(live_objects(), baseline, "everything freed");
}

/* Counters kept with rs_map_cas by several threads: no update is lost. */
#define CAS_KEYS 4
#define CAS_OPS 4000
static rs_map *cas_map;
static uint64_t rnd(uint64_t *s);

static void *cas_thread(void *arg)
{
	uint64_t s = 0x2545f4914f6cdd1dull * (uint64_t)((intptr_t)arg + 1);
	struct node *cur, *next;
	char buf[32];
	long i, k, r;

	rs_thread_attach();
	for (i = 0; i < CAS_OPS; i++) {
		k = (long)(rnd(&s) % CAS_KEYS);
		do {
			cur = rs_map_get(cas_map, buf, (size_t)keyf(buf, k));
			next = node_new(cur ? cur->value + 1 : 1);
			r = rs_map_cas(cas_map, buf, (size_t)keyf(buf, k), cur,
				       next);
			rs_decref(next);
			if (r < 0)
				bail_out("rs_map_cas failed: errno %d", errno);
			rs_safepoint();	/* cur may go now */
		} while (!r);
	}
	rs_thread_detach();
	return NULL;
}

static void test_cas_race(void)
{
	pthread_t th[NTHREADS];
	struct node *n;
	char buf[32];
	long i, sum = 0;

	cas_map = rs_map_new();
	for (i = 0; i < NTHREADS; i++)
		start_thread(&th[i], cas_thread, (void *)(intptr_t)i);
	for (i = 0; i < NTHREADS; i++)
		join_offline(th[i]);
	for (i = 0; i < CAS_KEYS; i++) {
		n = rs_map_get(cas_map, buf, (size_t)keyf(buf, i));
		sum += n ? n->value : 0;
	}
	is(sum, (long)NTHREADS * CAS_OPS, "%d threads counting with rs_map_cas: "
	   "no increment lost", NTHREADS);
	rs_map_free(cas_map);
	settle_until(live_objects() == baseline, 3000);
	is(live_objects(), baseline, "everything freed");
}

static void test_lengths_and_many(void)
{
	rs_map *m = rs_map_new();
	struct node *v = node_new(7);
	unsigned char key[RS_MAP_KEY_MAX];
	struct seen s;
	char buf[32];
	long i, bad = 0, len;

	for (i = 0; i < RS_MAP_KEY_MAX; i++)
		key[i] = (unsigned char)(i * 7 + 1);
	for (len = 0; len <= RS_MAP_KEY_MAX; len++)
		if (rs_map_put(m, key, (size_t)len, v))
			bad++;
	is(bad, 0L, "a key of every length 0..RS_MAP_KEY_MAX");
	is(rs_map_count(m), (long)RS_MAP_KEY_MAX + 1, "... all distinct");
	for (len = 0, bad = 0; len <= RS_MAP_KEY_MAX; len++)
		if (rs_map_get(m, key, (size_t)len) != v)
			bad++;
	is(bad, 0L, "... each found");
	rs_map_free(m);
	rs_decref(v);
	rs_safepoint();

	m = rs_map_new();
	for (i = 0, bad = 0; i < MANY_KEYS; i++) {
		struct node *n = node_new(i);

		if (rs_map_put(m, buf, (size_t)keyf(buf, i), n))
			bad++;
		rs_decref(n);
		if ((i & 255) == 0)
			rs_safepoint();
	}
	is(bad, 0L, "%d keys put (the table resizes)", MANY_KEYS);
	is(rs_map_count(m), (long)MANY_KEYS, "count");
	for (i = 0, bad = 0; i < MANY_KEYS; i++) {
		struct node *n = rs_map_get(m, buf, (size_t)keyf(buf, i));

		if (!n || n->value != i || n->magic != NODE_ALIVE)
			bad++;
	}
	is(bad, 0L, "every key gives its value");

	memset(&s, 0, sizeof(s));
	s.hit = calloc(MANY_KEYS, 1);
	is(rs_map_foreach(m, seen_fn, &s), (long)MANY_KEYS, "foreach visits all");
	for (i = 0, bad = s.bad; i < MANY_KEYS; i++)
		bad += s.hit[i] != 1;
	is(bad, 0L, "... each entry once, key and value matching");

	memset(s.hit, 0, MANY_KEYS);
	s.n = s.bad = 0;
	s.stop_at = 10;
	is(rs_map_foreach(m, seen_fn, &s), 10L, "a non-zero return stops it");

	/* delete every even key, then foreach deleting the rest */
	for (i = 0, bad = 0; i < MANY_KEYS; i += 2)
		bad += rs_map_del(m, buf, (size_t)keyf(buf, i)) != 0;
	is(bad, 0L, "half deleted");
	is(rs_map_count(m), (long)MANY_KEYS / 2, "count halves");
	for (i = 0, bad = 0; i < MANY_KEYS; i++)
		bad += (rs_map_get(m, buf, (size_t)keyf(buf, i)) != NULL) != (i & 1);
	is(bad, 0L, "exactly the odd keys remain");
	memset(s.hit, 0, MANY_KEYS);
	s.n = s.bad = 0;
	s.stop_at = -1;
	s.del_from = m;
	is(rs_map_foreach(m, seen_fn, &s), (long)MANY_KEYS / 2,
	   "foreach may delete as it goes");
	is(s.bad, 0L, "... every delete succeeded");
	is(rs_map_count(m), 0L, "the map is empty");
	free(s.hit);
	rs_map_free(m);
	settle_until(live_objects() == baseline, 3000);
	is(live_objects(), baseline, "every value and node is freed");
}

/* ---- errors ---- */

static rs_map *shared_map;

static void *unattached_thread(void *arg)
{
	long *r = arg;

	errno = 0;
	r[0] = rs_map_put(shared_map, "a", 1, shared_map) == -1 && errno == EPERM;
	errno = 0;
	r[1] = rs_map_get(shared_map, "a", 1) == NULL && errno == EPERM;
	errno = 0;
	r[2] = rs_map_new() == NULL && errno == EPERM;
	return NULL;
}

#if defined(RS_DEBUG) && RS_DEBUG
static void offline_get(void)
{
	rs_offline();
	rs_map_get(shared_map, "a", 1);
}
#endif

static void test_errors(void)
{
	rs_map *m = rs_map_new();
	struct node *n = node_new(1);
	long r[3] = {0};
	pthread_t th;

	errno = 0;
	ok(rs_map_put(NULL, "a", 1, n) == -1 && errno == EINVAL, "NULL map: EINVAL");
	errno = 0;
	ok(rs_map_count((rs_map *)n) == -1 && errno == EINVAL,
	   "an object that is not a map: EINVAL");
	errno = 0;
	ok(rs_map_put(m, NULL, 1, n) == -1 && errno == EINVAL,
	   "NULL key with a length: EINVAL");
	errno = 0;
	ok(rs_map_del(m, NULL, 3) == -1 && errno == EINVAL, "... for del too");
	errno = 0;
	ok(rs_map_put(m, "a", 1, NULL) == -1 && errno == EINVAL, "NULL value: EINVAL");
	errno = 0;
	ok(rs_map_foreach(m, NULL, NULL) == -1 && errno == EINVAL,
	   "NULL callback: EINVAL");
	is(rs_map_count(m), 0L, "nothing was added");

	shared_map = m;
	start_thread(&th, unattached_thread, r);
	join_offline(th);
	ok(r[0] && r[1] && r[2], "an unattached thread gets EPERM");
#if defined(RS_DEBUG) && RS_DEBUG
	{
		char buf[1024];
		int st = run_capture(offline_get, buf, sizeof(buf));

		ok(WIFSIGNALED(st) && strstr(buf, "rs_map_get") &&
		   strstr(buf, "offline"),
		   "debug: rs_map_get from an offline thread aborts naming it");
	}
#else
	rs_offline();
	errno = 0;
	r[0] = rs_map_get(m, "a", 1) == NULL && errno == EPERM;
	rs_online();
	ok(r[0], "an offline thread gets EPERM");
#endif

	/* a freed map another reference keeps alive: EBADF */
	is(rs_map_put(m, "a", 1, n), 0, "put");
	rs_incref(m);
	is(rs_map_free(m), 0, "rs_map_free while another reference exists");
	errno = 0;
	ok(rs_map_get(m, "a", 1) == NULL && errno == EBADF, "get after free: EBADF");
	errno = 0;
	ok(rs_map_put(m, "a", 1, n) == -1 && errno == EBADF, "put after free: EBADF");
	errno = 0;
	ok(rs_map_count(m) == -1 && errno == EBADF, "count after free: EBADF");
	errno = 0;
	ok(rs_map_free(m) == -1 && errno == EBADF, "free twice: EBADF");
	rs_decref(m);
	rs_decref(n);
	settle_until(live_objects() == baseline, 3000);
	is(live_objects(), baseline, "nothing leaked");
}

/* ---- concurrent put/get/del, then exact final contents ---- */

static long race_bad;		/* atomic */
static rs_map *race_map;
static pthread_barrier_t race_barrier;

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void *race_thread(void *arg)
{
	long id = (long)(intptr_t)arg, i, k, bad = 0;
	uint64_t s = 0x9e3779b97f4a7c15ull * (uint64_t)(id + 1);
	char buf[32];
	struct node *n;

	rs_thread_attach();
	for (i = 0; i < RACE_OPS; i++) {
		k = (long)(rnd(&s) % RACE_KEYS);
		switch (rnd(&s) % 4) {
		case 0:
			n = node_new(k);
			if (rs_map_put(race_map, buf, (size_t)keyf(buf, k), n))
				bad++;
			rs_decref(n);
			break;
		case 1:
			if (rs_map_del(race_map, buf, (size_t)keyf(buf, k)) &&
			    errno != ENOENT)
				bad++;
			break;
		default:
			n = rs_map_get(race_map, buf, (size_t)keyf(buf, k));
			if (n && (n->magic != NODE_ALIVE ||
				  n->value % 1000000 != k))
				bad++;
		}
		if ((i & 15) == 0)
			rs_safepoint();
	}
	/* final phase, after every thread's random phase: keys of this
	 * thread's residue; 3 in 4 stay (offline while waiting) */
	rs_offline();
	pthread_barrier_wait(&race_barrier);
	rs_online();
	for (k = id; k < RACE_KEYS; k += NTHREADS) {
		if (k % 4 == 3) {
			if (rs_map_del(race_map, buf, (size_t)keyf(buf, k)) &&
			    errno != ENOENT)
				bad++;
			continue;
		}
		n = node_new(k + 1000000);
		if (rs_map_put(race_map, buf, (size_t)keyf(buf, k), n))
			bad++;
		rs_decref(n);
	}
	__atomic_fetch_add(&race_bad, bad, __ATOMIC_RELAXED);
	rs_thread_detach();
	return NULL;
}

static void test_race(void)
{
	pthread_t th[NTHREADS];
	char buf[32];
	long i, bad = 0, want = 0;
	struct node *n;

	race_map = rs_map_new();
	pthread_barrier_init(&race_barrier, NULL, NTHREADS);
	for (i = 0; i < NTHREADS; i++)
		start_thread(&th[i], race_thread, (void *)(intptr_t)i);
	for (i = 0; i < NTHREADS; i++)
		join_offline(th[i]);
	is(race_bad, 0L, "%d threads: every put/del succeeded, every get "
	   "gave a live value of its key", NTHREADS);
	for (i = 0; i < RACE_KEYS; i++) {
		n = rs_map_get(race_map, buf, (size_t)keyf(buf, i));
		if (i % 4 == 3)
			bad += n != NULL;
		else {
			want++;
			bad += !n || n->value != i + 1000000 || n->magic != NODE_ALIVE;
		}
	}
	is(bad, 0L, "exact final contents");
	is(rs_map_count(race_map), want, "exact count");
	is(rs_heap_verify(), 0L, "heap consistent");
	rs_map_free(race_map);
	settle_until(live_objects() == baseline, 3000);
	is(live_objects(), baseline, "everything freed");
}

/* ---- one key put and deleted at once: the count may dip below zero ----
 *
 * A del that removes a node before the put that inserted it has counted it
 * in leaves the map's count at -1 for a moment.  The size check once read
 * that as a huge unsigned count and the resize loop never ended; now the
 * map stays usable and its count exact once both sides are done.  While
 * they run the count may also read 2 (the del has unlinked the old node
 * but not yet counted it out when the put counts its new one in). */

static int dip_stop;		/* atomic */

static void *dip_deleter(void *arg)
{
	(void)arg;
	rs_thread_attach();
	while (!__atomic_load_n(&dip_stop, __ATOMIC_ACQUIRE)) {
		for (int j = 0; j < 64; j++)
			rs_map_del(race_map, "dip", 3);
		rs_safepoint();
	}
	rs_thread_detach();
	return NULL;
}

static void test_count_dip(void)
{
	pthread_t th;
	struct node *n;
	long i, bad = 0;

	race_map = rs_map_new();
	__atomic_store_n(&dip_stop, 0, __ATOMIC_RELAXED);
	start_thread(&th, dip_deleter, NULL);
	for (i = 0; i < RACE_OPS; i++) {
		n = node_new(i);
		bad += rs_map_put(race_map, "dip", 3, n) != 0;
		rs_decref(n);
		if (rs_map_count(race_map) < 0 || rs_map_count(race_map) > 2)
			bad++;
		if (i % 64 == 0)
			rs_safepoint();
	}
	__atomic_store_n(&dip_stop, 1, __ATOMIC_RELEASE);
	join_offline(th);
	is(bad, 0L, "a key put and deleted at once: every put succeeded, "
	   "the count stayed within 0..2");
	rs_map_del(race_map, "dip", 3);
	is(rs_map_count(race_map), 0L, "count 0 once both are done");
	rs_map_free(race_map);
	settle_until(live_objects() == baseline, 3000);
	is(live_objects(), baseline, "everything freed");
}

/* ---- a borrowed value stays valid across replacement ---- */

static int borrow_stop;		/* atomic */

static void *replacer(void *arg)
{
	struct node *n;
	long i = 0;

	(void)arg;
	rs_thread_attach();
	while (!__atomic_load_n(&borrow_stop, __ATOMIC_ACQUIRE)) {
		n = node_new(i++);
		rs_map_put(race_map, "hot", 3, n);
		rs_decref(n);
		rs_safepoint();
	}
	rs_thread_detach();
	return NULL;
}

static void test_borrowed(void)
{
	struct node *seen[64], *n;
	long round, bad = 0, distinct = 0, d0 = destroyed();
	pthread_t th;
	int k, ns, j;

	race_map = rs_map_new();
	n = node_new(-1);
	rs_map_put(race_map, "hot", 3, n);
	rs_decref(n);
	start_thread(&th, replacer, NULL);
	for (round = 0; round < BORROW_ROUNDS; round++) {
		ns = 0;
		/* no safepoint in here: every value seen must stay alive */
		for (k = 0; k < 2000 && ns < 64; k++) {
			n = rs_map_get(race_map, "hot", 3);
			if (!n) {
				bad++;
				continue;
			}
			if (ns == 0 || seen[ns - 1] != n)
				seen[ns++] = n;
			sched_yield();
		}
		for (j = 0; j < ns; j++)
			bad += seen[j]->magic != NODE_ALIVE;
		distinct += ns;
		rs_safepoint();
	}
	__atomic_store_n(&borrow_stop, 1, __ATOMIC_RELEASE);
	join_offline(th);
	is(bad, 0L, "every borrowed value was alive until the safepoint");
	ok(distinct > BORROW_ROUNDS, "the value was replaced under the reader "
	   "(%ld values seen)", distinct);
	rs_map_free(race_map);
	settle_until(live_objects() == baseline, 3000);
	ok(destroyed() > d0, "replaced values were destroyed");
	is(live_objects(), baseline, "everything freed");
}

/* ---- the collector ---- */

struct refs {
	void *want;
	long n;
};

static void count_ref(void *obj, void *arg)
{
	struct refs *r = arg;

	r->n += obj == r->want;
}

/* Young collections leave maps out (lib/gc.c, RS__TYPE_NOT_YOUNG): a young
 * map is not walked by them, so its values count as held from outside and
 * a cycle through it waits for a collection of the old generations. */
static void test_young_map(void)
{
	rs_map *m;
	struct node *v, *w;
	long d0, r;

	rs_gc_collect(2);	/* nothing else pending */
	m = rs_map_new();	/* young, as are its values */
	v = node_new(7);
	w = node_new(8);
	d0 = destroyed();
	is(rs_map_put(m, "w", 1, w), 0, "a young map holds a young value");
	rs_decref(w);
	v->kid[0] = (struct node *)rs_incref(m);	/* v -> map -> v */
	is(rs_map_put(m, "v", 1, v), 0, "... and a value that holds the map");
	rs_decref(v);
	rs_decref(m);		/* only the cycle holds them now */
	rs_safepoint();
	r = rs_gc_collect(0);
	is(r, 0L, "a young collection finds nothing: it leaves the map out, "
	   "so the map's values count as held from outside");
	is(destroyed(), d0, "... and frees nothing");
	is(rs_heap_verify(), 0L, "... the heap is consistent");
	r = rs_gc_collect(2);
	ok(r >= 2, "a full collection finds the cycle through the map (%ld)", r);
	settle_until(destroyed() == d0 + 2, 2000);
	is(destroyed(), d0 + 2, "... and frees both values");
}

static void test_collector(void)
{
	rs_map *m = rs_map_new();
	struct node *r, *holder;
	struct refs rf;
	char buf[32];
	long i, bad = 0, d0;

	for (i = 0; i < 100; i++) {
		r = ring(&node_type, 3);
		r->value = i;
		rs_map_put(m, buf, (size_t)keyf(buf, i), r);
		rs_decref(r);
	}
	d0 = destroyed();
	gc_drain();
	is(destroyed(), d0, "values in rings survive full collections");
	for (i = 0; i < 100; i++) {
		r = rs_map_get(m, buf, (size_t)keyf(buf, i));
		bad += !r || r->magic != NODE_ALIVE || r->value != i;
	}
	is(bad, 0L, "... and are still in the map");
	is(rs_heap_verify(), 0L, "heap consistent");

	/* change the map between collections: each stop walks it afresh */
	for (i = 50; i < 100; i++)
		bad += rs_map_del(m, buf, (size_t)keyf(buf, i)) != 0;
	for (i = 0; i < 10; i++) {
		r = ring(&node_type, 3);
		r->value = i;
		bad += rs_map_put(m, buf, (size_t)keyf(buf, i), r) != 0;
		rs_decref(r);
	}
	gc_drain();
	settle_until(destroyed() == d0 + 180, 3000);
	is(destroyed(), d0 + 180, "after deleting 50 values and replacing 10 "
	   "between collections, exactly those 60 rings were freed");
	for (i = 0; i < 50; i++) {
		r = rs_map_get(m, buf, (size_t)keyf(buf, i));
		bad += !r || r->magic != NODE_ALIVE || r->value != i;
	}
	is(bad, 0L, "... and the other 50 values are alive and in the map");
	d0 = destroyed();
	for (i = 50; i < 100; i++) {	/* back to 100 rings */
		r = ring(&node_type, 3);
		r->value = i;
		rs_map_put(m, buf, (size_t)keyf(buf, i), r);
		rs_decref(r);
	}

	r = rs_map_get(m, "key-5", 5);
	rf.want = r;
	rf.n = 0;
	rs_gc_get_referents(m, count_ref, &rf);
	is(rf.n, 1L, "the map's referents include its value");
	rf.want = m;
	rf.n = 0;
	rs_gc_get_referrers(r, count_ref, &rf);
	is(rf.n, 1L, "the value's referrers include the map");

	/* a map in a cycle: holder -> map -> holder, plus 100 rings */
	holder = node_new(-2);
	rs_set(&holder->kid[0], m);
	rs_map_put(m, "holder", 6, holder);
	rs_decref(holder);
	rs_decref(m);
	gc_drain();
	is(destroyed(), d0 + 301, "an unreachable map is collected with its "
	   "values (100 rings of 3 and the holder)");
	settle_until(live_objects() == baseline, 3000);
	is(live_objects(), baseline, "... and its nodes freed");
	is(rs_heap_verify(), 0L, "heap consistent");

	/* a map whose last reference goes by counting */
	m = rs_map_new();
	for (i = 0; i < 50; i++) {
		r = node_new(i);
		rs_map_put(m, buf, (size_t)keyf(buf, i), r);
		rs_decref(r);
	}
	d0 = destroyed();
	rs_decref(m);
	settle_until(destroyed() == d0 + 50 && live_objects() == baseline, 3000);
	is(destroyed(), d0 + 50, "a map's last decref gives back its values");
	is(live_objects(), baseline, "... and frees it and its nodes");
}

/* ---- fork ---- */

static int map_writer_stop;	/* atomic */

static void *map_writer(void *arg)
{
	char buf[32];
	struct node *n;
	long i = 0;

	(void)arg;
	rs_thread_attach();
	while (!__atomic_load_n(&map_writer_stop, __ATOMIC_ACQUIRE)) {
		n = node_new(i);
		rs_map_put(race_map, buf, (size_t)keyf(buf, i % 20000), n);
		rs_decref(n);
		i++;
		rs_safepoint();
	}
	rs_thread_detach();
	return NULL;
}

static __attribute__((unused)) void test_fork(void)
{
	pthread_t th;
	int st, round, good = 0;
	pid_t pid;

	race_map = rs_map_new();
	start_thread(&th, map_writer, NULL);
	for (round = 0; round < 3; round++) {
		settle_until(rs_map_count(race_map) > 1000 * (round + 1), 2000);
		pid = fork();
		if (pid == 0) {
			struct node *n = node_new(5);
			long c = rs_map_count(race_map), bad = 0;

			if (rs_map_put(race_map, "child", 5, n) != 0)
				bad |= 1;
			if (rs_map_get(race_map, "child", 5) != n)
				bad |= 2;
			if (rs_map_count(race_map) != c + 1)
				bad |= 4;
			rs_decref(n);
			rs_gc_collect(2);
			if (rs_heap_verify() != 0)
				bad |= 8;
			rs_map_free(race_map);
			if (rs_shutdown() != 0)
				bad |= 16;
			_exit((int)bad);
		}
		rs_offline();
		waitpid(pid, &st, 0);
		rs_online();
		if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
			good++;
		else
			diag("child: status %#x", st);
	}
	is(good, 3, "fork while another thread fills a map: the child uses "
	   "it, collects, frees it and shuts down with nothing left");
	__atomic_store_n(&map_writer_stop, 1, __ATOMIC_RELEASE);
	join_offline(th);
	rs_map_free(race_map);
	settle_until(live_objects() == baseline, 3000);
	is(live_objects(), baseline, "parent: everything freed");
}

/* ---- maps born and dying (by counts and by the collector) while the
 * main thread forks and verifies: jobs in flight at fork and at verify ---- */

#if GC_SANITIZED
#define CHURN_MAX 3000
#else
#define CHURN_MAX 20000
#endif

static rs_map *churn_slot;	/* a shared field */
static int churn_stop;		/* atomic */
static long churn_bad;		/* atomic */

static void *churner(void *arg)
{
	uint64_t s = 0x2545f4914f6cdd1dull * (uint64_t)((intptr_t)arg + 1);
	long i, k, n, bad = 0;
	char buf[32];
	struct node *v, *c;
	rs_map *m;

	rs_thread_attach();
	/* No safepoint while this thread holds a counted reference: a fork
	 * child (where this thread is gone) then has nothing to leak. */
	while (!__atomic_load_n(&churn_stop, __ATOMIC_ACQUIRE)) {
		if (rnd(&s) % 4 == 0) {
			m = rs_map_new();
			n = (long)(rnd(&s) % CHURN_MAX);
			for (i = 0; i < n; i++) {
				v = node_new(i);
				bad += rs_map_put(m, buf, (size_t)keyf(buf, i), v) != 0;
				rs_decref(v);
			}
			if (n & 1) {	/* map -> c -> map: for the collector */
				c = node_new(-1);
				rs_set(&c->kid[0], m);
				rs_map_put(m, "cycle", 5, c);
				rs_decref(c);
			}
			rs_set(&churn_slot, m);
			rs_decref(m);
		} else if ((m = rs_get(&churn_slot))) {
			for (i = 0; i < 100; i++) {
				k = (long)(rnd(&s) % CHURN_MAX);
				v = rs_map_get(m, buf, (size_t)keyf(buf, k));
				if (v && (v->magic != NODE_ALIVE || v->value != k))
					bad++;
				if (i % 8 == 0)
					rs_map_del(m, buf, (size_t)keyf(buf, k));
			}
		}
		rs_safepoint();
	}
	__atomic_fetch_add(&churn_bad, bad, __ATOMIC_RELAXED);
	rs_thread_detach();
	return NULL;
}

static void test_churn(int forks)
{
	pthread_t th[2];
	long i, verify_bad = 0;
	int st, good = 0, nfork = 0;
	pid_t pid;

	for (i = 0; i < 2; i++)
		start_thread(&th[i], churner, (void *)(intptr_t)i);
	for (i = 0; i < 12; i++) {
		idle_ms(60);
		if (i % 3 == 0)
			rs_gc_collect(2);
		verify_bad += rs_heap_verify() != 0;
		if (!forks || i % 4 != 1)
			continue;
		nfork++;
		pid = fork();
		if (pid == 0) {
			rs_clear(&churn_slot);
			rs_gc_collect(2);
			_exit(rs_shutdown() == 0 ? 0 : 1);
		}
		rs_offline();
		waitpid(pid, &st, 0);
		rs_online();
		if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
			good++;
		else
			diag("child: status %#x", st);
	}
	__atomic_store_n(&churn_stop, 1, __ATOMIC_RELEASE);
	for (i = 0; i < 2; i++)
		join_offline(th[i]);
	is(churn_bad, 0L, "maps born and dying under readers: every borrowed "
	   "value live and of its key");
	is(verify_bad, 0L, "rs_heap_verify during the churn (dead maps' jobs "
	   "running) finds nothing");
	if (forks)
		is(good, nfork, "forks during the churn: each child frees "
		   "everything (no job lost)");
	rs_clear(&churn_slot);
	gc_drain();
	settle_until(live_objects() == baseline, 5000);
	is(live_objects(), baseline, "everything freed after the churn");
}

/* A second runtime after rs_shutdown counts its own leaks (the count of
 * nodes freed by the reclaimer starts again from zero). */
static void test_second_runtime(void)
{
	rs_config cfg = {0};
	struct node *leak, *n;
	rs_map *m;

	cfg.report_leaks = -1;
	ok(rs_init(&cfg) == 0 && rs_thread_attach() == 0, "rs_init again");
	m = rs_map_new();
	n = node_new(1);
	rs_map_put(m, "a", 1, n);
	rs_decref(n);
	rs_decref(m);	/* its node is freed by the reclaimer */
	leak = node_new(2);
	(void)leak;
	is(rs_shutdown(), 1L, "rs_shutdown reports the one leaked object");
}

int main(void)
{
	rs_init(NULL);
	rs_thread_attach();
	baseline = live_objects();
	test_basics();
	test_put_steal();
	test_add_cas();
	test_lengths_and_many();
	test_errors();
	test_race();
	test_cas_race();
	test_count_dip();
	test_borrowed();
	test_young_map();
	test_collector();
#ifdef __SANITIZE_THREAD__
	/* TSan dies when a fork child starts threads (refstore's reclaimer);
	 * the other builds cover fork. */
	skip(2, "ThreadSanitizer cannot follow threads started in a fork child");
	test_churn(0);
#else
	test_fork();
	test_churn(1);
#endif
	is(rs_shutdown(), 0L, "rs_shutdown: no live objects");
	test_second_runtime();
	return done_testing();
}
