/*
 * trees.h - the driver that bench_gcbench.c and bench_bintree.c share: run
 * every implementation of a configuration (thread count) in rotation, check
 * each run's checksum, gather refstore's collections, print the table.
 *
 * The including file defines, before including it: the enum RS,
 * RS_UNTRACKED, BOEHM, MALLOC, NIMPL; g_impl[NIMPL] (name, skip); MAXREP;
 * UNDER_TSAN; g_wrong; and declares run_once, expected_sum and
 * measure_name (its own workload, its checksum formula, its row names).
 */
#ifndef RS_BENCH_TREES_H
#define RS_BENCH_TREES_H

static double run_once(const struct impl *im, int nt, uint64_t *sum);
static uint64_t expected_sum(int nt);
static void measure_name(char *buf, size_t len, int nt);

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

#endif /* RS_BENCH_TREES_H */
