/*
 * demo.h - the demo (make demo): refstore doing its main job: a multi-threaded server keeps a map
 * of shared object graphs, its worker threads serve a stream of requests
 * against it, and garbage (cycles included) is freed while they run.  The
 * same workload then runs on the Boehm GC, in the same run, and the two are
 * compared: throughput, request latency, collector pauses and
 * time-to-safepoint under contention.  Not a test: it prints numbers and
 * ratios, never pass/fail on a timing; it does check its own results (every
 * value read is verified, and the refstore side must give back every object
 * at the end), and exits 1 if they are wrong.
 *
 * The workload (docs/demo.md has the full description).  A map from keys
 * "k<id>" (--keys of them) to values; --heap-mb adds cold records that
 * requests never touch, so the old generation is large (entries "b<id>" of
 * the same map, or with --cold root held by one array).  A value is a
 * record with a ring of --ring nodes that point to each other and back to
 * the record (a cycle), and a leaf payload:
 *
 *      record {ring, leaf, key, ver} --ring--> node0 -next-> node1 -> node2
 *        ^  |                                   ^                      |
 *        |  +--leaf--> leaf {key, ver, sum,     +--------next----------+
 *        |                   payload[40]}       every node: owner --> record
 *
 * Each worker (--threads, default one per online CPU) loops: pick a request
 * (get with probability 1 - writes; put, update, delete in the ratio
 * 40:50:10 of the writes) and a uniformly random key, serve it, repeat:
 *
 *   get     look the key up (refstore: rs_map_get, borrowed), walk the whole
 *           value: the ring must close after --ring nodes, each node's tag and
 *           owner must match, the leaf's key and payload sum must match;
 *           fold it into a checksum.  A mismatch is counted as an error.
 *   put     build a new value, insert it (replacing: the old value and its
 *           ring become cyclic garbage).
 *   update  look the key up and replace the leaf (acyclic garbage) or the
 *           whole ring (cyclic garbage) of the shared record, by a store into
 *           the record (refstore: rs_set_steal).
 *   delete  remove the key; a later put brings it back.
 *
 * A refstore worker calls rs_safepoint() before each request.  A request's
 * latency runs from the end of the previous request on that thread to the
 * end of this one, so it includes the safepoint (where a refstore thread
 * parks while the world is stopped, and where a requested collection runs)
 * and, on the Boehm side, any time the thread spent suspended by a
 * collection's signal.  Latencies go into per-thread log-linear histograms
 * (32 sub-buckets per power of two: within 3%), merged at the end, and into
 * per-100 ms window histograms for the time series.
 *
 * Sides.  Each runs in its own child process, forked before either runtime
 * is initialised, so the heaps and RSS are separate; results come back
 * through a MAP_SHARED mapping.  refstore: the map is rs_map (lock-free
 * reads, cds_lfht), values are refstore objects (record and ring nodes
 * tracked by the cycle collector, the leaf untracked), collection is the
 * library's automatic generational collection with default thresholds;
 * pauses come from rs_gc_add_callback.  Boehm: the map is a chained hash
 * table whose buckets and nodes are GC_MALLOC'd, guarded by 256 striped
 * rwlocks; values are GC_MALLOC'd (the leaf GC_MALLOC_ATOMIC), nothing is
 * counted; Boehm's default configuration (stop-the-world, parallel mark);
 * pauses from GC_set_on_collection_event (pre-stop to post-start of the
 * world).
 *
 * Output: progress once a second (unless --quiet), then tables with both
 * sides side by side, the ratios, and files in --out: pauses and latency
 * windows (CSV or JSON), summary.json, and demo.png drawn by gnuplot with
 * bench/demo_plot.gp when gnuplot is installed.  Run with --help for the
 * flags.
 *
 * The files of bench/demo/, one concern each, and what they share here:
 *
 *   workload.c    the configuration, keys and values, the request mix, the
 *                 histograms, the results in shared memory, the workers'
 *                 request loop and the clock of a side's run (monitor)
 *   rs_side.c     the refstore side: its values, map, requests and checks
 *   boehm_side.c  the Boehm GC side (built with -DHAVE_BOEHM when libgc is
 *                 there; without it the side is skipped and says why)
 *   report.c      statistics of the pauses, the progress lines, the tables
 *   verdict.c     the closing verdict: each row a server sees, refstore and
 *                 Boehm side by side, met or missed against the targets
 *   files.c       the raw samples (CSV or JSON), summary.json, the chart
 *   main.c        the options, and each side run in a child process
 *
 * bench.h's stop flag g_stop is a static, so each file has its own: only
 * workload.c raises it (monitor) and reads it (the request loop).
 */
