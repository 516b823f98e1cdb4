/*
 * gc_api.c - the collector's public surface, as Python's gc module offers it
 * (CPython keeps the same split: Modules/gcmodule.c over Python/gc.c):
 * collect, enable/disable, thresholds and counts, debug flags, freeze,
 * statistics and callbacks, introspection (tracked, referents, referrers)
 * and the uncollectable list; and the runtime's hooks (init from the
 * environment, a thread's exit, shutdown).  The algorithm is in lib/gc.c,
 * the logs in lib/gc_log.c.
 *
 * Every function needs an attached thread, as the rest of the API (EPERM
 * otherwise).  Functions that stop the world or look at the logs take the
 * collector role (G4 in lib/gc.c) first.
 */
#define RS_BUILDING 1
#include "collector.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------- */
/* The API                                                                 */
/* ---------------------------------------------------------------------- */

long rs_gc_collect(int gen)
{
	struct rs__thread *t = rs__api_thread(RS__API_ATTACHED);
	bool was_offline;
	long n;

	if (!t)
		return -1;
	if (RS_DEBUG && t->in_map_walk)
		rs__die("rs_gc_collect", NULL, "called inside rs_map_foreach (a "
			"collection is a safepoint, which ends the walk's "
			"read-side section)");
	if (gen < 0 || gen >= RS_GC_GENERATIONS) {
		errno = EINVAL;
		return -1;
	}
	if (t->gc_depth || t->no_reentry)
		return 0;	/* from a callback of a collection, or a destroy */
	was_offline = rs__load_relaxed(&t->state) != RS__T_ONLINE;
	if (was_offline)
		rs_online();
	if (!rs__gc_role_take(t, true))
		return -1;
	rs_safepoint();	/* with the role held: no automatic collection */
	n = rs__gc_collect_gen(t, gen, false);
	rs__gc_role_give(t);
	if (was_offline)
		rs_offline();
	return n;
}

int rs_gc_enable(void)
{
	if (!rs__api_thread(RS__API_ATTACHED))
		return -1;
	rs__store_relaxed(&rs__gc.enabled, 1);
	return 0;
}

int rs_gc_disable(void)
{
	if (!rs__api_thread(RS__API_ATTACHED))
		return -1;
	rs__store_relaxed(&rs__gc.enabled, 0);
	return 0;
}

int rs_gc_is_enabled(void)
{
	if (!rs__api_thread(RS__API_ATTACHED))
		return -1;
	return rs__load_relaxed(&rs__gc.enabled);
}

int rs_gc_set_threshold(long t0, long t1, long t2)
{
	if (!rs__api_thread(RS__API_ATTACHED))
		return -1;
	if (t0 < 0 || t1 < 0 || t2 < 0) {
		errno = EINVAL;
		return -1;
	}
	rs__store_relaxed(&rs__gc.threshold[0], t0);
	rs__store_relaxed(&rs__gc.threshold[1], t1);
	rs__store_relaxed(&rs__gc.threshold[2], t2);
	/* the next safepoint looks again at what is due */
	rs__store_relaxed(&rs__gc_requested, 1);
	return 0;
}

int rs_gc_get_threshold(long *t0, long *t1, long *t2)
{
	if (!rs__api_thread(RS__API_ATTACHED))
		return -1;
	if (t0)
		*t0 = rs__load_relaxed(&rs__gc.threshold[0]);
	if (t1)
		*t1 = rs__load_relaxed(&rs__gc.threshold[1]);
	if (t2)
		*t2 = rs__load_relaxed(&rs__gc.threshold[2]);
	return 0;
}

int rs_gc_get_count(long *c0, long *c1, long *c2)
{
	struct rs__thread *t = rs__api_thread(RS__API_ATTACHED);
	int64_t y;

	if (!t)
		return -1;
	if (t->gc_delta)
		rs__gc_flush_delta(t);
	y = rs__load_relaxed(&rs__gc.young_count);
	if (c0)
		*c0 = y > 0 ? (long)y : 0;
	if (c1)
		*c1 = rs__load_relaxed(&rs__gc.gen_count[1]);
	if (c2)
		*c2 = rs__load_relaxed(&rs__gc.gen_count[2]);
	return 0;
}

