/*
 * runtime.c - the top layer: start and stop the runtime (rs_init,
 * rs_shutdown, configuration from the environment), statistics (rs_stats)
 * and the leak report.  Everything below it (lib/base.c up to the collector)
 * is called from here; nothing calls up into it but rs__ensure_init (the
 * first attach starts the runtime).  The configuration it sets, rs__rt, is
 * defined in lib/base.c.
 */
#define RS_BUILDING 1
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;

/* Objects and bytes alive when the runtime last stopped: they stay alive
 * (and may be released) in the next one, so its live counts start from
 * them.  Sync: written by rs_shutdown under init_lock, read by rs_stats
 * (relaxed). */
static uint64_t carried[2];

#define DEFAULT_DEFER_LIMIT ((size_t)1 << 20)
#define DEFAULT_BATCH 2048
#define MIN_BATCH 16
#define MAX_BATCH (1 << 20)
#define DEFAULT_ARENA_RETAIN ((size_t)4 << 20)

/* ---------------------------------------------------------------------- */
/* Start and stop                                                          */
/* ---------------------------------------------------------------------- */

/* A size from the environment: digits with an optional k, m or g. */
static size_t env_size(const char *name, size_t dflt)
{
	const char *s = getenv(name);
	char *end;
	unsigned long long v;

	if (!s || !*s)
		return dflt;
	v = strtoull(s, &end, 10);
	switch (*end) {
	case 'k': case 'K': v <<= 10; end++; break;
	case 'm': case 'M': v <<= 20; end++; break;
	case 'g': case 'G': v <<= 30; end++; break;
	}
	if (*end) {
		fprintf(stderr, "refstore: ignoring %s=%s (not a size)\n", name, s);
		return dflt;
	}
	return (size_t)v;
}

static void fork_install(void)
{
	rs__fork_install();
}

static int init_locked(const rs_config *cfg)
{
	size_t batch;

	if (rs__rt.initialized) {
		errno = EEXIST;
		return -1;
	}
	rs__rt.defer_limit = cfg && cfg->defer_limit_bytes
		? cfg->defer_limit_bytes
		: env_size("REFSTORE_DEFER_LIMIT", DEFAULT_DEFER_LIMIT);
	batch = cfg && cfg->batch_entries ? cfg->batch_entries
					  : env_size("REFSTORE_BATCH", DEFAULT_BATCH);
	if (batch < MIN_BATCH || batch > MAX_BATCH) {
		errno = EINVAL;
		return -1;
	}
	rs__rt.batch_entries = batch;
	rs__rt.report_leaks = cfg && cfg->report_leaks
		? cfg->report_leaks
		: (env_size("REFSTORE_REPORT_LEAKS", 1) ? 1 : -1);
	rs__rt.arena_retain = cfg && cfg->arena_retain_bytes
		? cfg->arena_retain_bytes
		: env_size("REFSTORE_ARENA_RETAIN", DEFAULT_ARENA_RETAIN);
	rs__rt.stall_ns = (uint64_t)env_size("REFSTORE_STALL_MS", 100) * 1000000u;
	rs__gc_init();
	pthread_once(&fork_once, fork_install);
	rs__store_release(&rs__rt.initialized, 1);
	return 0;
}

int rs_init(const rs_config *cfg)
{
	int rc;

	pthread_mutex_lock(&init_lock);
	rc = init_locked(cfg);
	pthread_mutex_unlock(&init_lock);
	return rc;
}

int rs__ensure_init(void)
{
	int rc = 0;

	if (rs__load_acquire(&rs__rt.initialized))
		return 0;
	pthread_mutex_lock(&init_lock);
	if (!rs__rt.initialized)
		rc = init_locked(NULL);
	pthread_mutex_unlock(&init_lock);
	return rc;
}

/* Leaks by type, found by the heap walk (no thread is attached). */
#define LEAK_TYPES 32
struct leaks {
	const rs_type *type[LEAK_TYPES];
	size_t n[LEAK_TYPES], bytes[LEAK_TYPES];
	size_t other;
};

static void leak_visit(void *obj, void *arg)
{
	struct leaks *l = arg;
	const rs_type *type = rs__head_of(obj)->type;
	unsigned i;

	for (i = 0; i < LEAK_TYPES && l->type[i] && l->type[i] != type; i++)
		;
	if (i == LEAK_TYPES) {
		l->other++;
		return;
	}
	l->type[i] = type;
	l->n[i]++;
	l->bytes[i] += rs__obj_bytes(obj);
}

static void leak_report(void)
{
	struct leaks l;
	unsigned i;

	memset(&l, 0, sizeof(l));
	rs__heap_walk(leak_visit, &l);
	for (i = 0; i < LEAK_TYPES && l.type[i]; i++)
		fprintf(stderr, "refstore: rs_shutdown:   %zu of type '%s' "
			"(%zu bytes)\n", l.n[i],
			l.type[i]->name ? l.type[i]->name : "?", l.bytes[i]);
	if (l.other)
		fprintf(stderr, "refstore: rs_shutdown:   %zu of other types\n",
			l.other);
}

