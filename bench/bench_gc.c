/*
 * bench_gc.c - the cycle collector (rs_gc_collect) against the collectors it
 * is modelled on and competes with, on the same object graphs, in the same
 * run: CPython's gc (the design it copies: generations, trial deletion) and
 * the Boehm GC (a tracing collector, what a C program would use instead).
 * A benchmark, not a test: it prints numbers and ratios, never pass/fail on
 * a timing.
 *
 * The objects.  A node is {a, b, v}: two references and a long (refstore:
 * a tracked type whose traverse visits a and b; CPython: a class with
 * __slots__ = ('a', 'b', 'v'); Boehm: a 24-byte GC_MALLOC block).  A root
 * holds references to the nodes of a graph (refstore: one tracked object
 * with an array of counted references, of a type made at run time for that
 * size, held by a counted reference in a C local; CPython: a list; Boehm: a
 * GC_MALLOC'd array held by a static pointer).  Random numbers come from one
 * fixed-seed generator, so every run builds the same refstore graphs.
 *
 *   1. full, live    N nodes (-n, default 1,000,000), each pointing at two
 *                    random nodes, all held by the root.  One warm-up full
 *                    collection (refstore: moves everything to gen 2), then
 *                    LIVE_REPS timed full collections: best and median.
 *                    Nothing is garbage, so every collector pays for the
 *                    whole live heap: this is the cost of a full collection
 *                    per live object.
 *   2. full, garbage N nodes in rings of RING, each node's a the next in its
 *                    ring, b a random node of the same ring; every outside
 *                    reference dropped while building.  One timed full
 *                    collection per fresh build (GARB_REPS builds): finding
 *                    and freeing N unreachable objects.  Boehm sweeps lazily
 *                    (its GC_gcollect only marks; the unmarked blocks are
 *                    swept when allocation reaches them or at the start of
 *                    the next collection), so for Boehm the table also shows
 *                    the next GC_gcollect, which begins by sweeping them.
 *   3. young         YOUNG (10,000) fresh nodes, random among themselves,
 *                    held by their own root, collected with a generation-0
 *                    collection over an old heap of 0 objects and of N (the
 *                    graph of part 1, still alive, in gen 2; old=0 runs
 *                    last, after part 2, on an equally used heap).  One
 *                    untimed warm-up, then YOUNG_REPS times, a new young set
 *                    each time (the previous one is dropped and collected,
 *                    untimed); median.  A generational collector should not
 *                    look at the old heap: the ratio old=N / old=0 is the
 *                    point (target <= 2x).  Boehm has no young collection
 *                    and is left out.
 *
 * CPython runs bench/peers/gc_peer.py (found from the current directory or
 * from this binary's place in build/<variant>/bench/) in a child process
 * with the same N, repeats and shapes; it prints one line per collection.
 * Boehm runs in this process, with its default configuration and its marker
 * threads started (GC_start_mark_threads: it marks with GC_get_parallel() + 1
 * threads; refstore collects on the calling thread).
 * Automatic collection is off while building in all three (rs_gc_disable,
 * gc.disable(), GC_disable) and only the collection call is timed.  If
 * python3 or the script is missing, or the binary was built without libgc,
 * the peer's line says "peer skipped" and the rest runs.
 *
 * How to read it.  ns/obj is the collection's wall time divided by the
 * objects of the case (N, or YOUNG for part 3); "x" columns are peer ns /
 * refstore ns, so above 1 means refstore is faster.  The project's targets:
 * >= 10x CPython per object (goal), no slower than Boehm (floor), young
 * collection over old=N within 2x of old=0.  The refstore pause column is
 * the library's own figure (rs_gc_add_callback: time the world was
 * stopped); the rest of refstore's wall time is work done with the world
 * running (what, is up to lib/gc.c).
 *
 * refstore's results are checked as it runs: a live collection must find
 * nothing, a garbage one exactly the ring nodes, and every phase must leave
 * the live object count where it found it.  A mismatch prints "WRONG:" and
 * the exit status is 1 (a collector bug, not a slow run); otherwise 0.
 *
 *   bench_gc [-n objects] [-b tree nodes] [-q]
 *
 * Last, the collector's overhead while a program builds a large acyclic
 * structure (-b nodes, default 15,000,000; 0 skips it): build time with
 * automatic collection on over the time with it off.
 *
 * Repeats: LIVE_REPS 3, GARB_REPS 3, YOUNG_REPS 20, BUILD_REPS 3 pairs of
 * tree builds; -q (quick, for CI): N = 100000 (unless -n), GARB_REPS 2,
 * YOUNG_REPS 5.  The table shows the best and the median; the lines under
 * it the median and [min-max] of every case's runs, and the last lines are
 * the summary rows for bench/report.py (BENCHROW, bench.h), all medians.
 * The default run takes about half a minute on 2 cores, most of it CPython
 * building.
 */
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#ifdef HAVE_BOEHM
/* GC_THREADS: this process has threads (refstore's), and it declares
 * GC_get_parallel; none of them holds a Boehm pointer, so pthread_create
 * need not be redirected. */
