/*
 * rs_side.c - the demo's refstore side: values of refstore objects (the
 * record and its ring tracked by the cycle collector, the leaf not), the
 * map an rs_map, the requests, the pauses from rs_gc_add_callback, and the
 * checks at the end (every entry whole, every object given back, and
 * rs_shutdown() with none left).  Runs in its own child process.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <unistd.h>

#include "demo.h"

struct leaf {
	uint64_t key, ver, sum;
	unsigned char payload[PAYLOAD];
};

struct rnode;

struct rec {
	struct rnode *ring;	/* counted; the first node */
	struct leaf *leaf;	/* counted */
	uint64_t key, ver;
};

struct rnode {
	struct rnode *next;	/* counted; the last node's is the first */
	struct rec *owner;	/* counted: the cycle back to the record */
	uint64_t tag;
};

static void rec_traverse(void *obj, rs_visit_fn visit, void *arg)
{
	struct rec *r = obj;

	if (r->ring)
		visit(r->ring, arg);
	if (r->leaf)
		visit(r->leaf, arg);
}

static void rnode_traverse(void *obj, rs_visit_fn visit, void *arg)
{
	struct rnode *n = obj;

	if (n->next)
		visit(n->next, arg);
	if (n->owner)
		visit(n->owner, arg);
}

static const rs_type rec_type = {
	.name = "demo_record", .size = sizeof(struct rec),
	.traverse = rec_traverse,
};
static const rs_type rnode_type = {
	.name = "demo_ring_node", .size = sizeof(struct rnode),
	.traverse = rnode_traverse,
};
static const rs_type leaf_type = {
	.name = "demo_leaf", .size = sizeof(struct leaf),
	.flags = RS_TYPE_NO_CYCLES,
};

static rs_map *g_map;

/* --cold root: the cold records in one array object instead of the map. */
struct cold {
	long n;
	struct rec *r[];	/* counted */
};

static void cold_traverse(void *obj, rs_visit_fn visit, void *arg)
{
	struct cold *c = obj;
	long i;

	for (i = 0; i < c->n; i++)
		visit(c->r[i], arg);
}

static rs_type cold_type = {	/* size set at run time */
	.name = "demo_cold_root", .traverse = cold_traverse,
};
static struct cold *g_cold;

static void *rs_alloc(const rs_type *t)
{
	void *p = rs_new(t);

	if (!p)
		die("rs_new");
	return p;
}

static struct leaf *rs_make_leaf(uint64_t key, uint64_t ver)
{
	struct leaf *l = rs_alloc(&leaf_type);

	l->key = key;
	l->ver = ver;
	l->sum = fill_payload(l->payload, key, ver);
	return l;
}

/* A ring of len nodes owned by rec (counted or borrowed by the caller);
 * returns a counted reference to the first node (NULL when len is 0).
 * The nodes are private: plain stores. */
static struct rnode *rs_make_ring(struct rec *rec, uint64_t key, int len)
{
	struct rnode *first = NULL, *prev = NULL, *n;
	int i;

	for (i = 0; i < len; i++) {
		n = rs_alloc(&rnode_type);
		n->tag = node_tag(key, i);
		n->owner = rs_incref(rec);
		if (prev)
			prev->next = n;		/* takes rs_new's reference */
		else
			first = n;		/* rs_new's: the caller's */
		prev = n;
	}
	if (prev)
		prev->next = rs_incref(first);
	return first;
}

static struct rec *rs_make_rec(uint64_t key, uint64_t ver)
{
	struct rec *r = rs_alloc(&rec_type);

	r->key = key;
	r->ver = ver;
	r->leaf = rs_make_leaf(key, ver);
	r->ring = rs_make_ring(r, key, cfg.ring);
	return r;
}

static void rs_put(uint64_t key, uint64_t ver)
{
	char k[KEY_BUF];
	struct rec *r = rs_make_rec(key, ver);

	if (rs_map_put_steal(g_map, k, key_of(k, key), r))
		die("rs_map_put_steal");	/* the map takes our reference */
}

