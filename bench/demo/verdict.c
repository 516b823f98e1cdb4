/*
 * verdict.c - the demo's closing judgement: every figure a server's author
 * weighs, refstore and the Boehm GC side by side, their ratio, and whether
 * refstore met the project's goal and floor for it (docs/demo.md lists the
 * same targets):
 *
 *   row                       goal                  floor
 *   throughput                >= 1.5x Boehm's       >= Boehm's
 *   request latency p99       -                     <= Boehm's
 *   request latency max       -                     <= Boehm's
 *   longest pause             <= 1 ms               <= 5 ms and below Boehm's
 *   share of the run stopped  <= 1/5 of Boehm's     <= Boehm's
 *   peak RSS                  <= 0.8x Boehm's       <= Boehm's
 *
 * plus the number of stops of the world (no target: their cost is in the
 * rows above).  A goal counts as met only with its floor.  Every verdict is
 * computed here from the figures the run measured; a row whose figures are
 * incomplete (pauses beyond the recording buffer, no RSS reading) is "not
 * judged", never met.  The per-collection pause p99 is printed under the
 * rows as information and judges nothing: refstore makes hundreds of short
 * young collections for each of Boehm's full ones, so its percentile over
 * collections says little about what the requests felt.
 */
#include <stdio.h>
#include <string.h>

#include "demo.h"

enum { V_TPUT, V_LAT99, V_LATMAX, V_PAUSE, V_STOPPED, V_RSS, NV };
enum { U_RATE, U_NS, U_SHARE, U_BYTES };

struct vrow {
	const char *name;	/* on the terminal */
	const char *key;	/* in summary.json */
	int unit;
	const char *goal;	/* NULL: the floor is the only target */
	const char *floor;
	double rs, boehm;	/* the measured figures */
	const char *not_judged;	/* set: why there is no verdict */
	int goal_met, floor_met;
};

struct verdict {
	int judged;		/* both sides ran */
	struct vrow row[NV];
	int rows_judged, floors_met, goals, goals_met;
};

static struct vrow *row(struct verdict *v, int i, const char *name,
			const char *key, int unit, const char *goal,
			const char *floor, double rs, double boehm)
{
	struct vrow *r = &v->row[i];

	r->name = name;
	r->key = key;
	r->unit = unit;
	r->goal = goal;
	r->floor = floor;
	r->rs = rs;
	r->boehm = boehm;
	return r;
}

/* The figures of both sides, and each row's targets applied to them. */
static void verdict_compute(struct verdict *v)
{
	const struct result *a = g_res[SIDE_RS], *b = g_res[SIDE_BOEHM];
	const struct pstats *pa = &g_ps[SIDE_RS], *pb = &g_ps[SIDE_BOEHM];
	struct vrow *r;
	int i;

	memset(v, 0, sizeof(*v));
	v->judged = side_ok(SIDE_RS) && side_ok(SIDE_BOEHM);
	if (!v->judged)
		return;

	r = row(v, V_TPUT, "throughput", "throughput_req_per_s", U_RATE,
		">= 1.5x Boehm", ">= Boehm", rps(a), rps(b));
	r->floor_met = r->rs >= r->boehm;
	r->goal_met = r->rs >= 1.5 * r->boehm;

	r = row(v, V_LAT99, "request latency p99", "latency_p99_us", U_NS,
		NULL, "<= Boehm", (double)hist_pct(&a->lat, 0.99),
		(double)hist_pct(&b->lat, 0.99));
	r->floor_met = r->rs <= r->boehm;

	r = row(v, V_LATMAX, "request latency max", "latency_max_us", U_NS,
		NULL, "<= Boehm", (double)a->lat.max, (double)b->lat.max);
	r->floor_met = r->rs <= r->boehm;

	/* "below Boehm's": strictly, unless neither side stopped at all */
	r = row(v, V_PAUSE, "longest pause", "longest_pause_us", U_NS,
		"<= 1 ms", "<= 5 ms, < Boehm", (double)pa->max[3],
		(double)pb->max[3]);
	r->floor_met = r->rs <= 5e6 &&
		       (r->rs < r->boehm || (r->rs == 0 && r->boehm == 0));
	r->goal_met = r->rs <= 1e6;

	r = row(v, V_STOPPED, "share of run stopped", "stopped_share",
		U_SHARE, "<= 1/5 Boehm", "<= Boehm", stopped_share(a, pa),
		stopped_share(b, pb));
	r->floor_met = r->rs <= r->boehm;
	r->goal_met = r->rs * 5 <= r->boehm;

	r = row(v, V_RSS, "peak RSS", "peak_rss_bytes", U_BYTES,
		"<= 0.8x Boehm", "<= Boehm", (double)a->rss_peak_kb * 1024,
		(double)b->rss_peak_kb * 1024);
	r->floor_met = r->rs <= r->boehm;
	r->goal_met = r->rs <= 0.8 * r->boehm;

	if (pa->dropped || pb->dropped) {
		v->row[V_PAUSE].not_judged = "pauses not recorded";
		v->row[V_STOPPED].not_judged = "pauses not recorded";
	}
	if (a->rss_peak_kb <= 0 || b->rss_peak_kb <= 0)
		v->row[V_RSS].not_judged = "no RSS reading";

	for (i = 0; i < NV; i++) {
		r = &v->row[i];
		if (r->not_judged) {
			r->goal_met = r->floor_met = 0;
			continue;
		}
		r->goal_met = r->goal_met && r->floor_met;
		v->rows_judged++;
		v->floors_met += r->floor_met;
		v->goals += r->goal != NULL;
		v->goals_met += r->goal && r->goal_met;
	}
}

