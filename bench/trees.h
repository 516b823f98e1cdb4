/*
 * trees.h - the second half of the driver that bench_gcbench.c and
 * bench_bintree.c share (tree_hooks.h is the first): the table of
 * implementations, one timed run, every implementation of a configuration
 * (thread count) run in rotation with each run's checksum checked,
 * refstore's collections gathered, the tables printed, and the part of
 * main() both have (the runtimes started; both configurations run; the
 * shutdown check and the summary rows).
 *
 * The including file defines, before including it: the work of each
 * implementation (struct tree_ops r_ops, m_ops, and b_ops when HAVE_BOEHM
 * is set), g_max (the largest depth of step 3), iterations (step 3's trees
 * of each kind at a depth), stretch_tree (step 1: the stretch tree built,
 * checked and dropped), expected_sum (the checksum a run must have) and
 * measure_name (its rows' names); after it, usage (called on a bad option
 * value).
 */
#ifndef RS_BENCH_TREES_H
#define RS_BENCH_TREES_H

static void usage(const char *prog, int status);

/* ---- the implementations ---------------------------------------------- */

enum { RS, RS_UNTRACKED, BOEHM, MALLOC, NIMPL };

static char g_boehm_name[64] = "Boehm GC";

static struct impl g_impl[NIMPL] = {
	[RS] = {
		.name = "refstore",
		.run_begin = r_run_begin, .run_end = r_run_end,
		.enter = r_enter, .leave = r_leave,
		.block = r_block, .unblock = r_unblock,
		.between = r_between, .ops = &r_ops,
	},
	[RS_UNTRACKED] = {
		.name = "refstore (untracked)",
		.run_begin = r_untracked_run_begin, .run_end = r_run_end,
		.enter = r_enter, .leave = r_leave,
		.block = r_block, .unblock = r_unblock,
		.between = r_between, .ops = &r_ops,
	},
	[BOEHM] = {
		.name = g_boehm_name,
#ifdef HAVE_BOEHM
		.run_end = b_run_end,
		.enter = b_enter, .leave = b_leave,
		.ops = &b_ops,
#else
		.skip = "peer skipped: built without libgc (libgc-dev was "
			"missing at build time)",
#endif
	},
	[MALLOC] = {
		.name = "glibc malloc",
		.ops = &m_ops,
	},
};

/* ---- the driver ------------------------------------------------------- */

/* Steps 3 and 4 for worker k of nt: its share of the trees of each depth
 * d = MIN_DEPTH, MIN_DEPTH + 2, ..., g_max, kind after kind, a safepoint
 * (refstore) after each tree; then the long-lived structures' check. */
static uint64_t share(const struct impl *im, int k, int nt)
{
	uint64_t sum = 0, n, it;
	int d, f;

	for (d = MIN_DEPTH; d <= g_max; d += 2) {
		n = share_of(iterations(d), k, nt);
		for (f = 0; f < TREE_KINDS && im->ops->tree[f]; f++)
			for (it = 0; it < n; it++) {
				sum += im->ops->tree[f](d);
				hook(im->between);
			}
	}
	return sum + im->ops->long_check();
}

/* One timed run; its checksum in *sum.  Seconds. */
static double run_once(const struct impl *im, int nt, uint64_t *sum)
{
	uint64_t t0, s;

	hook(im->run_begin);
	t0 = now_ns();
	s = stretch_tree(im);			/* 1: the stretch tree */
	hook(im->between);
	im->ops->long_build();			/* 2 */
	s += run_shares(im, nt);		/* 3, 4 */
	t0 = now_ns() - t0;
	im->ops->long_release();
	hook(im->run_end);
	*sum = s;
	return (double)t0 / 1e9;
}

struct cfg {
	int nt;
	const char *skip[NIMPL];	/* not run in this configuration */
	int n[NIMPL];
	double t[NIMPL][MAXREP];
	double med[NIMPL], lo[NIMPL], hi[NIMPL];
	uint64_t sum[NIMPL];
	/* what refstore's collector and Boehm's did during the runs */
	uint64_t rs_coll[RS_GC_GENERATIONS], rs_pause_ns, rs_ttsp_ns;
	unsigned long boehm_gcs;
};

static struct cfg g_cfg[2];

/* Collections per generation, and the time the world was stopped and the
 * time it took to stop it, summed over generations. */
static void rs_gc_totals(uint64_t *coll, uint64_t *pause, uint64_t *ttsp)
{
	struct rs_gc_stats st;
	int g;

	*pause = 0;
	*ttsp = 0;
	for (g = 0; g < RS_GC_GENERATIONS; g++) {
		if (rs_gc_get_stats(g, &st))
			die("rs_gc_get_stats");
		coll[g] = st.collections;
		*pause += st.pause_total_ns;
		*ttsp += st.ttsp_total_ns;
	}
}


