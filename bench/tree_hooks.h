/*
 * tree_hooks.h - what bench_gcbench.c and bench_bintree.c do the same way
 * around their trees: the driver's hook caller, the split of iterations
 * among workers, and the runtimes' hooks (a worker thread's entry and exit,
 * blocking around a join, the safepoint between trees, the end of a run),
 * and the workers that run a configuration's shares of the trees.
 * Their trees, checksums and long-lived structures stay in each program.
 *
 * The including file has already defined g_wrong, die (bench.h), the
 * refstore node types rnode_type and rnode_untracked_type, struct impl
 * (with the hooks enter, leave, block, unblock), MAXTHREADS, and, when
 * HAVE_BOEHM is set, included <gc.h>; it defines share() after it.  This header defines g_rtype (the
 * node type of the current run, tracked or untracked), g_r_base (refstore's
 * live objects between runs) and rs_live.
 */
#ifndef RS_BENCH_TREE_HOOKS_H
#define RS_BENCH_TREE_HOOKS_H

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

/* The includer's: worker k of nt's share of the trees, and its check. */
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
