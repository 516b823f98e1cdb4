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
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifdef HAVE_BOEHM
/* GC_THREADS: the workers of the Boehm runs register themselves
 * (GC_register_my_thread); pthread_create is not redirected, so refstore's
 * and malloc's threads stay plain. */
#define GC_THREADS 1
#define GC_NO_THREAD_REDIRECTS 1
#include <gc.h>
#endif

#include "refstore.h"
#include "bench.h"

/* Under ThreadSanitizer the Boehm GC may fail to stop its other threads
 * (TSan delivers a signal only when the thread reaches a call it
 * intercepts, and the GC aborts with "Signals delivery fails
 * constantly"), so the multi-threaded Boehm runs are skipped there. */
#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#endif
#endif
#ifndef UNDER_TSAN
#define UNDER_TSAN 0
#endif

#define MAXREP 64
#define MAXTHREADS 64
#define MIN_DEPTH 4
#define MAX_DEPTH 24

static int g_max = 16;
static long g_wrong;

static uint64_t tree_nodes(int depth)
{
	return ((uint64_t)1 << (depth + 1)) - 1;
}

/* trees of depth d in step 3 */
static uint64_t iterations(int depth)
{
	return (uint64_t)1 << (g_max - depth + MIN_DEPTH);
}

/* ---- one implementation, as the driver sees it ------------------------ */

struct impl {
	const char *name;
	const char *skip;		/* set: not run, and why */
	void (*run_begin)(void);	/* main thread, before a timed run */
	void (*run_end)(void);		/* main thread, after the cleanup */
	void (*enter)(void);		/* a worker thread starts */
	void (*leave)(void);		/* ... and ends */
	void (*block)(void);		/* main thread is about to join */
	void (*unblock)(void);
	void (*between)(void);		/* after each tree */
	uint64_t (*tree)(int depth);	/* build, check, drop: the check */
	void (*long_build)(void);
	uint64_t (*long_check)(void);	/* any thread */
	void (*long_release)(void);	/* untimed */
};

/* ---- refstore --------------------------------------------------------- */

struct rnode {
	struct rnode *left, *right;	/* counted references */
};

static void rnode_traverse(void *obj, rs_visit_fn visit, void *arg)
{
	struct rnode *n = obj;

	if (n->left)
		visit(n->left, arg);
	if (n->right)
		visit(n->right, arg);
}

static const rs_type rnode_type = {
	"bintree_node", sizeof(struct rnode), rnode_traverse, NULL, NULL, 0,
};

/* For the "refstore (untracked)" line: declared acyclic. */
static const rs_type rnode_untracked_type = {
	"bintree_node_untracked", sizeof(struct rnode), rnode_traverse, NULL,
	NULL, RS_TYPE_NO_CYCLES,
};

#include "tree_hooks.h"
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

/* ---- the implementations ---------------------------------------------- */

enum { RS, RS_UNTRACKED, BOEHM, MALLOC, NIMPL };

static char g_boehm_name[64] = "Boehm GC";

static struct impl g_impl[NIMPL] = {
	[RS] = {
		.name = "refstore",
		.run_begin = r_run_begin, .run_end = r_run_end,
		.enter = r_enter, .leave = r_leave,
		.block = r_block, .unblock = r_unblock,
		.between = r_between, .tree = r_tree,
		.long_build = r_long_build, .long_check = r_long_check,
		.long_release = r_long_release,
	},
	[RS_UNTRACKED] = {
		.name = "refstore (untracked)",
		.run_begin = r_untracked_run_begin, .run_end = r_run_end,
		.enter = r_enter, .leave = r_leave,
		.block = r_block, .unblock = r_unblock,
		.between = r_between, .tree = r_tree,
		.long_build = r_long_build, .long_check = r_long_check,
		.long_release = r_long_release,
	},
	[BOEHM] = {
		.name = g_boehm_name,
#ifdef HAVE_BOEHM
		.run_end = b_run_end,
		.enter = b_enter, .leave = b_leave,
		.tree = b_tree,
		.long_build = b_long_build, .long_check = b_long_check,
		.long_release = b_long_release,
#else
		.skip = "peer skipped: built without libgc (libgc-dev was "
			"missing at build time)",
#endif
	},
	[MALLOC] = {
		.name = "glibc malloc",
		.tree = m_tree,
		.long_build = m_long_build, .long_check = m_long_check,
		.long_release = m_long_release,
	},
};

/* ---- the driver ------------------------------------------------------- */

