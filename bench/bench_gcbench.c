/*
 * bench_gcbench.c - GCBench (the allocation benchmark of John Ellis and Pete
 * Kovac, as adapted to C by Hans Boehm), run on refstore, on the Boehm GC and
 * on glibc malloc/free in the same process, with the same work and a
 * checksum that must come out the same for all three.  A benchmark, not a
 * test: it prints times and ratios, never pass/fail on a timing (only on a
 * wrong checksum or a leak).
 *
 * The work of one run, written here from the benchmark's description:
 *
 *   1. a stretch tree of depth S (-l: 20, default 17), built bottom-up,
 *      checked and dropped at once;
 *   2. a long-lived tree of depth L (default 16), built top-down, and a
 *      long-lived array of A doubles (default 500,000; the first half holds
 *      1/i), both kept alive for the whole run;
 *   3. for each depth d = 4, 6, ..., D (default 16): N(d) short-lived trees
 *      built top-down (the parent is made first, then its children are
 *      allocated and stored into it), then N(d) built bottom-up (children
 *      first, the parent made with them), each checked and dropped right
 *      after it was built.  N(d) = 2 * size(S) / size(d), where size(d) =
 *      2^(d+1) - 1 is the node count of a tree of depth d: every depth
 *      allocates about the same number of nodes, 4 * size(S);
 *   4. a full walk of the long-lived tree and a look at one array slot, to
 *      show that both survived.
 *
 * A node is {left, right, i, j} (two pointers, two ints); i holds the height
 * of the node in its tree (leaves 0).  The checksum of a run is the sum, over
 * every short-lived and stretch tree, of the nodes allocated for it plus the
 * i values along its leftmost and rightmost paths (a cheap look that
 * catches a tree built wrong), plus for each walk of step 4 the sum of
 * 1 + i over the long-lived tree and 1000 if the array slot is right.  It is
 * also computed from the formulas and compared: a run that disagrees prints
 * WRONG and the exit status is 1.
 *
 * The implementations:
 *
 *   refstore      nodes are rs_new objects of a type whose traverse visits
 *                 left and right; children are stored with plain stores
 *                 (the tree is private to its thread while it is built) and
 *                 a tree is dropped with one rs_decref of its root: the
 *                 cascade frees it at the thread's next safepoint, called
 *                 after every tree, as a server would between requests.
 *                 The collector stays enabled with its default settings
 *                 (the type is tracked: it does not claim RS_TYPE_NO_CYCLES,
 *                 though these trees are acyclic).  The long-lived tree and
 *                 the array (an object without references) are published,
 *                 and the threads borrow them with rs_get.
 *   Boehm GC      GC_MALLOC nodes, GC_MALLOC_ATOMIC array, never freed; the
 *                 collector runs with its default configuration.
 *   glibc malloc  malloc nodes, each tree freed by a recursive walk right
 *                 after its check.
 *
 * For information the table has a fourth line, "refstore (untracked)": the
 * same refstore code with the node type declared RS_TYPE_NO_CYCLES, which
 * the collector neither tracks nor counts (16 bytes less per node, no
 * nursery log, no automatic collection).  Its ratio to the refstore line is
 * what the collector costs this program; it has no summary row.
 *
 * Two configurations: one thread (the main thread does everything), and T
 * threads (-t, default 2): the main thread builds the stretch tree and the
 * long-lived structures once, then T worker threads each build an equal
 * share of the short-lived trees of step 3 (the iterations of each depth
 * split as evenly as they go, so the T threads together do exactly the work
 * of one) and each walk the shared long-lived tree (step 4).  refstore's
 * workers attach and detach (rs_thread_attach/rs_thread_detach), Boehm's
 * register with GC_register_my_thread, malloc's are plain threads.
 *
 * Timing: one run is timed from the stretch tree to the end of step 4 (the
 * workers joined), all of it on the wall clock.  Dropping the long-lived
 * structures afterwards is not timed (refstore: their deferred decrement
 * and cascade; Boehm: a GC_gcollect; malloc: the frees), so each run starts
 * from a comparable heap.  Each configuration runs every implementation R
 * times (-r; default 5, 3 with -q or -l), the implementations interleaved and
 * their order rotated from repeat to repeat so drift hits them alike.  The
 * tables show the median and [min-max] of the R times, and the ratios
 * "Boehm time / refstore time" and "malloc time / refstore time", taken
 * between medians: above 1 means refstore was faster.  The last lines are
 * the summary rows for bench/report.py (BENCHROW, bench.h).
 *
 *   bench_gcbench [-q] [-l] [-r repeats] [-t threads] [-h]
 *
 *   -q  quick (CI): S 13, L 12, D 12, A 100,000, 3 repeats (well under 2 s)
 *   -l  long: S 20, L 18, D 18, A 2,000,000
 *   default: S 17, L 16, D 16, A 500,000, 5 repeats (about 7 s
 *   on 2 cores)
 *
 * Without libgc at build time the Boehm side says "peer skipped" and the
 * rest runs.  At the end rs_shutdown() must find no object alive.
 */