#ifndef RS_BENCH_DEMO_H
#define RS_BENCH_DEMO_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "refstore.h"
#include "../bench.h"

/* ---------------------------------------------------------------------- */
/* Configuration (workload.c)                                              */
/* ---------------------------------------------------------------------- */

enum { SIDE_RS, SIDE_BOEHM, NSIDES };
extern const char *const side_name[NSIDES];
extern const char *const side_title[NSIDES];

enum { OP_GET, OP_PUT, OP_UPDATE, OP_DEL, NOPS };
extern const char *const op_name[NOPS];

#define MAX_THREADS 1024
#define MAX_RING 64
#define MAX_SECONDS 3600
#define WINDOW_NS 100000000ull		/* latency time series: 100 ms */
#define BALLAST_BIT (1ull << 47)	/* key ids of the cold entries */
#define KEY_BUF 24

/* Set by main.c from the options before either side starts; read only
 * after that. */
struct demo_cfg {
	int threads;
	double seconds;
	long keys;
	int writes;		/* percent of requests that write */
	int ring;
	long heap_mb;
	int sides[NSIDES];
	uint64_t seed;
	const char *out;
	int quiet;
	int json;
	long ballast;		/* records, from heap_mb */
	int cold_root;		/* --cold root: held by an array, not the map */
	unsigned thr_get, thr_put, thr_upd;	/* of 10000: op thresholds */
};
extern struct demo_cfg cfg;

/* ---------------------------------------------------------------------- */
/* Random numbers: splitmix64 to seed (workload.c), xorshift64* per thread */
/* ---------------------------------------------------------------------- */

uint64_t splitmix(uint64_t *s);

static inline uint64_t rnd(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dull;
}

/* A value in [0, n): the high half of the product (n < 2^32). */
static inline uint64_t rnd_below(uint64_t *s, uint64_t n)
{
	return ((rnd(s) >> 32) * n) >> 32;
}

/* ---------------------------------------------------------------------- */
/* Keys: "k<id>" for request keys, "b<id>" for the cold entries             */
/* ---------------------------------------------------------------------- */

static inline size_t key_of(char *buf, uint64_t id)
{
	char tmp[KEY_BUF];
	uint64_t v = id & ~BALLAST_BIT;
	size_t n = 0, k = 0;

	buf[k++] = (id & BALLAST_BIT) ? 'b' : 'k';
	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		buf[k++] = tmp[--n];
	return k;
}

/* Parses a key back into its id; UINT64_MAX if it is not one of ours. */
uint64_t id_of_key(const void *key, size_t klen);

/* The values' contents, the same on both sides. */
static inline uint64_t node_tag(uint64_t key, int i)
{
	return (key << 8) | (uint64_t)i;
}

#define PAYLOAD 40

static inline uint64_t fill_payload(unsigned char *p, uint64_t key,
				    uint64_t ver)
{
	uint64_t sum = key;
	int i;

	for (i = 0; i < PAYLOAD; i++) {
		p[i] = (unsigned char)(key * 131 + ver * 7 + (uint64_t)i);
		sum += p[i];
	}
	return sum;
}

static inline uint64_t sum_payload(const unsigned char *p, uint64_t key)
{
	uint64_t sum = key;
	int i;

	for (i = 0; i < PAYLOAD; i++)
		sum += p[i];
	return sum;
}

