/*
 * stress_counts.c - biased and deferred reference counts under hand-offs
 * and thread churn.
 *
 * Every worker thread (a generation of a lane: it attaches, runs a random
 * number of operations, hands everything it holds to others and exits,
 * and the lane starts the next one) creates objects, takes and gives back
 * counted references, and hands references to other threads: as parcels in
 * per-lane mailboxes, or by swapping them through a shared array of slots.
 * Objects are counted by their owner with plain stores and by everyone
 * else on the shared word; non-owners' decrements are logged and applied
 * after a grace period, and when one takes the shared part below zero the
 * object goes to its owner's queue, or is merged on the spot when the owner
 * is offline (workers go offline now and then) or gone (every worker
 * exits owning objects that others still hold).
 *
 * The program keeps its own count of the references it holds to each
 * object (the shadow count, raised after each rs_incref and lowered before
 * each rs_decref) and proves:
 *   - no object is destroyed while the program still holds a reference to
 *     it (destroy finds the shadow count at zero);
 *   - destroy runs once per object (a per-object flag; and in total,
 *     destroys == creations at the end);
 *   - a private object its creator alone ever held has exactly the count
 *     the program gave it, at any time (rs_refcount == shadow);
 *   - once every worker has exited (their decrements applied, their queues
 *     merged), every object the mailboxes and slots still hold has
 *     rs_refcount equal to the references held, the shadow count agrees,
 *     and rs_stats counts exactly those objects as live;
 *   - rs_heap_verify finds nothing wrong while the workers run (lane 0
 *     calls it now and then, and runs rs_gc_collect(0), which applies every
 *     thread's decrements and merges every queue with the world stopped);
 *   - after the last references are dropped every object is destroyed and
 *     rs_shutdown finds nothing alive.
 *
 * The rule for unpublished objects (docs/design.md, section 6) is kept: an
 * object that is not published travels only as a parcel of all the
 * references its holder has ("move"); one whose references are shared
 * between threads is published first.
 */
#include "stress.h"

#define ALIVE 0xa11ce0b1ec7a11ceULL
#define DEAD 0xdeadc0dedeadc0deULL

#define NSLOTS 64	/* shared slots, each one counted reference or NULL */
#define MAXHOLD 48	/* parcels a worker holds */
#define BOX_FULL 512	/* a mailbox this full receives no more */

struct cobj {
	uint64_t magic;		/* ALIVE, DEAD once destroyed. Sync: atomic */
	uint64_t id;		/* Sync: immutable after creation */
	atomic_long shadow;	/* references the program holds */
	atomic_int destroyed;	/* set by destroy */
	atomic_int published;	/* the program called rs_publish */
	atomic_int handed;	/* has left its creator's hands once */
};

static struct stress_counter c_ops = { "ops", 0 }, c_objects = { "objects", 0 },
	c_destroyed = { "destroyed", 0 }, c_parcels = { "parcels", 0 },
	c_swaps = { "swaps", 0 }, c_gens = { "threads", 0 },
	c_offline = { "offline", 0 }, c_exact = { "exact_checks", 0 },
	c_verify = { "verifies", 0 }, c_queued = { "merges_queued", 0 },
	c_spot = { "merges_on_the_spot", 0 };

static _Atomic uint64_t next_id;
static _Atomic(struct cobj *) slots[NSLOTS];
static struct stress_box boxes[256];
static uint64_t next_world;	/* lane 0's generations only, one at a time */

static void cobj_destroy(void *p)
{
	struct cobj *o = p;
	uint64_t magic = __atomic_load_n(&o->magic, __ATOMIC_RELAXED);
	long shadow = atomic_load(&o->shadow);

	stress_check(!atomic_exchange(&o->destroyed, 1) && magic == ALIVE,
		     "object %" PRIu64 " destroyed twice (magic %#" PRIx64 ")",
		     o->id, magic);
	stress_check(shadow == 0,
		     "object %" PRIu64 " destroyed while the program holds %ld "
		     "reference(s) to it", o->id, shadow);
	__atomic_store_n(&o->magic, DEAD, __ATOMIC_RELAXED);
	stress_add(&c_destroyed, 1);
}

static const rs_type cobj_type = {
	"cobj", sizeof(struct cobj), NULL, NULL, cobj_destroy, 0,
};