#define GC_THREADS 1
#define GC_NO_THREAD_REDIRECTS 1
#include <gc.h>
#endif

#include "refstore.h"
#include "bench.h"

#define RING 10			/* nodes per garbage ring */
#define YOUNG 10000		/* nodes of the young set */
#define MAXREP 64
#define BUILD_REPS 3		/* pairs of tree builds, off and on */

static size_t g_n = 1000000;	/* -n */
static int g_quick;		/* -q */
static int live_reps = 3, garb_reps = 3, young_reps = 20;
static long g_wrong;		/* refstore results that were wrong */
static double g_build_off, g_build_on;	/* medians of the tree builds, s */

/* ---- random numbers: xorshift64*, fixed seed ------------------------- */

static uint64_t g_rng = 0x9e3779b97f4a7c15u;

static size_t rnd_below(size_t n)
{
	g_rng ^= g_rng >> 12;
	g_rng ^= g_rng << 25;
	g_rng ^= g_rng >> 27;
	/* the high bits are the good ones; n is far below 2^32 */
	return (size_t)(((g_rng * 0x2545f4914f6cdd1du) >> 32) % n);
}

/* ---- samples -------------------------------------------------------- */

/* One case of one collector: wall times of the timed collections. */
struct res {
	int n;			/* samples; 0: not measured */
	double ns[MAXREP];
	double objs;		/* objects per sample, for ns/obj */
};

enum kase { C_LIVE, C_GARB, C_YOUNG0, C_YOUNGN, NCASES };
enum impl { RS, PY, BOEHM, BOEHM_SWEEP, NIMPL };

static struct res g_res[NCASES][NIMPL];
static struct res g_pause[NCASES];	/* refstore: world-stopped part */
static const char *g_skip[NIMPL];	/* why a peer did not run */

