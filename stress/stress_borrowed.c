/*
 * stress_borrowed.c - borrowed references against writers, cascades and
 * the collector.
 *
 * A shared graph: NROOTS root fields, each holding a small tree of nodes.
 * Readers walk the trees with rs_get only (borrowed references, no count)
 * while writers replace and clear roots and subtrees with rs_set_steal and
 * rs_clear, and drop garbage cycles that only the collector can free; one
 * thread runs rs_gc_collect(0, 1 or 2) and rs_heap_verify now and then, so
 * the world stops between the readers' intervals.
 *
 * The contract under test (docs/design.md, section 1): a borrowed
 * reference stays valid until the borrowing thread's next safepoint.  Each
 * node's destroy poisons it (magic DEAD) and stamps it with a global
 * destroy sequence number and the destroying thread.  Checks:
 *   - a reader never reaches a node whose magic is not ALIVE, and when its
 *     interval ends (just before its next rs_safepoint) every node it
 *     visited in the interval is still the same live node (same id,
 *     magic ALIVE): nothing it borrowed was reclaimed early, neither by a
 *     matured decrement, nor by a cascade, nor by the collector;
 *   - the structure is consistent: a node's value is derived from its
 *     parent's value and its position, and its depth is its parent's + 1,
 *     so a torn or reused node, or a child hung under the wrong parent, is
 *     seen;
 *   - counted references taken with rs_get_ref keep their node alive
 *     across many safepoints;
 *   - destroy runs once per node (a second one finds magic DEAD), every
 *     node is destroyed in the end (cycles by the collector), and
 *     rs_shutdown finds nothing alive.
 * Under ASan (plain malloc for objects, freed payloads poisoned) an early
 * free is reported by ASan itself; the poison check is the second line.
 */
#include "stress.h"

#define ALIVE 0x0b0a0e0d11feULL
#define DEAD 0xdeadbeefdeadbeefULL

#define NROOTS 32	/* trees the readers walk */
#define NJUNK 8		/* fields holding garbage-to-be cycles */
#define MAXDEPTH 8
#define MAXVISIT 1024	/* nodes remembered per interval */
#define NHELD 4		/* counted references a thread keeps */

struct bnode {
	struct bnode *kid[2];	/* counted; rs_set once published */
	uint64_t magic;		/* ALIVE, DEAD once destroyed. Sync: atomic */
	uint64_t stamp;		/* destroy sequence number. Sync: atomic */
	int killer;		/* index of the destroying thread. Sync: atomic */
	uint32_t depth;		/* Sync: immutable after creation */
	uint64_t value;		/* Sync: immutable after creation */
	uint64_t id;		/* Sync: immutable after creation */
};

static struct stress_counter c_ops = { "ops", 0 }, c_nodes = { "nodes", 0 },
	c_writes = { "writes", 0 },
	c_created = { "created", 0 }, c_destroyed = { "destroyed", 0 },
	c_cycles = { "cycles", 0 }, c_gcs = { "collections", 0 },
	c_verifies = { "verifies", 0 }, c_offline = { "offline", 0 };

static struct bnode *roots[NROOTS];
static struct bnode *junk[NJUNK];
static _Atomic uint64_t destroy_seq;
static _Atomic uint64_t next_id;
static __thread int self_index = -1;	/* -1: the main thread */

static void bnode_traverse(void *obj, rs_visit_fn visit, void *arg)
{
	struct bnode *n = obj;

	visit(n->kid[0], arg);
	visit(n->kid[1], arg);
}

static void bnode_destroy(void *obj)
{
	struct bnode *n = obj;
	uint64_t magic = __atomic_load_n(&n->magic, __ATOMIC_RELAXED);

	stress_check(magic == ALIVE,
		     "node %" PRIu64 " destroyed twice (magic %#" PRIx64
		     ", first stamp %" PRIu64 ")", n->id, magic,
		     __atomic_load_n(&n->stamp, __ATOMIC_RELAXED));
	__atomic_store_n(&n->stamp, atomic_fetch_add(&destroy_seq, 1) + 1,
			 __ATOMIC_RELAXED);
	__atomic_store_n(&n->killer, self_index, __ATOMIC_RELAXED);
	__atomic_store_n(&n->magic, DEAD, __ATOMIC_RELAXED);
	stress_add(&c_destroyed, 1);
}

