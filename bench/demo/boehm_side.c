/*
 * boehm_side.c - the demo's Boehm GC side: the same values GC_MALLOC'd
 * (the leaf GC_MALLOC_ATOMIC), a chained hash table behind 256 striped
 * rwlocks for the map, the requests, the pauses from
 * GC_set_on_collection_event, and the checks at the end.  Runs in its own
 * child process.  Built with -DHAVE_BOEHM when libgc is installed; without
 * it the side is skipped and says why.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "demo.h"

#ifdef HAVE_BOEHM
/* Boehm's threads are created with GC_pthread_create by name; refstore's
 * side uses plain pthread_create (it never initialises Boehm). */
#define GC_THREADS 1
#define GC_NO_THREAD_REDIRECTS 1
#include <gc.h>

const char *boehm_skip_reason(void)
{
	return NULL;
}

struct bleaf {
	uint64_t key, ver, sum;
	unsigned char payload[PAYLOAD];
};

struct bnode;

struct brec {
	struct bnode *ring;	/* atomic stores and loads */
	struct bleaf *leaf;
	uint64_t key, ver;
};

struct bnode {
	struct bnode *next;
	struct brec *owner;
	uint64_t tag;
};

/* The map: a fixed array of chains (no resizing: the key set is known),
 * GC_MALLOC'd so Boehm sees every value; 256 striped rwlocks. */
struct bentry {
	struct bentry *next;
	struct brec *val;
	uint64_t hash;
	uint32_t klen;
	char key[];
};

#define NLOCKS 256
static struct {
	_Alignas(64) pthread_rwlock_t l;
} g_locks[NLOCKS];
static struct bentry **g_tab;	/* a static: a root for Boehm */
static struct brec **g_bcold;	/* --cold root; a static too */
static size_t g_mask;
static _Atomic long g_bcount;

static uint64_t bhash(const char *k, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;
	size_t i;

	for (i = 0; i < n; i++)
		h = (h ^ (unsigned char)k[i]) * 0x100000001b3ull;
	h ^= h >> 29;
	h *= 0xbf58476d1ce4e5b9ull;
	return h ^ (h >> 32);
}

static void *bmalloc(size_t n)
{
	void *p = GC_MALLOC(n);

	if (!p)
		die("GC_MALLOC");
	return p;
}

static struct brec *bmap_get(const char *k, size_t klen)
{
	uint64_t h = bhash(k, klen);
	size_t b = h & g_mask;
	pthread_rwlock_t *l = &g_locks[b % NLOCKS].l;
	struct bentry *e;
	struct brec *v = NULL;

	pthread_rwlock_rdlock(l);
	for (e = g_tab[b]; e; e = e->next)
		if (e->hash == h && e->klen == klen &&
		    !memcmp(e->key, k, klen)) {
			v = e->val;
			break;
		}
	pthread_rwlock_unlock(l);
	return v;
}

static void bmap_put(const char *k, size_t klen, struct brec *v)
{
	uint64_t h = bhash(k, klen);
	size_t b = h & g_mask;
	pthread_rwlock_t *l = &g_locks[b % NLOCKS].l;
	struct bentry *e, *fresh = NULL;

	for (;;) {
		pthread_rwlock_wrlock(l);
		for (e = g_tab[b]; e; e = e->next)
			if (e->hash == h && e->klen == klen &&
			    !memcmp(e->key, k, klen)) {
				e->val = v;	/* the old value is garbage */
				pthread_rwlock_unlock(l);
				return;
			}
		if (fresh) {
			fresh->next = g_tab[b];
			g_tab[b] = fresh;
			pthread_rwlock_unlock(l);
			atomic_fetch_add_explicit(&g_bcount, 1,
						  memory_order_relaxed);
			return;
		}
		/* allocate outside the lock, then look again */
		pthread_rwlock_unlock(l);
		fresh = bmalloc(sizeof(*fresh) + klen);
		fresh->val = v;
		fresh->hash = h;
		fresh->klen = (uint32_t)klen;
		memcpy(fresh->key, k, klen);
	}
}

static int bmap_del(const char *k, size_t klen)
{
	uint64_t h = bhash(k, klen);
	size_t b = h & g_mask;
	pthread_rwlock_t *l = &g_locks[b % NLOCKS].l;
	struct bentry **pe, *e;

	pthread_rwlock_wrlock(l);
	for (pe = &g_tab[b]; (e = *pe); pe = &e->next)
		if (e->hash == h && e->klen == klen &&
		    !memcmp(e->key, k, klen)) {
			*pe = e->next;
			pthread_rwlock_unlock(l);
			atomic_fetch_add_explicit(&g_bcount, -1,
						  memory_order_relaxed);
			return 0;
		}
	pthread_rwlock_unlock(l);
	return -1;
}