static void add(struct res *r, double ns, double objs)
{
	if (r->n < MAXREP)
		r->ns[r->n++] = ns;
	r->objs = objs;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* ns per object: the best sample (which = 0) or the median (which = 1) */
static double per_obj(const struct res *r, int which)
{
	double v[MAXREP];

	if (!r->n || r->objs <= 0)
		return 0;
	memcpy(v, r->ns, sizeof(v[0]) * (size_t)r->n);
	qsort(v, (size_t)r->n, sizeof(v[0]), cmp_double);
	return (which ? v[r->n / 2] : v[0]) / r->objs;
}

/* ns per object: the median of the samples, and their [min-max] */
static double spread(const struct res *r, double *lo, double *hi)
{
	double v[MAXREP];
	int i;

	*lo = *hi = 0;
	if (!r->n || r->objs <= 0)
		return 0;
	for (i = 0; i < r->n; i++)
		v[i] = r->ns[i] / r->objs;
	return bench_median(v, r->n, lo, hi);
}

/* "N" for a row's name: 1M, 15M, 100k, or the number */
static const char *count_name(size_t n, char *buf, size_t len)
{
	if (n >= 1000000 && n % 1000000 == 0)
		snprintf(buf, len, "%zuM", n / 1000000);
	else if (n >= 1000 && n % 1000 == 0)
		snprintf(buf, len, "%zuk", n / 1000);
	else
		snprintf(buf, len, "%zu", n);
	return buf;
}

/* ---- refstore: the types ---------------------------------------------- */

struct node {
	struct node *a, *b;	/* counted references */
	long v;
};

static void node_traverse(void *obj, rs_visit_fn visit, void *arg)
{
	struct node *x = obj;

	if (x->a)
		visit(x->a, arg);
	if (x->b)
		visit(x->b, arg);
}

static const rs_type node_type = {
	"bench_gc_node", sizeof(struct node), node_traverse, NULL, NULL, 0,
};

/* A root keeps its length in the object rather than asking for its type's
 * size, so that traverse reads nothing but the object itself. */
struct root {
	size_t n;
	struct node *slot[];	/* counted references */
};

static void root_traverse(void *obj, rs_visit_fn visit, void *arg)
{
	struct root *r = obj;
	size_t i;

	for (i = 0; i < r->n; i++)
		if (r->slot[i])
			visit(r->slot[i], arg);
}

/* Sizes set in main, before the first rs_new of either. */
static rs_type big_root_type = {
	"bench_gc_root", 0, root_traverse, NULL, NULL, 0,
};
static rs_type young_root_type = {
	"bench_gc_young_root", 0, root_traverse, NULL, NULL, 0,
};

/* The library's own figures for the last collection. */
static struct rs_gc_info g_last;
static int g_have_cb;

static void on_collect(const struct rs_gc_info *info, void *arg)
{
	(void)arg;
	g_last = *info;
}

static void wrong(const char *what, long got, long want)
{
	printf("WRONG: %s: %ld, expected %ld\n", what, got, want);
	fflush(stdout);
	g_wrong++;
}

static size_t live_objects(void)
{
	struct rs_stats st;

	if (rs_stats(&st))
		die("rs_stats");
	return st.live_objects;
}

/* n nodes, each pointing at two random ones, all held by a new root of
 * type rt; returns the caller's counted reference to the root.  Nothing is
 * published, so the owner's plain stores and increments are enough. */
static struct root *rs_build_graph(const rs_type *rt, size_t n)
{
	struct root *r = rs_new(rt);
	struct node *x;
	size_t i;

	if (!r)
		die("rs_new root");
	r->n = n;
	for (i = 0; i < n; i++) {
		if (!(x = rs_new(&node_type)))
			die("rs_new node");
		x->a = x->b = NULL;
		x->v = (long)i;
		r->slot[i] = x;		/* takes rs_new's reference */
	}
	for (i = 0; i < n; i++) {
		x = r->slot[i];
		x->a = rs_incref(r->slot[rnd_below(n)]);
		x->b = rs_incref(r->slot[rnd_below(n)]);
	}
	return r;
}

/* n / RING rings, every C reference dropped; returns the nodes made.  The
 * decrements are immediate (each node is still referenced by its ring),
 * so nothing is left pending for the timed collection to apply. */
static size_t rs_build_rings(size_t n)
{
	struct node *ring[RING];
	size_t r, k;

	for (r = 0; r < n / RING; r++) {
		for (k = 0; k < RING; k++) {
			if (!(ring[k] = rs_new(&node_type)))
				die("rs_new node");
			ring[k]->v = (long)(r * RING + k);
		}
		for (k = 0; k < RING; k++) {
			ring[k]->a = rs_incref(ring[(k + 1) % RING]);
			ring[k]->b = rs_incref(ring[rnd_below(RING)]);
		}
		for (k = 0; k < RING; k++)
			rs_decref(ring[k]);
	}
	return n / RING * RING;
}

/* One timed rs_gc_collect(gen), which must find exactly want objects; the
 * library's pause for it goes to *pause if given. */
static double rs_timed_collect(int gen, long want, const char *what,
			       struct res *pause)
{
	uint64_t t0;
	long found;

	g_last.pause_ns = 0;
	t0 = now_ns();
	found = rs_gc_collect(gen);
	t0 = now_ns() - t0;
	if (found < 0) {
		printf("WRONG: %s: rs_gc_collect(%d) failed: %s\n", what, gen,
		       strerror(errno));
		g_wrong++;
	} else if (found != want) {
		wrong(what, found, want);
	}
	if (pause && g_have_cb)
		add(pause, (double)g_last.pause_ns, 1);
	return (double)t0;
}

/* Drops *rootp (if rootp) and collects everything; the live count must
 * come back to base.  The root's decrement is applied by the collection
 * itself (pending decrements first), and the part of the graph no cycle
 * keeps alive dies by reference counting in that cascade. */
static void rs_drop(struct root **rootp, size_t base, const char *what)
{
	if (rootp && *rootp) {
		rs_decref(*rootp);
		*rootp = NULL;
	}
	if (rs_gc_collect(2) < 0)
		wrong("rs_gc_collect(2) while cleaning up", -1, 0);
	if (live_objects() != base)
		wrong(what, (long)live_objects(), (long)base);
}

/* Part 3 for refstore: young sets over whatever old heap is alive now. */
static void rs_young(int c, const char *what)
{
	struct root *yr;
	size_t base = live_objects();
	double t;
	int rep;

	for (rep = -1; rep < young_reps; rep++) {	/* -1: warm-up */
		yr = rs_build_graph(&young_root_type, YOUNG);
		t = rs_timed_collect(0, 0, what,
				     rep >= 0 ? &g_pause[c] : NULL);
		if (rep >= 0)
			add(&g_res[c][RS], t, YOUNG);
		/* the young set is in gen 1 now: drop it and collect 0..1,
		 * untimed, so every repeat starts from the same heap */
		rs_decref(yr);
		if (rs_gc_collect(1) < 0)
			wrong("rs_gc_collect(1) after a young repeat", -1, 0);
	}
	rs_drop(NULL, base, "live objects after the young sets");
}

static void run_refstore(void)
{
	struct root *root;
	size_t base, made;
	long found;
	int rep;

	if (rs_gc_disable())
		die("rs_gc_disable");
	g_have_cb = rs_gc_add_callback(on_collect, NULL) == 0;
	base = live_objects();

	/* 1: the live random graph */
	root = rs_build_graph(&big_root_type, g_n);
	found = rs_gc_collect(2);	/* warm-up: all of it to gen 2 */
	if (found != 0)
		wrong("warm-up full collection of a live graph: found", found, 0);
	for (rep = 0; rep < live_reps; rep++)
		add(&g_res[C_LIVE][RS],
		    rs_timed_collect(2, 0, "full collection of a live graph: found",
				     &g_pause[C_LIVE]), (double)g_n);

	/* 3, old = N: the same graph, still alive, in gen 2 */
	rs_young(C_YOUNGN, "young collection, old=N: found");
	rs_drop(&root, base, "live objects after dropping the random graph");

	/* 2: rings of garbage, one fresh build per collection */
	for (rep = 0; rep < garb_reps; rep++) {
		made = rs_build_rings(g_n);
		add(&g_res[C_GARB][RS],
		    rs_timed_collect(2, (long)made,
				     "full collection of garbage rings: found",
				     &g_pause[C_GARB]), (double)made);
		if (live_objects() != base)
			wrong("live objects after collecting the rings",
			      (long)live_objects(), (long)base);
	}

	/* 3, old = 0: last, so that it runs, like old = N, on an allocator
	 * and collector that have been through a large heap (run first, on
	 * a fresh process, it measured slower than old = N) */
	rs_young(C_YOUNG0, "young collection, old=0: found");
	if (g_have_cb)
		rs_gc_remove_callback(on_collect, NULL);
}

/* ---- Boehm GC --------------------------------------------------------- */

#ifdef HAVE_BOEHM
struct bnode {
	struct bnode *a, *b;
	long v;
};

static struct bnode **g_broot;	/* a static: Boehm scans it as a root */

static void boehm_build_graph(size_t n)
{
	struct bnode *x;
	size_t i;

	if (!(g_broot = GC_MALLOC(n * sizeof(*g_broot))))
		die("GC_MALLOC root");
	for (i = 0; i < n; i++) {
		if (!(x = GC_MALLOC(sizeof(*x))))
			die("GC_MALLOC node");
		x->v = (long)i;
		g_broot[i] = x;
	}
	for (i = 0; i < n; i++) {
		g_broot[i]->a = g_broot[rnd_below(n)];
		g_broot[i]->b = g_broot[rnd_below(n)];
	}
}

static size_t boehm_build_rings(size_t n)
{
	struct bnode *ring[RING];
	size_t r, k;

	for (r = 0; r < n / RING; r++) {
		for (k = 0; k < RING; k++) {
			if (!(ring[k] = GC_MALLOC(sizeof(*ring[k]))))
				die("GC_MALLOC node");
			ring[k]->v = (long)(r * RING + k);
		}
		for (k = 0; k < RING; k++) {
			ring[k]->a = ring[(k + 1) % RING];
			ring[k]->b = ring[rnd_below(RING)];
		}
	}
	/* the stack is scanned conservatively: leave no ring on it */
	explicit_bzero(ring, sizeof(ring));
	return n / RING * RING;
}

static double boehm_collect(void)
{
	uint64_t t0 = now_ns();

	GC_gcollect();
	return (double)(now_ns() - t0);
}

static void run_boehm(void)
{
	double t;
	size_t made;
	int rep;

	/* 1: the live random graph; GC_disable also keeps GC_gcollect
	 * from running, hence the enable before the collections */
	GC_disable();
	boehm_build_graph(g_n);
	GC_enable();
	GC_gcollect();			/* warm-up */
	for (rep = 0; rep < live_reps; rep++)
		add(&g_res[C_LIVE][BOEHM], boehm_collect(), (double)g_n);
	g_broot = NULL;
	GC_gcollect();
	GC_gcollect();			/* the second one sweeps the graph */

	/* 2: rings of garbage; the next collection starts by sweeping what
	 * the timed one found unmarked, so it is timed too */
	for (rep = 0; rep < garb_reps; rep++) {
		GC_disable();
		made = boehm_build_rings(g_n);
		GC_enable();
		t = boehm_collect();
		add(&g_res[C_GARB][BOEHM], t, (double)made);
		add(&g_res[C_GARB][BOEHM_SWEEP], t + boehm_collect(),
		    (double)made);
	}
}
#endif

/* ---- CPython, in a child process ------------------------------------- */

static char g_pyver[64] = "?";
static char g_pyskip[PATH_MAX + 128];


static int case_of(const char *name)
{
	static const char *const names[NCASES] = {
		"live", "garbage", "young0", "youngN",
	};
	int c;

	for (c = 0; c < NCASES; c++)
		if (!strcmp(name, names[c]))
			return c;
	return -1;
}

/* The script prints "version X.Y.Z" and then one line per collection:
 * "<case> <objects> <found> <ns>". */
static void run_python(void)
{
	char script[PATH_MAX + 64], cmd[2 * PATH_MAX + 256], line[512];
	char name[32], ver[64];
	long objs, found;
	double ns;
	int c, st, lines = 0;
	FILE *f;

	if (source_file("bench/peers/gc_peer.py", script, sizeof(script)) ||
	    strchr(script, '\'')) {
		g_skip[PY] = "peer skipped: bench/peers/gc_peer.py not found "
			     "(run from the source tree)";
		return;
	}
	snprintf(cmd, sizeof(cmd), "command -v python3 >/dev/null 2>&1 || "
		 "exit 127; exec python3 '%s' %zu %d %d %d %d %d", script, g_n,
		 live_reps, garb_reps, young_reps, YOUNG, RING);
	fflush(stdout);
	if (!(f = popen(cmd, "r"))) {
		snprintf(g_pyskip, sizeof(g_pyskip), "peer skipped: popen: %s",
			 strerror(errno));
		g_skip[PY] = g_pyskip;
		return;
	}
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "version %63s", ver) == 1) {
			snprintf(g_pyver, sizeof(g_pyver), "%s", ver);
			continue;
		}
		if (sscanf(line, "%31s %ld %ld %lf", name, &objs, &found,
			   &ns) != 4 || (c = case_of(name)) < 0)
			continue;
		lines++;
		add(&g_res[c][PY], ns, (double)objs);
		if (found != (c == C_GARB ? objs : 0))
			printf("note: CPython's gc.collect() found %ld objects "
			       "in case %s, expected %ld\n", found, name,
			       c == C_GARB ? objs : 0);
	}
	st = pclose(f);
	if (st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 127) {
		g_skip[PY] = "peer skipped: python3 not found";
	} else if (st != 0 || !lines) {
		snprintf(g_pyskip, sizeof(g_pyskip), "peer skipped: python3 "
			 "%.*s failed (status %d, %d results)", PATH_MAX, script,
			 st, lines);
		g_skip[PY] = g_pyskip;
	}
	if (g_skip[PY])
		for (c = 0; c < NCASES; c++)
			g_res[c][PY].n = 0;
}

