/*
 * test_faults.c - the fault-injection sweep: every allocation site of the
 * library (RS__FAULT_* in lib/internal.h; docs/design.md §3) fails in
 * turn during one representative workload, and each
 * failure must reach the caller as a clean error and leave no damage.
 *
 * The workload (workload() below) does what a program does: a second thread
 * attaches; both threads make objects of several sizes (32, 640 and 5032
 * bytes of payload) and link them into cycles -- one through a map, one
 * through objects with finalizers, one of which resurrects itself; values
 * go into a map, weak references with callbacks watch objects that die by
 * counting and by collection, a shared field is stored with rs_set, the
 * second thread deletes a value the first one owns (its last decrement goes
 * through the owner's merge queue); then every generation is collected, the
 * heap is frozen and unfrozen, referrers are listed, map entries are
 * replaced and deleted, and everything is dropped.  Every call's result is
 * checked: a failure must be ENOMEM (anything else fails the test), and the
 * step is then skipped, the workload keeping track of what it still holds.
 *
 * The sweep: for each site and n = 1, 2, ..., the workload runs with
 * rs__fault_set(site, n) -- the n-th call of the site fails -- until a run
 * calls the site fewer than n times (the fault did not fire), or MAX_N.
 * After every run, with no fault armed: the live objects are back to the
 * baseline (nothing leaked, and the counts agree with what was freed),
 * rs_heap_verify() == 0 (logs, counts, collector logs and allocator
 * consistent), and the workload's own checks held (values read back alive,
 * each weak-reference callback run at most once, and exactly once when the
 * target is gone).  So, for every allocation the workload makes, its
 * failure is clean.  At the end rs_shutdown() returns 0; ASan builds also
 * check, with LeakSanitizer at exit, that no malloc'd memory leaked.
 *
 * Four sites fail wherever their allocation could be needed, not only
 * where it is (a new current batch, a private log append, a new target in
 * the weak-reference table, an attach), so every seal, private decrement,
 * first weak reference to an object and attach is a failure point.  Arenas and slabs are needed only
 * while the process warms up, so the sweep reaches them rarely: a directed
 * case fails a slab (tests/test_alloc.c also fails arenas).  Further
 * directed cases make the decrement that follows a weak-reference callback,
 * a referrer visit and rs_gc_garbage_clear meet a full log whose next batch
 * cannot be allocated: the reference must still be given back.
 *
 * Each site gives four TAP points (errors, heap, leaks, the sweep's end);
 * a failure names the site and n in a diagnostic.
 */
#define RS_BUILDING 1
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "testlib.h"

#define MAX_N 600		/* calls of one site in one run, at most */

static const char *const site_name[RS__FAULT_NSITES] = {
	[RS__FAULT_ARENA] = "arena",
	[RS__FAULT_SLAB] = "slab",
	[RS__FAULT_LARGE] = "large",
	[RS__FAULT_GCLOG] = "gclog",
	[RS__FAULT_OBJECT] = "object",
	[RS__FAULT_BATCH] = "batch",
	[RS__FAULT_PRIV] = "priv",
	[RS__FAULT_PUBLISH] = "publish",
	[RS__FAULT_THREAD] = "thread",
	[RS__FAULT_WEAKTAB] = "weaktab",
	[RS__FAULT_MAP] = "map",
	[RS__FAULT_MAPSNAP] = "mapsnap",
	[RS__FAULT_GCWORK] = "gcwork",
	[RS__FAULT_REFERRERS] = "referrers",
};

static const char *name_of(int site)
{
	return site_name[site] ? site_name[site] : "(unnamed)";
}

/* ---- what one run saw (both threads and the finalizers write it) ---- */

static pthread_mutex_t run_lock = PTHREAD_MUTEX_INITIALIZER;
static long run_nomem;		/* calls that failed with ENOMEM */
static long run_bad;		/* anything else wrong */
static char run_what[200];	/* the first of those */