#include <stdint.h>

/* A node of the refstore trees (tree_hooks.h makes its type). */
struct rnode {
	struct rnode *left, *right;	/* counted references */
	int i, j;
};

#define TREE_NODE_NAME "gcbench_node"
#include "tree_hooks.h"

#define ARRAY_SLOT 1000		/* the array slot step 4 looks at */

static int g_stretch = 17, g_long = 16, g_max = 16;
static size_t g_array = 500000;
static int g_quick, g_longmode;

/* Nodes allocated by the calling thread (every implementation counts the
 * same way: one per node it makes). */
static _Thread_local uint64_t t_built;

/* N(d): short-lived trees of depth d per direction */
static uint64_t iterations(int depth)
{
	return 2 * tree_nodes(g_stretch) / tree_nodes(depth);
}

/* The path check of a private tree: the sum of i along its leftmost path
 * plus the sum along its rightmost path (d(d + 1) for a tree of depth d). */
#define PATH_CHECK_FN(fn, type)						\
static uint64_t fn(const type *root)					\
{									\
	const type *p;							\
	uint64_t s = 0;							\
									\
	for (p = root; p; p = p->left)					\
		s += (uint64_t)p->i;					\
	for (p = root; p; p = p->right)					\
		s += (uint64_t)p->i;					\
	return s;							\
}

/* ---- refstore --------------------------------------------------------- */

PATH_CHECK_FN(r_path, struct rnode)

struct rarray {
	size_t n;
	double v[];
};

static rs_type rarray_type = {	/* size set in main */
	"gcbench_array", 0, NULL, NULL, NULL, 0,
};

static struct rnode *g_r_long;		/* counted references, published */
static struct rarray *g_r_array;
static inline struct rnode *r_node(int i)
{
	struct rnode *n = rs_new(g_rtype);

	if (!n)
		die("rs_new");
	n->i = i;		/* left, right and j are zero already */
	t_built++;
	return n;
}

static void r_populate(int depth, struct rnode *n)
{
	if (depth <= 0)
		return;
	depth--;
	n->left = r_node(depth);	/* plain stores: n is private */
	n->right = r_node(depth);
	r_populate(depth, n->left);
	r_populate(depth, n->right);
}

static struct rnode *r_make(int depth)
{
	struct rnode *l, *r, *n;

	if (depth <= 0)
		return r_node(0);
	l = r_make(depth - 1);
	r = r_make(depth - 1);
	n = r_node(depth);
	n->left = l;		/* takes over rs_new's references */
	n->right = r;
	return n;
}

static uint64_t r_top_down(int depth)
{
	uint64_t before = t_built, path;
	struct rnode *t = r_node(depth);

	r_populate(depth, t);
	path = r_path(t);
	rs_decref(t);		/* freed by the cascade at the next safepoint */
	return t_built - before + path;
}

static uint64_t r_bottom_up(int depth)
{
	uint64_t before = t_built, path;
	struct rnode *t = r_make(depth);

	path = r_path(t);
	rs_decref(t);
	return t_built - before + path;
}

static void r_long_build(void)
{
	struct rnode *t = r_node(g_long);
	struct rarray *a;
	size_t k;

	r_populate(g_long, t);
	if (!(a = rs_new(&rarray_type)))
		die("rs_new array");
	a->n = g_array;
	for (k = 1; k < g_array / 2; k++)
		a->v[k] = 1.0 / (double)k;
	/* the workers borrow both: publish them, through shared slots */
	if (rs_set_steal(&g_r_long, t) || rs_set_steal(&g_r_array, a))
		die("rs_set_steal");
}

/* A published tree: every field is read with rs_get. */
static uint64_t r_walk(struct rnode *n)
{
	if (!n)
		return 0;
	return 1 + (uint64_t)n->i + r_walk(rs_get(&n->left)) +
	       r_walk(rs_get(&n->right));
}

static uint64_t r_long_check(void)
{
	struct rarray *a = rs_get(&g_r_array);
	uint64_t s = r_walk(rs_get(&g_r_long));

	return s + (a && a->v[ARRAY_SLOT] == 1.0 / ARRAY_SLOT ? ARRAY_SLOT : 0);
}

static void r_long_release(void)
{
	if (rs_clear(&g_r_long) || rs_clear(&g_r_array))
		die("rs_clear");
}

static const struct tree_ops r_ops = {
	.tree = { r_top_down, r_bottom_up },
	.long_build = r_long_build, .long_check = r_long_check,
	.long_release = r_long_release,
};