/* ---- report ---------------------------------------------------------- */

static void cell(double v, int width, int prec)
{
	if (v > 0)
		printf(" %*.*f", width, prec, v);
	else
		printf(" %*s", width, "-");
}

/* One row: refstore ns/obj and pause, each peer's ns/obj and peer / rs. */
static void row(const char *label, int c, int which, int boehm)
{
	double rs = per_obj(&g_res[c][RS], which);
	/* the Boehm-with-sweep row repeats no CPython figure */
	double py = boehm == BOEHM ? per_obj(&g_res[c][PY], which) : 0;
	double bo = per_obj(&g_res[c][boehm], which);

	printf("%-30s", label);
	cell(rs, 9, 2);
	cell(per_obj(&g_pause[c], which) / (g_res[c][RS].objs > 0
					     ? g_res[c][RS].objs : 1), 8, 2);
	cell(py, 10, 2);
	cell(py > 0 && rs > 0 ? py / rs : 0, 7, 2);
	cell(bo, 10, 2);
	cell(bo > 0 && rs > 0 ? bo / rs : 0, 7, 2);
	printf("\n");
}

static double ratio(double a, double b)	/* 0: not measured */
{
	return a > 0 && b > 0 ? a / b : 0;
}

static const char *verdict(double x, double goal)
{
	if (x <= 0)
		return "not measured";
	return x >= goal ? "meets it" : "short of it";
}

