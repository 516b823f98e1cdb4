/*
 * demo.c - refstore doing its main job: a multi-threaded server keeps a map
 * of shared object graphs, its worker threads serve a stream of requests
 * against it, and garbage (cycles included) is freed while they run.  The
 * same workload then runs on the Boehm GC, in the same run, and the two are
 * compared: throughput, request latency, collector pauses and
 * time-to-safepoint under contention.  Not a test: it prints numbers and
 * ratios, never pass/fail on a timing; it does check its own results (every
 * value read is verified, and the refstore side must give back every object
 * at the end), and exits 1 if they are wrong.
 *
 * The workload (docs/demo.md has the full description).  A map from keys
 * "k<id>" (--keys of them) to values; --heap-mb adds cold records that
 * requests never touch, so the old generation is large (entries "b<id>" of
 * the same map, or with --cold root held by one array).  A value is a
 * record with a ring of --ring nodes that point to each other and back to
 * the record (a cycle), and a leaf payload:
 *
 *      record {ring, leaf, key, ver} --ring--> node0 -next-> node1 -> node2
 *        ^  |                                   ^                      |
 *        |  +--leaf--> leaf {key, ver, sum,     +--------next----------+
 *        |                   payload[40]}       every node: owner --> record
 *
 * Each worker (--threads, default one per online CPU) loops: pick a request
 * (get with probability 1 - writes; put, update, delete in the ratio
 * 40:50:10 of the writes) and a uniformly random key, serve it, repeat:
 *
 *   get     look the key up (refstore: rs_map_get, borrowed), walk the whole
 *           value: the ring must close after --ring nodes, each node's tag and
 *           owner must match, the leaf's key and payload sum must match;
 *           fold it into a checksum.  A mismatch is counted as an error.
 *   put     build a new value, insert it (replacing: the old value and its
 *           ring become cyclic garbage).
 *   update  look the key up and replace the leaf (acyclic garbage) or the
 *           whole ring (cyclic garbage) of the shared record, by a store into
 *           the record (refstore: rs_set_steal).
 *   delete  remove the key; a later put brings it back.
 *
 * A refstore worker calls rs_safepoint() before each request.  A request's
 * latency runs from the end of the previous request on that thread to the
 * end of this one, so it includes the safepoint (where a refstore thread
 * parks while the world is stopped, and where a requested collection runs)
 * and, on the Boehm side, any time the thread spent suspended by a
 * collection's signal.  Latencies go into per-thread log-linear histograms
 * (32 sub-buckets per power of two: within 3%), merged at the end, and into
 * per-100 ms window histograms for the time series.
 *
 * Sides.  Each runs in its own child process, forked before either runtime
 * is initialised, so the heaps and RSS are separate; results come back
 * through a MAP_SHARED mapping.  refstore: the map is rs_map (lock-free
 * reads, cds_lfht), values are refstore objects (record and ring nodes
 * tracked by the cycle collector, the leaf untracked), collection is the
 * library's automatic generational collection with default thresholds;
 * pauses come from rs_gc_add_callback.  Boehm: the map is a chained hash
 * table whose buckets and nodes are GC_MALLOC'd, guarded by 256 striped
 * rwlocks; values are GC_MALLOC'd (the leaf GC_MALLOC_ATOMIC), nothing is
 * counted; Boehm's default configuration (stop-the-world, parallel mark);
 * pauses from GC_set_on_collection_event (pre-stop to post-start of the
 * world).
 *
 * Output: progress once a second (unless --quiet), then tables with both
 * sides side by side, the ratios, and files in --out: pauses and latency windows (CSV or JSON),
 * summary.json, and demo.png drawn by gnuplot with bench/demo_plot.gp when
 * gnuplot is installed.  Run with --help for the flags.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifdef HAVE_BOEHM
/* Boehm's threads are created with GC_pthread_create by name; refstore's
 * side uses plain pthread_create (it never initialises Boehm). */
#define GC_THREADS 1
#define GC_NO_THREAD_REDIRECTS 1
#include <gc.h>
#endif

#include "refstore.h"
#include "bench.h"

/* ---------------------------------------------------------------------- */
/* Configuration                                                           */
/* ---------------------------------------------------------------------- */

enum { SIDE_RS, SIDE_BOEHM, NSIDES };
static const char *const side_name[NSIDES] = { "refstore", "boehm" };
static const char *const side_title[NSIDES] = { "refstore", "Boehm GC" };

enum { OP_GET, OP_PUT, OP_UPDATE, OP_DEL, NOPS };
static const char *const op_name[NOPS] = { "get", "put", "update", "delete" };

#define MAX_THREADS 1024
#define MAX_RING 64
#define MAX_SECONDS 3600
#define WINDOW_NS 100000000ull		/* latency time series: 100 ms */
#define BALLAST_BIT (1ull << 47)	/* key ids of the cold entries */
#define KEY_BUF 24

static struct {
	int threads;
	double seconds;
	long keys;
	int writes;		/* percent of requests that write */
	int ring;
	long heap_mb;
	int sides[NSIDES];
	uint64_t seed;
	const char *out;
	int quiet;
	int json;
	long ballast;		/* records, from heap_mb */
	int cold_root;		/* --cold root: held by an array, not the map */
	unsigned thr_get, thr_put, thr_upd;	/* of 10000: op thresholds */
} cfg = {
	.seconds = 8,
	.keys = 100000,
	.writes = 20,
	.ring = 3,
	.heap_mb = 64,
	.sides = { 1, 1 },
	.seed = 1,
	.out = "build/demo",
};

/* ---------------------------------------------------------------------- */
/* Random numbers: splitmix64 to seed, xorshift64* per thread              */
/* ---------------------------------------------------------------------- */

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static inline uint64_t rnd(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dull;
}

/* A value in [0, n): the high half of the product (n < 2^32). */
static inline uint64_t rnd_below(uint64_t *s, uint64_t n)
{
	return ((rnd(s) >> 32) * n) >> 32;
}

/* ---------------------------------------------------------------------- */
/* Keys: "k<id>" for request keys, "b<id>" for the cold entries             */
/* ---------------------------------------------------------------------- */

static size_t key_of(char *buf, uint64_t id)
{
	char tmp[KEY_BUF];
	uint64_t v = id & ~BALLAST_BIT;
	size_t n = 0, k = 0;

	buf[k++] = (id & BALLAST_BIT) ? 'b' : 'k';
	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		buf[k++] = tmp[--n];
	return k;
}

/* Parses a key back into its id; UINT64_MAX if it is not one of ours. */
static uint64_t id_of_key(const void *key, size_t klen)
{
	const char *p = key;
	uint64_t v = 0;
	size_t i;

	if (klen < 2 || klen > 20 || (p[0] != 'k' && p[0] != 'b'))
		return UINT64_MAX;
	for (i = 1; i < klen; i++) {
		if (p[i] < '0' || p[i] > '9')
			return UINT64_MAX;
		v = v * 10 + (uint64_t)(p[i] - '0');
	}
	return p[0] == 'b' ? v | BALLAST_BIT : v;
}

/* The values' contents, the same on both sides. */
static inline uint64_t node_tag(uint64_t key, int i)
{
	return (key << 8) | (uint64_t)i;
}

#define PAYLOAD 40

static uint64_t fill_payload(unsigned char *p, uint64_t key, uint64_t ver)
{
	uint64_t sum = key;
	int i;

	for (i = 0; i < PAYLOAD; i++) {
		p[i] = (unsigned char)(key * 131 + ver * 7 + (uint64_t)i);
		sum += p[i];
	}
	return sum;
}

static uint64_t sum_payload(const unsigned char *p, uint64_t key)
{
	uint64_t sum = key;
	int i;

	for (i = 0; i < PAYLOAD; i++)
		sum += p[i];
	return sum;
}

/* ---------------------------------------------------------------------- */
/* Log-linear histograms of nanoseconds                                     */
/* ---------------------------------------------------------------------- */

#define H_SUB_BITS 5
#define H_SUB (1u << H_SUB_BITS)		/* sub-buckets per power of 2 */
#define H_TOP 40				/* up to 2^40 ns (18 minutes) */
#define H_NB ((H_TOP - H_SUB_BITS + 1) * H_SUB)	/* 1152 */

static inline unsigned h_index(uint64_t v)
{
	unsigned e;

	if (v < H_SUB)
		return (unsigned)v;
	if (v >= (1ull << H_TOP))
		v = (1ull << H_TOP) - 1;
	e = 63u - (unsigned)__builtin_clzll(v);
	return (e - H_SUB_BITS + 1) * H_SUB +
	       (unsigned)((v >> (e - H_SUB_BITS)) & (H_SUB - 1));
}

/* The middle of bucket i. */
static uint64_t h_value(unsigned i)
{
	unsigned e;
	uint64_t lo, w;

	if (i < H_SUB)
		return i;
	e = i / H_SUB + H_SUB_BITS - 1;
	lo = (uint64_t)(H_SUB + i % H_SUB) << (e - H_SUB_BITS);
	w = (uint64_t)1 << (e - H_SUB_BITS);
	return lo + w / 2;
}

