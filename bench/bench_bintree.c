/*
 * bench_bintree.c - binary-trees, the allocation program of the Computer
 * Language Benchmarks Game, run on refstore, on the Boehm GC and on glibc
 * malloc/free in the same process, with the same work and a checksum that
 * must come out the same for all three.  A benchmark, not a test: it prints
 * times and ratios, never pass/fail on a timing (only on a wrong checksum
 * or a leak).
 *
 * The work of one run, written here from the benchmark's description, for a
 * maximum depth M (-d; default 16, -l 21, -q 12):
 *
 *   1. a stretch tree of depth M + 1 is built, checked and dropped;
 *   2. a long-lived tree of depth M is built, and kept until the end;
 *   3. for each depth d = 4, 6, ..., M: 2^(M - d + 4) trees of depth d are
 *      built, checked and dropped one after the other (so every depth
 *      allocates about 2^(M + 5) nodes);
 *   4. the long-lived tree is checked.
 *
 * Every tree is built bottom-up (a node is made once its two subtrees
 * exist; a leaf has none) and has 2^(d+1) - 1 nodes of two pointers each.
 * Checking a tree walks it and counts its nodes.  The checksum of a run is
 * the sum of every count; it is also computed from the formulas and
 * compared: a run that disagrees prints WRONG and the exit status is 1.
 *
 * The implementations:
 *
 *   refstore      nodes are rs_new objects of a type whose traverse visits
 *                 both children; children are stored with plain stores
 *                 (the tree is private to its thread), a tree is dropped
 *                 with one rs_decref of its root and freed by the cascade at
 *                 the thread's next safepoint, called after every tree (as a
 *                 server would between requests).  The collector stays
 *                 enabled with its default settings (the type is tracked:
 *                 it does not claim RS_TYPE_NO_CYCLES, though trees are
 *                 acyclic).  The long-lived tree is published (stored with
 *                 rs_set_steal into a shared slot) and borrowed with rs_get.
 *   Boehm GC      GC_MALLOC nodes, never freed; the collector runs with its
 *                 default configuration.
 *   glibc malloc  malloc nodes; each tree freed by a recursive walk after
 *                 its check.
 *
 * For information the table has a fourth line, "refstore (untracked)": the
 * same refstore code with the node type declared RS_TYPE_NO_CYCLES, which
 * the collector neither tracks nor counts.  Its ratio to the refstore line
 * is what the collector costs this program; it has no summary row.
 *
 * Two configurations: one thread (the main thread does everything), and T
 * threads (-t, default 2): the main thread builds the stretch tree and the
 * long-lived tree once, then T worker threads each do an equal share of the
 * trees of step 3 (the iterations of each depth split as evenly as they go,
 * so together they do the work of one thread) and each check the shared
 * long-lived tree (step 4).  refstore's workers attach and detach, Boehm's
 * register with GC_register_my_thread, malloc's are plain threads.
 *
 * Timing: one run is timed from the stretch tree to the end of step 4 (the
 * workers joined), on the wall clock.  Dropping the long-lived tree
 * afterwards is not timed (refstore: its deferred decrement and cascade;
 * Boehm: a GC_gcollect; malloc: the frees).  Each configuration runs every
 * implementation R times (-r; default 5, 3 with -q or -l), interleaved,
 * their order rotated from repeat to repeat.  The tables show the median
 * and [min-max] of the R times and the ratios "Boehm time / refstore time"
 * and "malloc time / refstore time" between medians: above 1 means refstore
 * was faster.  The last lines are the summary rows for bench/report.py
 * (BENCHROW, bench.h).
 *
 *   bench_bintree [-q] [-l] [-d depth] [-r repeats] [-t threads] [-h]
 *
 * The default (depth 16, 5 repeats) takes about 10 s on 2 cores;
 * -q well under 2 s; -l (depth 21) several minutes.  Without libgc at build
 * time the Boehm side says "peer skipped" and the rest runs.  At the end
 * rs_shutdown() must find no object alive.
 */
#include <stdint.h>