/* Every case's runs: median [min-max] ns per object, and how many. */
static void spread_block(void)
{
	static const char *const cname[NCASES] = {
		"full, live graph", "full, garbage rings", "young, old=0",
		"young, old=N",
	};
	static const char *const iname[NIMPL] = {
		"refstore", "CPython", "Boehm", "Boehm + its sweep",
	};
	double m, lo, hi;
	int c, i;

	printf("\nruns, ns per object: median [min-max] (runs)\n");
	for (c = 0; c < NCASES; c++) {
		printf("  %-20s", cname[c]);
		for (i = 0; i < NIMPL; i++) {
			if (!g_res[c][i].n)
				continue;
			m = spread(&g_res[c][i], &lo, &hi);
			printf("  %s %.2f [%.2f-%.2f] (%d)", iname[i], m, lo, hi,
			       g_res[c][i].n);
		}
		printf("\n");
	}
}

static void report(void)
{
	double rs_live = per_obj(&g_res[C_LIVE][RS], 1);
	double rs_garb = per_obj(&g_res[C_GARB][RS], 1);
	double y = ratio(per_obj(&g_res[C_YOUNGN][RS], 1),
			 per_obj(&g_res[C_YOUNG0][RS], 1));
	double py = ratio(per_obj(&g_res[C_YOUNGN][PY], 1),
			  per_obj(&g_res[C_YOUNG0][PY], 1));
	double x;

	printf("\n%-30s %9s %8s %10s %7s %10s %7s\n", "case (ns per object)",
	       "refstore", "rs pause", "CPython", "x", "Boehm", "x");
	printf("---------------------------------------------------------"
	       "---------------------------\n");
	row("full, live graph      best", C_LIVE, 0, BOEHM);
	row("full, live graph      median", C_LIVE, 1, BOEHM);
	row("full, garbage rings   best", C_GARB, 0, BOEHM);
	row("full, garbage rings   median", C_GARB, 1, BOEHM);
	row("  Boehm + its sweep   median", C_GARB, 1, BOEHM_SWEEP);
	row("young, old=0          median", C_YOUNG0, 1, BOEHM);
	row("young, old=N          median", C_YOUNGN, 1, BOEHM);
	printf("(x: peer / refstore, above 1 = refstore faster; rs pause: the "
	       "world-stopped part of refstore's time;\n young: per young "
	       "object, old=N is the live graph in gen 2; Boehm has no young "
	       "collection)\n");
	if (g_skip[PY])
		printf("CPython: %s\n", g_skip[PY]);
	if (g_skip[BOEHM])
		printf("Boehm: %s\n", g_skip[BOEHM]);
	spread_block();

	printf("\nyoung collection, old=%zu / old=0: refstore %.2fx (target "
	       "<= 2x: %s)", g_n, y, y <= 0 ? "not measured" :
	       y <= 2 ? "meets it" : "misses it");
	if (py > 0)
		printf(", CPython %.2fx", py);
	printf("\n");
	x = ratio(per_obj(&g_res[C_LIVE][PY], 1), rs_live);
	printf("refstore vs CPython, full live graph: %6.2fx faster per object "
	       "(goal >= 10x: %s)\n", x, verdict(x, 10));
	x = ratio(per_obj(&g_res[C_GARB][PY], 1), rs_garb);
	printf("refstore vs CPython, garbage rings:   %6.2fx faster per object "
	       "(goal >= 10x: %s)\n", x, verdict(x, 10));
	x = ratio(per_obj(&g_res[C_LIVE][BOEHM], 1), rs_live);
	printf("refstore vs Boehm, full live graph:   %6.2fx (floor >= 1x, no "
	       "slower: %s)\n", x, verdict(x, 1));
	x = ratio(per_obj(&g_res[C_GARB][BOEHM_SWEEP], 1), rs_garb);
	printf("refstore vs Boehm, garbage + sweep:   %6.2fx (floor >= 1x, no "
	       "slower: %s; against the collect alone %.2fx)\n", x,
	       verdict(x, 1), ratio(per_obj(&g_res[C_GARB][BOEHM], 1), rs_garb));
}

