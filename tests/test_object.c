/*
 * test_object.c - objects, counts, publication, fields, immortal objects,
 * stats and the verifier, on one thread.
 */
#include <errno.h>
#include <limits.h>

#include "testlib.h"

static struct node *slot;	/* a shared slot: a counted reference */
struct node *immortal;	/* global: keeps the leak checker from reporting it */

static int published(void *obj)
{
	return !!(rs__head_of(obj)->bits & RS__B_PUBLISHED);
}

static void test_unattached(void)
{
	static const rs_type t = {"t", 8, NULL, NULL, NULL, 0};

	errno = 0;
	ok(rs_new(&t) == NULL && errno == EPERM, "rs_new unattached: EPERM");
	errno = 0;
	ok(rs_safepoint() == -1 && errno == EPERM, "rs_safepoint unattached: EPERM");
	errno = 0;
	ok(rs_offline() == -1 && errno == EPERM, "rs_offline unattached: EPERM");
	errno = 0;
	ok(rs_get(&slot) == NULL && errno == EPERM, "rs_get unattached: EPERM");
	errno = 0;
	ok(rs_set(&slot, NULL) == -1 && errno == EPERM, "rs_set unattached: EPERM");
	errno = 0;
	ok(rs_get(NULL) == NULL && errno == EPERM,
	   "rs_get(NULL) unattached: EPERM (attachment is checked first)");
	ok(rs_thread_detach() == 0, "detach unattached is a no-op");
}

/* A NULL field pointer is refused with EINVAL by every function that takes
 * a field, and nothing changes. */
static void test_null_fields(void)
{
	struct node *n = node_new(1);
	void *field = NULL;	/* not a constant: the inline rs_get tests it */

	errno = 0;
	ok(rs_get(field) == NULL && errno == EINVAL, "rs_get(NULL): EINVAL");
	errno = 0;
	ok(rs_get_ref(NULL) == NULL && errno == EINVAL,
	   "rs_get_ref(NULL): EINVAL");
	errno = 0;
	ok(rs_set(NULL, n) == -1 && errno == EINVAL, "rs_set(NULL, obj): EINVAL");
	is(rs_refcount(n), 1L, "... the value's count is unchanged");
	ok(!published(n), "... and it is not published");
	errno = 0;
	ok(rs_set(NULL, NULL) == -1 && errno == EINVAL,
	   "rs_set(NULL, NULL): EINVAL");
	errno = 0;
	ok(rs_set_steal(NULL, n) == -1 && errno == EINVAL,
	   "rs_set_steal(NULL, obj): EINVAL");
	is(rs_refcount(n), 1L, "... the caller still holds its reference");
	errno = 0;
	ok(rs_clear(NULL) == -1 && errno == EINVAL, "rs_clear(NULL): EINVAL");
	rs_decref(n);
	rs_safepoint();
}

static void test_bad_types(void)
{
	static const rs_type huge = {"huge", RS_MAX_OBJECT_SIZE + 1, NULL, NULL,
				     NULL, 0};
	static const rs_type empty = {"empty", 0, NULL, NULL, NULL, 0};
	void *o;

	errno = 0;
	ok(rs_new(NULL) == NULL && errno == EINVAL, "rs_new(NULL): EINVAL");
	errno = 0;
	ok(rs_new(&huge) == NULL && errno == EINVAL, "impossible size: EINVAL");
	o = rs_new(&empty);
	ok(o != NULL, "a zero-sized type is allowed");
	rs_decref(o);
	errno = 0;
	ok(rs_init(NULL) == -1 && errno == EEXIST, "second rs_init: EEXIST");
}

static void test_private(void)
{
	long before = destroyed();
	struct node *a = node_new(1), *b = node_new(2), *borrowed;

	is(rs_refcount(a), 1L, "new object has count 1");
	is_ptr(rs_type_of(a), &node_type, "rs_type_of");
	ok(a->kid[0] == NULL && a->kid[1] == NULL, "fields start zeroed");
	ok(!published(a), "a new object is private");

	rs_incref(a);
	is(rs_refcount(a), 2L, "owner incref");
	rs_decref(a);
	is(rs_refcount(a), 1L, "owner decref of a private object acts at once");

	a->kid[0] = b;	/* plain store into a private object */
	borrowed = a->kid[0];
	rs_decref(a);
	is(destroyed(), before, "a decref that reaches zero waits for the safepoint");
	ok(borrowed->magic == NODE_ALIVE && borrowed->value == 2,
	   "a borrowed child stays valid until the safepoint");
	rs_safepoint();
	is(destroyed(), before + 2, "at the safepoint the object and its child die");
}