static const rs_type bnode_type = {
	"bnode", sizeof(struct bnode), bnode_traverse, NULL, bnode_destroy, 0,
};

static uint64_t derive(uint64_t parent, int i)
{
	uint64_t z = parent * 2 + (uint64_t)i + 1 + 0x9e3779b97f4a7c15ULL;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

struct visit {
	struct bnode *n;
	uint64_t id;
};

struct worker {
	struct stress_rng r;
	int index;
	uint64_t seq_at_safepoint;	/* destroy_seq at the last safepoint */
	struct visit seen[MAXVISIT];	/* borrowed in this interval */
	int nseen;
	struct bnode *held[NHELD];	/* counted, kept across safepoints */
	long ops, nodes, writes, created;	/* flushed to the counters */
};

static struct bnode *node_new(struct worker *w, uint64_t value,
			      uint32_t depth)
{
	struct bnode *n = rs_new(&bnode_type);

	stress_check(n != NULL, "rs_new failed: %s", strerror(errno));
	n->value = value;
	n->depth = depth;
	n->id = atomic_fetch_add(&next_id, 1);
	__atomic_store_n(&n->magic, ALIVE, __ATOMIC_RELAXED);
	w->created++;
	return n;
}

/* A private tree: plain stores are fine until it is published. */
static struct bnode *build(struct worker *w, uint64_t value, uint32_t depth)
{
	struct bnode *n = node_new(w, value, depth);
	uint64_t p = depth < MAXDEPTH ? 70 - 8 * depth : 0;

	for (int i = 0; i < 2; i++)
		if (stress_below(&w->r, 100) < p)
			n->kid[i] = build(w, derive(value, i), depth + 1);
	return n;
}

/* The reader met a node that is not alive (or whose memory now holds
 * another node): say which, and when it died relative to the reader's last
 * safepoint. */
static void __attribute__((noreturn))
report_dead(struct worker *w, struct bnode *n, uint64_t id, const char *how)
{
	uint64_t magic = __atomic_load_n(&n->magic, __ATOMIC_RELAXED);
	uint64_t stamp = __atomic_load_n(&n->stamp, __ATOMIC_RELAXED);

	if (magic == ALIVE)
		stress_fail("thread %d %s node %" PRIu64 " at %p, whose memory "
			    "now holds node %" PRIu64 ": it was destroyed and "
			    "its memory reused before the reader's safepoint",
			    w->index, how, id, (void *)n, n->id);
	stress_fail("thread %d %s node %" PRIu64 " at %p with magic %#" PRIx64
		    " (%s): destroyed with stamp %" PRIu64 " by thread %d; the "
		    "reader's last safepoint was at stamp %" PRIu64 "%s",
		    w->index, how, id, (void *)n, magic,
		    magic == DEAD ? "DEAD" : "neither ALIVE nor DEAD", stamp,
		    __atomic_load_n(&n->killer, __ATOMIC_RELAXED),
		    w->seq_at_safepoint,
		    stamp > w->seq_at_safepoint
		    ? " (it died inside the reader's interval)" : "");
}

/* Meet a borrowed node: alive, and remembered for the end of the
 * interval. */
static void meet(struct worker *w, struct bnode *n)
{
	if (__atomic_load_n(&n->magic, __ATOMIC_RELAXED) != ALIVE)
		report_dead(w, n, n->id, "reached");
	if (w->nseen < MAXVISIT)
		w->seen[w->nseen++] = (struct visit){ n, n->id };
	w->nodes++;
}

/* Child i of a live node p, borrowed, checked against its parent. */
static struct bnode *kid_of(struct worker *w, struct bnode *p, int i)
{
	struct bnode *k = rs_get(&p->kid[i]);

	if (!k)
		return NULL;
	meet(w, k);
	stress_check(k->depth == p->depth + 1 && k->value == derive(p->value, i),
		     "thread %d: node %" PRIu64 " (depth %u, value %#" PRIx64
		     ") is child %d of node %" PRIu64 " (depth %u, value %#"
		     PRIx64 ") but should have value %#" PRIx64, w->index,
		     k->id, k->depth, k->value, i, p->id, p->depth, p->value,
		     derive(p->value, i));
	return k;
}

/* A reader's walk of one tree, all borrowed. */
static void walk(struct worker *w, int r)
{
	struct bnode *stack[2 * MAXDEPTH + 4], *n, *k;
	int sp = 0;

	n = rs_get(&roots[r]);
	if (!n)
		return;
	meet(w, n);
	stress_check(n->depth == 0, "thread %d: root %d holds node %" PRIu64
		     " of depth %u", w->index, r, n->id, n->depth);
	stack[sp++] = n;
	while (sp) {
		n = stack[--sp];
		for (int i = 0; i < 2; i++) {
			k = kid_of(w, n, i);
			if (!k)
				continue;
			stress_check(k->depth <= MAXDEPTH && sp < 2 * MAXDEPTH + 4,
				     "thread %d: tree under root %d deeper than "
				     "%d (node %" PRIu64 ")", w->index, r,
				     MAXDEPTH, k->id);
			stack[sp++] = k;
		}
	}
}

/* A writer: replace or clear a root, or a subtree somewhere down a random
 * path; or leave a cycle for the collector. */
static void write_op(struct worker *w)
{
	unsigned x = (unsigned)stress_below(&w->r, 100);
	int r = (int)stress_below(&w->r, NROOTS), i;
	struct bnode *p, *k;

	w->writes++;
	if (x < 25) {
		stress_check(rs_set_steal(&roots[r], build(w, stress_rand(&w->r),
							   0)) == 0,
			     "rs_set_steal: %s", strerror(errno));
		return;
	}
	if (x < 30) {
		stress_check(rs_clear(&roots[r]) == 0, "rs_clear: %s",
			     strerror(errno));
		return;
	}
	if (x < 38) {
		/* a cycle a -> b -> a, published in a junk field and
		 * unlinked later by someone: garbage for the collector */
		struct bnode *a = node_new(w, 0, 0), *b = node_new(w, 0, 0);

		a->kid[0] = b;
		b->kid[0] = rs_incref(a);
		if (stress_below(&w->r, 2))
			b->kid[1] = build(w, 1, 1);
		stress_check(rs_set_steal(&junk[stress_below(&w->r, NJUNK)],
					  a) == 0, "rs_set_steal: %s",
			     strerror(errno));
		stress_add(&c_cycles, 1);
		return;
	}
	/* down a random path, borrowed all the way */
	p = rs_get(&roots[r]);
	if (!p)
		return;
	meet(w, p);
	for (uint64_t steps = stress_below(&w->r, MAXDEPTH); steps; steps--) {
		k = kid_of(w, p, (int)stress_below(&w->r, 2));
		if (!k)
			break;
		p = k;
	}
	i = (int)stress_below(&w->r, 2);
	if (x < 80 && p->depth < MAXDEPTH)
		stress_check(rs_set_steal(&p->kid[i],
					  build(w, derive(p->value, i),
						p->depth + 1)) == 0,
			     "rs_set_steal: %s", strerror(errno));
	else
		stress_check(rs_clear(&p->kid[i]) == 0, "rs_clear: %s",
			     strerror(errno));
}

/* Counted references survive safepoints: take one now and then, check the
 * ones held, drop one now and then. */
static void held_op(struct worker *w)
{
	int h = (int)stress_below(&w->r, NHELD);

	for (int j = 0; j < NHELD; j++)
		if (w->held[j] && __atomic_load_n(&w->held[j]->magic,
						  __ATOMIC_RELAXED) != ALIVE)
			report_dead(w, w->held[j], w->held[j]->id,
				    "holds a counted reference to");
	if (w->held[h]) {
		if (stress_below(&w->r, 4) == 0) {
			rs_decref(w->held[h]);
			w->held[h] = NULL;
		}
	} else {
		w->held[h] = rs_get_ref(&roots[stress_below(&w->r, NROOTS)]);
	}
}

/* The end of an interval: everything borrowed in it is still the node it
 * was.  Then the safepoint. */
static void end_interval(struct worker *w)
{
	for (int j = 0; j < w->nseen; j++) {
		struct bnode *n = w->seen[j].n;

		if (__atomic_load_n(&n->magic, __ATOMIC_RELAXED) != ALIVE ||
		    n->id != w->seen[j].id)
			report_dead(w, n, w->seen[j].id,
				    "still borrowing (before its safepoint)");
	}
	w->nseen = 0;
}

static void flush_counts(struct worker *w)
{
	stress_add(&c_ops, w->ops);
	stress_add(&c_nodes, w->nodes);
	stress_add(&c_writes, w->writes);
	stress_add(&c_created, w->created);
	w->ops = w->nodes = w->writes = w->created = 0;
}

/* Thread 0 (or the only thread) stops the world now and then. */
static void world_op(struct worker *w, uint64_t *next_gc, uint64_t *next_verify)
{
	uint64_t now = stress_now_ns();
	long problems;

	if (now >= *next_gc) {
		*next_gc = now + 10000000u + stress_below(&w->r, 20000000u);
		stress_check(rs_gc_collect((int)stress_below(&w->r, 3)) >= 0,
			     "rs_gc_collect: %s", strerror(errno));
		stress_add(&c_gcs, 1);
	}
	if (now >= *next_verify) {
		*next_verify = now + 200000000u;
		problems = rs_heap_verify();
		stress_check(problems == 0,
			     "rs_heap_verify found %ld problem(s) (see stderr)",
			     problems);
		stress_add(&c_verifies, 1);
	}
}

static void *worker_main(void *arg)
{
	struct worker *w = calloc(1, sizeof(*w));
	uint64_t next_gc = 0, next_verify = 0;
	unsigned write_pct;
	long iter = 0;

	stress_check(w != NULL, "out of memory");
	w->index = (int)(intptr_t)arg;
	self_index = w->index;
	stress_rng_init(&w->r, (uint64_t)w->index);
	write_pct = stress_threads == 1 ? 50 : w->index == 0 ? 60 : 10;
	stress_attach();
	w->seq_at_safepoint = atomic_load(&destroy_seq);
	while (!stress_stopping()) {
		/* one interval: a few walks and writes, all borrowed */
		for (uint64_t n = 1 + stress_below(&w->r, 8); n; n--) {
			if (stress_below(&w->r, 100) < write_pct)
				write_op(w);
			else
				walk(w, (int)stress_below(&w->r, NROOTS));
			w->ops++;
		}
		if (stress_below(&w->r, 8) == 0)
			held_op(w);
		end_interval(w);
		if (stress_below(&w->r, 64) == 0) {
			rs_offline();	/* a safepoint too */
			usleep((useconds_t)stress_below(&w->r, 100));
			rs_online();
			stress_add(&c_offline, 1);
		} else {
			rs_safepoint();
		}
		w->seq_at_safepoint = atomic_load(&destroy_seq);
		if (w->index == 0) {
			world_op(w, &next_gc, &next_verify);
			w->seq_at_safepoint = atomic_load(&destroy_seq);
		}
		if ((++iter & 63) == 0)
			flush_counts(w);
	}
	for (int j = 0; j < NHELD; j++)
		rs_decref(w->held[j]);
	flush_counts(w);
	stress_check(rs_thread_detach() == 0, "rs_thread_detach: %s",
		     strerror(errno));
	free(w);
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t t[256];
	uint64_t end;
	long problems;

	stress_start(argc, argv, "stress_borrowed", (struct stress_counter *[]){
		     &c_ops, &c_nodes, &c_writes, &c_created, &c_destroyed,
		     &c_cycles, &c_gcs, &c_verifies, &c_offline, NULL });
	stress_check(rs_init(NULL) == 0, "rs_init: %s", strerror(errno));
	stress_attach();
	stress_spawn(t, stress_threads, worker_main);
	stress_join(t, stress_threads);

	/* Drop the graph; the cycles need the collector. */
	for (int r = 0; r < NROOTS; r++)
		rs_clear(&roots[r]);
	for (int j = 0; j < NJUNK; j++)
		rs_clear(&junk[j]);
	end = stress_now_ns() + 5000000000u;
	while (stress_get(&c_destroyed) < stress_get(&c_created) &&
	       stress_now_ns() < end) {
		rs_gc_collect(2);
		usleep(1000);
	}
	stress_check(stress_get(&c_destroyed) == stress_get(&c_created),
		     "%ld nodes created but %ld destroyed 5 s after the graph "
		     "was dropped", stress_get(&c_created),
		     stress_get(&c_destroyed));
	problems = rs_heap_verify();
	stress_check(problems == 0, "rs_heap_verify found %ld problem(s)",
		     problems);
	stress_check(rs_thread_detach() == 0, "rs_thread_detach: %s",
		     strerror(errno));
	stress_shutdown(0);
	return stress_finish();
}