/* ---- Boehm GC --------------------------------------------------------- */

#ifdef HAVE_BOEHM
struct bnode {
	struct bnode *left, *right;
	int i, j;
};

PATH_CHECK_FN(b_path, struct bnode)

static struct bnode *g_b_long;		/* statics: roots for Boehm */
static double *g_b_array;

static inline struct bnode *b_node(int i)
{
	struct bnode *n = GC_MALLOC(sizeof(*n));

	if (!n)
		die("GC_MALLOC");
	n->i = i;		/* GC_MALLOC clears the rest */
	t_built++;
	return n;
}

static void b_populate(int depth, struct bnode *n)
{
	if (depth <= 0)
		return;
	depth--;
	n->left = b_node(depth);
	n->right = b_node(depth);
	b_populate(depth, n->left);
	b_populate(depth, n->right);
}

static struct bnode *b_make(int depth)
{
	struct bnode *l, *r, *n;

	if (depth <= 0)
		return b_node(0);
	l = b_make(depth - 1);
	r = b_make(depth - 1);
	n = b_node(depth);
	n->left = l;
	n->right = r;
	return n;
}

static uint64_t b_top_down(int depth)
{
	uint64_t before = t_built, path;
	struct bnode *t = b_node(depth);

	b_populate(depth, t);
	path = b_path(t);
	return t_built - before + path;
}

static uint64_t b_bottom_up(int depth)
{
	uint64_t before = t_built, path;
	struct bnode *t = b_make(depth);

	path = b_path(t);
	return t_built - before + path;
}

static void b_long_build(void)
{
	size_t k;

	g_b_long = b_node(g_long);
	b_populate(g_long, g_b_long);
	if (!(g_b_array = GC_MALLOC_ATOMIC(g_array * sizeof(double))))
		die("GC_MALLOC_ATOMIC");
	for (k = 1; k < g_array / 2; k++)
		g_b_array[k] = 1.0 / (double)k;
}

static uint64_t b_walk(const struct bnode *n)
{
	if (!n)
		return 0;
	return 1 + (uint64_t)n->i + b_walk(n->left) + b_walk(n->right);
}

static uint64_t b_long_check(void)
{
	uint64_t s = b_walk(g_b_long);

	return s + (g_b_array[ARRAY_SLOT] == 1.0 / ARRAY_SLOT ? ARRAY_SLOT : 0);
}

static void b_long_release(void)
{
	g_b_long = NULL;
	g_b_array = NULL;
}

static const struct tree_ops b_ops = {
	.tree = { b_top_down, b_bottom_up },
	.long_build = b_long_build, .long_check = b_long_check,
	.long_release = b_long_release,
};

#endif

/* ---- glibc malloc ----------------------------------------------------- */

struct mnode {
	struct mnode *left, *right;
	int i, j;
};

PATH_CHECK_FN(m_path, struct mnode)

static struct mnode *g_m_long;
static double *g_m_array;

static inline struct mnode *m_node(int i)
{
	struct mnode *n = malloc(sizeof(*n));

	if (!n)
		die("malloc");
	n->left = n->right = NULL;
	n->i = i;
	n->j = 0;
	t_built++;
	return n;
}

static void m_populate(int depth, struct mnode *n)
{
	if (depth <= 0)
		return;
	depth--;
	n->left = m_node(depth);
	n->right = m_node(depth);
	m_populate(depth, n->left);
	m_populate(depth, n->right);
}

static struct mnode *m_make(int depth)
{
	struct mnode *l, *r, *n;

	if (depth <= 0)
		return m_node(0);
	l = m_make(depth - 1);
	r = m_make(depth - 1);
	n = m_node(depth);
	n->left = l;
	n->right = r;
	return n;
}

static void m_free(struct mnode *n)
{
	if (!n)
		return;
	m_free(n->left);
	m_free(n->right);
	free(n);
}

static uint64_t m_top_down(int depth)
{
	uint64_t before = t_built, path;
	struct mnode *t = m_node(depth);

	m_populate(depth, t);
	path = m_path(t);
	m_free(t);
	return t_built - before + path;
}

static uint64_t m_bottom_up(int depth)
{
	uint64_t before = t_built, path;
	struct mnode *t = m_make(depth);

	path = m_path(t);
	m_free(t);
	return t_built - before + path;
}

static void m_long_build(void)
{
	size_t k;

	g_m_long = m_node(g_long);
	m_populate(g_long, g_m_long);
	if (!(g_m_array = malloc(g_array * sizeof(double))))
		die("malloc");
	for (k = 1; k < g_array / 2; k++)
		g_m_array[k] = 1.0 / (double)k;
}

