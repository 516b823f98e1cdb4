/*
 * bench_map.c - the keyed object map against what a C server writes by hand.
 *
 * Workload: K keys ("user:<n>") prefilled with small objects; T threads look
 * up random keys and read a field of the value, and a share W of the
 * operations replaces the value of a random key with a new object.  Timed
 * runs of D seconds each, 1 thread and then T threads.
 *
 * refstore: rs_map_get (borrowed: no lock, no atomic write), rs_map_put,
 * rs_safepoint every 64 operations.
 *
 * peer: a chained hash table behind a pthread_rwlock (readers share it,
 * writers take it alone), values counted with C11 atomics: a reader takes a
 * reference under the read lock (atomic increment) and drops it after use
 * (atomic decrement, freeing at zero), as a hand-written server must when
 * it cannot prove no writer frees the value while it reads.
 *
 * Printed: operations per second for both, the ratio refstore / peer, and
 * how T threads scale over one (throughput, run by run).  Every figure is
 * the median and [min-max] of R repeats (-r, default 5), each repeat one
 * run of every measure in turn so that drift hits all of them alike.  -w
 * may be given more than once; by default the workload runs twice, with
 * lookups only and with 5% replacements.  Last, a full collection's walk of
 * the map against the same values held by an array object.  No thresholds:
 * this is a measurement.  The last lines are the summary rows for
 * bench/report.py (BENCHROW, bench.h).
 *
 *   bench_map [-k keys] [-w write_percent]... [-d seconds] [-t threads]
 *             [-r repeats]
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "refstore.h"
#include "bench.h"

#define MAXREPS 51
#define MAXW 8

static long g_keys = 100000, g_write = 5, g_threads = 2;
static double g_secs = 1.0;
static int g_reps = 5;
static long g_writes[MAXW] = {0, 5};	/* the write shares, in % */
static int g_nwrites = 2;
static double g_in_map, g_in_array;	/* medians of bench_traverse, ns */

static int keyf(char *buf, long i)
{
	return sprintf(buf, "user:%ld", i);
}

static inline uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* ---- refstore ---- */

struct val {
	long id, hits;
};

static const rs_type val_type = {
	.name = "val", .size = sizeof(struct val), .flags = RS_TYPE_NO_CYCLES,
};

static rs_map *g_map;

static void *rs_worker(void *arg)
{
	uint64_t s = (uint64_t)(uintptr_t)arg * 0x9e3779b97f4a7c15ull + 1;
	long ops = 0, sum = 0, k;
	char buf[32];
	struct val *v;
	int len;

	rs_thread_attach();
	while (!stopped()) {
		k = (long)(rnd(&s) % (uint64_t)g_keys);
		len = keyf(buf, k);
		if ((long)(rnd(&s) % 100) < g_write) {
			v = rs_new(&val_type);
			v->id = k;
			if (rs_map_put(g_map, buf, (size_t)len, v))
				die("rs_map_put");
			rs_decref(v);
		} else {
			v = rs_map_get(g_map, buf, (size_t)len);
			if (!v || v->id != k)
				die("rs_map_get");
			sum += v->id;
		}
		if ((++ops & 63) == 0)
			rs_safepoint();
	}
	sink(sum);
	rs_thread_detach();
	return (void *)ops;
}

/* ---- peer: rwlock + atomic counts ---- */

struct pval {
	atomic_long refs;
	long id;
};

struct pnode {
	struct pnode *next;
	struct pval *val;
	size_t klen;
	char key[32];
};

static struct pnode **g_tab;
static size_t g_mask;
static pthread_rwlock_t g_lock = PTHREAD_RWLOCK_INITIALIZER;

static uint64_t phash(const char *k, size_t n)
{
	uint64_t h = 1469598103934665603ull;

	while (n--)
		h = (h ^ (unsigned char)*k++) * 1099511628211ull;
	return h;
}

static void pval_put(struct pval *v)
{
	if (atomic_fetch_sub_explicit(&v->refs, 1, memory_order_acq_rel) == 1)
		free(v);
}

static struct pnode *pfind(const char *k, size_t n)
{
	struct pnode *p = g_tab[phash(k, n) & g_mask];

	while (p && (p->klen != n || memcmp(p->key, k, n)))
		p = p->next;
	return p;
}

