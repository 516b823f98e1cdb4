/*
 * test_defer.c - the deferred-decrement contract.
 *
 *  - borrowed references: readers load a shared slot and walk the object's
 *    children while writers replace and drop the slot's value; destroyed
 *    nodes are stamped NODE_DEAD (and ASan builds trap any access), so a
 *    reader that reaches a destroyed node before its next safepoint is
 *    caught;
 *  - an offline thread does not hold up reclamation, while an online thread
 *    that skips safepoints does (so the test above has teeth);
 *  - deferred memory stays under the configured bound, waiting for a grace
 *    period at a safepoint when it must;
 *  - a thread's private decrements: alive until its safepoint, then freed
 *    (plain objects at once, the others through the cascade), counters
 *    exact;
 *  - batches kept across rs_shutdown fit a later runtime's batch size.
 */
#include <errno.h>
#include <string.h>

#include "testlib.h"

#ifdef RS_PLAIN_MALLOC	/* sanitizer builds are slower: less work */
#define ROUNDS 3000
#else
#define ROUNDS 20000
#endif

static struct node *slot[4];
static int stop_readers;
static long violations, reads;

static struct node *tree(long v)
{
	struct node *n = node_new(v);

	n->kid[0] = node_new(v + 1);
	n->kid[1] = node_new(v + 2);
	n->kid[0]->kid[0] = node_new(v + 3);
	return n;
}

static int intact(struct node *n)
{
	return n->magic == NODE_ALIVE && n->kid[0]->magic == NODE_ALIVE &&
	       n->kid[1]->magic == NODE_ALIVE &&
	       n->kid[0]->kid[0]->magic == NODE_ALIVE &&
	       n->kid[0]->value == n->value + 1;
}

static void *reader(void *arg)
{
	struct node *n, *seen[4];
	long bad = 0, r = 0;
	int i, k, spin;

	(void)arg;
	rs_thread_attach();
	while (!__atomic_load_n(&stop_readers, __ATOMIC_RELAXED)) {
		/* borrow several values, dawdle, then check them all again:
		 * every one must still be intact before the safepoint */
		for (k = 0; k < 4; k++) {
			seen[k] = (struct node *)rs_get(&slot[k]);
			if (seen[k] && !intact(seen[k]))
				bad++;
		}
		for (spin = 0; spin < 200; spin++)
			__asm__ __volatile__("" ::: "memory");
		for (k = 0; k < 4; k++)
			if (seen[k] && !intact(seen[k]))
				bad++;
		for (i = 0; i < 4; i++) {
			n = (struct node *)rs_get(&slot[i]);
			if (n && !intact(n))
				bad++;
		}
		r++;
		rs_safepoint();
	}
	__atomic_fetch_add(&violations, bad, __ATOMIC_RELAXED);
	__atomic_fetch_add(&reads, r, __ATOMIC_RELAXED);
	rs_thread_detach();
	return NULL;
}

static void *writer(void *arg)
{
	long i, id = (long)(intptr_t)arg;

	rs_thread_attach();
	for (i = 0; i < ROUNDS; i++) {
		int k = (int)((i + id) % 4);

		if (i % 7 == 0)
			rs_clear(&slot[k]);
		else
			rs_set_steal(&slot[k], tree(i * 10));
		if (i % 3 == 0)
			rs_safepoint();
	}
	rs_thread_detach();
	return NULL;
}

static void test_borrowed(void)
{
	pthread_t r[2], w[2];
	long live = live_objects(), before = destroyed();
	int i;

	for (i = 0; i < 2; i++)
		start_thread(&r[i], reader, NULL);
	for (i = 0; i < 2; i++)
		start_thread(&w[i], writer, (void *)(intptr_t)i);
	rs_offline();
	for (i = 0; i < 2; i++)
		pthread_join(w[i], NULL);
	__atomic_store_n(&stop_readers, 1, __ATOMIC_RELAXED);
	for (i = 0; i < 2; i++)
		pthread_join(r[i], NULL);
	rs_online();
	ok(reads > 100, "readers made %ld passes", reads);
	ok(destroyed() - before > ROUNDS, "writers destroyed %ld nodes meanwhile",
	   destroyed() - before);
	is(violations, 0L, "no reader reached a destroyed node before its safepoint");
	for (i = 0; i < 4; i++)
		rs_clear(&slot[i]);
	settle_until(live_objects() == live, 5000);
	is(live_objects(), live, "everything reclaimed");
}

/* ---- who holds up reclamation ---- */

static int blocker_mode;	/* 1: offline and blocked; 2: online, no safepoints */
static int blocker_release;

static void *blocker(void *arg)
{
	(void)arg;
	rs_thread_attach();
	if (blocker_mode == 1)
		rs_offline();
	__atomic_store_n(&blocker_mode, -blocker_mode, __ATOMIC_RELEASE);
	while (!__atomic_load_n(&blocker_release, __ATOMIC_ACQUIRE))
		usleep(1000);
	if (blocker_mode == -1)
		rs_online();
	rs_safepoint();
	rs_thread_detach();
	return NULL;
}