int rs_gc_set_debug(unsigned flags)
{
	if (!rs__api_thread(RS__API_ATTACHED))
		return -1;
	rs__store_relaxed(&rs__gc.debug_flags, flags);
	return 0;
}

unsigned rs_gc_get_debug(void)
{
	return rs__load_relaxed(&rs__gc.debug_flags);
}

/* World stopped: mark (or unmark) the permanent generation's objects, so
 * a full collection knows them without a mark pass. */
static void set_frozen(uint32_t set, uint32_t clear)
{
	struct rs__chunk *c;
	uint32_t i;
	void *o;

	for (c = rs__gc.gens[RS__GEN_PERM].first; c; c = c->next)
		for (i = 0; i < c->n; i++)
			if ((o = rs__load_relaxed(&c->ent[i])))
				rs__bits_set(rs__head_of(o), set, clear);
}

/* Take the role, stop the world and list every log of generations 0-2;
 * NULL (errno set, nothing held) on failure. */
static struct rs__logset *stop_all(struct rs__thread *t)
{
	struct rs__logset *set;

	if (!rs__gc_role_take(t, true))
		return NULL;
	rs__world_stop();
	if (!(set = rs__logset_new(2))) {
		rs__world_resume(NULL);
		rs__gc_role_give(t);
		errno = ENOMEM;
	}
	return set;
}

int rs_gc_freeze(void)
{
	struct rs__thread *t = rs__api_thread(RS__API_ATTACHED);
	struct rs__logset *set;
	size_t i;

	if (!t || !(set = stop_all(t)))
		return -1;
	for (i = 0; i < set->n; i++)
		rs__log_move(&rs__gc.gens[RS__GEN_PERM], set->v[i]);
	set_frozen(RS__B_FROZEN, 0);
	rs__gc_count_collection(2);
	rs__gc_count_candidates();
	rs__store_relaxed(&rs__gc.gen_count[1], 0);
	rs__world_resume(NULL);
	rs__gc_role_give(t);
	free(set);
	return 0;
}

int rs_gc_unfreeze(void)
{
	struct rs__thread *t = rs__api_thread(RS__API_ATTACHED);

	if (!t)
		return -1;
	if (!rs__gc_role_take(t, true))
		return -1;
	rs__world_stop();
	set_frozen(0, RS__B_FROZEN);
	rs__log_move(&rs__gc.gens[2], &rs__gc.gens[RS__GEN_PERM]);
	rs__gc_count_candidates();
	rs__world_resume(NULL);
	rs__gc_role_give(t);
	return 0;
}

static long count_live(struct rs__gclog *log)
{
	struct rs__chunk *c;
	uint32_t i;
	long n = 0;

	for (c = log->first; c; c = c->next)
		for (i = 0; i < c->n; i++)
			n += rs__load_relaxed(&c->ent[i]) != NULL;
	return n;
}

long rs_gc_get_freeze_count(void)
{
	struct rs__thread *t = rs__api_thread(RS__API_ATTACHED);
	long n;

	if (!t)
		return -1;
	if (!rs__gc_role_take(t, true))
		return -1;
	n = count_live(&rs__gc.gens[RS__GEN_PERM]);
	rs__gc_role_give(t);
	return n;
}

int rs_gc_get_stats(int gen, struct rs_gc_stats *out)
{
	if (!rs__api_thread(RS__API_ATTACHED))
		return -1;
	if (gen < 0 || gen >= RS_GC_GENERATIONS || !out) {
		errno = EINVAL;
		return -1;
	}
	pthread_mutex_lock(&rs__gc.stats_lock);
	*out = rs__gc.stats[gen];
	pthread_mutex_unlock(&rs__gc.stats_lock);
	return 0;
}

int rs_gc_add_callback(rs_gc_callback_fn fn, void *arg)
{
	int r = 0;

	if (!rs__api_thread(RS__API_ATTACHED))
		return -1;
	if (!fn) {
		errno = EINVAL;
		return -1;
	}
	pthread_mutex_lock(&rs__gc.stats_lock);
	if (rs__gc.ncallbacks == RS__GC_MAX_CALLBACKS) {
		errno = ENOMEM;
		r = -1;
	} else {
		rs__gc.callbacks[rs__gc.ncallbacks].fn = fn;
		rs__gc.callbacks[rs__gc.ncallbacks].arg = arg;
		rs__gc.ncallbacks++;
	}
	pthread_mutex_unlock(&rs__gc.stats_lock);
	return r;
}