static void complain(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void complain(const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&run_lock);
	if (!run_bad++) {
		va_start(ap, fmt);
		vsnprintf(run_what, sizeof(run_what), fmt, ap);
		va_end(ap);
	}
	pthread_mutex_unlock(&run_lock);
}

/* A call failed (fail true): fine if with ENOMEM, the step is skipped. */
static bool failed(bool fail, const char *what)
{
	int e = errno;

	if (!fail)
		return false;
	if (e == ENOMEM) {
		pthread_mutex_lock(&run_lock);
		run_nomem++;
		pthread_mutex_unlock(&run_lock);
	} else {
		complain("%s failed with errno %d (%s)", what, e, strerror(e));
	}
	return true;
}

/* ---- types: node_type (testlib.h, tracked, 32-byte payload), a wider
 * one, one over 1 KiB, one with a finalizer, and an untracked leaf ---- */

struct fat {
	struct node n;		/* first: node_traverse and node_destroy */
	char pad[608];
};

struct big {
	struct node n;
	char pad[5000];
};

static const rs_type fat_type = {
	"fat", sizeof(struct fat), node_traverse, NULL, node_destroy, 0,
};
static const rs_type big_type = {
	"big", sizeof(struct big), node_traverse, NULL, node_destroy, 0,
};

/* value 1: the finalizer resurrects the object into fin_slot; others
 * allocate an object and drop it (allocation while a collection is in
 * progress) */
static void *fin_slot;
static void *make(const rs_type *type, long value);
static void drop(void *o);

static void fin_finalize(void *obj)
{
	struct node *n = obj;

	if (n->magic != NODE_ALIVE)
		complain("finalizer of a dead object");
	if (n->value == 1)
		failed(rs_set(&fin_slot, n) != 0, "rs_set (finalizer)");
	else
		drop(make(&node_type, 0));
}

static const rs_type fin_type = {
	"fin", sizeof(struct node), node_traverse, fin_finalize, node_destroy, 0,
};

struct leaf {
	uint64_t magic;
	long value;
};

static void leaf_destroy(void *obj)
{
	__atomic_store_n(&((struct leaf *)obj)->magic, NODE_DEAD,
			 __ATOMIC_RELAXED);
}

static const rs_type leaf_type = {
	"leaf", sizeof(struct leaf), NULL, NULL, leaf_destroy, 0,
};

/* Not destroyed: the magic word of our types (maps and weak references
 * have none: taken as alive). */
static bool alive(const void *obj)
{
	const rs_type *t = rs_type_of(obj);

	if (t == &leaf_type)
		return ((const struct leaf *)obj)->magic == NODE_ALIVE;
	if (t == &node_type || t == &fat_type || t == &big_type ||
	    t == &fin_type)
		return ((const struct node *)obj)->magic == NODE_ALIVE;
	return true;
}

/* ---- tolerant helpers ---- */

static void *make(const rs_type *type, long value)
{
	void *o = rs_new(type);

	if (failed(!o, "rs_new"))
		return NULL;
	if (type == &leaf_type) {
		((struct leaf *)o)->magic = NODE_ALIVE;
		((struct leaf *)o)->value = value;
	} else {
		((struct node *)o)->magic = NODE_ALIVE;
		((struct node *)o)->value = value;
	}
	return o;
}

/* Give back a counted reference: rs_decref may fail with ENOMEM (the
 * reference is then still held), so try again. */
static void drop(void *o)
{
	int i, e;

	for (i = 0; o && rs_decref(o); i++) {
		e = errno;
		failed(true, "rs_decref");
		if (e != ENOMEM)
			return;
		if (i == 100) {
			complain("rs_decref keeps failing");
			return;
		}
	}
}

static void put(rs_map *m, const char *key, void *v)
{
	if (m && v)
		failed(rs_map_put(m, key, strlen(key), v) != 0, "rs_map_put");
}

