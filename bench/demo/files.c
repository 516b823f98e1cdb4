/*
 * files.c - what the demo writes in --out: the raw samples (every pause,
 * every 100 ms window of requests) as CSV or JSON, summary.json with every
 * figure of the tables, and the chart: its data files, drawn by gnuplot
 * with bench/demo_plot.gp when gnuplot is installed.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "demo.h"

int mkdirs(const char *path)
{
	char buf[PATH_MAX];
	size_t i, n = strlen(path);

	if (n == 0 || n >= sizeof(buf))
		return -1;
	memcpy(buf, path, n + 1);
	for (i = 1; i <= n; i++)
		if (buf[i] == '/' || buf[i] == '\0') {
			char c = buf[i];

			buf[i] = '\0';
			if (mkdir(buf, 0777) && errno != EEXIST)
				return -1;
			buf[i] = c;
		}
	return 0;
}

static FILE *out_open(char *path, size_t len, const char *name)
{
	FILE *f;

	if ((size_t)snprintf(path, len, "%s/%s", cfg.out, name) >= len) {
		fprintf(stderr, "demo: --out path too long\n");
		return NULL;
	}
	if (!(f = fopen(path, "w")))
		fprintf(stderr, "demo: %s: %s\n", path, strerror(errno));
	return f;
}

/* Per-window percentiles of one side; 0 requests: no row. */
static int window_row(const struct result *r, size_t w, uint64_t *n,
		      uint64_t *p50, uint64_t *p99, uint64_t *max)
{
	static struct hist h;
	unsigned i;

	if (w >= r->nwin || !r->win[w].n)
		return 0;
	memset(&h, 0, sizeof(h));
	for (i = 0; i < H_NB; i++)
		h.b[i] = r->win[w].b[i];
	h.n = r->win[w].n;
	h.max = r->win[w].max;
	*n = h.n;
	*p50 = hist_pct(&h, 0.5);
	*p99 = hist_pct(&h, 0.99);
	*max = h.max;
	return 1;
}