int rs_gc_remove_callback(rs_gc_callback_fn fn, void *arg)
{
	int i, r = -1;

	if (!rs__api_thread(RS__API_ATTACHED))
		return -1;
	pthread_mutex_lock(&rs__gc.stats_lock);
	for (i = 0; i < rs__gc.ncallbacks; i++) {
		if (rs__gc.callbacks[i].fn == fn && rs__gc.callbacks[i].arg == arg) {
			memmove(&rs__gc.callbacks[i], &rs__gc.callbacks[i + 1],
				sizeof(rs__gc.callbacks[0]) * (size_t)(rs__gc.ncallbacks - i - 1));
			rs__gc.ncallbacks--;
			r = 0;
			break;
		}
	}
	pthread_mutex_unlock(&rs__gc.stats_lock);
	if (r)
		errno = ENOENT;
	return r;
}

int rs_gc_is_tracked(const void *obj)
{
	uint32_t bits;

	if (!rs__api_thread(RS__API_ATTACHED))
		return -1;
	if (!obj)
		return 0;
	bits = rs__load_relaxed(&rs__head_of(obj)->bits);
	return (bits & RS__B_TRACKED) && !(bits & (RS__B_DYING | RS__B_DEAD));
}

struct referents {
	rs_visit_fn fn;
	void *arg;
};

static void visit_referent(void *child, void *arg)
{
	struct referents *r = arg;

	if (child)
		r->fn(child, r->arg);
}

int rs_gc_get_referents(void *obj, rs_visit_fn fn, void *arg)
{
	struct referents r = {fn, arg};
	const rs_type *type;

	if (!rs__api_thread(RS__API_ATTACHED))
		return -1;
	if (!obj || !fn) {
		errno = EINVAL;
		return -1;
	}
	type = rs__head_of(obj)->type;
	if (type->traverse)
		type->traverse(obj, visit_referent, &r);
	return 0;
}

struct referrers {
	void *target;
	bool found;
};

static void visit_referrer(void *child, void *arg)
{
	struct referrers *r = arg;

	if (child == r->target)
		r->found = true;
}

long rs_gc_get_referrers(void *obj, rs_visit_fn fn, void *arg)
{
	struct rs__thread *t = rs__api_thread(RS__API_ATTACHED);
	struct rs__logset *set;
	struct referrers r = {obj, false};
	struct {
		void **v;
		size_t n, cap;
	} s = {0};
	size_t i;
	void *o, **v;
	bool failed = false;

	if (!t)
		return -1;
	if (!obj || !fn) {
		errno = EINVAL;
		return -1;
	}
	if (!(set = stop_all(t)))
		return -1;
	set->v[set->n++] = &rs__gc.gens[RS__GEN_PERM];
	RS__FOR_EACH_OBJ(set, o, {
		r.found = false;
		rs__head_of(o)->type->traverse(o, visit_referrer, &r);
		if (r.found && !failed) {
			if (s.n == s.cap) {
				s.cap = s.cap ? 2 * s.cap : 16;
				v = rs__fault(RS__FAULT_REFERRERS) ? NULL :
				    realloc(s.v, s.cap * sizeof(*v));
				if (!v) {
					failed = true;
					continue;
				}
				s.v = v;
			}
			/* counted, so it stays valid once the world runs */
			rs_incref(o);
			s.v[s.n++] = o;
		}
	});
	rs__world_resume(NULL);
	rs__gc_role_give(t);
	free(set);
	for (i = 0; i < s.n; i++) {
		if (!failed)
			fn(s.v[i], arg);
		rs__decref_or_wait(t, s.v[i]);
	}
	free(s.v);
	if (failed) {
		errno = ENOMEM;
		return -1;
	}
	return (long)s.n;
}

long rs_gc_garbage(rs_visit_fn fn, void *arg)
{
	struct rs__thread *t = rs__api_thread(RS__API_ATTACHED);
	size_t i, n;

	if (!t)
		return -1;
	if (!rs__gc_role_take(t, true))
		return -1;
	n = rs__gc.ngarbage;
	for (i = 0; fn && i < rs__gc.ngarbage; i++)
		fn(rs__gc.garbage[i], arg);
	rs__gc_role_give(t);
	return (long)n;
}