/* A cycle of n objects through kid[0], of the types ts[i % nts]; one
 * counted reference to one of them, or NULL (nothing left behind). */
static struct node *ring(const rs_type *const *ts, int nts, int n, long value)
{
	struct node *first, *head, *x;
	int i;

	first = head = make(ts[0], value);
	if (!head)
		return NULL;
	for (i = 1; i < n; i++) {
		x = make(ts[i % nts], value + i);
		if (!x) {
			drop(head);	/* a chain so far: all of it goes */
			return NULL;
		}
		x->kid[0] = head;	/* private: plain stores */
		head = x;
	}
	first->kid[0] = rs_incref(head);
	return head;
}

/* Weak references: callbacks count into static cells (a callback may run
 * after the workload's frame is gone, on any thread's safepoint). */
#define NWEAK 4
static long cb_count[NWEAK + 1];	/* atomic; the last is the second thread's */

static void count_cb(void *wr, void *arg)
{
	(void)wr;
	__atomic_fetch_add((long *)arg, 1, __ATOMIC_RELAXED);
}

static void *weak(void *target, int i)
{
	void *w;

	if (!target)
		return NULL;
	w = rs_weakref_new(target, count_cb, &cb_count[i]);
	failed(!w, "rs_weakref_new");
	return w;
}

/* Check a weak reference and give it back: its target alive (no callback
 * yet) or gone (callback run exactly once). */
static void weak_done(void *w, int i)
{
	long n = __atomic_load_n(&cb_count[i], __ATOMIC_RELAXED);
	void *t;

	if (!w)
		return;
	t = rs_weakref_get(w);
	if (t) {
		if (!alive(t))
			complain("weak reference %d gave a dead object", i);
		if (n)
			complain("weak reference %d: callback with its "
				 "target alive", i);
		drop(t);
	} else if (n != 1) {
		complain("weak reference %d: target gone, %ld callbacks", i, n);
	}
	drop(w);
}

static int count_fn(const void *key, size_t klen, void *value, void *arg)
{
	(void)key;
	(void)klen;
	if (!alive(value))
		complain("rs_map_foreach gave a dead value");
	++*(long *)arg;
	return 0;
}

static void referrer_fn(void *obj, void *arg)
{
	if (!alive(obj))
		complain("rs_gc_get_referrers gave a dead object");
	++*(long *)arg;
}

static void collect(int gen)
{
	failed(rs_gc_collect(gen) < 0, "rs_gc_collect");
}

/* n published objects given back one by one in one interval: as many
 * entries in the decrement log, so several batches. */
static void burst(int n)
{
	void *o;
	int i;

	for (i = 0; i < n; i++) {
		if (!(o = make(&leaf_type, i)))
			continue;
		failed(rs_publish(o) != 0, "rs_publish");
		drop(o);
	}
}

/* Each thread logs pad_entries decrements of pad_obj at the start of each
 * stretch without a safepoint (a collection empties the logs), which moves
 * the workload's own decrements along the batches. */
static void *pad_obj;		/* published, owned by the main thread */
static void *gslot;		/* a global field */
static int pad_entries;

static void pad(void)
{
	int i;

	for (i = 0; i < pad_entries; i++) {
		rs_incref(pad_obj);
		drop(pad_obj);
	}
}

/* ---- the workload ---- */

struct shared {
	rs_map *m;		/* written before the thread starts */
	bool x_put;		/* ditto: the map holds "x" */
	int ready, finish;	/* atomic */
};

