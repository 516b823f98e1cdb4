/*
 * test_restart.c - objects, maps and weak references that outlive
 * rs_shutdown, released by the next runtime (docs/api.md, rs_shutdown;
 * docs/design.md, "Restarting the runtime"):
 *
 *   - kept across rs_shutdown: a tracked object, a tracked cycle held from
 *     outside, a frozen object, a map with values, weak references (one
 *     whose target is kept, one whose target dies in the next runtime), an
 *     uncollectable cycle (RS_GC_DEBUG_SAVEALL), a young cycle of another
 *     thread (detached) still in its nursery;
 *   - order (a): rs_init, attach, then use and release them at once:
 *     rs_decref, rs_set into a kept object, rs_gc_collect(2), rs_map_free,
 *     rs_weakref_get, rs_gc_garbage_clear;
 *   - order (b): rs_init, attach, new objects and cycles and collections
 *     first (the new collector's logs take the memory the old ones had),
 *     then the same releases;
 *   - each once with the shutdown made by the attached thread (a last full
 *     collection moves the survivors to generation 2) and once by an
 *     unattached thread (they stay in the nurseries);
 *   - afterwards the heap verifies, everything released is freed (cycles
 *     through kept objects too: they stay in the collector), and the next
 *     rs_shutdown counts nothing alive.
 *
 * Before the fix a release after the restart read the old collector's
 * freed logs (heap-use-after-free under ASan; otherwise a lock taken in
 * freed memory: a hang or a crash); an alarm turns a hang into a failure.
 */
#include "gclib.h"

/* What one runtime leaves to the next. */
struct kept {
	struct node *solo;	/* tracked, private to a detached thread */
	struct node *holder;	/* tracked, published: rs_set into it */
	struct node *cyc;	/* one of a two-node cycle, held from outside */
	struct node *frozen;	/* in the permanent generation */
	struct node *young;	/* another thread's, in its nursery */
	struct node *target;	/* a weak reference's target, kept */
	struct node *doomed;	/* a weak reference's target, released later */
	void *wr, *wr_doomed;
	rs_map *map;		/* three values */
};

static struct kept k;
static rs_config quiet;

/* Another thread makes a young cycle, hands a counted reference to one of
 * it over and detaches. */
static void *young_thread(void *arg)
{
	(void)arg;
	rs_thread_attach();
	k.young = ring(&node_type, 2);
	rs_publish(k.young);
	rs_thread_detach();
	return NULL;
}

static void keep(void)
{
	pthread_t th;
	int i;

	k.frozen = node_new(5);
	rs_gc_collect(2);
	ok(rs_gc_freeze() == 0, "freeze what lives");
	k.solo = node_new(1);
	k.holder = node_new(2);
	rs_publish(k.holder);
	k.cyc = ring(&node_type, 2);
	rs_gc_collect(2);	/* old objects of the first runtime */
	k.target = node_new(6);
	k.wr = rs_weakref_new(k.target, NULL, NULL);
	k.doomed = node_new(7);
	k.wr_doomed = rs_weakref_new(k.doomed, NULL, NULL);
	k.map = rs_map_new();
	for (i = 0; i < 3; i++) {
		char key = (char)('a' + i);

		rs_map_put_steal(k.map, &key, 1, node_new(100 + i));
	}
	/* an uncollectable cycle: SAVEALL keeps the garbage found */
	rs_decref(ring(&node_type, 2));
	rs_gc_set_debug(RS_GC_DEBUG_SAVEALL);
	ok(rs_gc_collect(2) >= 2, "the garbage cycle is found");
	rs_gc_set_debug(0);
	ok(rs_gc_garbage(NULL, NULL) == 2, "... and kept as uncollectable");
	start_thread(&th, young_thread, NULL);
	join_offline(th);
	ok(k.young && k.young->magic == NODE_ALIVE, "another thread's young "
	   "object is handed over");
}

/* The new runtime's own work: cycles, maps, weak references, collections,
 * all of it freed again. */
static void churn(const char *when)
{
	long before = live_objects();
	struct node *a;
	rs_map *m;
	void *w;
	int i, j;

	for (i = 0; i < 20; i++) {
		m = rs_map_new();
		for (j = 0; j < 200; j++) {
			a = ring(&node_type, 2);
			w = rs_weakref_new(a->kid[0], NULL, NULL);
			rs_map_put_steal(m, &j, sizeof(j), a);
			rs_decref(w);
		}
		rs_gc_collect(i % 3);
		rs_map_free(m);
		rs_safepoint();
	}
	rs_gc_collect(2);
	settle_until(live_objects() <= before, 5000);
	ok(live_objects() <= before, "%s: the new runtime's churn is freed", when);
	is(rs_heap_verify(), 0L, "%s: the heap verifies after the churn", when);
}