static const char *row_verdict(const struct vrow *r)
{
	if (r->not_judged)
		return "not judged";
	if (!r->goal)
		return r->floor_met ? "met" : "MISSED";
	if (r->goal_met)
		return "goal met";
	return r->floor_met ? "floor met, goal missed" : "MISSED";
}

static void fmt_value(char *buf, size_t len, int unit, double x)
{
	switch (unit) {
	case U_RATE:
		snprintf(buf, len, "%.3g M/s", x / 1e6);
		break;
	case U_NS:
		fmt_ns(buf, len, x);
		break;
	case U_SHARE:
		snprintf(buf, len, "%.2f%%", 100 * x);
		break;
	default:
		fmt_bytes(buf, len, x);
		break;
	}
}

/* Stops of the world over the run: recorded plus any beyond the buffer. */
static size_t stops(const struct pstats *ps)
{
	return ps->recorded + ps->dropped;
}

void print_verdict(void)
{
	const struct pstats *pa = &g_ps[SIDE_RS], *pb = &g_ps[SIDE_BOEHM];
	struct verdict v;
	char x[24], y[24], q[16];
	size_t na, nb;
	int i, first;

	verdict_compute(&v);
	if (!v.judged) {
		printf("\nverdict: not judged (it compares both sides, and the "
		       "%s side did not run: %s)\n", side_ok(SIDE_RS) ?
		       "Boehm GC" : "refstore", g_res[side_ok(SIDE_RS) ?
		       SIDE_BOEHM : SIDE_RS]->note);
		return;
	}
	printf("\nverdict: refstore against the Boehm GC, row by row (same "
	       "requests, values and keys; ratio = refstore / Boehm)\n");
	printf("  %-24s %11s %11s %8s  %-14s %-17s %s\n", "", "refstore",
	       "Boehm GC", "ratio", "goal", "floor", "verdict");
	for (i = 0; i < NV; i++) {
		const struct vrow *r = &v.row[i];

		fmt_value(x, sizeof(x), r->unit, r->rs);
		fmt_value(y, sizeof(y), r->unit, r->boehm);
		if (r->boehm > 0)
			snprintf(q, sizeof(q), "%.2fx", r->rs / r->boehm);
		else
			snprintf(q, sizeof(q), "-");
		printf("  %-24s %11s %11s %8s  %-14s %-17s %s", r->name, x, y,
		       q, r->goal ? r->goal : "-", r->floor, row_verdict(r));
		if (r->not_judged)
			printf(" (%s)", r->not_judged);
		printf("\n");
	}
	na = stops(pa);
	nb = stops(pb);
	snprintf(x, sizeof(x), "%zu", na);
	snprintf(y, sizeof(y), "%zu", nb);
	if (nb)
		snprintf(q, sizeof(q), "%.2fx", (double)na / (double)nb);
	else
		snprintf(q, sizeof(q), "-");
	printf("  %-24s %11s %11s %8s  %-14s %-17s no target (%.0f/s and "
	       "%.1f/s; their cost is in the rows above)\n",
	       "stops of the world", x, y, q, "-", "-",
	       (double)na / g_res[SIDE_RS]->elapsed_s,
	       (double)nb / g_res[SIDE_BOEHM]->elapsed_s);
	fmt_ns(x, sizeof(x), (double)pa->p99[3]);
	fmt_ns(y, sizeof(y), (double)pb->p99[3]);
	printf("  (information, not a verdict: pause p99 per collection "
	       "refstore %s, Boehm %s;\n   refstore's many short young "
	       "collections fill that percentile, so it says little of what "
	       "requests felt)\n", x, y);
	printf("verdict: floor met on %d of %d rows, goal met on %d of %d",
	       v.floors_met, v.rows_judged, v.goals_met, v.goals);
	first = 1;
	for (i = 0; i < NV; i++)
		if (!v.row[i].not_judged && !v.row[i].floor_met) {
			printf("%s%s", first ? "; floor missed: " : ", ",
			       v.row[i].name);
			first = 0;
		}
	for (i = 0, first = 1; i < NV; i++)
		if (v.row[i].not_judged) {
			printf("%s%s", first ? "; not judged: " : ", ",
			       v.row[i].name);
			first = 0;
		}
	printf("\n");
}