static pthread_t blocker_start(int mode)
{
	pthread_t t;

	blocker_mode = mode;
	blocker_release = 0;
	start_thread(&t, blocker, NULL);
	while (__atomic_load_n(&blocker_mode, __ATOMIC_ACQUIRE) != -mode)
		usleep(100);
	return t;
}

static void blocker_release_now(void)
{
	__atomic_store_n(&blocker_release, 1, __ATOMIC_RELEASE);
}

static void drop_published(int n)
{
	int i;

	for (i = 0; i < n; i++) {
		struct node *x = node_new(i);

		rs_publish(x);
		rs_decref(x);
	}
}

static void test_who_blocks(void)
{
	pthread_t t = blocker_start(1);
	long before;

	before = destroyed();
	drop_published(100);
	settle_until(destroyed() == before + 100, 3000);
	is(destroyed(), before + 100, "an offline thread does not hold up reclamation");
	blocker_release_now();
	join_offline(t);

	t = blocker_start(2);
	before = destroyed();
	drop_published(100);
	settle_until(0, 200);
	is(destroyed(), before, "an online thread that skips safepoints holds it up");
	blocker_release_now();
	settle_until(destroyed() == before + 100, 3000);
	is(destroyed(), before + 100, "and its safepoint lets it through");
	join_offline(t);
}

/* ---- the bound on deferred memory ---- */

static void test_bound(void)
{
	struct rs_stats st;
	size_t limit, per_interval;
	long live = live_objects();
	uint64_t waits;
	int i;

	rs_stats(&st);
	waits = st.defer_waits;
	limit = st.defer_limit_bytes;
	/* a node: header (32 bytes), payload, collector trailer (16) */
	per_interval = 100 * (sizeof(struct node) + 32 + 16);
	/* a stalled online thread makes the reclaimer useless: only the
	 * bound's own wait can keep memory in check */
	{
		pthread_t t = blocker_start(2);

		for (i = 0; i < 5; i++) {
			drop_published(100);
			rs_safepoint();
		}
		rs_stats(&st);
		ok(st.pending_bytes > 0 && st.defer_waits == waits,
		   "below the bound, decrements wait for the stalled thread");
		blocker_release_now();
		join_offline(t);
	}
	for (i = 0; i < 2000; i++) {
		drop_published(100);
		rs_safepoint();
	}
	rs_stats(&st);
	diag("limit %zu, max pending %zu bytes, %llu waits", limit,
	     st.pending_bytes_max, (unsigned long long)st.defer_waits);
	ok(st.pending_bytes_max <= limit + per_interval,
	   "pending bytes never exceeded the bound plus one interval");
	settle_until(live_objects() == live, 5000);
	is(live_objects(), live, "all reclaimed");
}

/* A thread's last references to its plain private objects (no traverse, no
 * destroy, never published or watched) are freed at its next safepoint at
 * once, without the dying list (lib/object.c rs__free_private_run); the
 * others take the general path.  Either way: alive until the safepoint,
 * then freed, and every counter exact. */
static const rs_type leaf_type = {"leaf", 48, NULL, NULL, NULL, 0};
static long dleaf_destroyed;

static void dleaf_destroy(void *obj)
{
	(void)obj;
	dleaf_destroyed++;
}

/* untracked (no traverse) but with a destroy hook */
static const rs_type dleaf_type = {"dleaf", 48, NULL, NULL, dleaf_destroy, 0};

static void test_private_deaths(void)
{
	struct rs_stats a, b;
	struct node *kept = node_new(-1), *n;
	void *leaf[300];
	long before;
	int i, alive = 0;

	rs_safepoint();
	rs_stats(&a);
	before = destroyed();
	for (i = 0; i < 50; i++)	/* applied last: after every node */
		rs_decref(rs_new(&leaf_type));
	for (i = 0; i < 300; i++) {
		leaf[i] = rs_new(&leaf_type);
		if (i % 3 == 0) {
			rs_incref(leaf[i]);	/* count 2: this one stays */
		} else if (i % 3 == 1) {
			n = node_new(i);	/* has a destroy hook */
			n->kid[0] = rs_incref(kept);
			rs_decref(n);
			rs_decref(rs_new(&dleaf_type));
		}
		rs_decref(leaf[i]);
	}
	rs_stats(&b);
	is((long)(b.pending_decrements - a.pending_decrements), 450L,
	   "450 private decrements logged (those from count 2 apply at once)");
	is((long)(b.live_objects - a.live_objects), 550L,
	   "... nothing freed before the safepoint");
	rs_safepoint();
	rs_stats(&b);
	is((long)b.pending_decrements, (long)a.pending_decrements,
	   "at the safepoint: every one applied");
	is((long)b.pending_bytes, (long)a.pending_bytes, "... pending bytes back");
	is((long)(b.objects_freed - a.objects_freed), 450L,
	   "... 250 leaves, 100 untracked leaves with a hook, 100 nodes freed");
	is(destroyed() - before, 100L, "... the nodes' destroy hooks ran");
	is(dleaf_destroyed, 100L, "... the untracked leaves' hooks ran");
	for (i = 0; i < 300; i += 3)
		alive += rs_refcount(leaf[i]) == 1;
	is(alive, 100, "... the leaves still referenced are alive, count 1");
	is(rs_refcount(kept), 1L, "... the nodes' children were given back");
	for (i = 0; i < 300; i += 3)
		rs_decref(leaf[i]);
	rs_decref(kept);
	rs_safepoint();
	rs_stats(&b);
	is((long)b.live_objects, (long)a.live_objects - 1,
	   "all freed in the end");
}