/* Collect, wait for n destructions since d0, and check that there were
 * exactly n. */
static void expect_freed(long d0, long n, const char *when, const char *what)
{
	rs_gc_collect(2);
	settle_until(destroyed() >= d0 + n, 5000);
	is(destroyed(), d0 + n, "%s: %s", when, what);
}

static void release(const char *when)
{
	long d0 = destroyed();
	struct node *n, *got;

	/* a decrement that frees a kept tracked object */
	ok(rs_decref(k.solo) == 0, "%s: rs_decref on a kept object", when);
	expect_freed(d0, 1, when, "... which is freed");

	/* stores into a kept object */
	n = node_new(20);
	ok(rs_set(&k.holder->kid[0], n) == 0, "%s: rs_set into a kept object",
	   when);
	ok(rs_set(&k.holder->kid[1], k.cyc) == 0,
	   "%s: rs_set of a kept object into a kept object", when);
	rs_set(&n->kid[0], k.holder);	/* a cycle old -> new -> old */
	rs_decref(n);

	/* collections with kept objects around, referring to new ones */
	ok(rs_gc_collect(0) >= 0 && rs_gc_collect(1) >= 0 &&
	   rs_gc_collect(2) >= 0, "%s: rs_gc_collect(0, 1, 2)", when);
	ok(k.holder->magic == NODE_ALIVE && k.cyc->magic == NODE_ALIVE &&
	   k.holder->kid[0]->magic == NODE_ALIVE,
	   "%s: ... frees nothing still referenced", when);

	/* the weak references */
	got = rs_weakref_get(k.wr);
	is_ptr(got, k.target, "%s: rs_weakref_get on a kept weak reference",
	       when);
	rs_decref(got);
	d0 = destroyed();
	rs_decref(k.doomed);
	settle_until(destroyed() > d0, 5000);
	is_ptr(rs_weakref_get(k.wr_doomed), NULL,
	       "%s: ... cleared when its target dies in this runtime", when);

	/* the map */
	d0 = destroyed();
	got = rs_map_get(k.map, "b", 1);
	ok(got && got->value == 101, "%s: rs_map_get on a kept map", when);
	is(rs_map_free(k.map), 0, "%s: rs_map_free on a kept map", when);
	expect_freed(d0, 3, when, "... its values are freed");

	/* the uncollectable list: its cycle is garbage again once cleared */
	d0 = destroyed();
	is(rs_gc_garbage_clear(), 2L, "%s: rs_gc_garbage_clear", when);
	expect_freed(d0, 2, when, "... and the kept garbage is collected");

	/* the rest: a frozen object, the other thread's young cycle, a weak
	 * reference's target, the weak references */
	d0 = destroyed();
	rs_decref(k.frozen);
	rs_decref(k.young);
	rs_decref(k.target);
	rs_decref(k.wr);
	rs_decref(k.wr_doomed);
	expect_freed(d0, 4, when, "a frozen object, a young cycle, a target "
		     "are freed");

	/* cycles through old and new objects: holder -> n -> holder, and
	 * holder -> the kept cycle */
	d0 = destroyed();
	rs_decref(k.holder);
	rs_decref(k.cyc);
	expect_freed(d0, 4, when, "cycles through kept and new objects are "
		     "collected");
	is(rs_heap_verify(), 0L, "%s: the heap verifies", when);
	memset(&k, 0, sizeof(k));
}

/* One round: a runtime keeps things, the next releases them. */
static void round_trip(int order_b, int shutdown_attached)
{
	char when[64];
	long kept;

	snprintf(when, sizeof(when), "order (%c), shutdown %s", order_b ? 'b' : 'a',
		 shutdown_attached ? "attached" : "unattached");
	ok(rs_init(&quiet) == 0 && rs_thread_attach() == 0, "%s: init", when);
	keep();
	if (!shutdown_attached)
		rs_thread_detach();
	kept = rs_shutdown();
	ok(kept > 0, "%s: rs_shutdown with objects kept", when);
	ok(rs_init(&quiet) == 0 && rs_thread_attach() == 0,
	   "%s: rs_init again, attach", when);
	is(live_objects(), kept, "%s: they count as alive in the new runtime",
	   when);
	if (order_b)
		churn(when);
	release(when);
	if (order_b)
		churn(when);
	is(rs_shutdown(), 0L, "%s: the second runtime shuts down with nothing "
	   "alive", when);
}

int main(void)
{
	alarm(300);	/* a hang is a failure, not a stuck make check */
	quiet.report_leaks = -1;
	round_trip(0, 1);
	round_trip(0, 0);
	round_trip(1, 1);
	round_trip(1, 0);
	return done_testing();
}