/* Steps 3 and 4 for worker k of nt. */
static uint64_t share(const struct impl *im, int k, int nt)
{
	uint64_t sum = 0, n, it;
	int d;

	for (d = MIN_DEPTH; d <= g_max; d += 2) {
		n = share_of(iterations(d), k, nt);
		for (it = 0; it < n; it++) {
			sum += im->tree(d);
			hook(im->between);
		}
	}
	return sum + im->long_check();
}

/* One timed run; its checksum in *sum.  Seconds. */
static double run_once(const struct impl *im, int nt, uint64_t *sum)
{
	uint64_t t0, s;

	hook(im->run_begin);
	t0 = now_ns();
	s = im->tree(g_max + 1);		/* 1: the stretch tree */
	hook(im->between);
	im->long_build();			/* 2 */
	s += run_shares(im, nt);		/* 3, 4 */
	t0 = now_ns() - t0;
	im->long_release();
	hook(im->run_end);
	*sum = s;
	return (double)t0 / 1e9;
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
	char name[160];
	int c, reps = 0, nt = 2, depth = 0, quick = 0, longmode = 0, i;
	long left, v;
	char *end;

	while ((c = getopt(argc, argv, "qld:r:t:h")) != -1) {
		switch (c) {
		case 'q': quick = 1; break;
		case 'l': longmode = 1; break;
		case 'd':
			v = strtol(optarg, &end, 10);
			if (*end || v < MIN_DEPTH || v > MAX_DEPTH)
				usage(argv[0], 2);
			depth = (int)v;
			break;
		case 'r':
			v = strtol(optarg, &end, 10);
			if (*end || v < 1 || v > MAXREP)
				usage(argv[0], 2);
			reps = (int)v;
			break;
		case 't':
			v = strtol(optarg, &end, 10);
			if (*end || v < 2 || v > MAXTHREADS)
				usage(argv[0], 2);
			nt = (int)v;
			break;
		case 'h': usage(argv[0], 0); break;
		default: usage(argv[0], 2);
		}
	}
	if (optind != argc || (quick && longmode))
		usage(argv[0], 2);
	g_max = depth ? depth : quick ? 12 : longmode ? 21 : 16;
	if (!reps)
		reps = quick || longmode ? 3 : 5;

#ifdef HAVE_BOEHM
	GC_INIT();
	GC_allow_register_threads();
	snprintf(g_boehm_name, sizeof(g_boehm_name), "Boehm GC %u.%u",
		 GC_get_version() >> 16, (GC_get_version() >> 8) & 0xff);
#endif
	if (rs_init(NULL) || rs_thread_attach())
		die("refstore init");
	g_r_base = rs_live();
	rs_offline();		/* online only during refstore's runs */

	printf("bench_bintree: binary-trees, depth %d: stretch tree depth %d, "
	       "long-lived tree depth %d, 2^(%d-d+%d) trees of each depth "
	       "d = %d..%d step 2, node {left, right}\n", g_max, g_max + 1,
	       g_max, g_max, MIN_DEPTH, MIN_DEPTH, g_max);
	printf("configurations: 1 thread, %d threads (the trees of each depth "
	       "split among them); %d runs per implementation each, "
	       "interleaved; %ld CPUs\n", nt, reps,
	       sysconf(_SC_NPROCESSORS_ONLN));
#ifdef HAVE_BOEHM
	printf("peers: Boehm GC %u.%u.%u (GC_MALLOC, default settings, %d "
	       "marker thread(s)), glibc malloc/free\n", GC_get_version() >> 16,
	       (GC_get_version() >> 8) & 0xff, GC_get_version() & 0xff,
	       GC_get_parallel() + 1);
#else
	printf("peers: Boehm GC: %s; glibc malloc/free\n", g_impl[BOEHM].skip);
#endif
	fflush(stdout);

	run_config(&g_cfg[0], 1, reps);
	print_config(&g_cfg[0]);
	run_config(&g_cfg[1], nt, reps);
	print_config(&g_cfg[1]);

	rs_online();
	rs_thread_detach();
	left = rs_shutdown();
	printf("\nrs_shutdown() = %ld (live objects; expect 0)\n", left);
	if (left) {
		printf("WRONG: rs_shutdown() found %ld objects alive\n", left);
		g_wrong++;
	}
	if (g_wrong)
		printf("WRONG: %ld result(s) above were wrong\n", g_wrong);

	printf("\n");
	for (c = 0; c < 2; c++) {
		measure_name(name, sizeof(name), g_cfg[c].nt);
		for (i = BOEHM; i < NIMPL; i++)
			if (!g_cfg[c].skip[i])
				bench_row(name, g_cfg[c].med[RS], "s",
					  g_impl[i].name, g_cfg[c].med[i], 0);
	}
	return g_wrong ? 1 : 0;
}