long rs_shutdown(void)
{
	struct rs_stats st;
	long live;

	if (!rs__runtime_up()) {
		errno = EINVAL;
		return -1;
	}
	if (rs__self() && rs__attached_count() == 1)
		rs_gc_collect(RS_GC_GENERATIONS - 1);	/* the last cycles */
	if (rs__self() && rs_thread_detach())
		return -1;
	if (rs__attached_count()) {
		errno = EBUSY;
		return -1;
	}
	rs__defer_apply_orphans();
	rs__gc_shutdown();
	rs__reclaim_stop();
	rs__quarantine_flush();
	rs_stats(&st);
	live = (long)st.live_objects;
	if (live && rs__rt.report_leaks > 0) {
		fprintf(stderr, "refstore: rs_shutdown: %ld objects (%zu bytes) "
			"still alive\n", live, st.live_bytes);
		leak_report();
	}
	pthread_mutex_lock(&init_lock);
	/* forget the retired counters (the thread records stay for reuse) */
	rs__lock(&rs__registry_lock);
	memset(&rs__retired, 0, sizeof(rs__retired));
	rs__store_relaxed(&rs__unattached_freed[0], 0);
	rs__store_relaxed(&rs__unattached_freed[1], 0);
	rs__unlock(&rs__registry_lock);
	rs__store_relaxed(&carried[0], (uint64_t)st.live_objects);
	rs__store_relaxed(&carried[1], (uint64_t)st.live_bytes);
	rs__world_reset();
	rs__store_release(&rs__rt.initialized, 0);
	pthread_mutex_unlock(&init_lock);
	return live;
}

/* ---------------------------------------------------------------------- */
/* Statistics                                                              */
/* ---------------------------------------------------------------------- */

static void counters_add(struct rs__counters *sum, const struct rs__counters *c)
{
	uint64_t pbm = rs__pending_peak(c);
	uint64_t pb = rs__load_relaxed(&c->pending_bytes);

	sum->allocated += rs__load_relaxed(&c->allocated);
	sum->freed += rs__load_relaxed(&c->freed);
	sum->bytes_allocated += rs__load_relaxed(&c->bytes_allocated);
	sum->bytes_freed += rs__load_relaxed(&c->bytes_freed);
	sum->pending += rs__load_relaxed(&c->pending);
	sum->pending_bytes += pb;
	sum->batches_sealed += rs__load_relaxed(&c->batches_sealed);
	sum->defer_waits += rs__load_relaxed(&c->defer_waits);
	sum->merges_queued += rs__load_relaxed(&c->merges_queued);
	sum->merges_on_the_spot += rs__load_relaxed(&c->merges_on_the_spot);
	if (pbm > sum->pending_bytes_max)
		sum->pending_bytes_max = pbm;
}

int rs_stats(struct rs_stats *out)
{
	struct rs__counters sum;
	uint32_t slot;

	if (!out) {
		errno = EINVAL;
		return -1;
	}
	memset(out, 0, sizeof(*out));
	memset(&sum, 0, sizeof(sum));
	rs__lock(&rs__registry_lock);
	counters_add(&sum, &rs__retired);
	for (slot = 1; slot <= rs__load_acquire(&rs__nslots); slot++)
		counters_add(&sum, &rs__slots[slot]->c);
	rs__unlock(&rs__registry_lock);
	sum.freed += rs__load_relaxed(&rs__unattached_freed[0]);
	sum.bytes_freed += rs__load_relaxed(&rs__unattached_freed[1]);
	out->attached_threads = rs__attached_count();

	/* counters of different threads are read at slightly different
	 * moments: clamp rather than report a wrapped difference.  Objects
	 * that outlived the last rs_shutdown count as alive until freed. */
	out->objects_allocated = sum.allocated;
	out->objects_freed = sum.freed;
	sum.allocated += rs__load_relaxed(&carried[0]);
	sum.bytes_allocated += rs__load_relaxed(&carried[1]);
	out->live_objects = sum.allocated > sum.freed ? sum.allocated - sum.freed : 0;
	out->live_bytes = sum.bytes_allocated > sum.bytes_freed
		? sum.bytes_allocated - sum.bytes_freed : 0;
	out->pending_decrements = sum.pending;
	out->pending_bytes = sum.pending_bytes;
	out->pending_bytes_max = sum.pending_bytes_max;
	out->defer_limit_bytes = rs__rt.defer_limit;
	out->batches_sealed = sum.batches_sealed;
	out->defer_waits = sum.defer_waits;
	out->merges_queued = sum.merges_queued;
	out->merges_on_the_spot = sum.merges_on_the_spot;
	rs__reclaim_stats(&out->grace_periods, &out->gp_latency_avg_ns,
			  &out->gp_latency_max_ns);
	rs__alloc_stats(out);
	rs__gc_stats(out);
	rs__world_stats(&out->world_stops, &out->ttsp_max_ns, &out->ttsp_total_ns,
			&out->pause_max_ns, &out->pause_total_ns,
			&out->world_stops_given_up);
	return 0;
}