/* Walks a value read with borrowed references; 0 when it is whole. */
static int rs_check_rec(struct rec *r, uint64_t key, uint64_t *sum)
{
	struct rnode *head, *n;
	struct leaf *l;
	int i;

	if (r->key != key)
		return -1;
	l = rs_get(&r->leaf);
	if (!l || l->key != key || sum_payload(l->payload, key) != l->sum)
		return -1;
	*sum += l->sum;
	head = n = rs_get(&r->ring);
	for (i = 0; i < cfg.ring; i++) {
		if (!n || n->tag != node_tag(key, i) || rs_get(&n->owner) != r)
			return -1;
		*sum += n->tag;
		n = rs_get(&n->next);
	}
	return n == head ? 0 : -1;
}

static int rs_request(struct worker *w, int op, uint64_t key)
{
	char k[KEY_BUF];
	size_t klen = key_of(k, key);
	struct rec *r;

	switch (op) {
	case OP_GET:
		if (!(r = rs_map_get(g_map, k, klen)))
			return 1;
		return rs_check_rec(r, key, &w->checksum);
	case OP_PUT:
		r = rs_make_rec(key, ++w->ver);
		if (rs_map_put_steal(g_map, k, klen, r))
			die("rs_map_put_steal");
		return 0;
	case OP_UPDATE:
		if (!(r = rs_map_get(g_map, k, klen)))
			return 1;
		if (r->key != key)
			return -1;
		if (cfg.ring == 0 || (rnd(&w->rng) & 1)) {
			if (rs_set_steal(&r->leaf, rs_make_leaf(key, ++w->ver)))
				die("rs_set_steal");
		} else {
			if (rs_set_steal(&r->ring, rs_make_ring(r, key,
								cfg.ring)))
				die("rs_set_steal");
		}
		return 0;
	default:
		if (rs_map_del(g_map, k, klen) == 0)
			return 0;
		if (errno != ENOENT)
			die("rs_map_del");
		return 1;
	}
}

static void *rs_worker(void *arg)
{
	struct worker *w = arg;

	pthread_barrier_wait(&g_go);
	if (rs_thread_attach())
		die("rs_thread_attach");
	request_loop(w, rs_request, 1);
	rs_thread_detach();
	return NULL;
}

static void on_rs_gc(const struct rs_gc_info *info, void *arg)
{
	uint64_t t = now_ns() - g_run_start;

	(void)arg;
	if (!atomic_load_explicit(&g_recording, memory_order_relaxed))
		return;
	/* when the collection began: the callback runs after it */
	t = t > info->duration_ns ? t - info->duration_ns : 0;
	pause_add(t, info->generation, info->pause_ns, info->ttsp_ns);
}

static void rs_snap(struct memsnap *m)
{
	struct rs_stats st;

	if (rs_stats(&st))
		die("rs_stats");
	m->a = st.live_bytes;
	m->b = st.arena_bytes;
	m->c = st.pending_bytes;
	m->d = st.gc_candidates;
}

static size_t rs_live_objects(void)
{
	struct rs_stats st;

	if (rs_stats(&st))
		die("rs_stats");
	return st.live_objects;
}

static int rs_verify_entry(const void *key, size_t klen, void *value,
			   void *arg)
{
	struct verify *v = arg;
	uint64_t id = id_of_key(key, klen);

	v->entries++;
	if (id & BALLAST_BIT)
		v->ballast++;
	if (id == UINT64_MAX || rs_check_rec(value, id, &v->sum))
		v->bad++;
	return 0;
}