static void pset(const char *k, size_t n, struct pval *v)
{
	struct pnode *p, **b;
	struct pval *old = NULL;

	pthread_rwlock_wrlock(&g_lock);
	p = pfind(k, n);
	if (p) {
		old = p->val;
		p->val = v;
	} else {
		p = calloc(1, sizeof(*p));
		if (!p)
			die("calloc");
		memcpy(p->key, k, n);
		p->klen = n;
		p->val = v;
		b = &g_tab[phash(k, n) & g_mask];
		p->next = *b;
		*b = p;
	}
	pthread_rwlock_unlock(&g_lock);
	if (old)
		pval_put(old);
}

static void *peer_worker(void *arg)
{
	uint64_t s = (uint64_t)(uintptr_t)arg * 0x9e3779b97f4a7c15ull + 1;
	long ops = 0, sum = 0, k;
	char buf[32];
	struct pnode *p;
	struct pval *v;
	int len;

	while (!stopped()) {
		k = (long)(rnd(&s) % (uint64_t)g_keys);
		len = keyf(buf, k);
		if ((long)(rnd(&s) % 100) < g_write) {
			v = malloc(sizeof(*v));
			if (!v)
				die("malloc");
			atomic_init(&v->refs, 1);
			v->id = k;
			pset(buf, (size_t)len, v);
		} else {
			pthread_rwlock_rdlock(&g_lock);
			p = pfind(buf, (size_t)len);
			v = p ? p->val : NULL;
			if (v)
				atomic_fetch_add_explicit(&v->refs, 1,
							  memory_order_relaxed);
			pthread_rwlock_unlock(&g_lock);
			if (!v || v->id != k)
				die("peer lookup");
			sum += v->id;
			pval_put(v);
		}
		ops++;
	}
	sink(sum);
	return (void *)ops;
}

/* ---- a full collection: the map's traverse against an array's ---- */

struct holder {
	void **v;
	long n;
};

static void holder_traverse(void *obj, rs_visit_fn visit, void *arg)
{
	struct holder *h = obj;
	long i;

	for (i = 0; i < h->n; i++)
		visit(h->v[i], arg);
}

static void holder_destroy(void *obj)
{
	free(((struct holder *)obj)->v);
}

static const rs_type holder_type = {
	.name = "holder", .size = sizeof(struct holder),
	.traverse = holder_traverse, .destroy = holder_destroy,
};

struct grab {
	void **v;
	long n;
};

static int grab_fn(const void *key, size_t klen, void *value, void *arg)
{
	struct grab *g = arg;

	(void)key;
	(void)klen;
	g->v[g->n++] = rs_incref(value);
	return 0;
}

/* Full collections (the repeats, at least 3), in ns per entry: median,
 * [min-max] in *lo, *hi. */
static double collect_ns(long entries, double *lo, double *hi)
{
	double v[MAXREPS];
	uint64_t t0;
	int i, n = g_reps < 3 ? 3 : g_reps;

	for (i = 0; i < n; i++) {
		t0 = now_ns();
		rs_gc_collect(2);
		v[i] = (double)(now_ns() - t0) / (double)entries;
	}
	return bench_median(v, n, lo, hi);
}

/* The values held by the map only, then by an array object only: the
 * collector walks each holder twice per full collection. */
static void bench_traverse(void)
{
	struct holder *h = rs_new(&holder_type);
	struct grab g;
	double in_map, in_array, mlo, mhi, alo, ahi;

	g.v = malloc((size_t)g_keys * sizeof(void *));
	g.n = 0;
	if (!h || !g.v)
		die("malloc");
	in_map = collect_ns(g_keys, &mlo, &mhi);
	rs_map_foreach(g_map, grab_fn, &g);
	h->v = g.v;
	h->n = g.n;
	rs_decref(g_map);	/* the array holds the values now */
	g_map = NULL;
	rs_safepoint();
	in_array = collect_ns(g_keys, &alo, &ahi);
	printf("\n%-34s %10.1f ns %10.1f ns %7.2fx\n",
	       "full collection, per entry", in_map, in_array, in_map / in_array);
	printf("  (values held by the map, against the same values held by an "
	       "array object;\n   median of %d collections each: map [%.1f-%.1f] "
	       "ns, array [%.1f-%.1f] ns)\n", g_reps < 3 ? 3 : g_reps, mlo, mhi,
	       alo, ahi);
	g_in_map = in_map;
	g_in_array = in_array;
	rs_decref(h);
}