/* One generation's state.  `hold` are parcels: n counted references to o. */
struct worker {
	struct stress_rng r;
	int lane;
	int n;
	struct stress_parcel hold[MAXHOLD];
	long ops, parcels, swaps;	/* flushed to the counters */
};

static void flush_counts(struct worker *w)
{
	stress_add(&c_ops, w->ops);
	stress_add(&c_parcels, w->parcels);
	stress_add(&c_swaps, w->swaps);
	w->ops = w->parcels = w->swaps = 0;
}

static void check_alive(struct cobj *o, const char *where)
{
	uint64_t magic = __atomic_load_n(&o->magic, __ATOMIC_RELAXED);

	stress_check(magic == ALIVE && !atomic_load(&o->destroyed),
		     "%s: object %" PRIu64 " is destroyed (magic %#" PRIx64
		     ") although the program holds %ld reference(s)", where,
		     o->id, magic, atomic_load(&o->shadow));
}

static void incref(struct cobj *o)
{
	stress_check(rs_incref(o) == o, "rs_incref failed: %s", strerror(errno));
	atomic_fetch_add(&o->shadow, 1);
}

static void decref(struct cobj *o)
{
	long s = atomic_fetch_sub(&o->shadow, 1);

	stress_check(s > 0, "program bug: object %" PRIu64
		     " dropped with shadow count %ld", o->id, s);
	stress_check(rs_decref(o) == 0, "rs_decref failed: %s", strerror(errno));
}

static void publish(struct cobj *o)
{
	stress_check(rs_publish(o) == 0, "rs_publish failed: %s", strerror(errno));
	atomic_store(&o->published, 1);
}

static void hold_add(struct worker *w, struct cobj *o, long n)
{
	if (w->n == MAXHOLD) {	/* no room: give the references back */
		while (n--)
			decref(o);
		return;
	}
	w->hold[w->n++] = (struct stress_parcel){ o, n };
}

static void hold_del(struct worker *w, int k)
{
	w->hold[k] = w->hold[--w->n];
}

/* Take m of parcel k's references out of the worker's hands. */
static struct cobj *hold_take(struct worker *w, int k, long m)
{
	struct cobj *o = w->hold[k].obj;

	w->hold[k].n -= m;
	if (w->hold[k].n == 0)
		hold_del(w, k);
	return o;
}

static void op_new(struct worker *w)
{
	struct cobj *o = rs_new(&cobj_type);

	stress_check(o != NULL, "rs_new failed: %s", strerror(errno));
	__atomic_store_n(&o->magic, ALIVE, __ATOMIC_RELAXED);
	o->id = atomic_fetch_add(&next_id, 1);
	atomic_store(&o->shadow, 1);
	stress_add(&c_objects, 1);
	hold_add(w, o, 1);
}

/* Hand parcel k (some of its references) to mailbox b.  An unpublished
 * object is either published first or moved whole. */
static void op_send(struct worker *w, int k, struct stress_box *b)
{
	struct cobj *o = w->hold[k].obj;
	long n = w->hold[k].n, m = n;

	check_alive(o, "send");
	if (!atomic_load(&o->published) && stress_below(&w->r, 2))
		publish(o);
	if (atomic_load(&o->published))
		m = 1 + (long)stress_below(&w->r, (uint64_t)n);
	atomic_store(&o->handed, 1);
	hold_take(w, k, m);
	stress_box_put(b, o, m);
	w->parcels++;
}

/* Swap one reference of parcel k into a shared slot; what was there is
 * ours now.  Slots hold published objects only. */
static void op_swap(struct worker *w, int k)
{
	struct cobj *o = w->hold[k].obj, *old;

	check_alive(o, "swap");
	publish(o);
	atomic_store(&o->handed, 1);
	hold_take(w, k, 1);
	old = atomic_exchange(&slots[stress_below(&w->r, NSLOTS)], o);
	if (old)
		hold_add(w, old, 1);
	w->swaps++;
}

static void op_slot_take(struct worker *w)
{
	struct cobj *o = atomic_exchange(&slots[stress_below(&w->r, NSLOTS)],
					 NULL);

	if (o) {
		check_alive(o, "slot take");
		hold_add(w, o, 1);
		w->swaps++;
	}
}

