/*
 * report.c - the demo's figures on the terminal: the progress line of a
 * running side (once a second), the statistics of each side's pauses, the
 * tables of requests, pauses and memory with both sides side by side.  The
 * verdict is verdict.c's, the files are files.c's.
 */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "demo.h"

struct pstats g_ps[NSIDES];

void fmt_ns(char *buf, size_t len, double ns)
{
	if (ns < 1e3)
		snprintf(buf, len, "%.0f ns", ns);
	else if (ns < 1e6)
		snprintf(buf, len, "%.3g us", ns / 1e3);
	else if (ns < 1e9)
		snprintf(buf, len, "%.3g ms", ns / 1e6);
	else
		snprintf(buf, len, "%.3g s", ns / 1e9);
}

void fmt_bytes(char *buf, size_t len, double b)
{
	if (b < 10 * 1024.0)
		snprintf(buf, len, "%.0f B", b);
	else if (b < 10 * 1048576.0)
		snprintf(buf, len, "%.0f KiB", b / 1024);
	else
		snprintf(buf, len, "%.0f MiB", b / 1048576);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of a sorted array. */
static uint64_t pct_sorted(const uint64_t *v, size_t n, double q)
{
	size_t r;

	if (!n)
		return 0;
	r = (size_t)ceil(q * (double)n);
	if (r < 1)
		r = 1;
	return v[r - 1];
}

/* Once a second: requests/s, latency p99 and max over the last second's
 * windows, collections and pauses in that second, memory. */
void progress(int side, double secs, uint64_t reqs, size_t *pseen,
		     const struct memsnap *m)
{
	static struct hist h;
	static uint64_t pv[4096];
	long w1 = (long)(secs * 10 + 0.5), w0 = w1 - 10, w;
	size_t np = 0, i, end;
	uint64_t pmax = 0;
	long gens[RS_GC_GENERATIONS] = { 0 };
	char p99[24], mx[24], pp[24], pm[24], ma[24], mb[24], mc[24];
	unsigned b;

	memset(&h, 0, sizeof(h));
	for (w = w0 < 0 ? 0 : w0; w < w1 && (size_t)w < R->nwin; w++) {
		struct window *g = &R->win[w];
		uint64_t mxw = __atomic_load_n(&g->max, __ATOMIC_RELAXED);

		for (b = 0; b < H_NB; b++)
			h.b[b] += __atomic_load_n(&g->b[b], __ATOMIC_RELAXED);
		h.n += __atomic_load_n(&g->n, __ATOMIC_RELAXED);
		if (mxw > h.max)
			h.max = mxw;
	}
	end = atomic_load(&R->npause);
	if (end > R->pause_cap)
		end = R->pause_cap;
	for (i = *pseen; i < end; i++) {
		struct pause *p = &R->pauses[i];

		if (!__atomic_load_n(&p->ready, __ATOMIC_ACQUIRE))
			break;
		if (np < sizeof(pv) / sizeof(pv[0]))
			pv[np++] = p->pause_ns;
		if (p->pause_ns > pmax)
			pmax = p->pause_ns;
		if (p->gen >= 0 && p->gen < RS_GC_GENERATIONS)
			gens[p->gen]++;
	}
	*pseen = i;
	qsort(pv, np, sizeof(pv[0]), cmp_u64);
	fmt_ns(p99, sizeof(p99), (double)hist_pct(&h, 0.99));
	fmt_ns(mx, sizeof(mx), (double)h.max);
	fmt_ns(pp, sizeof(pp), (double)pct_sorted(pv, np, 0.99));
	fmt_ns(pm, sizeof(pm), (double)pmax);
	fmt_bytes(ma, sizeof(ma), (double)m->a);
	fmt_bytes(mb, sizeof(mb), (double)m->b);
	fmt_bytes(mc, sizeof(mc), (double)m->c);
	if (side == SIDE_RS)
		printf("[refstore %3.0fs] %6.2f M req/s  p99 %-8s max %-8s | "
		       "gc %ld/%ld/%ld  pause p99 %-8s max %-8s | live %s arena "
		       "%s deferred %s\n", secs, (double)reqs / 1e6, p99, mx,
		       gens[0], gens[1], gens[2], pp, pm, ma, mb, mc);
	else
		printf("[boehm    %3.0fs] %6.2f M req/s  p99 %-8s max %-8s | "
		       "gc %ld full    pause p99 %-8s max %-8s | heap %s in use "
		       "%s\n", secs, (double)reqs / 1e6, p99, mx, gens[2], pp,
		       pm, ma, mb);
	fflush(stdout);
}

/* ---------------------------------------------------------------------- */
/* The report, once both sides have run                                     */
/* ---------------------------------------------------------------------- */

void pause_stats(const struct result *r, struct pstats *ps)
{
	size_t n = atomic_load(&r->npause), i, k;
	uint64_t *v, *tv;
	int g;

	memset(ps, 0, sizeof(*ps));
	ps->recorded = n < r->pause_cap ? n : r->pause_cap;
	ps->dropped = n - ps->recorded;
	n = ps->recorded;
	if (!n)
		return;
	if (!(v = malloc(n * sizeof(*v))) || !(tv = malloc(n * sizeof(*tv))))
		die("malloc");
	for (g = 0; g <= RS_GC_GENERATIONS; g++) {
		for (i = k = 0; i < n; i++)
			if (g == RS_GC_GENERATIONS ||
			    r->pauses[i].gen == g) {
				v[k] = r->pauses[i].pause_ns;
				tv[k] = r->pauses[i].ttsp_ns;
				ps->total[g] += v[k];
				k++;
			}
		ps->n[g] = k;
		qsort(v, k, sizeof(*v), cmp_u64);
		ps->p50[g] = pct_sorted(v, k, 0.50);
		ps->p99[g] = pct_sorted(v, k, 0.99);
		ps->max[g] = k ? v[k - 1] : 0;
		if (g == RS_GC_GENERATIONS) {
			qsort(tv, k, sizeof(*tv), cmp_u64);
			ps->t50 = pct_sorted(tv, k, 0.50);
			ps->t99 = pct_sorted(tv, k, 0.99);
			ps->tmax = k ? tv[k - 1] : 0;
		}
	}
	free(v);
	free(tv);
}

int side_ok(int s)
{
	return g_res[s]->ran && !g_res[s]->skipped;
}

uint64_t total_ops(const struct result *r)
{
	return r->ops[0] + r->ops[1] + r->ops[2] + r->ops[3];
}

double rps(const struct result *r)
{
	return r->elapsed_s > 0 ? (double)total_ops(r) / r->elapsed_s : 0;
}

static void cell_ns(uint64_t ns)
{
	char b[24];

	fmt_ns(b, sizeof(b), (double)ns);
	printf(" %10s", b);
}

static void cells_or_dash(size_t n, uint64_t a, uint64_t b, uint64_t c)
{
	if (!n) {
		printf(" %10s %10s %10s", "-", "-", "-");
		return;
	}
	cell_ns(a);
	cell_ns(b);
	cell_ns(c);
}

void print_tables(void)
{
	char b1[24], b2[24], b3[24];
	int s, g;

	printf("\n%-24s %12s %12s %10s %10s %10s %10s\n", "requests",
	       "total", "per second", "p50", "p99", "p99.9", "max");
	for (s = 0; s < NSIDES; s++) {
		const struct result *r = g_res[s];

		if (!side_ok(s)) {
			printf("%-24s %s\n", side_title[s], r->note);
			continue;
		}
		printf("%-24s %12llu %12.0f", side_title[s],
		       (unsigned long long)total_ops(r), rps(r));
		cell_ns(hist_pct(&r->lat, 0.50));
		cell_ns(hist_pct(&r->lat, 0.99));
		cell_ns(hist_pct(&r->lat, 0.999));
		cell_ns(r->lat.max);
		printf("\n");
	}
	for (s = 0; s < NSIDES; s++) {
		const struct result *r = g_res[s];

		if (!side_ok(s))
			continue;
		for (g = 0; g < NOPS; g++) {
			printf("  %-9s %-12s %12llu %12s",
			       g ? "" : side_name[s], op_name[g],
			       (unsigned long long)r->ops[g], "");
			cell_ns(hist_pct(&r->op_lat[g], 0.50));
			cell_ns(hist_pct(&r->op_lat[g], 0.99));
			cell_ns(hist_pct(&r->op_lat[g], 0.999));
			cell_ns(r->op_lat[g].max);
			printf("\n");
		}
		if (s == SIDE_RS) {
			printf("  %-9s %-12s %12s %12s", "", "rs_safepoint", "",
			       "");
			cell_ns(hist_pct(&r->sp_lat, 0.50));
			cell_ns(hist_pct(&r->sp_lat, 0.99));
			cell_ns(hist_pct(&r->sp_lat, 0.999));
			cell_ns(r->sp_lat.max);
			printf("\n");
		}
	}
	printf("(a request runs from the end of the thread's previous one: "
	       "the refstore safepoint before it, where\n a thread parks "
	       "for a stop and runs a requested collection, is part of it; "
	       "the rows under each side\n split it: the request proper by "
	       "kind, and the safepoint)\n");
	for (s = 0; s < NSIDES; s++) {
		const struct result *r = g_res[s];

		if (!side_ok(s))
			continue;
		printf("  %-9s key absent: get %.1f%%, update %.1f%%, delete "
		       "%.1f%%\n", side_name[s],
		       100.0 * (double)r->misses[OP_GET] /
		       (double)(r->ops[OP_GET] ? r->ops[OP_GET] : 1),
		       100.0 * (double)r->misses[OP_UPDATE] /
		       (double)(r->ops[OP_UPDATE] ? r->ops[OP_UPDATE] : 1),
		       100.0 * (double)r->misses[OP_DEL] /
		       (double)(r->ops[OP_DEL] ? r->ops[OP_DEL] : 1));
	}

	printf("\n%-24s %8s %10s %10s %10s %10s %10s %10s %9s\n",
	       "collector pauses", "count", "p50", "p99", "max", "ttsp p50",
	       "ttsp p99", "ttsp max", "stopped");
	for (s = 0; s < NSIDES; s++) {
		const struct pstats *ps = &g_ps[s];
		const struct result *r = g_res[s];
		char label[32];

		if (!side_ok(s))
			continue;
		if (s == SIDE_RS)
			for (g = 0; g < RS_GC_GENERATIONS; g++) {
				snprintf(label, sizeof(label), "refstore gen %d",
					 g);
				printf("%-24s %8zu", label, ps->n[g]);
				cells_or_dash(ps->n[g], ps->p50[g], ps->p99[g],
					      ps->max[g]);
				printf(" %32s %8.2f%%\n", "",
				       100.0 * (double)ps->total[g] / 1e9 /
				       r->elapsed_s);
			}
		snprintf(label, sizeof(label), "%s", s == SIDE_RS
			 ? "refstore all" : "Boehm GC (all full)");
		printf("%-24s %8zu", label, ps->n[3]);
		cells_or_dash(ps->n[3], ps->p50[3], ps->p99[3], ps->max[3]);
		cells_or_dash(ps->n[3], ps->t50, ps->t99, ps->tmax);
		printf(" %8.2f%%\n", 100.0 * (double)ps->total[3] / 1e9 /
		       r->elapsed_s);
		if (ps->dropped)
			printf("  (%zu pauses beyond the first %zu were not "
			       "recorded)\n", ps->dropped, ps->recorded);
	}
	printf("(refstore: a collection's pause is the time its world was "
	       "stopped; Boehm: one stop of the world;\n ttsp: "
	       "time-to-safepoint, from the stop request until every thread "
	       "stood still; stopped: share of the run)\n");

	printf("\nmemory\n");
	if (side_ok(SIDE_RS)) {
		const struct result *r = g_res[SIDE_RS];

		fmt_bytes(b1, sizeof(b1), (double)r->live_setup);
		printf("  refstore  live after setup %s;", b1);
		fmt_bytes(b1, sizeof(b1), (double)r->live_end);
		fmt_bytes(b2, sizeof(b2), (double)r->live_peak);
		printf(" live %s (peak %s),", b1, b2);
		fmt_bytes(b1, sizeof(b1), (double)r->arena_end);
		fmt_bytes(b2, sizeof(b2), (double)r->arena_peak);
		printf(" arenas %s (peak %s),", b1, b2);
		fmt_bytes(b1, sizeof(b1), (double)r->pending_end);
		fmt_bytes(b2, sizeof(b2), (double)r->pending_peak);
		fmt_bytes(b3, sizeof(b3), (double)r->rss_peak_kb * 1024);
		printf(" deferred %s (peak %s); peak RSS %s\n", b1, b2, b3);
		printf("            cycle candidates waiting %llu (peak %llu, "
		       "sampled each second)\n",
		       (unsigned long long)r->cand_end,
		       (unsigned long long)r->cand_peak);
		printf("            %llu grace periods (%.0f/s), %llu safepoints "
		       "waited for one (deferred bytes over the bound)\n",
		       (unsigned long long)r->grace_periods,
		       (double)r->grace_periods / r->elapsed_s,
		       (unsigned long long)r->defer_waits);
	}
	if (side_ok(SIDE_BOEHM)) {
		const struct result *r = g_res[SIDE_BOEHM];

		fmt_bytes(b1, sizeof(b1), (double)r->inuse_setup);
		fmt_bytes(b2, sizeof(b2), (double)r->heap_setup);
		printf("  Boehm GC  in use after setup %s (heap %s);", b1, b2);
		fmt_bytes(b1, sizeof(b1), (double)r->heap_end);
		fmt_bytes(b2, sizeof(b2), (double)r->heap_peak);
		fmt_bytes(b3, sizeof(b3), (double)r->rss_peak_kb * 1024);
		printf(" heap %s (peak %s); peak RSS %s\n", b1, b2, b3);
	}
	if (side_ok(SIDE_RS))
		printf("(refstore live: objects allocated and not freed, "
		       "headers included; deferred: bytes of objects whose\n"
		       " decrements wait for a grace period)\n");
	if (side_ok(SIDE_BOEHM))
		printf("(Boehm in use: heap minus free blocks, garbage not yet "
		       "swept included)\n");
}

double ratio(double a, double b)
{
	return a > 0 && b > 0 ? a / b : 0;
}

double stopped_share(const struct result *r, const struct pstats *ps)
{
	return r->elapsed_s > 0 ? (double)ps->total[3] / 1e9 / r->elapsed_s
				: 0;
}