struct hist {
	uint64_t n, max, sum;
	uint64_t b[H_NB];
};

static inline void hist_add(struct hist *h, uint64_t v)
{
	h->n++;
	h->sum += v;
	if (v > h->max)
		h->max = v;
	h->b[h_index(v)]++;
}

static void hist_merge(struct hist *to, const struct hist *from)
{
	unsigned i;

	to->n += from->n;
	to->sum += from->sum;
	if (from->max > to->max)
		to->max = from->max;
	for (i = 0; i < H_NB; i++)
		to->b[i] += from->b[i];
}

/* Nearest-rank percentile q (0..1), clamped to the largest value seen. */
static uint64_t hist_pct(const struct hist *h, double q)
{
	uint64_t rank, seen = 0;
	unsigned i;

	if (!h->n)
		return 0;
	rank = (uint64_t)ceil(q * (double)h->n);
	if (rank < 1)
		rank = 1;
	for (i = 0; i < H_NB; i++) {
		seen += h->b[i];
		if (seen >= rank)
			return h_value(i) < h->max ? h_value(i) : h->max;
	}
	return h->max;
}

/* ---------------------------------------------------------------------- */
/* Results, in memory shared with the parent                               */
/* ---------------------------------------------------------------------- */

/* One stop of the world (Boehm) or one collection (refstore). */
struct pause {
	uint64_t t_ns;		/* from the start of the run */
	uint64_t pause_ns;
	uint64_t ttsp_ns;
	int32_t gen;		/* Boehm: always 2 (full) */
	uint32_t ready;		/* written last, with release */
};

/* 100 ms of requests, summed over the threads (atomic adds). */
struct window {
	uint64_t n, max;
	uint32_t b[H_NB];
};

struct result {
	int ran;		/* the side ran to its end */
	int skipped;		/* not built in, or not asked for */
	long errors;		/* values read back wrong */
	long check_failed;	/* self-checks at the end that failed */
	char note[512];		/* skip reason, failures */
	char version[96];
	double elapsed_s, setup_s;
	long records, ballast;
	uint64_t ops[NOPS], misses[NOPS], checksum;
	struct hist lat;	/* whole requests */
	struct hist op_lat[NOPS];	/* the request proper, per kind */
	struct hist sp_lat;	/* the safepoint before it (refstore) */
	/* memory: refstore (rs_stats) */
	uint64_t live_setup, live_end, live_peak, arena_end, arena_peak,
		 pending_end, pending_peak, live_objects_end;
	/* memory: Boehm */
	uint64_t heap_setup, heap_end, heap_peak, inuse_setup, inuse_end;
	long rss_peak_kb;
	long shutdown_left;	/* refstore: rs_shutdown()'s result */
	uint64_t collected;	/* refstore: objects the collector freed */
	uint64_t grace_periods, defer_waits;	/* refstore, during the run */
	/* the raw samples, after this header in the mapping */
	size_t pause_cap, nwin;
	_Atomic size_t npause;	/* reserved, may exceed pause_cap */
	struct pause *pauses;
	struct window *win;
	size_t map_bytes;
};

static struct result *g_res[NSIDES];
static struct result *R;		/* the side this child runs */
static uint64_t g_run_start;		/* ns, the run's time origin */
static atomic_int g_recording;		/* pauses count from now on */

static struct result *result_new(void)
{
	size_t cap, nwin, bytes, off_p, off_w;
	struct result *r;
	void *m;

	nwin = (size_t)(cfg.seconds * 10) + 4;
	cap = (size_t)(cfg.seconds * 20000) + 65536;
	if (cap > ((size_t)4 << 20))
		cap = (size_t)4 << 20;
	off_p = (sizeof(*r) + 63) & ~(size_t)63;
	off_w = off_p + ((cap * sizeof(struct pause) + 63) & ~(size_t)63);
	bytes = off_w + nwin * sizeof(struct window);
	m = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (m == MAP_FAILED)
		die("mmap");
	r = m;
	r->pause_cap = cap;
	r->nwin = nwin;
	r->pauses = (struct pause *)((char *)m + off_p);
	r->win = (struct window *)((char *)m + off_w);
	r->map_bytes = bytes;
	return r;
}

static void pause_add(uint64_t t_ns, int gen, uint64_t pause_ns,
		      uint64_t ttsp_ns)
{
	size_t i = atomic_fetch_add(&R->npause, 1);
	struct pause *p;

	if (i >= R->pause_cap)
		return;
	p = &R->pauses[i];
	p->t_ns = t_ns;
	p->gen = gen;
	p->pause_ns = pause_ns;
	p->ttsp_ns = ttsp_ns;
	__atomic_store_n(&p->ready, 1, __ATOMIC_RELEASE);
}

static void fail(const char *fmt_what, long got, long want)
{
	size_t n = strlen(R->note);

	R->check_failed++;
	snprintf(R->note + n, sizeof(R->note) - n, "%s%s: %ld, expected %ld",
		 n ? "; " : "", fmt_what, got, want);
	printf("[%s] WRONG: %s: %ld, expected %ld\n", side_name[R == g_res[0]
	       ? 0 : 1], fmt_what, got, want);
	fflush(stdout);
}

/* ---------------------------------------------------------------------- */
/* Workers: the request loop shared by both sides                          */
/* ---------------------------------------------------------------------- */

struct worker {
	_Alignas(64) int id;
	int side;
	pthread_t th;
	uint64_t rng;
	uint64_t ver;		/* versions this thread gives its values */
	_Atomic uint64_t done;	/* requests, for progress */
	uint64_t ops[NOPS], misses[NOPS], errors, checksum;
	struct hist lat, op_lat[NOPS], sp_lat;
	/* the current window, flushed to R->win when the next one starts */
	long wcur;
	uint64_t wn, wmax;
	unsigned wlo, whi;
	uint32_t wb[H_NB];
};

static struct worker *g_workers;
static pthread_barrier_t g_go;

static void window_flush(struct worker *w)
{
	struct window *g;
	unsigned i;

	if (w->wcur < 0 || !w->wn)
		goto reset;
	if ((size_t)w->wcur >= R->nwin)
		goto clear;
	g = &R->win[w->wcur];
	for (i = w->wlo; i <= w->whi; i++)
		if (w->wb[i])
			__atomic_fetch_add(&g->b[i], w->wb[i], __ATOMIC_RELAXED);
	__atomic_fetch_add(&g->n, w->wn, __ATOMIC_RELAXED);
	{
		uint64_t m = __atomic_load_n(&g->max, __ATOMIC_RELAXED);

		while (w->wmax > m &&
		       !__atomic_compare_exchange_n(&g->max, &m, w->wmax, 1,
						    __ATOMIC_RELAXED,
						    __ATOMIC_RELAXED))
			;
	}
clear:
	for (i = w->wlo; i <= w->whi; i++)
		w->wb[i] = 0;
reset:
	w->wn = w->wmax = 0;
	w->wlo = H_NB - 1;
	w->whi = 0;
}

static inline void record(struct worker *w, uint64_t t0, uint64_t t1)
{
	uint64_t d = t1 - t0;
	long wi = (long)((t0 - g_run_start) / WINDOW_NS);
	unsigned b = h_index(d);

	hist_add(&w->lat, d);
	if (wi != w->wcur) {
		window_flush(w);
		w->wcur = wi;
	}
	w->wn++;
	if (d > w->wmax)
		w->wmax = d;
	w->wb[b]++;
	if (b < w->wlo)
		w->wlo = b;
	if (b > w->whi)
		w->whi = b;
}

static inline int pick_op(uint64_t *rng)
{
	unsigned r = (unsigned)rnd_below(rng, 10000);

	if (r < cfg.thr_get)
		return OP_GET;
	if (r < cfg.thr_put)
		return OP_PUT;
	if (r < cfg.thr_upd)
		return OP_UPDATE;
	return OP_DEL;
}

/* One request of either side: returns 0, 1 for a miss, -1 if the value
 * read back was wrong. */
typedef int (*request_fn)(struct worker *w, int op, uint64_t key);

static void worker_init(struct worker *w, int id, int side)
{
	uint64_t s = cfg.seed * 0x100000001b3ull + (uint64_t)id * 7919 + 1;

	memset(w, 0, sizeof(*w));
	w->id = id;
	w->side = side;
	w->rng = splitmix(&s) | 1;
	w->ver = (uint64_t)id << 40;
	w->wcur = -1;
	w->wlo = H_NB - 1;
}

/* Two clock reads a request on both sides: t0 (the previous request's
 * end), tm (after the safepoint; the Boehm side has none but reads the clock
 * all the same), t (the end). */