static void op_receive(struct worker *w)
{
	struct stress_parcel p;

	for (int i = 0; i < 4 && w->n < MAXHOLD &&
	     stress_box_take(&boxes[w->lane], &p); i++) {
		check_alive(p.obj, "receive");
		hold_add(w, p.obj, p.n);
	}
}

/* A private object that never left its creator: the owner counted every
 * reference with plain stores and no decrement is pending, so the count
 * is exact. */
static void op_exact(struct worker *w, int k)
{
	struct cobj *o = w->hold[k].obj;
	long rc, shadow;

	if (atomic_load(&o->handed) || atomic_load(&o->published))
		return;
	rc = rs_refcount(o);
	shadow = atomic_load(&o->shadow);
	stress_check(rc == shadow && shadow == w->hold[k].n,
		     "private object %" PRIu64 ": rs_refcount %ld, shadow "
		     "count %ld, references held %ld", o->id, rc, shadow,
		     w->hold[k].n);
	stress_add(&c_exact, 1);
}

/* The merge paths taken so far (biased counting's queue to the owner, and
 * merges on the spot when the owner is offline or gone), from rs_stats. */
static void merge_counts(void)
{
	struct rs_stats st;

	rs_stats(&st);
	atomic_store(&c_queued.value, (long)st.merges_queued);
	atomic_store(&c_spot.value, (long)st.merges_on_the_spot);
}

/* Lane 0 now and then: a collection (every thread's decrements applied and
 * queues merged with the world stopped) or a heap verification. */
static void op_world(struct worker *w)
{
	long problems;

	if (w->lane != 0 || stress_now_ns() < next_world)
		return;
	next_world = stress_now_ns() + 50000000u;	/* 50 ms */
	if (stress_below(&w->r, 2)) {
		stress_check(rs_gc_collect(0) >= 0, "rs_gc_collect: %s",
			     strerror(errno));
	} else {
		problems = rs_heap_verify();
		stress_check(problems == 0,
			     "rs_heap_verify found %ld problem(s) (see stderr)",
			     problems);
	}
	stress_add(&c_verify, 1);
	merge_counts();
}

static void step(struct worker *w)
{
	unsigned x = (unsigned)stress_below(&w->r, 100);
	int k;

	if (w->n == 0 || (x < 14 && w->n < MAXHOLD)) {
		if (w->n == 0 && stress_below(&w->r, 2))
			op_receive(w);
		else
			op_new(w);
		return;
	}
	k = (int)stress_below(&w->r, (uint64_t)w->n);
	if (x < 29) {
		if (w->hold[k].n < 1000) {
			incref(w->hold[k].obj);
			w->hold[k].n++;
		}
	} else if (x < 50) {
		decref(hold_take(w, k, 1));
	} else if (x < 63) {
		struct stress_box *b = &boxes[stress_below(&w->r,
							   (uint64_t)stress_threads)];

		if (stress_box_size(b) < BOX_FULL)
			op_send(w, k, b);
	} else if (x < 73) {
		op_receive(w);
	} else if (x < 84) {
		op_swap(w, k);
	} else if (x < 90) {
		op_slot_take(w);
	} else if (x < 95) {
		op_exact(w, k);
	} else if (x < 97) {
		publish(w->hold[k].obj);
	} else if (x < 98) {
		if (stress_below(&w->r, 8))
			return;
		rs_offline();	/* others now merge our objects on the spot */
		usleep((useconds_t)stress_below(&w->r, 200));
		rs_online();
		stress_add(&c_offline, 1);
	} else {
		op_world(w);
	}
}

/* A generation: attach, work, hand everything over, exit owning objects
 * that others now hold. */
static void *generation(void *arg)
{
	struct stress_lane *lane = arg;
	struct worker w = { .lane = lane->index };
	long life;
	unsigned how;

	stress_lane_rng(lane, &w.r);
	stress_attach();
	life = 200 + (long)stress_below(&w.r, 20000);
	for (long i = 0; i < life && !stress_stopping(); i++) {
		step(&w);
		w.ops++;
		if ((i & 7) == 7)
			rs_safepoint();
		if ((i & 255) == 255)
			flush_counts(&w);
	}
	/* Everything we hold leaves as whole parcels (a move is always
	 * allowed), mostly to other lanes. */
	while (w.n) {
		struct stress_parcel p = w.hold[--w.n];

		/* marked before it can be taken: a receiver that found it
		 * unmarked would check it as private to itself (op_exact) */
		atomic_store(&((struct cobj *)p.obj)->handed, 1);
		stress_box_put(&boxes[stress_below(&w.r,
						   (uint64_t)stress_threads)],
			       p.obj, p.n);
		w.parcels++;
	}
	flush_counts(&w);
	stress_add(&c_gens, 1);
	how = (unsigned)stress_below(&w.r, 3);
	if (how == 0)
		stress_check(rs_thread_detach() == 0, "rs_thread_detach: %s",
			     strerror(errno));
	else if (how == 1)
		rs_offline();	/* exits offline: the destructor detaches */
	return NULL;		/* how == 2: exits attached and online */
}