/* pending_bytes_max is a high-water mark: taken before each decrease
 * (lib/internal.h rs__pending_add), and rs_stats adds what is pending now.
 * A peak above every earlier one must show while it is pending and after
 * it was applied. */
static void test_pending_peak(void)
{
	static const rs_type big = {"big", 1000, NULL, NULL, NULL, 0};
	struct rs_stats a, b, c;
	int n = 0;

	rs_safepoint();
	rs_stats(&a);
	do {
		rs_decref(rs_new(&big));
		rs_stats(&b);
	} while (b.pending_bytes < a.pending_bytes_max + 100000 && ++n < 10000);
	ok(b.pending_bytes_max >= b.pending_bytes,
	   "a new peak of pending bytes shows while pending (%zu >= %zu)",
	   b.pending_bytes_max, b.pending_bytes);
	rs_safepoint();
	rs_stats(&c);
	ok(c.pending_bytes == a.pending_bytes &&
	   c.pending_bytes_max >= b.pending_bytes,
	   "... and stays once applied (%zu >= %zu)", c.pending_bytes_max,
	   b.pending_bytes);
}

/* The safepoint frees a plain private object in its thread's current slab
 * by an inline push (lib/alloc.h rs__obj_free_cur) and any other through
 * the allocator's general free: deaths spread over several slabs take both,
 * and the slabs' counts stay exact (rs_heap_verify checks carved = used +
 * local free list, and that the FREE slots are exactly those on the lists),
 * and the memory is reused. */
static void test_private_deaths_slabs(void)
{
	enum { N = 3000 };	/* 80-byte slots: about 4 slabs of 64 KiB */
	static void *o[N];
	struct rs_stats a, b;
	int i, round, zero = 1;

	rs_safepoint();
	rs_stats(&a);
	for (round = 0; round < 3; round++) {
		for (i = 0; i < N; i++) {
			o[i] = rs_new(&leaf_type);
			zero &= ((unsigned char *)o[i])[47] == 0;
			memset(o[i], 0xa5, 48);
		}
		for (i = 0; i < N; i++)
			rs_decref(o[i]);
		rs_safepoint();
	}
	rs_stats(&b);
	ok(zero, "objects come back zeroed from reused slots");
	is((long)(b.objects_freed - a.objects_freed), 3L * N,
	   "%d private deaths over several slabs, all freed", 3 * N);
	is((long)b.live_objects, (long)a.live_objects, "... none left");
	is(rs_heap_verify(), 0L, "... the slabs' counts and lists are exact");
	ok(b.slab_bytes - a.slab_bytes <= (size_t)6 << 16,
	   "... and the later rounds reused the first round's slabs");
}

/* A thread's batches outlive rs_shutdown, and the next rs_init may choose
 * larger batches: each batch keeps its own capacity.  (Found by the
 * fuzzer: a 16-entry batch kept from the first runtime took the 17th
 * decrement of a 2048-entry one, a heap overflow that ASan reports.) */
static void log_decrements(int n)
{
	struct node *o = node_new(0);
	int i, bad = 0;

	rs_publish(o);	/* so the decrements go to batches */
	for (i = 0; i < n; i++)
		rs_incref(o);
	for (i = 0; i <= n; i++)
		bad += rs_decref(o) != 0;
	is(bad, 0, "%d decrements logged", n + 1);
}

static void test_batch_size_restart(void)
{
	rs_config cfg = {0};

	cfg.batch_entries = 16;
	ok(rs_init(&cfg) == 0 && rs_thread_attach() == 0, "init (16-entry batches)");
	log_decrements(40);
	is(rs_shutdown(), 0L, "shutdown clean");
	ok(rs_init(NULL) == 0 && rs_thread_attach() == 0,
	   "init again (default batches)");
	log_decrements(40);
	is(rs_shutdown(), 0L, "shutdown clean, no batch overrun");
}

int main(void)
{
	rs_config cfg = {0};

	plan(35);
	cfg.defer_limit_bytes = 64 << 10;
	ok(rs_init(&cfg) == 0 && rs_thread_attach() == 0, "init (64 KiB bound)");
	test_borrowed();
	test_who_blocks();
	test_bound();
	test_private_deaths();
	test_private_deaths_slabs();
	test_pending_peak();
	is(rs_shutdown(), 0L, "shutdown clean");
	test_batch_size_restart();
	return exit_status();
}