static void *second(void *arg)
{
	static const rs_type *const small[] = {&node_type};
	struct shared *s = arg;
	struct node *r = NULL;
	void *leaf = NULL, *w = NULL, *t;

	if (failed(rs_thread_attach() != 0, "rs_thread_attach")) {
		__atomic_store_n(&s->ready, 1, __ATOMIC_RELEASE);
		return NULL;
	}
	pad();
	r = ring(small, 1, 3, 100);
	leaf = make(&leaf_type, 101);
	put(s->m, "t1-ring", r);
	put(s->m, "t1-leaf", leaf);
	/* the first thread owns x: this decrement, applied here, queues it
	 * to its owner */
	if (s->m && s->x_put)
		failed(rs_map_del(s->m, "x", 1) != 0, "rs_map_del");
	w = weak(r, NWEAK);
	burst(40);
	__atomic_store_n(&s->ready, 1, __ATOMIC_RELEASE);
	while (!__atomic_load_n(&s->finish, __ATOMIC_ACQUIRE)) {
		rs_safepoint();	/* parks for the other thread's stops */
		sched_yield();
	}
	if (w) {	/* we hold r: the weak reference must give it */
		t = rs_weakref_get(w);
		if (t != r)
			complain("weak reference to a held object gave %p, "
				 "not %p", t, (void *)r);
		drop(t);
		drop(w);
	}
	drop(r);
	drop(leaf);
	failed(rs_thread_detach() != 0, "rs_thread_detach");
	return NULL;
}

static void workload(void)
{
	static const rs_type *const mix[] = {&node_type, &fat_type, &big_type};
	static const rs_type *const nodes[] = {&node_type};
	static const rs_type *const fins[] = {&fin_type, &node_type};
	struct shared s = {0};
	struct node *x, *a, *b, *f1, *f2, *p, *mn = NULL;
	struct leaf *l1, *l2;
	rs_map *m, *m2;
	void *w[NWEAK], *v;
	long n, c;
	pthread_t th;
	int i, r;

	for (i = 0; i <= NWEAK; i++)
		__atomic_store_n(&cb_count[i], 0, __ATOMIC_RELAXED);

	m = rs_map_new();
	failed(!m, "rs_map_new");
	s.m = m;
	/* x: owned here, held only by the map; the second thread deletes it */
	if (m && (x = make(&node_type, 1))) {
		s.x_put = rs_map_put(m, "x", 1, x) == 0;
		failed(!s.x_put, "rs_map_put");
		drop(x);
	}
	start_thread(&th, second, &s);
	settle_until(__atomic_load_n(&s.ready, __ATOMIC_ACQUIRE), 20000);
	pad();
	/* a global field holds the map too */
	failed(rs_set(&gslot, m) != 0, "rs_set");

	/* cycles: five objects of three sizes; three nodes; a finalizer that
	 * resurrects its object (f1, a self-reference); a finalizer that does
	 * not (f2, in a pair); a map and a node holding each other */
	a = ring(mix, 3, 5, 10);
	b = ring(nodes, 1, 3, 20);
	f1 = ring(fins, 1, 1, 1);
	f2 = ring(fins, 2, 2, 30);
	m2 = rs_map_new();
	failed(!m2, "rs_map_new");
	if (m2 && (mn = make(&node_type, 40))) {
		mn->kid[0] = rs_incref(m2);
		put(m2, "mn", mn);
	}
	l1 = make(&leaf_type, 50);
	l2 = make(&leaf_type, 51);
	w[0] = weak(a, 0);	/* freed by a collection */
	w[1] = weak(l1, 1);	/* freed by counting, once replaced */
	w[2] = weak(f2, 2);	/* freed by a collection after its finalizer */
	w[3] = weak(f1, 3);	/* resurrected, freed at the end */

	/* a published object's field, stored with rs_set */
	p = make(&node_type, 60);
	put(m, "p", p);
	if (p && l2)
		failed(rs_set(&p->kid[1], l2) != 0, "rs_set");
	put(m, "l1", l1);
	put(m, "a", a);
	put(m, "w1", w[1]);	/* a published weak reference */
	burst(40);

	/* drop the cycles: only the collector can free them now */
	drop(a);
	drop(b);
	drop(f1);
	drop(f2);
	drop(mn);
	drop(m2);
	drop(l1);
	collect(0);
	pad();

	/* replace an entry (l1 dies by counting) and delete one (a's cycle
	 * becomes garbage); read back */
	put(m, "l1", l2);
	if (m && rs_map_del(m, "a", 1) && errno != ENOENT)
		failed(true, "rs_map_del");
	if (m) {
		v = rs_map_get(m, "l1", 2);
		if (v && !alive(v))
			complain("rs_map_get gave a dead value");
		if (!v && errno != ENOENT)
			complain("rs_map_get: errno %d", errno);
		n = 0;
		c = rs_map_foreach(m, count_fn, &n);
		if (c != n || c != rs_map_count(m))
			complain("rs_map_foreach: %ld calls, counted %ld, "
				 "rs_map_count %ld", c, n, rs_map_count(m));
	}
	collect(1);
	if (l2) {
		n = 0;
		c = rs_gc_get_referrers(l2, referrer_fn, &n);
		if (!failed(c < 0, "rs_gc_get_referrers") && c != n)
			complain("rs_gc_get_referrers: %ld, %ld calls", c, n);
	}
	r = rs_gc_freeze();
	if (!failed(r != 0, "rs_gc_freeze"))
		failed(rs_gc_unfreeze() != 0, "rs_gc_unfreeze");
	collect(2);
	collect(2);	/* what the finalizers left */

	/* the second thread gives back what it holds and detaches */
	__atomic_store_n(&s.finish, 1, __ATOMIC_RELEASE);
	join_offline(th);
	rs_safepoint();	/* callbacks it could not run itself */
	pad();

	/* drop everything */
	for (i = 0; i < 100 && rs_clear(&fin_slot); i++)
		failed(true, "rs_clear");
	for (i = 0; i < 100 && rs_clear(&gslot); i++)
		failed(true, "rs_clear");
	for (i = 0; i < NWEAK; i++)
		weak_done(w[i], i);
	drop(p);
	drop(l2);
	if (m && rs_map_free(m)) {
		failed(true, "rs_map_free");
		drop(m);	/* on ENOMEM we still hold it */
	}
	for (i = 0; i < 3; i++) {
		collect(2);
		rs_safepoint();
	}
}