long rs_gc_garbage_clear(void)
{
	struct rs__thread *t = rs__api_thread(RS__API_ATTACHED);
	void **v;
	size_t i, n;

	if (!t)
		return -1;
	if (!rs__gc_role_take(t, true))
		return -1;
	v = rs__gc.garbage;
	n = rs__gc.ngarbage;
	rs__gc.garbage = NULL;
	rs__gc.ngarbage = rs__gc.garbage_cap = 0;
	rs__gc_role_give(t);
	for (i = 0; i < n; i++)
		rs__decref_or_wait(t, v[i]);
	free(v);
	return (long)n;
}

/* ---------------------------------------------------------------------- */
/* Runtime glue                                                            */
/* ---------------------------------------------------------------------- */

/* REFSTORE_GC_THRESHOLDS="t0,t1,t2" */
void rs__gc_init(void)
{
	const char *s = getenv("REFSTORE_GC_THRESHOLDS");
	long v[RS_GC_GENERATIONS];
	char *end;
	int i;

	if (!s || !*s)
		return;
	for (i = 0; i < RS_GC_GENERATIONS; i++) {
		v[i] = strtol(s, &end, 10);
		if (end == s || v[i] < 0)
			break;
		s = end + (*end == ',');
		if (!*end)
			break;
	}
	if (i < RS_GC_GENERATIONS - 1 || *end) {
		fprintf(stderr, "refstore: ignoring REFSTORE_GC_THRESHOLDS "
			"(expected t0,t1,t2)\n");
		return;
	}
	for (i = 0; i < RS_GC_GENERATIONS; i++)
		rs__store_relaxed(&rs__gc.threshold[i], v[i]);
}

/* Detach and rs_shutdown: the counts this thread still holds. */
void rs__gc_thread_exit(struct rs__thread *t)
{
	if (t->gc_delta)
		rs__gc_flush_delta(t);
}

/* After each collection (world running): its figures into the statistics
 * of its generation, then the callbacks, called with no lock held. */
void rs__gc_record(const struct rs_gc_info *info)
{
	struct rs_gc_stats *st = &rs__gc.stats[info->generation];
	uint64_t us = info->pause_ns / 1000;
	int b = 0, i, n;
	struct {
		rs_gc_callback_fn fn;
		void *arg;
	} cb[RS__GC_MAX_CALLBACKS];

	while (us > 1 && b < RS_GC_HIST_BUCKETS - 1) {
		us >>= 1;
		b++;
	}
	pthread_mutex_lock(&rs__gc.stats_lock);
	st->collections++;
	st->collected += (uint64_t)info->collected;
	st->uncollectable += (uint64_t)info->uncollectable;
	st->pause_total_ns += info->pause_ns;
	if (info->pause_ns > st->pause_max_ns)
		st->pause_max_ns = info->pause_ns;
	st->ttsp_total_ns += info->ttsp_ns;
	if (info->ttsp_ns > st->ttsp_max_ns)
		st->ttsp_max_ns = info->ttsp_ns;
	st->hist[b]++;
	n = rs__gc.ncallbacks;
	memcpy(cb, rs__gc.callbacks, sizeof(cb[0]) * (size_t)n);
	pthread_mutex_unlock(&rs__gc.stats_lock);
	for (i = 0; i < n; i++)
		cb[i].fn(info, cb[i].arg);
}

/* rs_stats: the collector's backlog (relaxed reads: a snapshot). */
void rs__gc_stats(struct rs_stats *out)
{
	out->gc_candidates = rs__load_relaxed(&rs__gc.candidates);
	out->gc_candidate_trigger = rs__gc_cand_trigger();
}

/* rs_shutdown, no thread attached: what is still alive stays logged, in
 * the old generations, for the next runtime (rs__gc_logs_shutdown); the
 * counts start again. */
void rs__gc_shutdown(void)
{
	rs__gc_logs_shutdown();
	rs__store_relaxed(&rs__gc.young_count, 0);
	rs__store_relaxed(&rs__gc_requested, 0);
	memset(rs__gc.gen_count, 0, sizeof(rs__gc.gen_count));
	pthread_mutex_lock(&rs__gc.stats_lock);
	memset(rs__gc.stats, 0, sizeof(rs__gc.stats));
	pthread_mutex_unlock(&rs__gc.stats_lock);
}