int write_raw(char *paths, size_t plen)
{
	char path[PATH_MAX + 64];
	const char *ext = cfg.json ? "json" : "csv";
	char name[32];
	uint64_t n, p50, p99, mx;
	size_t i, w, np;
	FILE *f;
	int s, first;

	snprintf(name, sizeof(name), "pauses.%s", ext);
	if (!(f = out_open(path, sizeof(path), name)))
		return -1;
	snprintf(paths, plen, "%s", path);
	first = 1;
	if (cfg.json)
		fprintf(f, "[\n");
	else
		fprintf(f, "side,time_s,generation,pause_us,ttsp_us\n");
	for (s = 0; s < NSIDES; s++) {
		const struct result *r = g_res[s];

		if (!side_ok(s))
			continue;
		np = atomic_load(&r->npause);
		if (np > r->pause_cap)
			np = r->pause_cap;
		for (i = 0; i < np; i++) {
			const struct pause *p = &r->pauses[i];

			if (cfg.json)
				fprintf(f, "%s{\"side\":\"%s\",\"time_s\":%.6f,"
					"\"generation\":%d,\"pause_us\":%.3f,"
					"\"ttsp_us\":%.3f}", first ? "" : ",\n",
					side_name[s], (double)p->t_ns / 1e9,
					p->gen, (double)p->pause_ns / 1e3,
					(double)p->ttsp_ns / 1e3);
			else
				fprintf(f, "%s,%.6f,%d,%.3f,%.3f\n",
					side_name[s], (double)p->t_ns / 1e9,
					p->gen, (double)p->pause_ns / 1e3,
					(double)p->ttsp_ns / 1e3);
			first = 0;
		}
	}
	if (cfg.json)
		fprintf(f, "\n]\n");
	if (fclose(f))
		return -1;

	snprintf(name, sizeof(name), "latency.%s", ext);
	if (!(f = out_open(path, sizeof(path), name)))
		return -1;
	snprintf(paths + strlen(paths), plen - strlen(paths), "\n  %s", path);
	first = 1;
	if (cfg.json)
		fprintf(f, "[\n");
	else
		fprintf(f, "side,window_start_s,requests,p50_us,p99_us,max_us\n");
	for (s = 0; s < NSIDES; s++) {
		const struct result *r = g_res[s];

		if (!side_ok(s))
			continue;
		for (w = 0; w < r->nwin; w++) {
			if (!window_row(r, w, &n, &p50, &p99, &mx))
				continue;
			if (cfg.json)
				fprintf(f, "%s{\"side\":\"%s\",\"window_start_s"
					"\":%.1f,\"requests\":%llu,\"p50_us\":"
					"%.3f,\"p99_us\":%.3f,\"max_us\":%.3f}",
					first ? "" : ",\n", side_name[s],
					(double)w / 10, (unsigned long long)n,
					(double)p50 / 1e3, (double)p99 / 1e3,
					(double)mx / 1e3);
			else
				fprintf(f, "%s,%.1f,%llu,%.3f,%.3f,%.3f\n",
					side_name[s], (double)w / 10,
					(unsigned long long)n, (double)p50 / 1e3,
					(double)p99 / 1e3, (double)mx / 1e3);
			first = 0;
		}
	}
	if (cfg.json)
		fprintf(f, "\n]\n");
	return fclose(f) ? -1 : 0;
}

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(f, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(f, "\\u%04x", (unsigned)(unsigned char)*s);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

static void json_side(FILE *f, int s)
{
	const struct result *r = g_res[s];
	const struct pstats *ps = &g_ps[s];
	int g;

	fprintf(f, "    \"%s\": {\n      \"ran\": %s,\n      \"note\": ",
		side_name[s], side_ok(s) ? "true" : "false");
	json_str(f, r->note);
	fprintf(f, ",\n      \"version\": ");
	json_str(f, r->version);
	if (!side_ok(s)) {
		fprintf(f, "\n    }");
		return;
	}
	fprintf(f, ",\n      \"seconds\": %.3f,\n      \"setup_s\": %.3f,\n"
		"      \"requests\": %llu,\n      \"requests_per_s\": %.0f,\n",
		r->elapsed_s, r->setup_s, (unsigned long long)total_ops(r),
		rps(r));
	fprintf(f, "      \"ops\": {");
	for (g = 0; g < NOPS; g++)
		fprintf(f, "%s\"%s\": {\"count\": %llu, \"missed\": %llu}",
			g ? ", " : "", op_name[g],
			(unsigned long long)r->ops[g],
			(unsigned long long)r->misses[g]);
	fprintf(f, "},\n      \"read_errors\": %ld,\n      "
		"\"self_check_failures\": %ld,\n", r->errors, r->check_failed);
	fprintf(f, "      \"latency_us\": {\"p50\": %.3f, \"p99\": %.3f, "
		"\"p99_9\": %.3f, \"max\": %.3f, \"mean\": %.3f},\n",
		(double)hist_pct(&r->lat, 0.5) / 1e3,
		(double)hist_pct(&r->lat, 0.99) / 1e3,
		(double)hist_pct(&r->lat, 0.999) / 1e3,
		(double)r->lat.max / 1e3,
		r->lat.n ? (double)r->lat.sum / (double)r->lat.n / 1e3 : 0.0);
	fprintf(f, "      \"request_proper_us\": {");
	for (g = 0; g < NOPS; g++)
		fprintf(f, "%s\"%s\": {\"p50\": %.3f, \"p99\": %.3f, "
			"\"p99_9\": %.3f, \"max\": %.3f}", g ? ", " : "",
			op_name[g], (double)hist_pct(&r->op_lat[g], 0.5) / 1e3,
			(double)hist_pct(&r->op_lat[g], 0.99) / 1e3,
			(double)hist_pct(&r->op_lat[g], 0.999) / 1e3,
			(double)r->op_lat[g].max / 1e3);
	fprintf(f, "},\n      \"safepoint_us\": {\"p50\": %.3f, \"p99\": "
		"%.3f, \"p99_9\": %.3f, \"max\": %.3f},\n",
		(double)hist_pct(&r->sp_lat, 0.5) / 1e3,
		(double)hist_pct(&r->sp_lat, 0.99) / 1e3,
		(double)hist_pct(&r->sp_lat, 0.999) / 1e3,
		(double)r->sp_lat.max / 1e3);
	fprintf(f, "      \"pauses\": {\n");
	for (g = 0; g <= RS_GC_GENERATIONS; g++) {
		if (s == SIDE_BOEHM && g < RS_GC_GENERATIONS)
			continue;
		fprintf(f, "        \"%s\": {\"count\": %zu, \"p50_us\": %.3f, "
			"\"p99_us\": %.3f, \"max_us\": %.3f, \"total_ms\": "
			"%.3f}%s\n", g == RS_GC_GENERATIONS ? "all" :
			g == 0 ? "gen0" : g == 1 ? "gen1" : "gen2", ps->n[g],
			(double)ps->p50[g] / 1e3, (double)ps->p99[g] / 1e3,
			(double)ps->max[g] / 1e3, (double)ps->total[g] / 1e6,
			g == RS_GC_GENERATIONS ? "" : ",");
	}
	fprintf(f, "      },\n      \"ttsp_us\": {\"p50\": %.3f, \"p99\": "
		"%.3f, \"max\": %.3f},\n      \"pauses_not_recorded\": %zu,\n",
		(double)ps->t50 / 1e3, (double)ps->t99 / 1e3,
		(double)ps->tmax / 1e3, ps->dropped);
	if (s == SIDE_RS)
		fprintf(f, "      \"memory\": {\"live_after_setup\": %llu, "
			"\"live\": %llu, \"live_peak\": %llu, \"arena\": %llu, "
			"\"arena_peak\": %llu, \"deferred\": %llu, "
			"\"deferred_peak\": %llu, \"peak_rss\": %lld, "
			"\"cycle_candidates\": %llu, "
			"\"cycle_candidates_peak\": %llu},\n"
			"      \"grace_periods\": %llu,\n"
			"      \"defer_waits\": %llu,\n"
			"      \"collected_objects\": %llu,\n"
			"      \"live_objects_after_cleanup\": %llu,\n"
			"      \"shutdown_left\": %ld\n    }",
			(unsigned long long)r->live_setup,
			(unsigned long long)r->live_end,
			(unsigned long long)r->live_peak,
			(unsigned long long)r->arena_end,
			(unsigned long long)r->arena_peak,
			(unsigned long long)r->pending_end,
			(unsigned long long)r->pending_peak,
			(long long)r->rss_peak_kb * 1024,
			(unsigned long long)r->cand_end,
			(unsigned long long)r->cand_peak,
			(unsigned long long)r->grace_periods,
			(unsigned long long)r->defer_waits,
			(unsigned long long)r->collected,
			(unsigned long long)r->live_objects_end,
			r->shutdown_left);
	else
		fprintf(f, "      \"memory\": {\"in_use_after_setup\": %llu, "
			"\"heap_after_setup\": %llu, \"heap\": %llu, "
			"\"heap_peak\": %llu, \"in_use\": %llu, \"peak_rss\": "
			"%lld}\n    }",
			(unsigned long long)r->inuse_setup,
			(unsigned long long)r->heap_setup,
			(unsigned long long)r->heap_end,
			(unsigned long long)r->heap_peak,
			(unsigned long long)r->inuse_end,
			(long long)r->rss_peak_kb * 1024);
}

int write_summary(char *path, size_t plen)
{
	const struct result *a = g_res[SIDE_RS], *b = g_res[SIDE_BOEHM];
	const struct pstats *pa = &g_ps[SIDE_RS], *pb = &g_ps[SIDE_BOEHM];
	FILE *f = out_open(path, plen, "summary.json");
	int both = side_ok(SIDE_RS) && side_ok(SIDE_BOEHM);

	if (!f)
		return -1;
	fprintf(f, "{\n  \"config\": {\"threads\": %d, \"seconds\": %g, "
		"\"keys\": %ld, \"writes_pct\": %d, \"ring\": %d, "
		"\"heap_mb\": %ld, \"cold_records\": %ld, \"cold_in\": \"%s\", "
		"\"seed\": %llu, \"cpus\": %ld, \"out\": ", cfg.threads,
		cfg.seconds, cfg.keys, cfg.writes, cfg.ring, cfg.heap_mb,
		cfg.ballast, cfg.cold_root ? "root" : "map",
		(unsigned long long)cfg.seed, sysconf(_SC_NPROCESSORS_ONLN));
	json_str(f, cfg.out);
	fprintf(f, "},\n  \"sides\": {\n");
	json_side(f, SIDE_RS);
	fprintf(f, ",\n");
	json_side(f, SIDE_BOEHM);
	fprintf(f, "\n  },\n  \"ratios_refstore_better_above_1\": ");
	if (both)
		fprintf(f, "{\"throughput\": %.4f, \"latency_p99\": %.4f, "
			"\"latency_max\": %.4f, \"pause_p99\": %.4f, "
			"\"pause_max\": %.4f, \"ttsp_p99\": %.4f, "
			"\"time_stopped\": %.4f}",
			ratio(rps(a), rps(b)),
			ratio((double)hist_pct(&b->lat, 0.99),
			      (double)hist_pct(&a->lat, 0.99)),
			ratio((double)b->lat.max, (double)a->lat.max),
			ratio((double)pb->p99[3], (double)pa->p99[3]),
			ratio((double)pb->max[3], (double)pa->max[3]),
			ratio((double)pb->t99, (double)pa->t99),
			ratio(stopped_share(b, pb), stopped_share(a, pa)));
	else
		fprintf(f, "null");
	fprintf(f, ",\n  \"verdict\": ");
	verdict_json(f);
	fprintf(f, "\n}\n");
	return fclose(f) ? -1 : 0;
}

/* ---- the chart -------------------------------------------------------- */

/* The chart's inputs: a pause histogram (5 bins a decade, 1 us .. 100 s)
 * and the per-window latency of both sides, one row per window. */
#define PBINS 40

int write_chart_data(void)
{
	char path[PATH_MAX + 64];
	uint64_t cnt[NSIDES][PBINS];
	uint64_t n, p50, p99, mx;
	size_t i, np, w, nw = 0;
	FILE *f;
	int s, k, lo, hi;

	memset(cnt, 0, sizeof(cnt));
	for (s = 0; s < NSIDES; s++) {
		const struct result *r = g_res[s];

		if (!side_ok(s))
			continue;
		np = atomic_load(&r->npause);
		if (np > r->pause_cap)
			np = r->pause_cap;
		for (i = 0; i < np; i++) {
			double us = (double)r->pauses[i].pause_ns / 1e3;

			k = us <= 1 ? 0 : (int)floor(log10(us) * 5);
			cnt[s][k < 0 ? 0 : k >= PBINS ? PBINS - 1 : k]++;
		}
		if (r->nwin > nw)
			nw = r->nwin;
	}
	if (!(f = out_open(path, sizeof(path), "chart_pauses.dat")))
		return -1;
	fprintf(f, "# lo_us hi_us mid_us refstore boehm\n");
	for (lo = 0; lo < PBINS && !cnt[0][lo] && !cnt[1][lo]; lo++)
		;
	for (hi = PBINS - 1; hi > lo && !cnt[0][hi] && !cnt[1][hi]; hi--)
		;
	lo = lo > 0 ? lo - 1 : 0;
	hi = hi < PBINS - 1 ? hi + 1 : hi;
	for (k = lo; k <= hi; k++)
		fprintf(f, "%g %g %g %llu %llu\n", pow(10, k / 5.0),
			pow(10, (k + 1) / 5.0), pow(10, (k + 0.5) / 5.0),
			(unsigned long long)cnt[SIDE_RS][k],
			(unsigned long long)cnt[SIDE_BOEHM][k]);
	if (fclose(f))
		return -1;
	if (!(f = out_open(path, sizeof(path), "chart_latency.dat")))
		return -1;
	fprintf(f, "# time_s refstore_p99_us refstore_max_us boehm_p99_us "
		"boehm_max_us ('-': no requests)\n");
	for (w = 0; w < nw; w++) {
		int any = 0;

		for (s = 0; s < NSIDES; s++)
			any |= side_ok(s) && w < g_res[s]->nwin &&
			       g_res[s]->win[w].n;
		if (!any)
			continue;
		fprintf(f, "%.1f", (double)w / 10);
		for (s = 0; s < NSIDES; s++)
			if (side_ok(s) && window_row(g_res[s], w, &n, &p50,
						     &p99, &mx))
				fprintf(f, " %.3f %.3f", (double)p99 / 1e3,
					(double)mx / 1e3);
			else
				fprintf(f, " - -");
		fprintf(f, "\n");
	}
	return fclose(f) ? -1 : 0;
}

static int on_path(const char *prog)
{
	const char *p = getenv("PATH"), *e;
	char buf[PATH_MAX];

	if (!p)
		p = "/usr/bin:/bin";
	for (; *p; p = *e ? e + 1 : e) {
		e = strchr(p, ':');
		if (!e)
			e = p + strlen(p);
		if ((size_t)(e - p) + strlen(prog) + 2 > sizeof(buf))
			continue;
		snprintf(buf, sizeof(buf), "%.*s/%s", (int)(e - p), p, prog);
		if (e > p && access(buf, X_OK) == 0)
			return 1;
	}
	return 0;
}


void draw_chart(void)
{
	char script[PATH_MAX + 32], arg[2 * PATH_MAX + 512], png[PATH_MAX + 16];
	pid_t pid;
	int st;

	if (!on_path("gnuplot")) {
		printf("chart: skipped (gnuplot not found; apt-get install "
		       "gnuplot-nox)\n");
		return;
	}
	if (source_file("bench/demo_plot.gp", script, sizeof(script))) {
		printf("chart: skipped (bench/demo_plot.gp not found: run from "
		       "the source tree)\n");
		return;
	}
	if (strchr(cfg.out, '\'') || strchr(cfg.out, '\\')) {
		printf("chart: skipped (the --out path has a quote or a "
		       "backslash)\n");
		return;
	}
	snprintf(png, sizeof(png), "%s/demo.png", cfg.out);
	snprintf(arg, sizeof(arg), "dir='%s'; have_rs=%d; have_boehm=%d; "
		 "subtitle='%d threads, %ld keys, %d%% writes, ring %d, +%ld "
		 "MiB cold (%s), %g s per side'", cfg.out, side_ok(SIDE_RS),
		 side_ok(SIDE_BOEHM), cfg.threads, cfg.keys, cfg.writes,
		 cfg.ring, cfg.heap_mb, cfg.cold_root ? "root" : "map",
		 cfg.seconds);
	fflush(stdout);
	pid = fork();
	if (pid < 0) {
		perror("fork");
		return;
	}
	if (pid == 0) {
		execlp("gnuplot", "gnuplot", "-e", arg, script, (char *)NULL);
		perror("gnuplot");
		_exit(127);
	}
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return;
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		printf("  %s\n", png);
	else
		printf("chart: gnuplot failed (status %d)\n", st);
}