/* ---- the sweep ---- */

static long baseline;

/* Collections and safepoints until the live objects are back to the
 * baseline (a dead map's nodes go on the reclaimer); false if they are
 * not within a few seconds. */
static bool settle(void)
{
	int i;

	for (i = 0; i < 200 && live_objects() != baseline; i++) {
		rs_gc_collect(2);
		settle_until(live_objects() == baseline, 20);
	}
	return live_objects() == baseline;
}

/* What the runs of one site found. */
struct tally {
	long points;		/* runs in which the fault fired */
	long nomem;		/* ENOMEM the workload saw */
	long bad_err, bad_heap, bad_live;
	bool ended;		/* every sweep reached a run without the fault */
};

/* n = 1, 2, ... with `pad` entries logged by each thread first (see pad()),
 * until the fault does not fire. */
static void sweep(int site, int pad, struct tally *t)
{
	long n, left, v, live;
	bool done = false;

	pad_entries = pad;
	for (n = 1; n <= MAX_N && !done; n++) {
		run_nomem = run_bad = 0;
		run_what[0] = 0;
		rs__fault_set(site, n);
		workload();
		left = rs__fault_left(site);
		rs__fault_set(site, 0);
		done = left > 0;	/* called fewer than n times */
		settle();
		v = rs_heap_verify();
		live = live_objects();
		t->nomem += run_nomem;
		t->points += !done;
		if (run_bad && t->bad_err++ < 5)
			diag("%s pad=%d n=%ld: %ld problems; first: %s",
			     name_of(site), pad, n, run_bad, run_what);
		if (v && t->bad_heap++ < 5)
			diag("%s pad=%d n=%ld: rs_heap_verify found %ld problems",
			     name_of(site), pad, n, v);
		if (live != baseline && t->bad_live++ < 5)
			diag("%s pad=%d n=%ld: %ld objects live, baseline %ld",
			     name_of(site), pad, n, live, baseline);
		if (live != baseline)
			baseline = live;	/* report each leak once */
	}
	t->ended &= done;
	pad_entries = 0;
}