/* A figure in summary.json's units: req/s, us, a fraction, bytes. */
static void json_value(FILE *f, int unit, double x)
{
	if (unit == U_NS)
		fprintf(f, "%.3f", x / 1e3);
	else if (unit == U_SHARE)
		fprintf(f, "%.6f", x);
	else
		fprintf(f, "%.0f", x);
}

/* The same judgement as a "verdict" object of summary.json (null when a
 * side did not run). */
void verdict_json(FILE *f)
{
	const struct pstats *pa = &g_ps[SIDE_RS], *pb = &g_ps[SIDE_BOEHM];
	struct verdict v;
	int i;

	verdict_compute(&v);
	if (!v.judged) {
		fprintf(f, "null");
		return;
	}
	fprintf(f, "{\n    \"ratio\": \"refstore / Boehm\",\n    \"rows\": {\n");
	for (i = 0; i < NV; i++) {
		const struct vrow *r = &v.row[i];

		fprintf(f, "      \"%s\": {\"refstore\": ", r->key);
		json_value(f, r->unit, r->rs);
		fprintf(f, ", \"boehm\": ");
		json_value(f, r->unit, r->boehm);
		fprintf(f, ", \"ratio\": ");
		if (r->boehm > 0)
			fprintf(f, "%.4f", r->rs / r->boehm);
		else
			fprintf(f, "null");
		fprintf(f, ", \"goal\": ");
		if (r->goal)
			fprintf(f, "\"%s\"", r->goal);
		else
			fprintf(f, "null");
		fprintf(f, ", \"floor\": \"%s\", \"judged\": %s, \"goal_met\": ",
			r->floor, r->not_judged ? "false" : "true");
		if (r->goal && !r->not_judged)
			fprintf(f, "%s", r->goal_met ? "true" : "false");
		else
			fprintf(f, "null");
		fprintf(f, ", \"floor_met\": ");
		if (!r->not_judged)
			fprintf(f, "%s", r->floor_met ? "true" : "false");
		else
			fprintf(f, "null");
		fprintf(f, ", \"verdict\": \"%s\"}%s\n", row_verdict(r),
			i + 1 < NV ? "," : "");
	}
	fprintf(f, "    },\n    \"stops\": {\"refstore\": %zu, \"boehm\": %zu, "
		"\"refstore_per_s\": %.1f, \"boehm_per_s\": %.1f},\n",
		stops(pa), stops(pb), g_res[SIDE_RS]->elapsed_s > 0 ?
		(double)stops(pa) / g_res[SIDE_RS]->elapsed_s : 0.0,
		g_res[SIDE_BOEHM]->elapsed_s > 0 ?
		(double)stops(pb) / g_res[SIDE_BOEHM]->elapsed_s : 0.0);
	fprintf(f, "    \"pause_p99_per_collection_us_not_a_verdict\": "
		"{\"refstore\": %.3f, \"boehm\": %.3f},\n",
		(double)pa->p99[3] / 1e3, (double)pb->p99[3] / 1e3);
	fprintf(f, "    \"rows_judged\": %d, \"floors_met\": %d, \"goals\": %d, "
		"\"goals_met\": %d\n  }", v.rows_judged, v.floors_met, v.goals,
		v.goals_met);
}