/* ---- the collector's overhead on a growing acyclic structure ---------- */

/*
 * Build a binary tree of m tracked nodes (each node held by its parent, the
 * root by a C variable), with a safepoint every 256 allocations, once with
 * automatic collection off and once on; the ratio is what the young,
 * middle and long-lived-gated full collections add to the build.  Each
 * side runs twice, alternating, and the better time counts (the first
 * build also pays for fresh arena pages).
 */
static double build_tree(size_t m, int gc_on)
{
	struct node **v = malloc(m * sizeof(*v)), *root;
	uint64_t t0;
	size_t i;

	if (!v)
		die("malloc");
	if (gc_on)
		rs_gc_enable();
	else
		rs_gc_disable();
	t0 = now_ns();
	for (i = 0; i < m; i++) {
		if (!(v[i] = rs_new(&node_type)))
			die("rs_new");
		v[i]->v = (long)i;
		if (i) {
			if ((i - 1) & 1)
				v[(i - 1) / 2]->b = v[i];
			else
				v[(i - 1) / 2]->a = v[i];
		}
		if ((i & 255) == 0)
			rs_safepoint();
	}
	t0 = now_ns() - t0;
	root = v[0];
	free(v);
	rs_gc_disable();
	rs_decref(root);
	for (i = 0; i < 64; i++)
		rs_safepoint();
	return (double)t0 / 1e9;
}

