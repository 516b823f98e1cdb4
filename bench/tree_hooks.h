/*
 * tree_hooks.h - the first half of the driver that bench_gcbench.c and
 * bench_bintree.c share: the headers and limits both use, an
 * implementation as the driver sees it (struct impl), refstore's node type,
 * the split of iterations among workers, the runtimes' hooks (a worker
 * thread's entry and exit, blocking around a join, the safepoint between
 * trees, the end of a run) and the workers that run a configuration's
 * shares of the trees.  trees.h is the second half.  Their trees,
 * checksums and long-lived structures stay in each program.
 *
 * The including file defines, before including it, struct rnode (its
 * refstore node; the counted references are left and right) and
 * TREE_NODE_NAME (the name of the node type).  This header defines g_rtype
 * (the node type of the current run, tracked or untracked), g_r_base
 * (refstore's live objects between runs) and rs_live.
 */
#ifndef RS_BENCH_TREE_HOOKS_H
#define RS_BENCH_TREE_HOOKS_H

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
/* GC_THREADS: the workers of the Boehm runs allocate from the collected heap
 * and register themselves (GC_register_my_thread); no redirection of
 * pthread_create, so refstore's and malloc's threads stay plain. */
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

static long g_wrong;		/* results found wrong: the exit status */

/* Nodes of a complete binary tree of the given depth. */
static uint64_t tree_nodes(int depth)
{
	return ((uint64_t)1 << (depth + 1)) - 1;
}

/* ---- one implementation, as the driver sees it ------------------------ */

/* The work of one run, as one implementation does it: each kind of tree
 * (binary-trees has one; GCBench two, top-down then bottom-up) built at a
 * depth, checked and dropped, returning its check; the long-lived
 * structures built, checked (step 4, on any thread) and dropped (untimed). */
#define TREE_KINDS 2
struct tree_ops {
	uint64_t (*tree[TREE_KINDS])(int depth);	/* NULL: no more kinds */
	void (*long_build)(void);
	uint64_t (*long_check)(void);
	void (*long_release)(void);
};

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
	const struct tree_ops *ops;	/* the program's work */
};

static void hook(void (*fn)(void))
{
	if (fn)
		fn();
}

/* The share of n iterations that worker k of nt does. */
static uint64_t share_of(uint64_t n, int k, int nt)
{
	return n / (uint64_t)nt + ((uint64_t)k < n % (uint64_t)nt);
}

/* Worker k of nt's share of the trees, and its check (trees.h). */
static uint64_t share(const struct impl *im, int k, int nt);

struct job {
	const struct impl *im;
	int k, nt;
	uint64_t sum;
};

static void *worker(void *arg)
{
	struct job *j = arg;

	hook(j->im->enter);
	j->sum = share(j->im, j->k, j->nt);
	hook(j->im->leave);
	return NULL;
}

/* Every worker's share, on the calling thread alone (nt 1) or on nt new
 * threads while the caller is blocked; the sum of their checks. */
static uint64_t run_shares(const struct impl *im, int nt)
{
	struct job jobs[MAXTHREADS];
	pthread_t th[MAXTHREADS];
	uint64_t s = 0;
	int k, e;

	if (nt == 1)
		return share(im, 0, 1);
	for (k = 0; k < nt; k++) {
		jobs[k] = (struct job){ im, k, nt, 0 };
		if ((e = pthread_create(&th[k], NULL, worker, &jobs[k]))) {
			errno = e;
			die("pthread_create");
		}
	}
	hook(im->block);
	for (k = 0; k < nt; k++)
		pthread_join(th[k], NULL);
	hook(im->unblock);
	for (k = 0; k < nt; k++)
		s += jobs[k].sum;
	return s;
}

/* ---- refstore --------------------------------------------------------- */

static void rnode_traverse(void *obj, rs_visit_fn visit, void *arg)
{
	struct rnode *n = obj;

	if (n->left)
		visit(n->left, arg);
	if (n->right)
		visit(n->right, arg);
}

static const rs_type rnode_type = {
	TREE_NODE_NAME, sizeof(struct rnode), rnode_traverse, NULL, NULL, 0,
};

/* The same node for the "refstore (untracked)" line: declared acyclic, so
 * the collector neither tracks nor counts it. */
static const rs_type rnode_untracked_type = {
	TREE_NODE_NAME "_untracked", sizeof(struct rnode), rnode_traverse,
	NULL, NULL, RS_TYPE_NO_CYCLES,
};

static const rs_type *g_rtype = &rnode_type;	/* set before each run */
static size_t g_r_base;			/* live objects between runs */

static size_t rs_live(void)
{
	struct rs_stats st;

	if (rs_stats(&st))
		die("rs_stats");
	return st.live_objects;
}

/* The main thread stays attached between runs, offline (so a worker's
 * collection never waits for it) except while a run is on. */
static void r_run_begin(void)
{
	g_rtype = &rnode_type;
	rs_online();
}

static void r_untracked_run_begin(void)
{
	g_rtype = &rnode_untracked_type;
	rs_online();
}

/* Waits (untimed) until the run's long-lived structures have been freed:
 * their decrements are deferred by a grace period, then cascade. */
static void r_run_end(void)
{
	struct timespec ts = { 0, 100000 };
	int k;

	for (k = 0; rs_live() != g_r_base; k++) {
		if (k == 100000) {
			printf("WRONG: refstore: %zu objects still alive after "
			       "a run, expected %zu\n", rs_live(), g_r_base);
			g_wrong++;
			break;
		}
		rs_offline();	/* seals the thread's batch */
		nanosleep(&ts, NULL);
		rs_online();
		rs_safepoint();
	}
	rs_offline();
}

static void r_enter(void)
{
	if (rs_thread_attach())
		die("rs_thread_attach");
}

static void r_leave(void)
{
	rs_thread_detach();
}

static void r_block(void)
{
	rs_offline();
}

static void r_unblock(void)
{
	rs_online();
}

static void r_between(void)
{
	rs_safepoint();
}

/* ---- Boehm GC --------------------------------------------------------- */

#ifdef HAVE_BOEHM
static void b_run_end(void)
{
	GC_gcollect();
}

static void b_enter(void)
{
	struct GC_stack_base sb;

	if (GC_get_stack_base(&sb) != GC_SUCCESS ||
	    GC_register_my_thread(&sb) != GC_SUCCESS)
		die("GC_register_my_thread");
}

static void b_leave(void)
{
	GC_unregister_my_thread();
}
#endif

#endif /* RS_BENCH_TREE_HOOKS_H */