static void request_loop(struct worker *w, request_fn req, int safepoints)
{
	uint64_t t0, tm, t = now_ns(), n = 0, key;
	int op, rc;

	while (!stopped()) {
		t0 = t;
		if (safepoints)
			rs_safepoint();
		tm = now_ns();
		op = pick_op(&w->rng);
		key = rnd_below(&w->rng, (uint64_t)cfg.keys);
		rc = req(w, op, key);
		w->ops[op]++;
		if (rc > 0)
			w->misses[op]++;
		else if (rc < 0)
			w->errors++;
		t = now_ns();
		record(w, t0, t);
		hist_add(&w->op_lat[op], t - tm);
		hist_add(&w->sp_lat, tm - t0);
		atomic_store_explicit(&w->done, ++n, memory_order_relaxed);
	}
	window_flush(w);
}

/* ---------------------------------------------------------------------- */
/* Progress and the end of the run (the monitor: each side's main thread)   */
/* ---------------------------------------------------------------------- */

struct memsnap {
	uint64_t a, b, c;	/* refstore: live, arena, pending; Boehm: heap,
				   in use, - */
};

typedef void (*memsnap_fn)(struct memsnap *m);

static void sleep_until(uint64_t t)
{
	struct timespec ts = {
		.tv_sec = (time_t)(t / 1000000000u),
		.tv_nsec = (long)(t % 1000000000u),
	};

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) ==
	       EINTR)
		;
}

static uint64_t total_done(void)
{
	uint64_t n = 0;
	int i;

	for (i = 0; i < cfg.threads; i++)
		n += atomic_load_explicit(&g_workers[i].done,
					  memory_order_relaxed);
	return n;
}

static void fmt_ns(char *buf, size_t len, double ns)
{
	if (ns < 1e3)
		snprintf(buf, len, "%.0f ns", ns);
	else if (ns < 1e6)
		snprintf(buf, len, "%.3g us", ns / 1e3);
	else if (ns < 1e9)
		snprintf(buf, len, "%.3g ms", ns / 1e6);
	else
		snprintf(buf, len, "%.3g s", ns / 1e9);
}

static void fmt_bytes(char *buf, size_t len, double b)
{
	if (b < 10 * 1024.0)
		snprintf(buf, len, "%.0f B", b);
	else if (b < 10 * 1048576.0)
		snprintf(buf, len, "%.0f KiB", b / 1024);
	else
		snprintf(buf, len, "%.0f MiB", b / 1048576);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of a sorted array. */
static uint64_t pct_sorted(const uint64_t *v, size_t n, double q)
{
	size_t r;

	if (!n)
		return 0;
	r = (size_t)ceil(q * (double)n);
	if (r < 1)
		r = 1;
	return v[r - 1];
}

/* Once a second: requests/s, latency p99 and max over the last second's
 * windows, collections and pauses in that second, memory. */
static void progress(int side, double secs, uint64_t reqs, size_t *pseen,
		     const struct memsnap *m)
{
	static struct hist h;
	static uint64_t pv[4096];
	long w1 = (long)(secs * 10 + 0.5), w0 = w1 - 10, w;
	size_t np = 0, i, end;
	uint64_t pmax = 0;
	long gens[RS_GC_GENERATIONS] = { 0 };
	char p99[24], mx[24], pp[24], pm[24], ma[24], mb[24], mc[24];
	unsigned b;

	memset(&h, 0, sizeof(h));
	for (w = w0 < 0 ? 0 : w0; w < w1 && (size_t)w < R->nwin; w++) {
		struct window *g = &R->win[w];
		uint64_t mxw = __atomic_load_n(&g->max, __ATOMIC_RELAXED);

		for (b = 0; b < H_NB; b++)
			h.b[b] += __atomic_load_n(&g->b[b], __ATOMIC_RELAXED);
		h.n += __atomic_load_n(&g->n, __ATOMIC_RELAXED);
		if (mxw > h.max)
			h.max = mxw;
	}
	end = atomic_load(&R->npause);
	if (end > R->pause_cap)
		end = R->pause_cap;
	for (i = *pseen; i < end; i++) {
		struct pause *p = &R->pauses[i];

		if (!__atomic_load_n(&p->ready, __ATOMIC_ACQUIRE))
			break;
		if (np < sizeof(pv) / sizeof(pv[0]))
			pv[np++] = p->pause_ns;
		if (p->pause_ns > pmax)
			pmax = p->pause_ns;
		if (p->gen >= 0 && p->gen < RS_GC_GENERATIONS)
			gens[p->gen]++;
	}
	*pseen = i;
	qsort(pv, np, sizeof(pv[0]), cmp_u64);
	fmt_ns(p99, sizeof(p99), (double)hist_pct(&h, 0.99));
	fmt_ns(mx, sizeof(mx), (double)h.max);
	fmt_ns(pp, sizeof(pp), (double)pct_sorted(pv, np, 0.99));
	fmt_ns(pm, sizeof(pm), (double)pmax);
	fmt_bytes(ma, sizeof(ma), (double)m->a);
	fmt_bytes(mb, sizeof(mb), (double)m->b);
	fmt_bytes(mc, sizeof(mc), (double)m->c);
	if (side == SIDE_RS)
		printf("[refstore %3.0fs] %6.2f M req/s  p99 %-8s max %-8s | "
		       "gc %ld/%ld/%ld  pause p99 %-8s max %-8s | live %s arena "
		       "%s deferred %s\n", secs, (double)reqs / 1e6, p99, mx,
		       gens[0], gens[1], gens[2], pp, pm, ma, mb, mc);
	else
		printf("[boehm    %3.0fs] %6.2f M req/s  p99 %-8s max %-8s | "
		       "gc %ld full    pause p99 %-8s max %-8s | heap %s in use "
		       "%s\n", secs, (double)reqs / 1e6, p99, mx, gens[2], pp,
		       pm, ma, mb);
	fflush(stdout);
}

/* Runs the clock for the side: wakes every 100 ms, prints progress each
 * second, samples memory, and raises the stop flag at the end. */
static void monitor(int side, memsnap_fn snap, struct memsnap *peak)
{
	uint64_t end = g_run_start + (uint64_t)(cfg.seconds * 1e9);
	uint64_t tick = g_run_start, prev = 0, n;
	size_t pseen = 0;
	struct memsnap m;
	int k = 0;

	for (;;) {
		tick += WINDOW_NS;
		if (tick > end)
			tick = end;
		sleep_until(tick);
		if (tick >= end)
			break;
		if (++k % 10)
			continue;
		snap(&m);
		if (m.a > peak->a)
			peak->a = m.a;
		if (m.b > peak->b)
			peak->b = m.b;
		if (m.c > peak->c)
			peak->c = m.c;
		n = total_done();
		if (!cfg.quiet)
			progress(side, (double)(tick - g_run_start) / 1e9,
				 n - prev, &pseen, &m);
		prev = n;
	}
	atomic_store(&g_stop.v, 1);
}

static void collect_workers(void)
{
	int i, j;

	for (i = 0; i < cfg.threads; i++) {
		struct worker *w = &g_workers[i];

		hist_merge(&R->lat, &w->lat);
		hist_merge(&R->sp_lat, &w->sp_lat);
		for (j = 0; j < NOPS; j++) {
			hist_merge(&R->op_lat[j], &w->op_lat[j]);
			R->ops[j] += w->ops[j];
			R->misses[j] += w->misses[j];
		}
		R->errors += (long)w->errors;
		R->checksum += w->checksum;
	}
	if (R->errors)
		fail("values read back wrong", R->errors, 0);
}

static long rss_peak_kb(void)
{
	struct rusage ru;

	return getrusage(RUSAGE_SELF, &ru) ? 0 : ru.ru_maxrss;
}

static void start_workers(void *(*fn)(void *), int side,
			  int (*create)(pthread_t *, const pthread_attr_t *,
					void *(*)(void *), void *))
{
	int i, e;

	if (posix_memalign((void **)&g_workers, 64,
			   (size_t)cfg.threads * sizeof(*g_workers)))
		die("posix_memalign");
	for (i = 0; i < cfg.threads; i++)
		worker_init(&g_workers[i], i, side);
	if ((e = pthread_barrier_init(&g_go, NULL, (unsigned)cfg.threads + 1))) {
		errno = e;
		die("pthread_barrier_init");
	}
	for (i = 0; i < cfg.threads; i++)
		if ((e = create(&g_workers[i].th, NULL, fn, &g_workers[i]))) {
			errno = e;
			die("pthread_create");
		}
}

static void go(void)
{
	g_run_start = now_ns();
	atomic_store(&g_recording, 1);
	pthread_barrier_wait(&g_go);
}

static void join_workers(void)
{
	int i;

	for (i = 0; i < cfg.threads; i++)
		pthread_join(g_workers[i].th, NULL);
	atomic_store(&g_recording, 0);
	R->elapsed_s = (double)(now_ns() - g_run_start) / 1e9;
	collect_workers();
}

/* ---------------------------------------------------------------------- */
/* The refstore side                                                        */
/* ---------------------------------------------------------------------- */

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

	if (rs_map_put(g_map, k, key_of(k, key), r))
		die("rs_map_put");
	rs_decref(r);
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
		if (rs_map_put(g_map, k, klen, r))
			die("rs_map_put");
		rs_decref(r);
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
}