/* ---- driver ---- */

static double run(void *(*fn)(void *), long nthreads)
{
	pthread_t th[64];
	long i, total = 0;
	uint64_t t0, t1;
	void *r;

	atomic_store(&g_stop.v, 0);
	t0 = now_ns();
	for (i = 0; i < nthreads; i++)
		if ((errno = pthread_create(&th[i], NULL, fn, (void *)(intptr_t)(i + 1))))
			die("pthread_create");
	usleep((useconds_t)(g_secs * 1e6));
	atomic_store(&g_stop.v, 1);
	for (i = 0; i < nthreads; i++) {
		pthread_join(th[i], &r);
		total += (long)r;
	}
	t1 = now_ns();
	return (double)total / ((double)(t1 - t0) / 1e9);
}

static void usage(const char *prog)
{
	fprintf(stderr, "usage: %s [-k keys] [-w write_percent (repeatable; "
		"default 0 and 5)] [-d seconds] [-t threads] [-r repeats "
		"1..%d]\n", prog, MAXREPS);
	exit(2);
}

/* One write share's runs, interleaved repeat by repeat; ops/s. */
struct share {
	double r1[MAXREPS], p1[MAXREPS], rn[MAXREPS], pn[MAXREPS];
	double med[4];	/* r1, p1, rn, pn */
};
static struct share g_share[MAXW];

static void cellf(char *buf, size_t len, const double *v)
{
	double s[MAXREPS], lo, hi, m;

	memcpy(s, v, sizeof(s[0]) * (size_t)g_reps);
	m = bench_median(s, g_reps, &lo, &hi);
	snprintf(buf, len, "%6.3f [%6.3f-%6.3f]", m / 1e6, lo / 1e6, hi / 1e6);
}

/* Run by run, ops/s on n threads over ops/s on one: median, [min-max]. */
static double scale(const double *vn, const double *v1, double *lo,
		    double *hi)
{
	double s[MAXREPS];
	int r;

	for (r = 0; r < g_reps; r++)
		s[r] = v1[r] > 0 ? vn[r] / v1[r] : 0;
	return bench_median(s, g_reps, lo, hi);
}

static double median_of(const double *v)
{
	double s[MAXREPS];

	memcpy(s, v, sizeof(s[0]) * (size_t)g_reps);
	return bench_median(s, g_reps, NULL, NULL);
}

static void measure_share(int w)
{
	struct share *sh = &g_share[w];
	char a[64], b[64], label[64];
	double x, lo, hi, y, plo, phi;
	int r;

	g_write = g_writes[w];
	for (r = 0; r < g_reps; r++) {
		sh->r1[r] = run(rs_worker, 1);
		sh->p1[r] = run(peer_worker, 1);
		sh->rn[r] = run(rs_worker, g_threads);
		sh->pn[r] = run(peer_worker, g_threads);
	}
	sh->med[0] = median_of(sh->r1);
	sh->med[1] = median_of(sh->p1);
	sh->med[2] = median_of(sh->rn);
	sh->med[3] = median_of(sh->pn);
	snprintf(label, sizeof(label), "%ld%% writes, M ops/s", g_write);
	printf("\n%-34s %22s %22s %8s\n", label, "refstore", "rwlock+atomic",
	       "ratio");
	cellf(a, sizeof(a), sh->r1);
	cellf(b, sizeof(b), sh->p1);
	printf("%-34s %22s %22s %7.2fx\n", "1 thread", a, b,
	       sh->med[0] / sh->med[1]);
	snprintf(label, sizeof(label), "%ld threads", g_threads);
	cellf(a, sizeof(a), sh->rn);
	cellf(b, sizeof(b), sh->pn);
	printf("%-34s %22s %22s %7.2fx\n", label, a, b,
	       sh->med[2] / sh->med[3]);
	snprintf(label, sizeof(label), "scaling, %ld threads / 1", g_threads);
	x = scale(sh->rn, sh->r1, &lo, &hi);
	y = scale(sh->pn, sh->p1, &plo, &phi);
	snprintf(a, sizeof(a), "%5.2fx [%5.2f-%5.2f]", x, lo, hi);
	snprintf(b, sizeof(b), "%5.2fx [%5.2f-%5.2f]", y, plo, phi);
	printf("%-34s %22s %22s\n", label, a, b);
	fflush(stdout);
}