static void build_overhead(size_t m)
{
	struct rs_gc_stats before[RS_GC_GENERATIONS], after;
	double off = 1e30, on = 1e30, t, lo, hi, olo, ohi, nlo, nhi;
	double toff[BUILD_REPS], ton[BUILD_REPS], x[BUILD_REPS];
	uint64_t full = 0, full_pause = 0;
	int r, g;

	for (g = 0; g < RS_GC_GENERATIONS; g++)
		rs_gc_get_stats(g, &before[g]);
	for (r = 0; r < BUILD_REPS; r++) {
		t = toff[r] = build_tree(m, 0);
		off = t < off ? t : off;
		t = ton[r] = build_tree(m, 1);
		on = t < on ? t : on;
		x[r] = ton[r] / toff[r];
	}
	rs_gc_get_stats(2, &after);
	full = after.collections - before[2].collections;
	full_pause = after.pause_total_ns - before[2].pause_total_ns;
	printf("\nbuilding an acyclic tree of %zu tracked nodes: collector off "
	       "%.2f s, on %.2f s: %.2fx (goal <= 2x, floor <= 5x: %s)\n", m,
	       off, on, on / off, on / off <= 2 ? "meets the goal"
	       : on / off <= 5 ? "meets the floor only" : "short of the floor");
	g_build_off = bench_median(toff, BUILD_REPS, &olo, &ohi);
	g_build_on = bench_median(ton, BUILD_REPS, &nlo, &nhi);
	t = bench_median(x, BUILD_REPS, &lo, &hi);
	printf("  (best of %d each, alternating; run by run: off %.2f s "
	       "[%.2f-%.2f], on %.2f s [%.2f-%.2f], on/off %.2fx "
	       "[%.2f-%.2f], medians [min-max])\n", BUILD_REPS, g_build_off,
	       olo, ohi, g_build_on, nlo, nhi, t, lo, hi);
	printf("  of which full collections: %llu over %d builds, %.2f s "
	       "stopped (the long-lived rule: one each time generation 2 "
	       "grew by a quarter)\n", (unsigned long long)full, BUILD_REPS,
	       (double)full_pause / 1e9);
	rs_gc_enable();
}

/* ---- the summary rows ------------------------------------------------- */

/* The median ns per object of a case (0: not measured). */
static double med(const struct res *r)
{
	double lo, hi;

	return spread(r, &lo, &hi);
}

static void rows(size_t build_n)
{
	char n[32], y[32], name[160], py[160], bo[96];
	double rs = med(&g_res[C_LIVE][RS]);

	count_name(g_n, n, sizeof(n));
	count_name(YOUNG, y, sizeof(y));
	snprintf(py, sizeof(py), "CPython %s gc.collect()", g_pyver);
#ifdef HAVE_BOEHM
	snprintf(bo, sizeof(bo), "Boehm GC %u.%u GC_gcollect",
		 GC_get_version() >> 16, (GC_get_version() >> 8) & 0xff);
#else
	snprintf(bo, sizeof(bo), "Boehm GC");
#endif
	printf("\n");
	snprintf(name, sizeof(name), "full collection, %s live objects in a "
		 "random graph", n);
	bench_row(name, rs, "ns/object", py, med(&g_res[C_LIVE][PY]), 0);
	bench_row(name, rs, "ns/object", bo, med(&g_res[C_LIVE][BOEHM]),
		  0);
	snprintf(name, sizeof(name), "full collection, %s objects of garbage "
		 "rings", n);
	rs = med(&g_res[C_GARB][RS]);
	bench_row(name, rs, "ns/object", py, med(&g_res[C_GARB][PY]), 0);
	snprintf(bo + strlen(bo), sizeof(bo) - strlen(bo), " + its sweep");
	bench_row(name, rs, "ns/object", bo,
		  med(&g_res[C_GARB][BOEHM_SWEEP]), 0);
	snprintf(name, sizeof(name), "young collection of %s objects over a "
		 "%s-object old heap", y, n);
	rs = med(&g_res[C_YOUNGN][RS]);
	bench_row(name, rs, "ns/object", "refstore over an empty old heap",
		  med(&g_res[C_YOUNG0][RS]), 0);
	snprintf(py, sizeof(py), "CPython %s gc.collect(0), same old heap",
		 g_pyver);
	bench_row(name, rs, "ns/object", py, med(&g_res[C_YOUNGN][PY]),
		  0);
	if (build_n) {
		snprintf(name, sizeof(name), "build a %s-node acyclic tree, "
			 "collector on", count_name(build_n, n, sizeof(n)));
		bench_row(name, g_build_on, "s", "refstore, collector off",
			  g_build_off, 0);
	}
}