static uint64_t m_walk(const struct mnode *n)
{
	if (!n)
		return 0;
	return 1 + (uint64_t)n->i + m_walk(n->left) + m_walk(n->right);
}

static uint64_t m_long_check(void)
{
	uint64_t s = m_walk(g_m_long);

	return s + (g_m_array[ARRAY_SLOT] == 1.0 / ARRAY_SLOT ? ARRAY_SLOT : 0);
}

static void m_long_release(void)
{
	m_free(g_m_long);
	free(g_m_array);
	g_m_long = NULL;
	g_m_array = NULL;
}

static const struct tree_ops m_ops = {
	.tree = { m_top_down, m_bottom_up },
	.long_build = m_long_build, .long_check = m_long_check,
	.long_release = m_long_release,
};

/* ---- the run, for the driver (trees.h) ------------------------------- */

/* Step 1: the stretch tree; its check. */
static uint64_t stretch_tree(const struct impl *im)
{
	return im->ops->tree[1](g_stretch);	/* bottom-up */
}

/* The checksum a run must have, from the formulas. */
static uint64_t expected_sum(int nt)
{
	uint64_t s, walk = 0;
	int d, h;

	/* a tree of depth d: size(d) nodes, path check d(d + 1) */
	s = tree_nodes(g_stretch) +
	    (uint64_t)g_stretch * (uint64_t)(g_stretch + 1);
	for (d = MIN_DEPTH; d <= g_max; d += 2)
		s += 2 * iterations(d) *
		     (tree_nodes(d) + (uint64_t)d * (uint64_t)(d + 1));
	for (h = 0; h <= g_long; h++)	/* 2^(L-h) nodes of height h */
		walk += ((uint64_t)1 << (g_long - h)) * (uint64_t)(1 + h);
	return s + (uint64_t)nt * (walk + ARRAY_SLOT);	/* one walk a share */
}

/* ---- results ---------------------------------------------------------- */

static void measure_name(char *buf, size_t len, int nt)
{
	if (g_stretch == 17 && g_long == 16 && g_max == 16 && g_array == 500000)
		snprintf(buf, len, "GCBench, %d thread%s", nt, nt > 1 ? "s" : "");
	else
		snprintf(buf, len, "GCBench (stretch %d, long-lived %d, max "
			 "depth %d), %d thread%s", g_stretch, g_long, g_max, nt,
			 nt > 1 ? "s" : "");
}

#include "trees.h"

static void usage(const char *prog, int status)
{
	fprintf(status ? stderr : stdout,
		"usage: %s [-q] [-l] [-r repeats] [-t threads] [-h]\n"
		"  GCBench on refstore, the Boehm GC and glibc malloc\n"
		"  -q  quick (CI): small trees, 3 repeats\n"
		"  -l  long: stretch depth 20, long-lived and max depth 18\n"
		"  -r  repeats per implementation and configuration "
		"(default 5; 3 with -q or -l)\n"
		"  -t  threads of the multi-threaded configuration "
		"(2..%d, default 2)\n", prog, MAXTHREADS);
	exit(status);
}

int main(int argc, char **argv)
{
	int c, reps = 0, nt = 2;

	while ((c = getopt(argc, argv, "qlr:t:h")) != -1) {
		switch (c) {
		case 'q': g_quick = 1; break;
		case 'l': g_longmode = 1; break;
		case 'r': reps = opt_int(argv[0], 1, MAXREP); break;
		case 't': nt = opt_int(argv[0], 2, MAXTHREADS); break;
		case 'h': usage(argv[0], 0); break;
		default: usage(argv[0], 2);
		}
	}
	if (optind != argc || (g_quick && g_longmode))
		usage(argv[0], 2);
	if (g_quick) {
		g_stretch = 13;
		g_long = 12;
		g_max = 12;
		g_array = 100000;
	} else if (g_longmode) {
		g_stretch = 20;
		g_long = 18;
		g_max = 18;
		g_array = 2000000;
	}
	if (!reps)
		reps = g_quick || g_longmode ? 3 : 5;
	rarray_type.size = offsetof(struct rarray, v) + g_array * sizeof(double);

	trees_init();
	printf("bench_gcbench: GCBench; stretch tree depth %d, long-lived tree "
	       "depth %d and %zu doubles, short-lived trees of depth %d..%d "
	       "step 2 (top-down and bottom-up), node {left, right, int i, j}\n",
	       g_stretch, g_long, g_array, MIN_DEPTH, g_max);
	printf("configurations: 1 thread, %d threads (the short-lived trees "
	       "split among them); %d runs per implementation each, "
	       "interleaved; %ld CPUs\n", nt, reps,
	       sysconf(_SC_NPROCESSORS_ONLN));
	return trees_run(nt, reps);
}