/* Both sides' checks of every entry at the end. */
struct verify {
	long entries, bad, ballast;
	uint64_t sum;
};

/* ---------------------------------------------------------------------- */
/* Log-linear histograms of nanoseconds (workload.c)                        */
/* ---------------------------------------------------------------------- */

#define H_SUB_BITS 5
#define H_SUB (1u << H_SUB_BITS)		/* sub-buckets per power of 2 */
#define H_TOP 40				/* up to 2^40 ns (18 minutes) */
#define H_NB ((H_TOP - H_SUB_BITS + 1) * H_SUB)	/* 1152 */

static inline unsigned h_index(uint64_t v)
{
	unsigned e;

	if (v < H_SUB)
		return (unsigned)v;
	if (v >= (1ull << H_TOP))
		v = (1ull << H_TOP) - 1;
	e = 63u - (unsigned)__builtin_clzll(v);
	return (e - H_SUB_BITS + 1) * H_SUB +
	       (unsigned)((v >> (e - H_SUB_BITS)) & (H_SUB - 1));
}

struct hist {
	uint64_t n, max, sum;
	uint64_t b[H_NB];
};

static inline void hist_add(struct hist *h, uint64_t v)
{
	h->n++;
	h->sum += v;
	if (v > h->max)
		h->max = v;
	h->b[h_index(v)]++;
}

void hist_merge(struct hist *to, const struct hist *from);
/* Nearest-rank percentile q (0..1), clamped to the largest value seen. */
uint64_t hist_pct(const struct hist *h, double q);

/* ---------------------------------------------------------------------- */
/* Results, in memory shared with the parent (workload.c)                  */
/* ---------------------------------------------------------------------- */

/* One stop of the world (Boehm) or one collection (refstore). */
struct pause {
	uint64_t t_ns;		/* from the start of the run */
	uint64_t pause_ns;
	uint64_t ttsp_ns;
	int32_t gen;		/* Boehm: always 2 (full) */
	uint32_t ready;		/* written last, with release */
};

/* 100 ms of requests, summed over the threads (atomic adds). */
struct window {
	uint64_t n, max;
	uint32_t b[H_NB];
};

struct result {
	int ran;		/* the side ran to its end */
	int skipped;		/* not built in, or not asked for */
	long errors;		/* values read back wrong */
	long check_failed;	/* self-checks at the end that failed */
	char note[512];		/* skip reason, failures */
	char version[96];
	double elapsed_s, setup_s;
	long records, ballast;
	uint64_t ops[NOPS], misses[NOPS], checksum;
	struct hist lat;	/* whole requests */
	struct hist op_lat[NOPS];	/* the request proper, per kind */
	struct hist sp_lat;	/* the safepoint before it (refstore) */
	/* memory: refstore (rs_stats) */
	uint64_t live_setup, live_end, live_peak, arena_end, arena_peak,
		 pending_end, pending_peak, live_objects_end;
	uint64_t cand_end, cand_peak;	/* refstore: the collector's backlog */
	/* memory: Boehm */
	uint64_t heap_setup, heap_end, heap_peak, inuse_setup, inuse_end;
	long rss_peak_kb;
	long shutdown_left;	/* refstore: rs_shutdown()'s result */
	uint64_t collected;	/* refstore: objects the collector freed */
	uint64_t grace_periods, defer_waits;	/* refstore, during the run */
	/* the raw samples, after this header in the mapping */
	size_t pause_cap, nwin;
	_Atomic size_t npause;	/* reserved, may exceed pause_cap */
	struct pause *pauses;
	struct window *win;
	size_t map_bytes;
};

extern struct result *g_res[NSIDES];
extern struct result *R;		/* the side this child runs */
extern uint64_t g_run_start;		/* ns, the run's time origin */
extern atomic_int g_recording;		/* pauses count from now on */

struct result *result_new(void);
void pause_add(uint64_t t_ns, int gen, uint64_t pause_ns, uint64_t ttsp_ns);
/* A self-check that failed: noted in R and printed as a WRONG line. */
void fail(const char *fmt_what, long got, long want);