static void rows(void)
{
	static const char *const peer = "rwlock table + C11 atomic counts";
	char what[64], name[128];
	struct share *sh;
	int w;

	printf("\n");
	for (w = 0; w < g_nwrites; w++) {
		sh = &g_share[w];
		if (g_writes[w])
			snprintf(what, sizeof(what), "map lookups + %ld%% "
				 "replacements", g_writes[w]);
		else
			snprintf(what, sizeof(what), "map lookups only");
		snprintf(name, sizeof(name), "%s, 1 thread", what);
		bench_row(name, sh->med[0] / 1e6, "M ops/s", peer,
			  sh->med[1] / 1e6, 1);
		snprintf(name, sizeof(name), "%s, %ld threads", what,
			 g_threads);
		bench_row(name, sh->med[2] / 1e6, "M ops/s", peer,
			  sh->med[3] / 1e6, 1);
		if (g_threads > 1) {
			snprintf(name, sizeof(name), "%s, scaling %ld threads "
				 "over 1", what, g_threads);
			bench_row(name, scale(sh->rn, sh->r1, NULL, NULL), "x",
				  peer, scale(sh->pn, sh->p1, NULL, NULL), 1);
		}
	}
	bench_row("full collection, per map entry", g_in_map, "ns/entry",
		  "the same values held by an array object", g_in_array, 0);
}

int main(int argc, char **argv)
{
	char buf[32];
	size_t size = 1;
	long i;
	int c, len, w, wset = 0;

	while ((c = getopt(argc, argv, "k:w:d:t:r:h")) != -1) {
		switch (c) {
		case 'k': g_keys = atol(optarg); break;
		case 'w':
			if (!wset)
				g_nwrites = 0;
			wset = 1;
			if (g_nwrites == MAXW)
				usage(argv[0]);
			g_writes[g_nwrites] = atol(optarg);
			if (g_writes[g_nwrites] < 0 ||
			    g_writes[g_nwrites] > 100)
				usage(argv[0]);
			g_nwrites++;
			break;
		case 'd': g_secs = atof(optarg); break;
		case 't': g_threads = atol(optarg); break;
		case 'r': g_reps = atoi(optarg); break;
		default: usage(argv[0]);
		}
	}
	if (g_keys < 1 || g_secs <= 0 || g_threads < 1 || g_threads > 64 ||
	    g_reps < 1 || g_reps > MAXREPS || optind != argc)
		usage(argv[0]);

	if (rs_init(NULL) || rs_thread_attach())
		die("rs_init");
	g_map = rs_map_new();
	for (i = 0; i < g_keys; i++) {
		struct val *v = rs_new(&val_type);

		v->id = i;
		len = keyf(buf, i);
		if (rs_map_put(g_map, buf, (size_t)len, v))
			die("rs_map_put");
		rs_decref(v);
		if ((i & 255) == 0)
			rs_safepoint();
	}
	while (size < (size_t)g_keys)
		size <<= 1;
	g_tab = calloc(size, sizeof(*g_tab));
	g_mask = size - 1;
	for (i = 0; i < g_keys; i++) {
		struct pval *v = malloc(sizeof(*v));

		atomic_init(&v->refs, 1);
		v->id = i;
		len = keyf(buf, i);
		pset(buf, (size_t)len, v);
	}
	rs_offline();	/* main only waits from here */

	printf("bench_map: %ld keys, %.2f s per run, %d repeats, median "
	       "[min-max]; ratio: refstore / peer, of the medians\n", g_keys,
	       g_secs, g_reps);
	fflush(stdout);
	for (w = 0; w < g_nwrites; w++)
		measure_share(w);

	rs_online();
	bench_traverse();
	if (rs_shutdown() != 0) {
		fprintf(stderr, "bench_map: objects left alive\n");
		return 1;
	}
	rows();
	return 0;
}