static struct bleaf *b_make_leaf(uint64_t key, uint64_t ver)
{
	struct bleaf *l = GC_MALLOC_ATOMIC(sizeof(*l));

	if (!l)
		die("GC_MALLOC_ATOMIC");
	l->key = key;
	l->ver = ver;
	l->sum = fill_payload(l->payload, key, ver);
	return l;
}

static struct bnode *b_make_ring(struct brec *rec, uint64_t key, int len)
{
	struct bnode *first = NULL, *prev = NULL, *n;
	int i;

	for (i = 0; i < len; i++) {
		n = bmalloc(sizeof(*n));
		n->tag = node_tag(key, i);
		n->owner = rec;
		if (prev)
			prev->next = n;
		else
			first = n;
		prev = n;
	}
	if (prev)
		prev->next = first;
	return first;
}

static struct brec *b_make_rec(uint64_t key, uint64_t ver)
{
	struct brec *r = bmalloc(sizeof(*r));

	r->key = key;
	r->ver = ver;
	r->leaf = b_make_leaf(key, ver);
	r->ring = b_make_ring(r, key, cfg.ring);
	return r;
}

static int b_check_rec(struct brec *r, uint64_t key, uint64_t *sum)
{
	struct bnode *head, *n;
	struct bleaf *l;
	int i;

	if (r->key != key)
		return -1;
	l = __atomic_load_n(&r->leaf, __ATOMIC_ACQUIRE);
	if (!l || l->key != key || sum_payload(l->payload, key) != l->sum)
		return -1;
	*sum += l->sum;
	head = n = __atomic_load_n(&r->ring, __ATOMIC_ACQUIRE);
	for (i = 0; i < cfg.ring; i++) {
		if (!n || n->tag != node_tag(key, i) || n->owner != r)
			return -1;
		*sum += n->tag;
		n = n->next;
	}
	return n == head ? 0 : -1;
}

static int b_request(struct worker *w, int op, uint64_t key)
{
	char k[KEY_BUF];
	size_t klen = key_of(k, key);
	struct brec *r;

	switch (op) {
	case OP_GET:
		if (!(r = bmap_get(k, klen)))
			return 1;
		return b_check_rec(r, key, &w->checksum);
	case OP_PUT:
		bmap_put(k, klen, b_make_rec(key, ++w->ver));
		return 0;
	case OP_UPDATE:
		if (!(r = bmap_get(k, klen)))
			return 1;
		if (r->key != key)
			return -1;
		if (cfg.ring == 0 || (rnd(&w->rng) & 1))
			__atomic_store_n(&r->leaf, b_make_leaf(key, ++w->ver),
					 __ATOMIC_RELEASE);
		else
			__atomic_store_n(&r->ring, b_make_ring(r, key, cfg.ring),
					 __ATOMIC_RELEASE);
		return 0;
	default:
		return bmap_del(k, klen) ? 1 : 0;
	}
}

static void *b_worker(void *arg)
{
	struct worker *w = arg;

	pthread_barrier_wait(&g_go);
	request_loop(w, b_request, 0);
	return NULL;
}

/* Called by the collecting thread with Boehm's lock held: no allocation,
 * no lock, a clock read per event. */
static uint64_t g_pre_stop, g_post_stop;

static void GC_CALLBACK on_boehm_event(GC_EventType e)
{
	uint64_t t = now_ns();

	switch (e) {
	case GC_EVENT_PRE_STOP_WORLD:
		g_pre_stop = t;
		g_post_stop = 0;
		break;
	case GC_EVENT_POST_STOP_WORLD:
		g_post_stop = t;
		break;
	case GC_EVENT_POST_START_WORLD:
		if (g_pre_stop && atomic_load_explicit(&g_recording,
						       memory_order_relaxed) &&
		    g_pre_stop >= g_run_start)
			pause_add(g_pre_stop - g_run_start, 2, t - g_pre_stop,
				  g_post_stop ? g_post_stop - g_pre_stop : 0);
		g_pre_stop = 0;
		break;
	default:
		break;
	}
}

