/*
 * gclib.h - types and helpers shared by the collector's tests
 * (test_gc.c, test_weakref.c), on top of testlib.h.
 *
 *   obj_new(type, value)   a node-shaped object of any of the types below
 *   ring(type, n)          a cycle of n nodes (n == 1: a self-reference);
 *                          returns one counted reference to one of them
 *   chain(type, n, &tail)  an acyclic list of n nodes through kid[0]
 *
 * Types: node_type (testlib.h, tracked), fin_type (tracked, with a finalizer
 * whose behaviour is chosen by the node's value), leaf_type (no traverse:
 * untracked), holder_type (traverse but RS_TYPE_NO_CYCLES: untracked).
 */
#ifndef RS_GCLIB_H
#define RS_GCLIB_H

#include <errno.h>
#include <limits.h>

#include "testlib.h"

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__) || \
	defined(RS_PLAIN_MALLOC)
#define GC_SANITIZED 1
#else
#define GC_SANITIZED 0
#endif

#ifdef __SANITIZE_THREAD__
#define GC_TSAN 1
#else
#define GC_TSAN 0
#endif

/* ---- untracked types ---- */

static long leaves_destroyed, holders_destroyed;	/* atomic */

static void leaf_destroy(void *obj)
{
	(void)obj;
	__atomic_fetch_add(&leaves_destroyed, 1, __ATOMIC_RELAXED);
}

static const rs_type leaf_type = {
	"leaf", 16, NULL, NULL, leaf_destroy, 0,
};

static void holder_destroy(void *obj)
{
	struct node *n = (struct node *)obj;

	__atomic_store_n(&n->magic, NODE_DEAD, __ATOMIC_RELAXED);
	__atomic_fetch_add(&holders_destroyed, 1, __ATOMIC_RELAXED);
}

static const rs_type holder_type = {
	"holder", sizeof(struct node), node_traverse, NULL, holder_destroy,
	RS_TYPE_NO_CYCLES,
};

/* ---- a tracked type with a finalizer ---- */

struct fnode {
	struct node n;		/* first: node_traverse and node_destroy work */
	long fins;		/* finalizer runs on this object */
};

enum fin_mode {
	FIN_NONE,
	FIN_RESURRECT,		/* fin_saved = rs_incref(obj) */
	FIN_RESURRECT_SET,	/* rs_set(&fin_slot, obj) */
	FIN_RESURRECT_UNLINK,	/* fin_saved = rs_incref(obj), clear kid[0] */
	FIN_ALLOC,		/* allocates a node kept in fin_alloc[] */
	FIN_NEW_CYCLE,		/* makes a new garbage cycle of 2 nodes */
	FIN_COLLECT,		/* fin_collect_ret = rs_gc_collect(2) */
	FIN_DROP,		/* rs_clear(&obj->kid[0]) */
};

static long fin_runs;			/* atomic */
static long fin_bad;			/* finalizer saw a dead object, or ran twice */
static struct node *fin_saved;		/* a counted reference (plain global) */
static void *fin_slot;			/* a shared slot (rs_set) */
static struct node *fin_alloc[64];
static int fin_nalloc;
static long fin_collect_ret = -99;
static __thread long fin_here;		/* finalizers run on this thread */

static inline struct node *obj_new(const rs_type *t, long value)
{
	struct node *n = (struct node *)rs_new(t);

	if (!n)
		bail_out("rs_new(%s) failed", t->name);
	n->magic = NODE_ALIVE;
	n->value = value;
	return n;
}