/* ---- main ------------------------------------------------------------ */

static void usage(const char *prog)
{
	fprintf(stderr, "usage: %s [-n objects (%d..50000000)] [-b tree nodes "
		"(0 skips; default 15000000, 1000000 with -q)] [-q]\n", prog,
		10 * RING);
	exit(2);
}

int main(int argc, char **argv)
{
	struct rs_gc_stats gs;
	uint64_t t_rs, t_bo = 0, t_py;
	unsigned long long n = 0, build_n = 15000000;
	int build_set = 0;
	char *end;
	int c, g;
	long left;

	while ((c = getopt(argc, argv, "n:b:qh")) != -1) {
		switch (c) {
		case 'b':
			errno = 0;
			build_n = strtoull(optarg, &end, 10);
			if (errno || *end || build_n > 100000000)
				usage(argv[0]);
			build_set = 1;
			break;
		case 'n':
			errno = 0;
			n = strtoull(optarg, &end, 10);
			if (errno || *end || n < 10 * RING || n > 50000000)
				usage(argv[0]);
			break;
		case 'q': g_quick = 1; break;
		default: usage(argv[0]);
		}
	}
	if (optind != argc)
		usage(argv[0]);
	if (g_quick) {
		if (!build_set)
			build_n = 1000000;
		g_n = 100000;
		garb_reps = 2;
		young_reps = 5;
	}
	if (n)
		g_n = (size_t)n;
#ifdef HAVE_BOEHM
	GC_INIT();	/* from the main thread, before anything allocates */
	/* A program that creates no thread through Boehm marks with one
	 * thread unless it starts the markers: compare against its best. */
	GC_start_mark_threads();
#else
	g_skip[BOEHM] = "peer skipped: built without libgc (libgc-dev was "
			"missing at build time)";
#endif
	big_root_type.size = offsetof(struct root, slot) +
			     g_n * sizeof(struct node *);
	young_root_type.size = offsetof(struct root, slot) +
			       YOUNG * sizeof(struct node *);
	if (rs_init(NULL) || rs_thread_attach())
		die("refstore init");

	printf("bench_gc: N = %zu nodes {a, b, v} (2 references each), "
	       "garbage rings of %d, young set %d; %ld CPUs\n", g_n, RING,
	       YOUNG, sysconf(_SC_NPROCESSORS_ONLN));
	printf("repeats: full live %d (after a warm-up), full garbage %d "
	       "builds, young %d per old heap\n", live_reps, garb_reps,
	       young_reps);
	fflush(stdout);

	t_rs = now_ns();
	run_refstore();
	t_rs = now_ns() - t_rs;

	rs_offline();	/* the peers run now: hold back no grace period */
#ifdef HAVE_BOEHM
	t_bo = now_ns();
	run_boehm();
	t_bo = now_ns() - t_bo;
#endif
	t_py = now_ns();
	run_python();
	t_py = now_ns() - t_py;
	rs_online();

	if (g_skip[PY])
		printf("peers: CPython skipped");
	else
		printf("peers: CPython %s (gc_peer.py in a child process)",
		       g_pyver);
#ifdef HAVE_BOEHM
	printf(", Boehm GC %u.%u.%u (this process, %d marker thread(s))\n",
	       GC_get_version() >> 16, (GC_get_version() >> 8) & 0xff,
	       GC_get_version() & 0xff, GC_get_parallel() + 1);
#else
	printf(", Boehm GC skipped\n");
#endif
	report();

	printf("\nrefstore collections:");
	for (g = 0; g < RS_GC_GENERATIONS; g++)
		if (!rs_gc_get_stats(g, &gs))
			printf(" gen %d: %llu (max pause %.2f ms)", g,
			       (unsigned long long)gs.collections,
			       (double)gs.pause_max_ns / 1e6);
	printf("\nwall time: refstore %.1f s, Boehm %.1f s, CPython %.1f s "
	       "(building included)\n", (double)t_rs / 1e9, (double)t_bo / 1e9,
	       (double)t_py / 1e9);
	if (build_n)
		build_overhead((size_t)build_n);
	rs_gc_enable();
	rs_thread_detach();
	left = rs_shutdown();
	printf("rs_shutdown() = %ld (live objects; expect 0)\n", left);
	if (left)
		g_wrong++;
	if (g_wrong)
		printf("WRONG: %ld refstore result(s) above were wrong\n",
		       g_wrong);
	rows((size_t)build_n);
	return g_wrong ? 1 : 0;
}