/* Every site; the batch site once per fill level of the current batch at
 * the start of each stretch (0 .. full), so the logging calls meet a full
 * batch. */
static long sweep_site(int site)
{
	struct tally t = {.ended = true};
	int pad, pads = site == RS__FAULT_BATCH ? (int)rs__rt.batch_entries + 1
						: 1;

	for (pad = 0; pad < pads; pad++)
		sweep(site, pad, &t);
	ok(!t.bad_err, "%s: %ld failure points, %ld ENOMEM seen by the "
	   "workload, no other error", name_of(site), t.points, t.nomem);
	ok(!t.bad_heap, "%s: rs_heap_verify() == 0 after every run",
	   name_of(site));
	ok(!t.bad_live, "%s: live objects back to the baseline after every run",
	   name_of(site));
	ok(t.ended, "%s: the sweep ended (a run did not reach the fault)",
	   name_of(site));
	return t.points;
}

/* ---- directed cases ---- */

/*
 * Internal paths that give back a counted reference after user code ran
 * (a weak-reference callback, rs_gc_get_referrers' visitor) or with no
 * error to report (rs_gc_garbage_clear) must not lose it when the log has
 * no room: make exactly their decrement need a new batch, and fail that.
 */
static void *filler;	/* published, with many counts to give back */
static long filler_refs;

static void fill_log_then_fail(void)
{
	struct rs__thread *t = rs__self();
	int i;

	/* each decrement logs one entry, until the current batch is full */
	for (i = 0; i < 1000 && (!t->cur ||
				 t->cur->n < rs__rt.batch_entries); i++)
		if (rs_decref(filler) || --filler_refs == 0)
			bail_out("rs_decref (filler)");
	rs__fault_set(RS__FAULT_BATCH, 1);
}

static long filled_calls;

static void fill_cb(void *wr, void *arg)
{
	(void)wr;
	(void)arg;
	filled_calls++;
	fill_log_then_fail();
}

static void fill_visit(void *obj, void *arg)
{
	(void)obj;
	(void)arg;
	filled_calls++;
	fill_log_then_fail();
}

static void directed_lost_decrefs(void)
{
	struct node *h, *c;
	void *target, *w;
	long live0;
	int i;

	filler = make(&leaf_type, 0);
	if (!filler || rs_publish(filler))
		bail_out("filler");
	for (filler_refs = 1; filler_refs < 5000; filler_refs++)
		rs_incref(filler);
	rs_safepoint();
	live0 = live_objects();

	/* a weak reference's callback: the decrement that follows it */
	target = make(&leaf_type, 1);
	w = rs_weakref_new(target, fill_cb, NULL);
	if (!target || !w || rs_publish(w))
		bail_out("weak reference");
	drop(target);
	filled_calls = 0;
	settle_until(filled_calls, 5000);
	ok(filled_calls == 1 && rs__fault_left(RS__FAULT_BATCH) <= 0,
	   "weak callback: its weak reference's decrement met a full log");
	rs__fault_set(RS__FAULT_BATCH, 0);
	drop(w);
	settle_until(live_objects() == live0, 2000);
	is(live_objects(), live0, "weak callback: the weak reference is "
	   "freed all the same");

	/* rs_gc_get_referrers: the decrement after each visit */
	h = make(&node_type, 2);
	c = make(&node_type, 3);
	if (!h || !c)
		bail_out("referrer");
	h->kid[0] = c;
	if (rs_publish(h))
		bail_out("rs_publish");
	filled_calls = 0;
	is(rs_gc_get_referrers(c, fill_visit, NULL), 1L,
	   "referrers: one found");
	ok(rs__fault_left(RS__FAULT_BATCH) <= 0,
	   "referrers: its decrement met a full log");
	rs__fault_set(RS__FAULT_BATCH, 0);
	drop(h);
	settle_until(live_objects() == live0, 2000);
	is(live_objects(), live0, "referrers: the referrer is freed all the "
	   "same");

	/* rs_gc_garbage_clear: the uncollectable list's references */
	rs_gc_set_debug(RS_GC_DEBUG_SAVEALL);
	h = make(&node_type, 4);
	c = make(&node_type, 5);
	if (!h || !c)
		bail_out("cycle");
	h->kid[0] = c;
	c->kid[0] = rs_incref(h);
	drop(h);
	is(rs_gc_collect(0), 2L, "garbage: a cycle of two saved");
	rs_gc_set_debug(0);
	fill_log_then_fail();
	is(rs_gc_garbage_clear(), 2L, "garbage: cleared");
	ok(rs__fault_left(RS__FAULT_BATCH) <= 0,
	   "garbage: its decrements met a full log");
	rs__fault_set(RS__FAULT_BATCH, 0);
	for (i = 0; i < 3 && live_objects() != live0; i++) {
		rs_gc_collect(2);
		settle_until(live_objects() == live0, 200);
	}
	is(live_objects(), live0, "garbage: the cycle is collected all the "
	   "same");

	while (filler_refs-- > 0)
		drop(filler);
	filler = NULL;
	ok(settle(), "directed cases: all freed");
	is(rs_heap_verify(), 0L, "directed cases: heap consistent");
}