int run_refstore(void)
{
	struct memsnap peak = { 0, 0, 0, 0 }, m;
	struct rs_gc_stats gs;
	struct rs_stats st0, st1;
	struct verify v = { 0, 0, 0, 0 };
	size_t base;
	uint64_t t;
	long i, count, left;
	int g, tries;

	snprintf(R->version, sizeof(R->version), "refstore %d.%d",
		 REFSTORE_VERSION_MAJOR, REFSTORE_VERSION_MINOR);
	if (rs_init(NULL) || rs_thread_attach())
		die("refstore init");
	base = rs_live_objects();
	if (!(g_map = rs_map_new()))
		die("rs_map_new");

	/* the data: every request key, then the cold entries; then a full
	 * collection moves it all to the old generation, as a server's
	 * warm-up would */
	t = now_ns();
	for (i = 0; i < cfg.keys; i++) {
		rs_put((uint64_t)i, 0);
		if ((i & 255) == 0)
			rs_safepoint();
	}
	if (cfg.cold_root) {
		cold_type.size = offsetof(struct cold, r) +
				 (size_t)cfg.ballast * sizeof(struct rec *);
		g_cold = rs_alloc(&cold_type);
		g_cold->n = cfg.ballast;
	}
	for (i = 0; i < cfg.ballast; i++) {
		if (g_cold)
			g_cold->r[i] = rs_make_rec((uint64_t)i | BALLAST_BIT, 0);
		else
			rs_put((uint64_t)i | BALLAST_BIT, 0);
		if ((i & 255) == 0)
			rs_safepoint();
	}
	if (rs_gc_collect(2) < 0)
		die("rs_gc_collect");
	R->setup_s = (double)(now_ns() - t) / 1e9;
	R->records = cfg.keys;
	R->ballast = cfg.ballast;
	rs_snap(&m);
	R->live_setup = m.a;

	if (rs_stats(&st0))
		die("rs_stats");
	if (rs_gc_add_callback(on_rs_gc, NULL))
		die("rs_gc_add_callback");
	start_workers(rs_worker, SIDE_RS, pthread_create);
	rs_offline();		/* the monitor holds up no grace period */
	go();
	monitor(SIDE_RS, rs_snap, &peak);
	join_workers();
	rs_online();
	rs_gc_remove_callback(on_rs_gc, NULL);
	if (rs_stats(&st1))
		die("rs_stats");
	R->grace_periods = st1.grace_periods - st0.grace_periods;
	R->defer_waits = st1.defer_waits - st0.defer_waits;

	rs_snap(&m);
	R->live_end = m.a;
	R->arena_end = m.b;
	R->pending_end = m.c;
	R->live_peak = peak.a > m.a ? peak.a : m.a;
	R->arena_peak = peak.b > m.b ? peak.b : m.b;
	R->pending_peak = peak.c > m.c ? peak.c : m.c;
	R->cand_end = m.d;
	R->cand_peak = peak.d > m.d ? peak.d : m.d;
	for (g = 0; g < RS_GC_GENERATIONS; g++)
		if (!rs_gc_get_stats(g, &gs))
			R->collected += gs.collected;

	/* Checks: every entry whole, the count agrees; then give everything
	 * back: the live object count must return to where it started. */
	rs_safepoint();
	count = rs_map_count(g_map);
	if (rs_map_foreach(g_map, rs_verify_entry, &v) < 0)
		die("rs_map_foreach");
	if (v.bad)
		fail("refstore: map entries read back wrong", v.bad, 0);
	if (v.entries != count)
		fail("refstore: rs_map_foreach entries vs rs_map_count",
		     v.entries, count);
	if (v.ballast != (g_cold ? 0 : cfg.ballast))
		fail("refstore: cold entries in the map", v.ballast,
		     g_cold ? 0 : cfg.ballast);
	if (g_cold) {
		v.bad = 0;
		for (i = 0; i < g_cold->n; i++)
			if (rs_check_rec(g_cold->r[i],
					 (uint64_t)i | BALLAST_BIT, &v.sum))
				v.bad++;
		if (v.bad)
			fail("refstore: cold records read back wrong", v.bad, 0);
		rs_decref(g_cold);
		g_cold = NULL;
	}
	if (rs_map_free(g_map))
		die("rs_map_free");
	g_map = NULL;
	for (tries = 0; tries < 100; tries++) {
		if (rs_gc_collect(2) < 0)
			die("rs_gc_collect");
		rs_safepoint();
		if (rs_live_objects() == base)
			break;
		usleep(10000);
	}
	R->live_objects_end = rs_live_objects();
	if (R->live_objects_end != base)
		fail("refstore: live objects after rs_map_free and a full "
		     "collection", (long)R->live_objects_end, (long)base);
	rs_thread_detach();
	left = rs_shutdown();
	R->shutdown_left = left;
	if (left != 0)
		fail("refstore: rs_shutdown() (objects still alive)", left, 0);
	free(g_workers);
	R->rss_peak_kb = rss_peak_kb();
	R->ran = 1;
	return R->check_failed ? 1 : 0;
}

/* Bytes of one record in refstore's accounting: each object plus its
 * 32-byte header (16 more for tracked ones), and the map's entry. */
double rs_record_bytes(void)
{
	return (double)(sizeof(struct rec) + 48) +
	       (double)cfg.ring * (double)(sizeof(struct rnode) + 48) +
	       (double)(sizeof(struct leaf) + 32) + 72.0;
}