static void run_config(struct cfg *c, int nt, int reps)
{
	uint64_t before[RS_GC_GENERATIONS], after[RS_GC_GENERATIONS];
	uint64_t p0, p1, w0, w1, sum, want = expected_sum(nt);
	unsigned long gc0 = 0;
	int rep, j, i;

	memset(c, 0, sizeof(*c));
	c->nt = nt;
	for (i = 0; i < NIMPL; i++)
		c->skip[i] = g_impl[i].skip;
	if (UNDER_TSAN && nt > 1 && !c->skip[BOEHM])
		c->skip[BOEHM] = "peer skipped: built with ThreadSanitizer, "
				 "which holds back the signals the Boehm GC "
				 "stops threads with";
	rs_online();
	rs_gc_totals(before, &p0, &w0);
	rs_offline();
#ifdef HAVE_BOEHM
	gc0 = (unsigned long)GC_get_gc_no();
#endif
	for (rep = 0; rep < reps; rep++) {
		for (j = 0; j < NIMPL; j++) {
			i = (rep + j) % NIMPL;
			if (c->skip[i])
				continue;
			c->t[i][c->n[i]++] = run_once(&g_impl[i], nt, &sum);
			if (sum != want) {
				printf("WRONG: %s, %d thread(s), run %d: checksum "
				       "%" PRIu64 ", expected %" PRIu64 "\n",
				       g_impl[i].name, nt, rep + 1, sum, want);
				g_wrong++;
			}
			c->sum[i] = sum;
		}
	}
	rs_online();
	rs_gc_totals(after, &p1, &w1);
	rs_offline();
	for (i = 0; i < RS_GC_GENERATIONS; i++)
		c->rs_coll[i] = after[i] - before[i];
	c->rs_pause_ns = p1 - p0;
	c->rs_ttsp_ns = w1 - w0;
#ifdef HAVE_BOEHM
	c->boehm_gcs = (unsigned long)GC_get_gc_no() - gc0;
#else
	(void)gc0;
#endif
	for (i = 0; i < NIMPL; i++)
		c->med[i] = bench_median(c->t[i], c->n[i], &c->lo[i], &c->hi[i]);
}

static void print_config(const struct cfg *c)
{
	char name[160];
	int i;

	measure_name(name, sizeof(name), c->nt);
	printf("\n%s: wall time of one run, seconds, over %d runs each\n", name,
	       c->n[RS]);
	printf("  %-22s %8s   %-19s  %s\n", "implementation", "median",
	       "[min - max]", "checksum");
	for (i = 0; i < NIMPL; i++) {
		if (c->skip[i]) {
			printf("  %-22s %s\n", g_impl[i].name, c->skip[i]);
			continue;
		}
		printf("  %-22s %8.3f   [%7.3f - %7.3f]  %" PRIu64 "\n",
		       g_impl[i].name, c->med[i], c->lo[i], c->hi[i], c->sum[i]);
	}
	if (!c->skip[BOEHM])
		printf("  Boehm time / refstore time:  %5.2f  (above 1: refstore "
		       "faster)\n", c->med[BOEHM] / c->med[RS]);
	printf("  malloc time / refstore time: %5.2f  (above 1: refstore "
	       "faster)\n", c->med[MALLOC] / c->med[RS]);
	printf("  refstore time / refstore (untracked) time: %.2f  (what the "
	       "collector's tracking and collections cost)\n",
	       c->med[RS] / c->med[RS_UNTRACKED]);
	printf("  refstore's collector in these runs: %" PRIu64 " young, %"
	       PRIu64 " middle, %" PRIu64 " full collections; world stopped "
	       "%.1f ms per run, %.1f ms per run to stop it\n", c->rs_coll[0],
	       c->rs_coll[1], c->rs_coll[2], c->n[RS] ?
	       (double)c->rs_pause_ns / 1e6 / c->n[RS] : 0.0, c->n[RS] ?
	       (double)c->rs_ttsp_ns / 1e6 / c->n[RS] : 0.0);
	if (!c->skip[BOEHM])
		printf("  Boehm's collections in these runs: %.1f per run "
		       "(the untimed GC_gcollect after each included)\n",
		       c->n[BOEHM] ? (double)c->boehm_gcs / c->n[BOEHM] : 0.0);
	fflush(stdout);
}

/* ---- main ------------------------------------------------------------- */

/* The value of an option (optarg) that must be an integer from lo to hi;
 * anything else ends in usage(prog, 2). */
static int opt_int(const char *prog, long lo, long hi)
{
	char *end;
	long v = strtol(optarg, &end, 10);

	if (*end || v < lo || v > hi)
		usage(prog, 2);
	return (int)v;
}

/* Starts both runtimes: Boehm's (threads may register) and refstore's, the
 * main thread attached, and offline but during refstore's runs. */
static void trees_init(void)
{
#ifdef HAVE_BOEHM
	GC_INIT();
	GC_allow_register_threads();
	/* its markers run only if started: compare against Boehm at its best */
	GC_start_mark_threads();
	snprintf(g_boehm_name, sizeof(g_boehm_name), "Boehm GC %u.%u",
		 GC_get_version() >> 16, (GC_get_version() >> 8) & 0xff);
#endif
	if (rs_init(NULL) || rs_thread_attach())
		die("refstore init");
	g_r_base = rs_live();
	rs_offline();		/* online only during refstore's runs */
}

/* After the program's own header lines: the peers, both configurations
 * (one thread, then nt) with reps runs each, refstore's shutdown (no object
 * may be left), the summary rows.  The exit status: 1 if anything was
 * wrong. */
static int trees_run(int nt, int reps)
{
	char name[160];
	long left;
	int c, i;

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

#endif /* RS_BENCH_TREES_H */