/* ---------------------------------------------------------------------- */
/* Workers and the run of a side (workload.c)                              */
/* ---------------------------------------------------------------------- */

struct worker {
	_Alignas(64) int id;
	int side;
	pthread_t th;
	uint64_t rng;
	uint64_t ver;		/* versions this thread gives its values */
	_Atomic uint64_t done;	/* requests, for progress */
	uint64_t ops[NOPS], misses[NOPS], errors, checksum;
	struct hist lat, op_lat[NOPS], sp_lat;
	/* the current window, flushed to R->win when the next one starts */
	long wcur;
	uint64_t wn, wmax;
	unsigned wlo, whi;
	uint32_t wb[H_NB];
};

extern struct worker *g_workers;
extern pthread_barrier_t g_go;

/* One request of either side: returns 0, 1 for a miss, -1 if the value
 * read back was wrong. */
typedef int (*request_fn)(struct worker *w, int op, uint64_t key);

/* The loop every worker runs until the monitor raises the stop flag;
 * safepoints: call rs_safepoint() before each request. */
void request_loop(struct worker *w, request_fn req, int safepoints);

struct memsnap {
	uint64_t a, b, c, d;	/* refstore: live, arena, pending, cycle
				   candidates; Boehm: heap, in use, -, - */
};

typedef void (*memsnap_fn)(struct memsnap *m);

/* A side's main thread: start the workers (held at g_go), start the clock
 * and release them, run the clock until the end (progress, memory peaks,
 * then the stop flag), join them and gather their figures into R. */
void start_workers(void *(*fn)(void *), int side,
		   int (*create)(pthread_t *, const pthread_attr_t *,
				 void *(*)(void *), void *));
void go(void);
void monitor(int side, memsnap_fn snap, struct memsnap *peak);
void join_workers(void);
void collect_workers(void);
long rss_peak_kb(void);

/* ---------------------------------------------------------------------- */
/* The sides (rs_side.c, boehm_side.c)                                      */
/* ---------------------------------------------------------------------- */

int run_refstore(void);
/* Bytes of one record in refstore's accounting (sizes --heap-mb). */
double rs_record_bytes(void);

/* NULL when the Boehm side is built in; else why it is skipped. */
const char *boehm_skip_reason(void);
#ifdef HAVE_BOEHM
int run_boehm(void);
#endif

/* ---------------------------------------------------------------------- */
/* Statistics and the report (report.c)                                     */
/* ---------------------------------------------------------------------- */

/* Everything the report needs of one side's pauses. */
struct pstats {
	size_t n[RS_GC_GENERATIONS + 1];	/* per generation; [3]: all */
	uint64_t p50[4], p99[4], max[4], total[4];
	uint64_t t50, t99, tmax;		/* time-to-safepoint, all */
	size_t recorded, dropped;
};

extern struct pstats g_ps[NSIDES];

void fmt_ns(char *buf, size_t len, double ns);
void fmt_bytes(char *buf, size_t len, double b);
void progress(int side, double secs, uint64_t reqs, size_t *pseen,
	      const struct memsnap *m);
void pause_stats(const struct result *r, struct pstats *ps);
int side_ok(int s);
uint64_t total_ops(const struct result *r);
double rps(const struct result *r);
double ratio(double a, double b);
double stopped_share(const struct result *r, const struct pstats *ps);
void print_tables(void);

/* ---------------------------------------------------------------------- */
/* The verdict: every row against the targets (verdict.c)                  */
/* ---------------------------------------------------------------------- */

void print_verdict(void);
/* summary.json's "verdict": an object, or null when a side did not run */
void verdict_json(FILE *f);

/* ---------------------------------------------------------------------- */
/* Files in --out (files.c)                                                 */
/* ---------------------------------------------------------------------- */

int mkdirs(const char *path);
/* pauses.* and latency.*; their paths in paths */
int write_raw(char *paths, size_t plen);
int write_summary(char *path, size_t plen);
int write_chart_data(void);
void draw_chart(void);

#endif /* RS_BENCH_DEMO_H */