static void test_published(void)
{
	long before = destroyed();
	struct node *p = node_new(10), *c = node_new(11), *g;
	struct rs_stats st;

	p->kid[0] = c;	/* c is only reachable through p */
	ok(rs_set_steal(&slot, p) == 0, "rs_set_steal into a shared slot");
	ok(published(p) && published(c), "publishing reaches the whole graph");
	is_ptr(rs_get(&slot), p, "rs_get returns the stored object");
	is(rs_refcount(p), 1L, "rs_set_steal took over the caller's reference");

	g = (struct node *)rs_get_ref(&slot);
	is(rs_refcount(g), 2L, "rs_get_ref counts");
	rs_decref(g);
	rs_stats(&st);
	ok(st.pending_decrements >= 1, "a published decref is pending (%zu)",
	   st.pending_decrements);
	ok(rs_clear(&slot) == 0 && rs_get(&slot) == NULL, "rs_clear empties the slot");
	settle_until(destroyed() == before + 2, 5000);
	is(destroyed(), before + 2, "published object and child die after a grace period");
	rs_stats(&st);
	is(st.pending_decrements, (size_t)0, "nothing pending afterwards");
	ok(st.grace_periods >= 1, "grace periods were counted (%llu)",
	   (unsigned long long)st.grace_periods);
}

static void test_set_counts(void)
{
	long before = destroyed();
	struct node *a = node_new(1), *b = node_new(2);

	ok(rs_set(&slot, a) == 0, "rs_set");
	is(rs_refcount(a), 2L, "rs_set counts the value");
	ok(rs_set(&slot, b) == 0, "rs_set replaces");
	rs_decref(a);
	rs_decref(b);
	settle_until(destroyed() == before + 1, 5000);
	is(destroyed(), before + 1, "the replaced value died, the stored one lives");
	ok(b->magic == NODE_ALIVE && rs_get(&slot) == b, "stored value alive");
	rs_clear(&slot);
	settle_until(destroyed() == before + 2, 5000);
	is(destroyed(), before + 2, "cleared value died");
}

static void test_immortal(void)
{
	struct node *n = node_new(7);
	long before = destroyed();
	int i;

	immortal = n;
	ok(rs_immortalize(n) == 0, "rs_immortalize");
	is(rs_refcount(n), LONG_MAX, "immortal count reads LONG_MAX");
	for (i = 0; i < 5; i++)
		rs_decref(n);
	rs_incref(n);
	settle_until(0, 50);
	is(destroyed(), before, "an immortal object is never destroyed");
	ok(n->magic == NODE_ALIVE, "and stays intact");
}

static void test_verify(void)
{
	long before = destroyed();
	struct node *n = node_new(1);

	rs_publish(n);
	is(rs_heap_verify(), 0L, "heap verifies clean");
	rs_decref(n);
	rs_decref(n);	/* one more than it holds */
	diag("the next verifier complaint is expected");
	is(rs_heap_verify(), 1L, "verifier reports a double decref still pending");
	rs_incref(n);	/* make it right before the log applies */
	is(rs_heap_verify(), 0L, "clean again once the count covers the log");
	settle_until(destroyed() == before + 1, 5000);
	is(destroyed(), before + 1, "and the object dies normally");
}

static void test_stats(void)
{
	struct rs_stats st;
	long live = live_objects();
	struct node *n[10];
	int i;

	for (i = 0; i < 10; i++)
		n[i] = node_new(i);
	is(live_objects(), live + 10, "live objects counted");
	rs_stats(&st);
	ok(st.live_bytes >= 10 * sizeof(struct node), "live bytes counted");
	is(st.attached_threads, (size_t)1, "one attached thread");
	ok(st.defer_limit_bytes == 1u << 20, "default defer limit 1 MiB");
	for (i = 0; i < 10; i++)
		rs_decref(n[i]);
	rs_safepoint();
	is(live_objects(), live, "private objects freed at the safepoint");
}

int main(void)
{
	plan(63);
	test_unattached();
	ok(rs_init(NULL) == 0, "rs_init");
	ok(rs_thread_attach() == 0 && rs_thread_attach() == 0,
	   "attach (twice: idempotent)");
	test_bad_types();
	test_private();
	test_published();
	test_set_counts();
	test_null_fields();
	test_immortal();
	test_verify();
	test_stats();
	is(rs_shutdown(), 1L, "rs_shutdown reports the immortal object alive");
	ok(rs_init(NULL) == 0, "the runtime starts again after shutdown");
	/* the first runtime's immortal object is still alive */
	is(rs_shutdown(), 1L, "and shuts down, counting the immortal object");
	return exit_status();
}