/* A node of the refstore trees (tree_hooks.h makes its type). */
struct rnode {
	struct rnode *left, *right;	/* counted references */
};

#define TREE_NODE_NAME "bintree_node"
#include "tree_hooks.h"

#define MAX_DEPTH 24

static int g_max = 16;

/* trees of depth d in step 3 */
static uint64_t iterations(int depth)
{
	return (uint64_t)1 << (g_max - depth + MIN_DEPTH);
}

/* ---- refstore --------------------------------------------------------- */

static struct rnode *g_r_long;		/* a counted reference, published */
static struct rnode *r_make(int depth)
{
	struct rnode *n, *l = NULL, *r = NULL;

	if (depth > 0) {
		l = r_make(depth - 1);
		r = r_make(depth - 1);
	}
	if (!(n = rs_new(g_rtype)))
		die("rs_new");
	n->left = l;		/* plain stores: n is private; they take */
	n->right = r;		/* over the children's references */
	return n;
}

/* A private tree: plain loads. */
static uint64_t r_count(const struct rnode *n)
{
	if (!n->left)
		return 1;
	return 1 + r_count(n->left) + r_count(n->right);
}

static uint64_t r_tree(int depth)
{
	struct rnode *t = r_make(depth);
	uint64_t c = r_count(t);

	rs_decref(t);		/* freed by the cascade at the next safepoint */
	return c;
}

static void r_long_build(void)
{
	/* the workers borrow it: publish it, through a shared slot */
	if (rs_set_steal(&g_r_long, r_make(g_max)))
		die("rs_set_steal");
}

/* A published tree: every field is read with rs_get. */
static uint64_t r_count_shared(struct rnode *n)
{
	struct rnode *l = rs_get(&n->left);

	if (!l)
		return 1;
	return 1 + r_count_shared(l) + r_count_shared(rs_get(&n->right));
}

static uint64_t r_long_check(void)
{
	struct rnode *t = rs_get(&g_r_long);

	return t ? r_count_shared(t) : 0;
}

static void r_long_release(void)
{
	if (rs_clear(&g_r_long))
		die("rs_clear");
}

static const struct tree_ops r_ops = {
	.tree = { r_tree }, .long_build = r_long_build,
	.long_check = r_long_check, .long_release = r_long_release,
};

/* ---- Boehm GC --------------------------------------------------------- */

#ifdef HAVE_BOEHM
struct bnode {
	struct bnode *left, *right;
};

static struct bnode *g_b_long;		/* a static: a root for Boehm */

static struct bnode *b_make(int depth)
{
	struct bnode *n, *l = NULL, *r = NULL;

	if (depth > 0) {
		l = b_make(depth - 1);
		r = b_make(depth - 1);
	}
	if (!(n = GC_MALLOC(sizeof(*n))))
		die("GC_MALLOC");
	n->left = l;
	n->right = r;
	return n;
}

static uint64_t b_count(const struct bnode *n)
{
	if (!n->left)
		return 1;
	return 1 + b_count(n->left) + b_count(n->right);
}

static uint64_t b_tree(int depth)
{
	return b_count(b_make(depth));
}

static void b_long_build(void)
{
	g_b_long = b_make(g_max);
}

static uint64_t b_long_check(void)
{
	return g_b_long ? b_count(g_b_long) : 0;
}

static void b_long_release(void)
{
	g_b_long = NULL;
}

static const struct tree_ops b_ops = {
	.tree = { b_tree }, .long_build = b_long_build,
	.long_check = b_long_check, .long_release = b_long_release,
};

#endif

/* ---- glibc malloc ----------------------------------------------------- */

struct mnode {
	struct mnode *left, *right;
};

static struct mnode *g_m_long;

static struct mnode *m_make(int depth)
{
	struct mnode *n, *l = NULL, *r = NULL;

	if (depth > 0) {
		l = m_make(depth - 1);
		r = m_make(depth - 1);
	}
	if (!(n = malloc(sizeof(*n))))
		die("malloc");
	n->left = l;
	n->right = r;
	return n;
}