/* No slab for a size class nobody used yet: rs_new gives NULL/ENOMEM
 * (also in sanitizer builds, whose arenas come from posix_memalign), and
 * the next one works. */
static void directed_slab(void)
{
	static const rs_type odd = {"odd", 1000 - 32, NULL, NULL, NULL, 0};
	void *o;

	rs__fault_set(RS__FAULT_SLAB, 1);
	errno = 0;
	o = rs_new(&odd);
	ok(!o && errno == ENOMEM && rs__fault_left(RS__FAULT_SLAB) <= 0,
	   "slab: a new size class's first object: NULL/ENOMEM");
	rs__fault_set(RS__FAULT_SLAB, 0);
	o = rs_new(&odd);
	ok(o != NULL, "slab: then it works");
	drop(o);
	ok(settle(), "slab: freed");
}

int main(void)
{
	rs_config cfg = {0};
	long points[RS__FAULT_NSITES], total = 0;
	uint64_t t0 = now_ns();
	int site;

	/* small batches: a run seals, and allocates, many of them */
	cfg.batch_entries = 16;
	cfg.report_leaks = 1;
	if (rs_init(&cfg) || rs_thread_attach())
		bail_out("rs_init / rs_thread_attach");
	rs_gc_disable();	/* collections only where the workload asks */
	pad_obj = make(&leaf_type, 0);
	if (!pad_obj || rs_publish(pad_obj))
		bail_out("pad_obj");

	/* warm up: the first runs allocate what later runs reuse */
	baseline = live_objects();
	workload();
	workload();
	ok(!run_bad, "warm-up runs: no error (%s)", run_bad ? run_what : "-");
	ok(settle(), "warm-up runs: live objects back to %ld", baseline);
	is(rs_heap_verify(), 0L, "warm-up runs: heap consistent");

	for (site = 0; site < RS__FAULT_NSITES; site++) {
		points[site] = sweep_site(site);
		total += points[site];
	}
	directed_slab();
	directed_lost_decrefs();
	for (site = 0; site < RS__FAULT_NSITES; site++)
		diag("site %-10s %4ld points", name_of(site), points[site]);
	diag("%ld failure points in %.2f s", total, (double)(now_ns() - t0) / 1e9);

	is(live_objects(), baseline, "live objects at the baseline");
	drop(pad_obj);
	rs_thread_detach();
	is(rs_shutdown(), 0L, "rs_shutdown: nothing left");
	return exit_status();
}
