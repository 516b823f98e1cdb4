/*
 * workload.c - what both sides of the demo share: the configuration, the
 * keys, the request mix and the loop a worker runs, the latency histograms
 * and per-100 ms windows it fills, the results each side leaves in memory
 * shared with the parent, and the clock of a side's run (start the
 * workers, print progress, sample memory, stop them, gather their
 * figures).  The values and the map are each side's own (rs_side.c,
 * boehm_side.c).  demo.h describes the workload as a whole.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>

#include "demo.h"

/* ---------------------------------------------------------------------- */
/* Configuration                                                           */
/* ---------------------------------------------------------------------- */

const char *const side_name[NSIDES] = { "refstore", "boehm" };
const char *const side_title[NSIDES] = { "refstore", "Boehm GC" };
const char *const op_name[NOPS] = { "get", "put", "update", "delete" };

struct demo_cfg cfg = {
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
/* Random seeds and keys (the generator and key_of are in demo.h)          */
/* ---------------------------------------------------------------------- */

uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

uint64_t id_of_key(const void *key, size_t klen)
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

/* ---------------------------------------------------------------------- */
/* Log-linear histograms of nanoseconds (h_index, hist_add in demo.h)      */
/* ---------------------------------------------------------------------- */

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

void hist_merge(struct hist *to, const struct hist *from)
{
	unsigned i;

	to->n += from->n;
	to->sum += from->sum;
	if (from->max > to->max)
		to->max = from->max;
	for (i = 0; i < H_NB; i++)
		to->b[i] += from->b[i];
}

uint64_t hist_pct(const struct hist *h, double q)
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

struct result *g_res[NSIDES];
struct result *R;
uint64_t g_run_start;
atomic_int g_recording;

struct result *result_new(void)
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

void pause_add(uint64_t t_ns, int gen, uint64_t pause_ns,
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

void fail(const char *fmt_what, long got, long want)
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

struct worker *g_workers;
pthread_barrier_t g_go;

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
void request_loop(struct worker *w, request_fn req, int safepoints)
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
/* The run of a side (the monitor: each side's main thread)                 */
/* ---------------------------------------------------------------------- */

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

/* Runs the clock for the side: wakes every 100 ms, prints progress each
 * second, samples memory, and raises the stop flag at the end. */
void monitor(int side, memsnap_fn snap, struct memsnap *peak)
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
		if (m.d > peak->d)
			peak->d = m.d;
		n = total_done();
		if (!cfg.quiet)
			progress(side, (double)(tick - g_run_start) / 1e9,
				 n - prev, &pseen, &m);
		prev = n;
	}
	atomic_store(&g_stop.v, 1);
}

void collect_workers(void)
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

long rss_peak_kb(void)
{
	struct rusage ru;

	return getrusage(RUSAGE_SELF, &ru) ? 0 : ru.ru_maxrss;
}

void start_workers(void *(*fn)(void *), int side,
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

void go(void)
{
	g_run_start = now_ns();
	atomic_store(&g_recording, 1);
	pthread_barrier_wait(&g_go);
}

void join_workers(void)
{
	int i;

	for (i = 0; i < cfg.threads; i++)
		pthread_join(g_workers[i].th, NULL);
	atomic_store(&g_recording, 0);
	R->elapsed_s = (double)(now_ns() - g_run_start) / 1e9;
	collect_workers();
}