static size_t rs_live_objects(void)
{
	struct rs_stats st;

	if (rs_stats(&st))
		die("rs_stats");
	return st.live_objects;
}

struct verify {
	long entries, bad, ballast;
	uint64_t sum;
};

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

static int run_refstore(void)
{
	struct memsnap peak = { 0, 0, 0 }, m;
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

/* ---------------------------------------------------------------------- */
/* The Boehm GC side                                                        */
/* ---------------------------------------------------------------------- */

#ifdef HAVE_BOEHM
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
}

static int run_boehm(void)
{
	struct memsnap peak = { 0, 0, 0 }, m;
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
#endif

/* ---------------------------------------------------------------------- */
/* The parent: run each side in a child, report                             */
/* ---------------------------------------------------------------------- */

/* How long a side may take in all before it counts as hung: the measured
 * time, generous room for setup (about a microsecond per object on this
 * kind of machine) and for the checks at the end. */
static double deadline_s(void)
{
	return 60 + 2 * cfg.seconds +
	       (double)(cfg.keys + cfg.ballast) * (cfg.ring + 3) * 20e-6;
}

/* Waits for the child; on the deadline, SIGABRT (a core file, if they are
 * enabled, shows where it hung), then SIGKILL.  0: *st is its status. */
static int wait_child(pid_t pid, int *st)
{
	uint64_t end = now_ns() + (uint64_t)(deadline_s() * 1e9);
	pid_t r;

	for (;;) {
		r = waitpid(pid, st, WNOHANG);
		if (r == pid)
			return 0;
		if (r < 0 && errno != EINTR)
			die("waitpid");
		if (now_ns() > end)
			break;
		usleep(50000);
	}
	kill(pid, SIGABRT);
	usleep(2000000);
	kill(pid, SIGKILL);
	while (waitpid(pid, st, 0) < 0 && errno == EINTR)
		;
	return -1;
}

static int run_side(int side)
{
	pid_t pid;
	int st, rc;

	R = g_res[side];
	if (!cfg.sides[side]) {
		R->skipped = 1;
		snprintf(R->note, sizeof(R->note), "not run (--side)");
		return 0;
	}
#ifndef HAVE_BOEHM
	if (side == SIDE_BOEHM) {
		R->skipped = 1;
		snprintf(R->note, sizeof(R->note), "peer skipped: built "
			 "without libgc (libgc-dev was missing at build time)");
		printf("Boehm GC: %s\n", R->note);
		return 0;
	}
#endif
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		rc = 1;
		if (side == SIDE_RS)
			rc = run_refstore();
#ifdef HAVE_BOEHM
		else
			rc = run_boehm();
#endif
		fflush(stdout);
		fflush(stderr);
		/* refstore's side has shut its runtime down: a normal exit
		 * (LeakSanitizer checks it in the address build); Boehm's
		 * process still has its marker threads */
		if (side == SIDE_RS)
			exit(rc);
		_exit(rc);
	}
	if (wait_child(pid, &st)) {
		printf("%s: WRONG: the %s process did not finish within %.0f s "
		       "(a hang): killed\n", side_title[side], side_name[side],
		       deadline_s());
		R->ran = 0;
		return 1;
	}
	if (WIFSIGNALED(st) || !R->ran) {
		size_t n = strlen(R->note);

		snprintf(R->note + n, sizeof(R->note) - n, "%sthe %s process "
			 "%s %d", n ? "; " : "", side_name[side],
			 WIFSIGNALED(st) ? "died of signal" : "exited with",
			 WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
		printf("%s: %s\n", side_title[side], R->note);
		R->ran = 0;
		return 1;
	}
	return WEXITSTATUS(st) ? 1 : 0;
}

/* Everything the report needs of one side's pauses. */
struct pstats {
	size_t n[RS_GC_GENERATIONS + 1];	/* per generation; [3]: all */
	uint64_t p50[4], p99[4], max[4], total[4];
	uint64_t t50, t99, tmax;		/* time-to-safepoint, all */
	size_t recorded, dropped;
};

static void pause_stats(const struct result *r, struct pstats *ps)
{
	size_t n = atomic_load(&r->npause), i, k;
	uint64_t *v, *tv;
	int g;

	memset(ps, 0, sizeof(*ps));
	ps->recorded = n < r->pause_cap ? n : r->pause_cap;
	ps->dropped = n - ps->recorded;
	n = ps->recorded;
	if (!n)
		return;
	if (!(v = malloc(n * sizeof(*v))) || !(tv = malloc(n * sizeof(*tv))))
		die("malloc");
	for (g = 0; g <= RS_GC_GENERATIONS; g++) {
		for (i = k = 0; i < n; i++)
			if (g == RS_GC_GENERATIONS ||
			    r->pauses[i].gen == g) {
				v[k] = r->pauses[i].pause_ns;
				tv[k] = r->pauses[i].ttsp_ns;
				ps->total[g] += v[k];
				k++;
			}
		ps->n[g] = k;
		qsort(v, k, sizeof(*v), cmp_u64);
		ps->p50[g] = pct_sorted(v, k, 0.50);
		ps->p99[g] = pct_sorted(v, k, 0.99);
		ps->max[g] = k ? v[k - 1] : 0;
		if (g == RS_GC_GENERATIONS) {
			qsort(tv, k, sizeof(*tv), cmp_u64);
			ps->t50 = pct_sorted(tv, k, 0.50);
			ps->t99 = pct_sorted(tv, k, 0.99);
			ps->tmax = k ? tv[k - 1] : 0;
		}
	}
	free(v);
	free(tv);
}

static struct pstats g_ps[NSIDES];

static int side_ok(int s)
{
	return g_res[s]->ran && !g_res[s]->skipped;
}

static uint64_t total_ops(const struct result *r)
{
	return r->ops[0] + r->ops[1] + r->ops[2] + r->ops[3];
}

static double rps(const struct result *r)
{
	return r->elapsed_s > 0 ? (double)total_ops(r) / r->elapsed_s : 0;
}

static void cell_ns(uint64_t ns)
{
	char b[24];

	fmt_ns(b, sizeof(b), (double)ns);
	printf(" %10s", b);
}

static void cells_or_dash(size_t n, uint64_t a, uint64_t b, uint64_t c)
{
	if (!n) {
		printf(" %10s %10s %10s", "-", "-", "-");
		return;
	}
	cell_ns(a);
	cell_ns(b);
	cell_ns(c);
}

static void print_tables(void)
{
	char b1[24], b2[24], b3[24];
	int s, g;

	printf("\n%-24s %12s %12s %10s %10s %10s %10s\n", "requests",
	       "total", "per second", "p50", "p99", "p99.9", "max");
	for (s = 0; s < NSIDES; s++) {
		const struct result *r = g_res[s];

		if (!side_ok(s)) {
			printf("%-24s %s\n", side_title[s], r->note);
			continue;
		}
		printf("%-24s %12llu %12.0f", side_title[s],
		       (unsigned long long)total_ops(r), rps(r));
		cell_ns(hist_pct(&r->lat, 0.50));
		cell_ns(hist_pct(&r->lat, 0.99));
		cell_ns(hist_pct(&r->lat, 0.999));
		cell_ns(r->lat.max);
		printf("\n");
	}
	for (s = 0; s < NSIDES; s++) {
		const struct result *r = g_res[s];

		if (!side_ok(s))
			continue;
		for (g = 0; g < NOPS; g++) {
			printf("  %-9s %-12s %12llu %12s",
			       g ? "" : side_name[s], op_name[g],
			       (unsigned long long)r->ops[g], "");
			cell_ns(hist_pct(&r->op_lat[g], 0.50));
			cell_ns(hist_pct(&r->op_lat[g], 0.99));
			cell_ns(hist_pct(&r->op_lat[g], 0.999));
			cell_ns(r->op_lat[g].max);
			printf("\n");
		}
		if (s == SIDE_RS) {
			printf("  %-9s %-12s %12s %12s", "", "rs_safepoint", "",
			       "");
			cell_ns(hist_pct(&r->sp_lat, 0.50));
			cell_ns(hist_pct(&r->sp_lat, 0.99));
			cell_ns(hist_pct(&r->sp_lat, 0.999));
			cell_ns(r->sp_lat.max);
			printf("\n");
		}
	}
	printf("(a request runs from the end of the thread's previous one: "
	       "the refstore safepoint before it, where\n a thread parks "
	       "for a stop and runs a requested collection, is part of it; "
	       "the rows under each side\n split it: the request proper by "
	       "kind, and the safepoint)\n");
	for (s = 0; s < NSIDES; s++) {
		const struct result *r = g_res[s];

		if (!side_ok(s))
			continue;
		printf("  %-9s key absent: get %.1f%%, update %.1f%%, delete "
		       "%.1f%%\n", side_name[s],
		       100.0 * (double)r->misses[OP_GET] /
		       (double)(r->ops[OP_GET] ? r->ops[OP_GET] : 1),
		       100.0 * (double)r->misses[OP_UPDATE] /
		       (double)(r->ops[OP_UPDATE] ? r->ops[OP_UPDATE] : 1),
		       100.0 * (double)r->misses[OP_DEL] /
		       (double)(r->ops[OP_DEL] ? r->ops[OP_DEL] : 1));
	}

	printf("\n%-24s %8s %10s %10s %10s %10s %10s %10s %9s\n",
	       "collector pauses", "count", "p50", "p99", "max", "ttsp p50",
	       "ttsp p99", "ttsp max", "stopped");
	for (s = 0; s < NSIDES; s++) {
		const struct pstats *ps = &g_ps[s];
		const struct result *r = g_res[s];
		char label[32];

		if (!side_ok(s))
			continue;
		if (s == SIDE_RS)
			for (g = 0; g < RS_GC_GENERATIONS; g++) {
				snprintf(label, sizeof(label), "refstore gen %d",
					 g);
				printf("%-24s %8zu", label, ps->n[g]);
				cells_or_dash(ps->n[g], ps->p50[g], ps->p99[g],
					      ps->max[g]);
				printf(" %32s %8.2f%%\n", "",
				       100.0 * (double)ps->total[g] / 1e9 /
				       r->elapsed_s);
			}
		snprintf(label, sizeof(label), "%s", s == SIDE_RS
			 ? "refstore all" : "Boehm GC (all full)");
		printf("%-24s %8zu", label, ps->n[3]);
		cells_or_dash(ps->n[3], ps->p50[3], ps->p99[3], ps->max[3]);
		cells_or_dash(ps->n[3], ps->t50, ps->t99, ps->tmax);
		printf(" %8.2f%%\n", 100.0 * (double)ps->total[3] / 1e9 /
		       r->elapsed_s);
		if (ps->dropped)
			printf("  (%zu pauses beyond the first %zu were not "
			       "recorded)\n", ps->dropped, ps->recorded);
	}
	printf("(refstore: a collection's pause is the time its world was "
	       "stopped; Boehm: one stop of the world;\n ttsp: "
	       "time-to-safepoint, from the stop request until every thread "
	       "stood still; stopped: share of the run)\n");

	printf("\nmemory\n");
	if (side_ok(SIDE_RS)) {
		const struct result *r = g_res[SIDE_RS];

		fmt_bytes(b1, sizeof(b1), (double)r->live_setup);
		printf("  refstore  live after setup %s;", b1);
		fmt_bytes(b1, sizeof(b1), (double)r->live_end);
		fmt_bytes(b2, sizeof(b2), (double)r->live_peak);
		printf(" live %s (peak %s),", b1, b2);
		fmt_bytes(b1, sizeof(b1), (double)r->arena_end);
		fmt_bytes(b2, sizeof(b2), (double)r->arena_peak);
		printf(" arenas %s (peak %s),", b1, b2);
		fmt_bytes(b1, sizeof(b1), (double)r->pending_end);
		fmt_bytes(b2, sizeof(b2), (double)r->pending_peak);
		fmt_bytes(b3, sizeof(b3), (double)r->rss_peak_kb * 1024);
		printf(" deferred %s (peak %s); peak RSS %s\n", b1, b2, b3);
		printf("            %llu grace periods (%.0f/s), %llu safepoints "
		       "waited for one (deferred bytes over the bound)\n",
		       (unsigned long long)r->grace_periods,
		       (double)r->grace_periods / r->elapsed_s,
		       (unsigned long long)r->defer_waits);
	}
	if (side_ok(SIDE_BOEHM)) {
		const struct result *r = g_res[SIDE_BOEHM];

		fmt_bytes(b1, sizeof(b1), (double)r->inuse_setup);
		fmt_bytes(b2, sizeof(b2), (double)r->heap_setup);
		printf("  Boehm GC  in use after setup %s (heap %s);", b1, b2);
		fmt_bytes(b1, sizeof(b1), (double)r->heap_end);
		fmt_bytes(b2, sizeof(b2), (double)r->heap_peak);
		fmt_bytes(b3, sizeof(b3), (double)r->rss_peak_kb * 1024);
		printf(" heap %s (peak %s); peak RSS %s\n", b1, b2, b3);
	}
	if (side_ok(SIDE_RS))
		printf("(refstore live: objects allocated and not freed, "
		       "headers included; deferred: bytes of objects whose\n"
		       " decrements wait for a grace period)\n");
	if (side_ok(SIDE_BOEHM))
		printf("(Boehm in use: heap minus free blocks, garbage not yet "
		       "swept included)\n");
}

static double ratio(double a, double b)
{
	return a > 0 && b > 0 ? a / b : 0;
}

static void print_ratio(const char *what, double x, const char *how)
{
	if (x > 0)
		printf("  %-26s %8.2fx  %s\n", what, x, how);
	else
		printf("  %-26s %9s  %s\n", what, "-", how);
}

static double stopped_share(const struct result *r, const struct pstats *ps)
{
	return r->elapsed_s > 0 ? (double)ps->total[3] / 1e9 / r->elapsed_s
				: 0;
}

static void print_ratios(void)
{
	const struct result *a = g_res[SIDE_RS], *b = g_res[SIDE_BOEHM];
	const struct pstats *pa = &g_ps[SIDE_RS], *pb = &g_ps[SIDE_BOEHM];
	char v[24];
	double x;

	if (!side_ok(SIDE_RS) || !side_ok(SIDE_BOEHM))
		return;
	printf("\nrefstore vs Boehm GC (same requests, values and keys; "
	       "above 1 = refstore better):\n");
	print_ratio("throughput", ratio(rps(a), rps(b)),
		    "(refstore req/s / Boehm req/s)");
	print_ratio("request latency p99", ratio((double)hist_pct(&b->lat,
		    0.99), (double)hist_pct(&a->lat, 0.99)),
		    "(Boehm / refstore)");
	print_ratio("request latency max", ratio((double)b->lat.max,
		    (double)a->lat.max), "(Boehm / refstore)");
	print_ratio("pause p99", ratio((double)pb->p99[3],
		    (double)pa->p99[3]), "(Boehm / refstore)");
	print_ratio("pause max", ratio((double)pb->max[3],
		    (double)pa->max[3]), "(Boehm / refstore)");
	print_ratio("time-to-safepoint p99", ratio((double)pb->t99,
		    (double)pa->t99), "(Boehm / refstore)");
	print_ratio("time stopped", ratio(stopped_share(b, pb),
		    stopped_share(a, pa)), "(Boehm's share of the run / "
		    "refstore's)");
	fmt_ns(v, sizeof(v), (double)pa->p99[3]);
	x = ratio((double)pb->p99[3], (double)pa->p99[3]);
	printf("targets: refstore pause p99 <= 1 ms: %s (%s); >= 10x lower "
	       "than Boehm's: %s (%.1fx)\n", pa->n[3] == 0 ? "no pauses" :
	       pa->p99[3] <= 1000000 ? "meets it" : "misses it", v,
	       x <= 0 ? "not measured" : x >= 10 ? "meets it" : "misses it",
	       x);
}

/* ---- files ----------------------------------------------------------- */

static int mkdirs(const char *path)
{
	char buf[PATH_MAX];
	size_t i, n = strlen(path);

	if (n == 0 || n >= sizeof(buf))
		return -1;
	memcpy(buf, path, n + 1);
	for (i = 1; i <= n; i++)
		if (buf[i] == '/' || buf[i] == '\0') {
			char c = buf[i];

			buf[i] = '\0';
			if (mkdir(buf, 0777) && errno != EEXIST)
				return -1;
			buf[i] = c;
		}
	return 0;
}

static FILE *out_open(char *path, size_t len, const char *name)
{
	FILE *f;

	if ((size_t)snprintf(path, len, "%s/%s", cfg.out, name) >= len) {
		fprintf(stderr, "demo: --out path too long\n");
		return NULL;
	}
	if (!(f = fopen(path, "w")))
		fprintf(stderr, "demo: %s: %s\n", path, strerror(errno));
	return f;
}

/* Per-window percentiles of one side; 0 requests: no row. */
static int window_row(const struct result *r, size_t w, uint64_t *n,
		      uint64_t *p50, uint64_t *p99, uint64_t *max)
{
	static struct hist h;
	unsigned i;

	if (w >= r->nwin || !r->win[w].n)
		return 0;
	memset(&h, 0, sizeof(h));
	for (i = 0; i < H_NB; i++)
		h.b[i] = r->win[w].b[i];
	h.n = r->win[w].n;
	h.max = r->win[w].max;
	*n = h.n;
	*p50 = hist_pct(&h, 0.5);
	*p99 = hist_pct(&h, 0.99);
	*max = h.max;
	return 1;
}

static int write_raw(char *paths, size_t plen)
{
	char path[PATH_MAX + 64];
	const char *ext = cfg.json ? "json" : "csv";
	char name[32];
	uint64_t n, p50, p99, mx;
	size_t i, w, np;
	FILE *f;
	int s, first;

	snprintf(name, sizeof(name), "pauses.%s", ext);
	if (!(f = out_open(path, sizeof(path), name)))
		return -1;
	snprintf(paths, plen, "%s", path);
	first = 1;
	if (cfg.json)
		fprintf(f, "[\n");
	else
		fprintf(f, "side,time_s,generation,pause_us,ttsp_us\n");
	for (s = 0; s < NSIDES; s++) {
		const struct result *r = g_res[s];

		if (!side_ok(s))
			continue;
		np = atomic_load(&r->npause);
		if (np > r->pause_cap)
			np = r->pause_cap;
		for (i = 0; i < np; i++) {
			const struct pause *p = &r->pauses[i];

			if (cfg.json)
				fprintf(f, "%s{\"side\":\"%s\",\"time_s\":%.6f,"
					"\"generation\":%d,\"pause_us\":%.3f,"
					"\"ttsp_us\":%.3f}", first ? "" : ",\n",
					side_name[s], (double)p->t_ns / 1e9,
					p->gen, (double)p->pause_ns / 1e3,
					(double)p->ttsp_ns / 1e3);
			else
				fprintf(f, "%s,%.6f,%d,%.3f,%.3f\n",
					side_name[s], (double)p->t_ns / 1e9,
					p->gen, (double)p->pause_ns / 1e3,
					(double)p->ttsp_ns / 1e3);
			first = 0;
		}
	}
	if (cfg.json)
		fprintf(f, "\n]\n");
	if (fclose(f))
		return -1;

	snprintf(name, sizeof(name), "latency.%s", ext);
	if (!(f = out_open(path, sizeof(path), name)))
		return -1;
	snprintf(paths + strlen(paths), plen - strlen(paths), "\n  %s", path);
	first = 1;
	if (cfg.json)
		fprintf(f, "[\n");
	else
		fprintf(f, "side,window_start_s,requests,p50_us,p99_us,max_us\n");
	for (s = 0; s < NSIDES; s++) {
		const struct result *r = g_res[s];

		if (!side_ok(s))
			continue;
		for (w = 0; w < r->nwin; w++) {
			if (!window_row(r, w, &n, &p50, &p99, &mx))
				continue;
			if (cfg.json)
				fprintf(f, "%s{\"side\":\"%s\",\"window_start_s"
					"\":%.1f,\"requests\":%llu,\"p50_us\":"
					"%.3f,\"p99_us\":%.3f,\"max_us\":%.3f}",
					first ? "" : ",\n", side_name[s],
					(double)w / 10, (unsigned long long)n,
					(double)p50 / 1e3, (double)p99 / 1e3,
					(double)mx / 1e3);
			else
				fprintf(f, "%s,%.1f,%llu,%.3f,%.3f,%.3f\n",
					side_name[s], (double)w / 10,
					(unsigned long long)n, (double)p50 / 1e3,
					(double)p99 / 1e3, (double)mx / 1e3);
			first = 0;
		}
	}
	if (cfg.json)
		fprintf(f, "\n]\n");
	return fclose(f) ? -1 : 0;
}

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(f, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(f, "\\u%04x", (unsigned)(unsigned char)*s);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

static void json_side(FILE *f, int s)
{
	const struct result *r = g_res[s];
	const struct pstats *ps = &g_ps[s];
	int g;

	fprintf(f, "    \"%s\": {\n      \"ran\": %s,\n      \"note\": ",
		side_name[s], side_ok(s) ? "true" : "false");
	json_str(f, r->note);
	fprintf(f, ",\n      \"version\": ");
	json_str(f, r->version);
	if (!side_ok(s)) {
		fprintf(f, "\n    }");
		return;
	}
	fprintf(f, ",\n      \"seconds\": %.3f,\n      \"setup_s\": %.3f,\n"
		"      \"requests\": %llu,\n      \"requests_per_s\": %.0f,\n",
		r->elapsed_s, r->setup_s, (unsigned long long)total_ops(r),
		rps(r));
	fprintf(f, "      \"ops\": {");
	for (g = 0; g < NOPS; g++)
		fprintf(f, "%s\"%s\": {\"count\": %llu, \"missed\": %llu}",
			g ? ", " : "", op_name[g],
			(unsigned long long)r->ops[g],
			(unsigned long long)r->misses[g]);
	fprintf(f, "},\n      \"read_errors\": %ld,\n      "
		"\"self_check_failures\": %ld,\n", r->errors, r->check_failed);
	fprintf(f, "      \"latency_us\": {\"p50\": %.3f, \"p99\": %.3f, "
		"\"p99_9\": %.3f, \"max\": %.3f, \"mean\": %.3f},\n",
		(double)hist_pct(&r->lat, 0.5) / 1e3,
		(double)hist_pct(&r->lat, 0.99) / 1e3,
		(double)hist_pct(&r->lat, 0.999) / 1e3,
		(double)r->lat.max / 1e3,
		r->lat.n ? (double)r->lat.sum / (double)r->lat.n / 1e3 : 0.0);
	fprintf(f, "      \"request_proper_us\": {");
	for (g = 0; g < NOPS; g++)
		fprintf(f, "%s\"%s\": {\"p50\": %.3f, \"p99\": %.3f, "
			"\"p99_9\": %.3f, \"max\": %.3f}", g ? ", " : "",
			op_name[g], (double)hist_pct(&r->op_lat[g], 0.5) / 1e3,
			(double)hist_pct(&r->op_lat[g], 0.99) / 1e3,
			(double)hist_pct(&r->op_lat[g], 0.999) / 1e3,
			(double)r->op_lat[g].max / 1e3);
	fprintf(f, "},\n      \"safepoint_us\": {\"p50\": %.3f, \"p99\": "
		"%.3f, \"p99_9\": %.3f, \"max\": %.3f},\n",
		(double)hist_pct(&r->sp_lat, 0.5) / 1e3,
		(double)hist_pct(&r->sp_lat, 0.99) / 1e3,
		(double)hist_pct(&r->sp_lat, 0.999) / 1e3,
		(double)r->sp_lat.max / 1e3);
	fprintf(f, "      \"pauses\": {\n");
	for (g = 0; g <= RS_GC_GENERATIONS; g++) {
		if (s == SIDE_BOEHM && g < RS_GC_GENERATIONS)
			continue;
		fprintf(f, "        \"%s\": {\"count\": %zu, \"p50_us\": %.3f, "
			"\"p99_us\": %.3f, \"max_us\": %.3f, \"total_ms\": "
			"%.3f}%s\n", g == RS_GC_GENERATIONS ? "all" :
			g == 0 ? "gen0" : g == 1 ? "gen1" : "gen2", ps->n[g],
			(double)ps->p50[g] / 1e3, (double)ps->p99[g] / 1e3,
			(double)ps->max[g] / 1e3, (double)ps->total[g] / 1e6,
			g == RS_GC_GENERATIONS ? "" : ",");
	}
	fprintf(f, "      },\n      \"ttsp_us\": {\"p50\": %.3f, \"p99\": "
		"%.3f, \"max\": %.3f},\n      \"pauses_not_recorded\": %zu,\n",
		(double)ps->t50 / 1e3, (double)ps->t99 / 1e3,
		(double)ps->tmax / 1e3, ps->dropped);
	if (s == SIDE_RS)
		fprintf(f, "      \"memory\": {\"live_after_setup\": %llu, "
			"\"live\": %llu, \"live_peak\": %llu, \"arena\": %llu, "
			"\"arena_peak\": %llu, \"deferred\": %llu, "
			"\"deferred_peak\": %llu, \"peak_rss\": %lld},\n"
			"      \"grace_periods\": %llu,\n"
			"      \"defer_waits\": %llu,\n"
			"      \"collected_objects\": %llu,\n"
			"      \"live_objects_after_cleanup\": %llu,\n"
			"      \"shutdown_left\": %ld\n    }",
			(unsigned long long)r->live_setup,
			(unsigned long long)r->live_end,
			(unsigned long long)r->live_peak,
			(unsigned long long)r->arena_end,
			(unsigned long long)r->arena_peak,
			(unsigned long long)r->pending_end,
			(unsigned long long)r->pending_peak,
			(long long)r->rss_peak_kb * 1024,
			(unsigned long long)r->grace_periods,
			(unsigned long long)r->defer_waits,
			(unsigned long long)r->collected,
			(unsigned long long)r->live_objects_end,
			r->shutdown_left);
	else
		fprintf(f, "      \"memory\": {\"in_use_after_setup\": %llu, "
			"\"heap_after_setup\": %llu, \"heap\": %llu, "
			"\"heap_peak\": %llu, \"in_use\": %llu, \"peak_rss\": "
			"%lld}\n    }",
			(unsigned long long)r->inuse_setup,
			(unsigned long long)r->heap_setup,
			(unsigned long long)r->heap_end,
			(unsigned long long)r->heap_peak,
			(unsigned long long)r->inuse_end,
			(long long)r->rss_peak_kb * 1024);
}

static int write_summary(char *path, size_t plen)
{
	const struct result *a = g_res[SIDE_RS], *b = g_res[SIDE_BOEHM];
	const struct pstats *pa = &g_ps[SIDE_RS], *pb = &g_ps[SIDE_BOEHM];
	FILE *f = out_open(path, plen, "summary.json");
	int both = side_ok(SIDE_RS) && side_ok(SIDE_BOEHM);

	if (!f)
		return -1;
	fprintf(f, "{\n  \"config\": {\"threads\": %d, \"seconds\": %g, "
		"\"keys\": %ld, \"writes_pct\": %d, \"ring\": %d, "
		"\"heap_mb\": %ld, \"cold_records\": %ld, \"cold_in\": \"%s\", "
		"\"seed\": %llu, \"cpus\": %ld, \"out\": ", cfg.threads,
		cfg.seconds, cfg.keys, cfg.writes, cfg.ring, cfg.heap_mb,
		cfg.ballast, cfg.cold_root ? "root" : "map",
		(unsigned long long)cfg.seed, sysconf(_SC_NPROCESSORS_ONLN));
	json_str(f, cfg.out);
	fprintf(f, "},\n  \"sides\": {\n");
	json_side(f, SIDE_RS);
	fprintf(f, ",\n");
	json_side(f, SIDE_BOEHM);
	fprintf(f, "\n  },\n  \"ratios_refstore_better_above_1\": ");
	if (both)
		fprintf(f, "{\"throughput\": %.4f, \"latency_p99\": %.4f, "
			"\"latency_max\": %.4f, \"pause_p99\": %.4f, "
			"\"pause_max\": %.4f, \"ttsp_p99\": %.4f, "
			"\"time_stopped\": %.4f}\n}\n",
			ratio(rps(a), rps(b)),
			ratio((double)hist_pct(&b->lat, 0.99),
			      (double)hist_pct(&a->lat, 0.99)),
			ratio((double)b->lat.max, (double)a->lat.max),
			ratio((double)pb->p99[3], (double)pa->p99[3]),
			ratio((double)pb->max[3], (double)pa->max[3]),
			ratio((double)pb->t99, (double)pa->t99),
			ratio(stopped_share(b, pb), stopped_share(a, pa)));
	else
		fprintf(f, "null\n}\n");
	return fclose(f) ? -1 : 0;
}

/* ---- the chart -------------------------------------------------------- */

/* The chart's inputs: a pause histogram (5 bins a decade, 1 us .. 100 s)
 * and the per-window latency of both sides, one row per window. */
#define PBINS 40

static int write_chart_data(void)
{
	char path[PATH_MAX + 64];
	uint64_t cnt[NSIDES][PBINS];
	uint64_t n, p50, p99, mx;
	size_t i, np, w, nw = 0;
	FILE *f;
	int s, k, lo, hi;

	memset(cnt, 0, sizeof(cnt));
	for (s = 0; s < NSIDES; s++) {
		const struct result *r = g_res[s];

		if (!side_ok(s))
			continue;
		np = atomic_load(&r->npause);
		if (np > r->pause_cap)
			np = r->pause_cap;
		for (i = 0; i < np; i++) {
			double us = (double)r->pauses[i].pause_ns / 1e3;

			k = us <= 1 ? 0 : (int)floor(log10(us) * 5);
			cnt[s][k < 0 ? 0 : k >= PBINS ? PBINS - 1 : k]++;
		}
		if (r->nwin > nw)
			nw = r->nwin;
	}
	if (!(f = out_open(path, sizeof(path), "chart_pauses.dat")))
		return -1;
	fprintf(f, "# lo_us hi_us mid_us refstore boehm\n");
	for (lo = 0; lo < PBINS && !cnt[0][lo] && !cnt[1][lo]; lo++)
		;
	for (hi = PBINS - 1; hi > lo && !cnt[0][hi] && !cnt[1][hi]; hi--)
		;
	lo = lo > 0 ? lo - 1 : 0;
	hi = hi < PBINS - 1 ? hi + 1 : hi;
	for (k = lo; k <= hi; k++)
		fprintf(f, "%g %g %g %llu %llu\n", pow(10, k / 5.0),
			pow(10, (k + 1) / 5.0), pow(10, (k + 0.5) / 5.0),
			(unsigned long long)cnt[SIDE_RS][k],
			(unsigned long long)cnt[SIDE_BOEHM][k]);
	if (fclose(f))
		return -1;
	if (!(f = out_open(path, sizeof(path), "chart_latency.dat")))
		return -1;
	fprintf(f, "# time_s refstore_p99_us refstore_max_us boehm_p99_us "
		"boehm_max_us ('-': no requests)\n");
	for (w = 0; w < nw; w++) {
		int any = 0;

		for (s = 0; s < NSIDES; s++)
			any |= side_ok(s) && w < g_res[s]->nwin &&
			       g_res[s]->win[w].n;
		if (!any)
			continue;
		fprintf(f, "%.1f", (double)w / 10);
		for (s = 0; s < NSIDES; s++)
			if (side_ok(s) && window_row(g_res[s], w, &n, &p50,
						     &p99, &mx))
				fprintf(f, " %.3f %.3f", (double)p99 / 1e3,
					(double)mx / 1e3);
			else
				fprintf(f, " - -");
		fprintf(f, "\n");
	}
	return fclose(f) ? -1 : 0;
}

static int on_path(const char *prog)
{
	const char *p = getenv("PATH"), *e;
	char buf[PATH_MAX];

	if (!p)
		p = "/usr/bin:/bin";
	for (; *p; p = *e ? e + 1 : e) {
		e = strchr(p, ':');
		if (!e)
			e = p + strlen(p);
		if ((size_t)(e - p) + strlen(prog) + 2 > sizeof(buf))
			continue;
		snprintf(buf, sizeof(buf), "%.*s/%s", (int)(e - p), p, prog);
		if (e > p && access(buf, X_OK) == 0)
			return 1;
	}
	return 0;
}


static void draw_chart(void)
{
	char script[PATH_MAX + 32], arg[2 * PATH_MAX + 512], png[PATH_MAX + 16];
	pid_t pid;
	int st;

	if (!on_path("gnuplot")) {
		printf("chart: skipped (gnuplot not found; apt-get install "
		       "gnuplot-nox)\n");
		return;
	}
	if (source_file("bench/demo_plot.gp", script, sizeof(script))) {
		printf("chart: skipped (bench/demo_plot.gp not found: run from "
		       "the source tree)\n");
		return;
	}
	if (strchr(cfg.out, '\'') || strchr(cfg.out, '\\')) {
		printf("chart: skipped (the --out path has a quote or a "
		       "backslash)\n");
		return;
	}
	snprintf(png, sizeof(png), "%s/demo.png", cfg.out);
	snprintf(arg, sizeof(arg), "dir='%s'; have_rs=%d; have_boehm=%d; "
		 "subtitle='%d threads, %ld keys, %d%% writes, ring %d, +%ld "
		 "MiB cold (%s), %g s per side'", cfg.out, side_ok(SIDE_RS),
		 side_ok(SIDE_BOEHM), cfg.threads, cfg.keys, cfg.writes,
		 cfg.ring, cfg.heap_mb, cfg.cold_root ? "root" : "map",
		 cfg.seconds);
	fflush(stdout);
	pid = fork();
	if (pid < 0) {
		perror("fork");
		return;
	}
	if (pid == 0) {
		execlp("gnuplot", "gnuplot", "-e", arg, script, (char *)NULL);
		perror("gnuplot");
		_exit(127);
	}
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return;
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		printf("  %s\n", png);
	else
		printf("chart: gnuplot failed (status %d)\n", st);
}

/* ---- options ---------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
"usage: demo [options]\n"
"\n"
"A threaded server's requests against a map of shared object graphs, on\n"
"refstore and then on the Boehm GC (each side in its own process); reports\n"
"throughput, request latency, collector pauses and time-to-safepoint.\n"
"\n"
"  --threads N      worker threads (default: online CPUs, here %ld)\n"
"  --seconds S      measured time per side, may be fractional (default 8)\n"
"  --keys K         keys the requests use; all present at the start\n"
"                   (default 100000)\n"
"  --writes PCT     percent of requests that write: put, update, delete in\n"
"                   the ratio 40:50:10 (default 20)\n"
"  --ring N         ring nodes per value, 0..%d (default 3; 0: no cycles)\n"
"  --heap-mb M      extra cold records totalling about M MiB of refstore\n"
"                   objects, the same records on both sides (default 64)\n"
"  --cold WHERE     map: the cold records are entries of the map (default);\n"
"                   root: one array object holds them instead\n"
"  --side S         refstore, boehm or both (default both)\n"
"  --seed N         random seed (default 1)\n"
"  --out DIR        where the raw samples, summary.json and demo.png go\n"
"                   (default build/demo)\n"
"  --format F       raw samples as csv (default) or json\n"
"  --quiet          no progress lines\n"
"  --help           this text\n"
"\n"
"Exit status: 0, or 1 when a value read back wrong or a self-check failed,\n"
"2 for bad options.  See docs/demo.md.\n",
		sysconf(_SC_NPROCESSORS_ONLN), MAX_RING);
}

static void bad(const char *opt, const char *val, const char *want)
{
	fprintf(stderr, "demo: %s %s: expected %s (see --help)\n", opt, val,
		want);
	exit(2);
}

static long long parse_int(const char *opt, const char *val, long long lo,
			   long long hi, const char *want)
{
	long long v;
	char *end;

	errno = 0;
	v = strtoll(val, &end, 10);
	if (errno || end == val || *end || v < lo || v > hi)
		bad(opt, val, want);
	return v;
}

static void parse(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "threads", required_argument, NULL, 't' },
		{ "seconds", required_argument, NULL, 's' },
		{ "keys", required_argument, NULL, 'k' },
		{ "writes", required_argument, NULL, 'w' },
		{ "ring", required_argument, NULL, 'r' },
		{ "heap-mb", required_argument, NULL, 'm' },
		{ "side", required_argument, NULL, 'S' },
		{ "cold", required_argument, NULL, 'c' },
		{ "seed", required_argument, NULL, 'x' },
		{ "out", required_argument, NULL, 'o' },
		{ "format", required_argument, NULL, 'f' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	unsigned long long seed;
	char *end;
	int c, idx;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", lo, &idx)) != -1) {
		switch (c) {
		case 't':
			cfg.threads = (int)parse_int("--threads", optarg, 1,
						     MAX_THREADS, "an integer "
						     "from 1 to 1024");
			break;
		case 's':
			errno = 0;
			cfg.seconds = strtod(optarg, &end);
			if (errno || end == optarg || *end ||
			    !(cfg.seconds >= 0.1 && cfg.seconds <= MAX_SECONDS))
				bad("--seconds", optarg, "a number of seconds "
				    "from 0.1 to 3600");
			break;
		case 'k':
			cfg.keys = (long)parse_int("--keys", optarg, 1,
						   100000000, "an integer "
						   "from 1 to 100000000");
			break;
		case 'w':
			cfg.writes = (int)parse_int("--writes", optarg, 0, 100,
						    "a percentage from 0 to "
						    "100");
			break;
		case 'r':
			cfg.ring = (int)parse_int("--ring", optarg, 0, MAX_RING,
						  "an integer from 0 to 64");
			break;
		case 'm':
			cfg.heap_mb = (long)parse_int("--heap-mb", optarg, 0,
						      65536, "an integer from "
						      "0 to 65536");
			break;
		case 'S':
			if (!strcmp(optarg, "refstore")) {
				cfg.sides[SIDE_RS] = 1;
				cfg.sides[SIDE_BOEHM] = 0;
			} else if (!strcmp(optarg, "boehm")) {
				cfg.sides[SIDE_RS] = 0;
				cfg.sides[SIDE_BOEHM] = 1;
			} else if (!strcmp(optarg, "both")) {
				cfg.sides[SIDE_RS] = cfg.sides[SIDE_BOEHM] = 1;
			} else {
				bad("--side", optarg, "refstore, boehm or both");
			}
			break;
		case 'c':
			if (!strcmp(optarg, "map"))
				cfg.cold_root = 0;
			else if (!strcmp(optarg, "root"))
				cfg.cold_root = 1;
			else
				bad("--cold", optarg, "map or root");
			break;
		case 'x':
			errno = 0;
			seed = strtoull(optarg, &end, 0);
			if (errno || end == optarg || *end || optarg[0] == '-')
				bad("--seed", optarg, "an unsigned integer");
			cfg.seed = seed;
			break;
		case 'o':
			if (!optarg[0])
				bad("--out", "''", "a directory");
			cfg.out = optarg;
			break;
		case 'f':
			if (!strcmp(optarg, "csv"))
				cfg.json = 0;
			else if (!strcmp(optarg, "json"))
				cfg.json = 1;
			else
				bad("--format", optarg, "csv or json");
			break;
		case 'q':
			cfg.quiet = 1;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case ':':
			fprintf(stderr, "demo: %s needs a value (see --help)\n",
				argv[optind - 1]);
			exit(2);
		default:
			if (optopt)
				fprintf(stderr, "demo: unknown option '-%c' "
					"(see --help)\n", optopt);
			else
				fprintf(stderr, "demo: unknown option '%s' "
					"(see --help)\n", argv[optind - 1]);
			exit(2);
		}
	}
	if (optind != argc) {
		fprintf(stderr, "demo: unexpected argument '%s' (see --help)\n",
			argv[optind]);
		exit(2);
	}
}

/* Bytes of one record in refstore's accounting: each object plus its
 * 32-byte header (16 more for tracked ones), and the map's entry. */
static double record_bytes(void)
{
	return (double)(sizeof(struct rec) + 48) +
	       (double)cfg.ring * (double)(sizeof(struct rnode) + 48) +
	       (double)(sizeof(struct leaf) + 32) + 72.0;
}

int main(int argc, char **argv)
{
	char paths[2 * PATH_MAX + 256], path[PATH_MAX + 64];
	int s, rc = 0;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	cfg.threads = cpus > 0 ? (int)(cpus > MAX_THREADS ? MAX_THREADS : cpus)
			       : 1;
	parse(argc, argv);
	cfg.thr_get = (unsigned)(100 - cfg.writes) * 100;
	cfg.thr_put = cfg.thr_get + (unsigned)cfg.writes * 40;
	cfg.thr_upd = cfg.thr_put + (unsigned)cfg.writes * 50;
	cfg.ballast = (long)((double)cfg.heap_mb * 1048576.0 / record_bytes());
	if (mkdirs(cfg.out)) {
		fprintf(stderr, "demo: cannot create --out %s: %s\n", cfg.out,
			strerror(errno));
		return 2;
	}
	for (s = 0; s < NSIDES; s++)
		g_res[s] = result_new();

	printf("demo: %d worker threads on %ld CPUs, %g s per side; %ld keys, "
	       "values = record + ring of %d + leaf;\n      %d%% writes (put "
	       "%d%%, update %d%%, delete %d%% of all requests); %ld MiB of "
	       "cold records (%ld, in the %s); seed %llu\n", cfg.threads, cpus,
	       cfg.seconds, cfg.keys, cfg.ring, cfg.writes,
	       cfg.writes * 40 / 100, cfg.writes * 50 / 100,
	       cfg.writes - cfg.writes * 40 / 100 - cfg.writes * 50 / 100,
	       cfg.heap_mb, cfg.ballast, cfg.cold_root ? "root object" : "map",
	       (unsigned long long)cfg.seed);
	if (cfg.threads > cpus)
		printf("note: more threads than CPUs: a refstore stop waits for "
		       "descheduled threads to reach a safepoint\n");

	for (s = 0; s < NSIDES; s++) {
		if (run_side(s))
			rc = 1;
		if (side_ok(s))
			printf("%s: %s, setup %.2f s (%ld keys + %ld cold "
			       "records), %.2f s measured%s\n", side_title[s],
			       g_res[s]->version, g_res[s]->setup_s,
			       g_res[s]->records, g_res[s]->ballast,
			       g_res[s]->elapsed_s, g_res[s]->check_failed
			       ? "; SELF-CHECK FAILED" : "");
		pause_stats(g_res[s], &g_ps[s]);
	}

	print_tables();
	print_ratios();
	if (side_ok(SIDE_RS))
		printf("\nself-check, refstore: %s (%llu reads verified, live "
		       "objects after rs_map_free and a full collection: %llu, "
		       "rs_shutdown() = %ld)\n", g_res[SIDE_RS]->check_failed ?
		       g_res[SIDE_RS]->note : "ok",
		       (unsigned long long)(g_res[SIDE_RS]->ops[OP_GET] -
					    g_res[SIDE_RS]->misses[OP_GET]),
		       (unsigned long long)g_res[SIDE_RS]->live_objects_end,
		       g_res[SIDE_RS]->shutdown_left);
	if (side_ok(SIDE_BOEHM))
		printf("self-check, Boehm GC: %s (%llu reads verified)\n",
		       g_res[SIDE_BOEHM]->check_failed ?
		       g_res[SIDE_BOEHM]->note : "ok",
		       (unsigned long long)(g_res[SIDE_BOEHM]->ops[OP_GET] -
					    g_res[SIDE_BOEHM]->misses[OP_GET]));

	printf("\nfiles:\n");
	if (write_raw(paths, sizeof(paths)) == 0)
		printf("  %s\n", paths);
	else
		rc = 1;
	if (write_summary(path, sizeof(path)) == 0)
		printf("  %s\n", path);
	else
		rc = 1;
	if (!side_ok(SIDE_RS) && !side_ok(SIDE_BOEHM))
		printf("chart: skipped (no side ran)\n");
	else if (write_chart_data() == 0)
		draw_chart();
	if (rc)
		printf("demo: FAILED (see the WRONG lines above)\n");
	return rc;
}