static uint64_t m_count(const struct mnode *n)
{
	if (!n->left)
		return 1;
	return 1 + m_count(n->left) + m_count(n->right);
}

static void m_free(struct mnode *n)
{
	if (n->left) {
		m_free(n->left);
		m_free(n->right);
	}
	free(n);
}

static uint64_t m_tree(int depth)
{
	struct mnode *t = m_make(depth);
	uint64_t c = m_count(t);

	m_free(t);
	return c;
}

static void m_long_build(void)
{
	g_m_long = m_make(g_max);
}

static uint64_t m_long_check(void)
{
	return g_m_long ? m_count(g_m_long) : 0;
}

static void m_long_release(void)
{
	if (g_m_long)
		m_free(g_m_long);
	g_m_long = NULL;
}

static const struct tree_ops m_ops = {
	.tree = { m_tree }, .long_build = m_long_build,
	.long_check = m_long_check, .long_release = m_long_release,
};

/* ---- the run, for the driver (trees.h) ------------------------------- */

/* Step 1: the stretch tree; its check. */
static uint64_t stretch_tree(const struct impl *im)
{
	return im->ops->tree[0](g_max + 1);
}

/* The checksum a run must have, from the formulas. */
static uint64_t expected_sum(int nt)
{
	uint64_t s = tree_nodes(g_max + 1);
	int d;

	for (d = MIN_DEPTH; d <= g_max; d += 2)
		s += iterations(d) * tree_nodes(d);
	return s + (uint64_t)nt * tree_nodes(g_max);
}

/* ---- results ---------------------------------------------------------- */

static void measure_name(char *buf, size_t len, int nt)
{
	snprintf(buf, len, "binary-trees depth %d, %d thread%s", g_max, nt,
		 nt > 1 ? "s" : "");
}

#include "trees.h"

static void usage(const char *prog, int status)
{
	fprintf(status ? stderr : stdout,
		"usage: %s [-q] [-l] [-d depth] [-r repeats] [-t threads] [-h]\n"
		"  binary-trees on refstore, the Boehm GC and glibc malloc\n"
		"  -q  quick (CI): depth 12, 3 repeats\n"
		"  -l  long: depth 21, 3 repeats\n"
		"  -d  the maximum depth (%d..%d; default 16)\n"
		"  -r  repeats per implementation and configuration "
		"(default 5; 3 with -q or -l)\n"
		"  -t  threads of the multi-threaded configuration "
		"(2..%d, default 2)\n", prog, MIN_DEPTH, MAX_DEPTH,
		MAXTHREADS);
	exit(status);
}

int main(int argc, char **argv)
{
	int c, reps = 0, nt = 2, depth = 0, quick = 0, longmode = 0;

	while ((c = getopt(argc, argv, "qld:r:t:h")) != -1) {
		switch (c) {
		case 'q': quick = 1; break;
		case 'l': longmode = 1; break;
		case 'd': depth = opt_int(argv[0], MIN_DEPTH, MAX_DEPTH); break;
		case 'r': reps = opt_int(argv[0], 1, MAXREP); break;
		case 't': nt = opt_int(argv[0], 2, MAXTHREADS); break;
		case 'h': usage(argv[0], 0); break;
		default: usage(argv[0], 2);
		}
	}
	if (optind != argc || (quick && longmode))
		usage(argv[0], 2);
	g_max = depth ? depth : quick ? 12 : longmode ? 21 : 16;
	if (!reps)
		reps = quick || longmode ? 3 : 5;

	trees_init();
	printf("bench_bintree: binary-trees, depth %d: stretch tree depth %d, "
	       "long-lived tree depth %d, 2^(%d-d+%d) trees of each depth "
	       "d = %d..%d step 2, node {left, right}\n", g_max, g_max + 1,
	       g_max, g_max, MIN_DEPTH, MIN_DEPTH, g_max);
	printf("configurations: 1 thread, %d threads (the trees of each depth "
	       "split among them); %d runs per implementation each, "
	       "interleaved; %ld CPUs\n", nt, reps,
	       sysconf(_SC_NPROCESSORS_ONLN));
	return trees_run(nt, reps);
}