static void b_snap(struct memsnap *m)
{
	GC_word heap = 0, freeb = 0, unmapped = 0;

	GC_get_heap_usage_safe(&heap, &freeb, &unmapped, NULL, NULL);
	m->a = heap;
	m->b = heap > freeb ? heap - freeb : 0;
	m->c = 0;
	m->d = 0;
}

int run_boehm(void)
{
	struct memsnap peak = { 0, 0, 0, 0 }, m;
	struct verify v = { 0, 0, 0, 0 };
	size_t nb = 1, b;
	uint64_t t;
	long i;
	struct bentry *e;
	int j;
	unsigned ver;

	GC_INIT();
	for (j = 0; j < NLOCKS; j++)
		pthread_rwlock_init(&g_locks[j].l, NULL);
	while (nb < (size_t)(cfg.keys + (cfg.cold_root ? 0 : cfg.ballast)))
		nb <<= 1;
	g_tab = bmalloc(nb * sizeof(*g_tab));
	g_mask = nb - 1;

	t = now_ns();
	for (i = 0; i < cfg.keys; i++) {
		char k[KEY_BUF];

		bmap_put(k, key_of(k, (uint64_t)i), b_make_rec((uint64_t)i, 0));
	}
	if (cfg.cold_root)
		g_bcold = bmalloc((size_t)(cfg.ballast ? cfg.ballast : 1) *
				  sizeof(*g_bcold));
	for (i = 0; i < cfg.ballast; i++) {
		char k[KEY_BUF];
		uint64_t id = (uint64_t)i | BALLAST_BIT;

		if (g_bcold)
			g_bcold[i] = b_make_rec(id, 0);
		else
			bmap_put(k, key_of(k, id), b_make_rec(id, 0));
	}
	GC_gcollect();
	R->setup_s = (double)(now_ns() - t) / 1e9;
	R->records = cfg.keys;
	R->ballast = cfg.ballast;
	b_snap(&m);
	R->heap_setup = m.a;
	R->inuse_setup = m.b;

	GC_set_on_collection_event(on_boehm_event);
	start_workers(b_worker, SIDE_BOEHM, GC_pthread_create);
	/* the marker threads start with the first GC_pthread_create */
	ver = GC_get_version();
	snprintf(R->version, sizeof(R->version),
		 "Boehm GC %u.%u.%u (%d marker threads)", ver >> 16,
		 (ver >> 8) & 0xff, ver & 0xff, GC_get_parallel() + 1);
	go();
	monitor(SIDE_BOEHM, b_snap, &peak);
	for (i = 0; i < cfg.threads; i++)
		GC_pthread_join(g_workers[i].th, NULL);
	atomic_store(&g_recording, 0);
	R->elapsed_s = (double)(now_ns() - g_run_start) / 1e9;
	collect_workers();
	GC_set_on_collection_event(0);

	b_snap(&m);
	R->heap_end = m.a;
	R->inuse_end = m.b;
	R->heap_peak = peak.a > m.a ? peak.a : m.a;

	/* Checks: every entry whole, the count agrees. */
	for (b = 0; b < nb; b++)
		for (e = g_tab[b]; e; e = e->next) {
			uint64_t id = id_of_key(e->key, e->klen);

			v.entries++;
			if (id & BALLAST_BIT)
				v.ballast++;
			if (id == UINT64_MAX || b_check_rec(e->val, id, &v.sum))
				v.bad++;
		}
	if (v.bad)
		fail("Boehm: map entries read back wrong", v.bad, 0);
	if (v.entries != atomic_load(&g_bcount))
		fail("Boehm: entries vs the map's count", v.entries,
		     atomic_load(&g_bcount));
	if (v.ballast != (g_bcold ? 0 : cfg.ballast))
		fail("Boehm: cold entries in the map", v.ballast,
		     g_bcold ? 0 : cfg.ballast);
	if (g_bcold) {
		v.bad = 0;
		for (i = 0; i < cfg.ballast; i++)
			if (b_check_rec(g_bcold[i], (uint64_t)i | BALLAST_BIT,
					&v.sum))
				v.bad++;
		if (v.bad)
			fail("Boehm: cold records read back wrong", v.bad, 0);
	}
	free(g_workers);
	R->rss_peak_kb = rss_peak_kb();
	R->ran = 1;
	return R->check_failed ? 1 : 0;
}

#else

const char *boehm_skip_reason(void)
{
	return "peer skipped: built without libgc (libgc-dev was missing at "
	       "build time)";
}

#endif