static void fin_finalize(void *obj)
{
	struct fnode *f = (struct fnode *)obj;
	struct node *n = &f->n, *x;

	__atomic_fetch_add(&fin_runs, 1, __ATOMIC_RELAXED);
	fin_here++;
	if (n->magic != NODE_ALIVE || ++f->fins != 1)
		__atomic_fetch_add(&fin_bad, 1, __ATOMIC_RELAXED);
	switch ((enum fin_mode)n->value) {
	case FIN_NONE:
		break;
	case FIN_RESURRECT:
		fin_saved = (struct node *)rs_incref(n);
		break;
	case FIN_RESURRECT_SET:
		rs_set(&fin_slot, n);
		break;
	case FIN_RESURRECT_UNLINK:
		fin_saved = (struct node *)rs_incref(n);
		rs_clear(&n->kid[0]);
		break;
	case FIN_ALLOC:
		if (fin_nalloc < 64)
			fin_alloc[fin_nalloc++] = obj_new(&node_type, 42);
		break;
	case FIN_NEW_CYCLE:
		x = obj_new(&node_type, 1);
		x->kid[0] = obj_new(&node_type, 2);
		x->kid[0]->kid[0] = (struct node *)rs_incref(x);
		rs_decref(x);
		break;
	case FIN_COLLECT:
		fin_collect_ret = rs_gc_collect(2);
		break;
	case FIN_DROP:
		rs_clear(&n->kid[0]);
		break;
	}
}

static const rs_type fin_type = {
	"fin", sizeof(struct fnode), node_traverse, fin_finalize, node_destroy, 0,
};

static inline long finalized(void)
{
	return __atomic_load_n(&fin_runs, __ATOMIC_RELAXED);
}

/* ---- shapes ---- */

/* A cycle of n objects through kid[0]; n == 1 is a self-reference.  The
 * caller gets one counted reference to the returned member. */
static inline struct node *ring(const rs_type *t, long n)
{
	struct node *first, *head, *x;
	long i;

	first = head = obj_new(t, 0);
	for (i = 1; i < n; i++) {
		x = obj_new(t, i);
		x->kid[0] = head;	/* steals the reference */
		head = x;
	}
	first->kid[0] = (struct node *)rs_incref(head);
	return head;
}

/* Like ring, but every member has the given value (fin_type's mode). */
static inline struct node *ring_mode(const rs_type *t, long n, long value)
{
	struct node *head = ring(t, n), *x = head;

	do {
		x->value = value;
		x = x->kid[0];
	} while (x != head);
	return head;
}

/* n objects, head -> ... -> tail through kid[0]; returns the head (one
 * counted reference), *tail borrowed. */
static inline struct node *chain(const rs_type *t, long n, struct node **tail)
{
	struct node *head, *x;
	long i;

	head = *tail = obj_new(t, 0);
	for (i = 1; i < n; i++) {
		x = obj_new(t, i);
		x->kid[0] = head;
		head = x;
	}
	return head;
}

/* ---- counters ---- */

static inline long holders_gone(void)
{
	return __atomic_load_n(&holders_destroyed, __ATOMIC_RELAXED);
}

static inline long leaves_gone(void)
{
	return __atomic_load_n(&leaves_destroyed, __ATOMIC_RELAXED);
}

static inline uint64_t gc_collections(void)
{
	struct rs_gc_stats st;
	uint64_t n = 0;
	int g;

	for (g = 0; g < RS_GC_GENERATIONS; g++) {
		rs_gc_get_stats(g, &st);
		n += st.collections;
	}
	return n;
}

/* Safepoints for `ms` milliseconds (lets deferred work finish). */
static inline void idle_ms(unsigned ms)
{
	settle_until(0, ms);
}

/* Collects everything left over by an earlier case (all generations). */
static inline long gc_drain(void)
{
	long n = 0, r;
	int i;

	for (i = 0; i < 3; i++) {
		rs_safepoint();
		r = rs_gc_collect(2);
		if (r > 0)
			n += r;
	}
	return n;
}

/* Every generation's statistics now (to compare with later). */
static inline void snap(struct rs_gc_stats st[RS_GC_GENERATIONS])
{
	int g;

	for (g = 0; g < RS_GC_GENERATIONS; g++)
		rs_gc_get_stats(g, &st[g]);
}

/* Collections of generation g since snap(st). */
static inline long delta(struct rs_gc_stats st[RS_GC_GENERATIONS], int g)
{
	struct rs_gc_stats now;

	rs_gc_get_stats(g, &now);
	return (long)(now.collections - st[g].collections);
}

#endif /* RS_GCLIB_H */