static int by_address(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t)((const struct stress_parcel *)a)->obj;
	uintptr_t y = (uintptr_t)((const struct stress_parcel *)b)->obj;

	return x < y ? -1 : x > y;
}

/* Every worker is gone: what the mailboxes and slots hold is every
 * reference the program has, and every decrement has been applied. */
static void check_final(void)
{
	struct stress_parcel *all = NULL, p;
	size_t n = 0, cap = 0, distinct = 0, i, j;
	struct rs_stats st;
	uint64_t end;

	for (int b = 0; b < stress_threads; b++) {
		while (stress_box_take(&boxes[b], &p)) {
			if (n == cap) {
				cap = cap ? 2 * cap : 1024;
				all = realloc(all, cap * sizeof(*all));
				stress_check(all != NULL, "out of memory");
			}
			all[n++] = p;
		}
	}
	for (i = 0; i < NSLOTS; i++) {
		struct cobj *o = atomic_exchange(&slots[i], NULL);

		if (!o)
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 1024;
			all = realloc(all, cap * sizeof(*all));
			stress_check(all != NULL, "out of memory");
		}
		all[n++] = (struct stress_parcel){ o, 1 };
	}
	if (n)
		qsort(all, n, sizeof(*all), by_address);
	for (i = 0; i < n; i = j) {
		struct cobj *o = all[i].obj;
		long held = 0, rc;

		for (j = i; j < n && all[j].obj == o; j++)
			held += all[j].n;
		distinct++;
		check_alive(o, "final");
		rc = rs_refcount(o);
		stress_check(rc == held && atomic_load(&o->shadow) == held,
			     "final: object %" PRIu64 " has rs_refcount %ld and "
			     "shadow count %ld, but the program holds %ld "
			     "reference(s)", o->id, rc,
			     atomic_load(&o->shadow), held);
	}
	rs_stats(&st);
	stress_check(st.live_objects == distinct &&
		     stress_get(&c_objects) - stress_get(&c_destroyed) ==
		     (long)distinct,
		     "final: the program holds %zu objects; rs_stats counts %zu "
		     "live; created %ld, destroyed %ld", distinct,
		     st.live_objects, stress_get(&c_objects),
		     stress_get(&c_destroyed));
	for (i = 0; i < n; i++)
		for (j = 0; j < (size_t)all[i].n; j++)
			decref(all[i].obj);
	free(all);
	end = stress_now_ns() + 5000000000u;
	while (stress_get(&c_destroyed) < stress_get(&c_objects) &&
	       stress_now_ns() < end) {
		rs_safepoint();
		usleep(1000);
	}
	stress_check(stress_get(&c_destroyed) == stress_get(&c_objects),
		     "final: %ld objects created but %ld destroyed 5 s after "
		     "the last references were dropped",
		     stress_get(&c_objects), stress_get(&c_destroyed));
	merge_counts();
}

int main(int argc, char **argv)
{
	stress_start(argc, argv, "stress_counts", (struct stress_counter *[]){
		     &c_ops, &c_objects, &c_destroyed, &c_parcels, &c_swaps,
		     &c_gens, &c_offline, &c_exact, &c_verify, &c_queued,
		     &c_spot, NULL });
	stress_check(rs_init(NULL) == 0, "rs_init: %s", strerror(errno));
	for (int i = 0; i < stress_threads; i++)
		stress_box_init(&boxes[i]);
	stress_attach();
	stress_lanes_start(stress_threads, generation);
	stress_lanes_join();
	check_final();
	stress_check(rs_thread_detach() == 0, "rs_thread_detach: %s",
		     strerror(errno));
	stress_shutdown(0);
	return stress_finish();
}
