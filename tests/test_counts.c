/*
 * test_counts.c - biased counting across threads: non-owner counts, the
 * queue to the owner and its merge, merges on the spot (owner offline, owner
 * gone), exact counts after many threads' increments and decrements, and a
 * thread that exits attached while others hold its objects.
 */
#define RS_BUILDING 1
#include "internal.h"
#include "testlib.h"

static uint64_t tid_of(void *obj)
{
	return __atomic_load_n(&rs__head_of(obj)->tid, __ATOMIC_RELAXED);
}

static int state_of(void *obj)
{
	return RS__S_STATE(__atomic_load_n(&rs__head_of(obj)->shared,
					   __ATOMIC_RELAXED));
}

static struct rs_stats stats(void)
{
	struct rs_stats st;

	rs_stats(&st);
	return st;
}

/* A one-slot mailbox for handing counted references between threads. */
static pthread_mutex_t box_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t box_cv = PTHREAD_COND_INITIALIZER;
static void *box;
static int step;

static void box_put(void *p)
{
	pthread_mutex_lock(&box_lock);
	box = p;
	pthread_cond_broadcast(&box_cv);
	pthread_mutex_unlock(&box_lock);
}

static void *box_take(void)
{
	void *p;

	rs_offline();	/* blocking: let grace periods and stops through */
	pthread_mutex_lock(&box_lock);
	while (!box)
		pthread_cond_wait(&box_cv, &box_lock);
	p = box;
	box = NULL;
	pthread_mutex_unlock(&box_lock);
	rs_online();
	return p;
}

static void step_to(int s)
{
	pthread_mutex_lock(&box_lock);
	step = s;
	pthread_cond_broadcast(&box_cv);
	pthread_mutex_unlock(&box_lock);
}

static void wait_step(int s)
{
	rs_offline();
	pthread_mutex_lock(&box_lock);
	while (step < s)
		pthread_cond_wait(&box_cv, &box_lock);
	pthread_mutex_unlock(&box_lock);
	rs_online();
}

/* ---- non-owner increments and decrements ---- */

static void *nonowner_pairs(void *arg)
{
	struct node *n = (struct node *)arg;
	int i;

	rs_thread_attach();
	for (i = 0; i < 10000; i++)
		rs_incref(n);
	for (i = 0; i < 10000; i++) {
		rs_decref(n);
		if (i % 100 == 0)
			rs_safepoint();
	}
	rs_thread_detach();	/* applies everything it logged */
	return NULL;
}

static void test_nonowner(void)
{
	struct node *n = node_new(1);
	pthread_t t;
	long before = destroyed();

	rs_publish(n);
	start_thread(&t, nonowner_pairs, n);
	join_offline(t);
	is(rs_refcount(n), 1L, "10000 non-owner increments and decrements cancel");
	is(tid_of(n), rs__tls.tid, "the object still belongs to its creator");
	rs_decref(n);
	settle_until(destroyed() == before + 1, 5000);
	is(destroyed(), before + 1, "owner's last decrement destroys it");
}

/* ---- queue to a live owner, merged at its safepoint ---- */

static int get_step(void)
{
	int s;

	pthread_mutex_lock(&box_lock);
	s = step;
	pthread_mutex_unlock(&box_lock);
	return s;
}

static void *queue_taker(void *arg)
{
	void *n;
	uint64_t queued = stats().merges_queued;

	(void)arg;
	rs_thread_attach();
	n = box_take();
	rs_decref(n);	/* shared part goes below zero: queued to owner */
	settle_until(stats().merges_queued > queued, 5000);
	rs_thread_detach();
	step_to(1);
	return NULL;
}

static void test_queue(void)
{
	struct node *n = node_new(1);
	pthread_t t;
	long before = destroyed();
	uint64_t queued = stats().merges_queued;
	uint64_t spot = stats().merges_on_the_spot;

	rs_publish(n);
	rs_incref(n);	/* one reference for the other thread */
	start_thread(&t, queue_taker, NULL);
	box_put(n);
	/* stay online, so the other thread must queue rather than merge */
	while (get_step() < 1)
		rs_safepoint();
	join_offline(t);
	rs_safepoint();
	is(stats().merges_queued, queued + 1, "the object was queued to its owner");
	is(stats().merges_on_the_spot, spot, "not merged on the spot");
	is(state_of(n), RS__S_MERGED, "the owner merged it at its safepoint");
	is(tid_of(n), (uint64_t)RS__TID_MERGED, "and gave up ownership");
	is(rs_refcount(n), 1L, "count survives the merge (local 2 + shared -1)");
	rs_decref(n);
	settle_until(destroyed() == before + 1, 5000);
	is(destroyed(), before + 1, "last decrement of a merged object destroys it");
}

/* ---- owner offline: merged on the spot ---- */

static void *spot_taker(void *arg)
{
	void *n;

	(void)arg;
	rs_thread_attach();
	n = box_take();
	wait_step(2);	/* the owner is offline now */
	rs_decref(n);
	settle_until(state_of(n) != RS__S_DEFAULT, 5000);
	rs_thread_detach();
	step_to(3);
	return NULL;
}

static void test_offline_owner(void)
{
	struct node *n = node_new(1);
	pthread_t t;
	long before = destroyed();
	uint64_t spot = stats().merges_on_the_spot;

	rs_publish(n);
	rs_incref(n);
	start_thread(&t, spot_taker, NULL);
	box_put(n);
	rs_offline();
	step_to(2);
	pthread_mutex_lock(&box_lock);
	while (step < 3)
		pthread_cond_wait(&box_cv, &box_lock);
	pthread_mutex_unlock(&box_lock);
	pthread_join(t, NULL);
	rs_online();
	is(state_of(n), RS__S_MERGED, "merged on the spot while the owner was offline");
	is(stats().merges_on_the_spot, spot + 1, "counted as a merge on the spot");
	is(rs_refcount(n), 1L, "count intact");
	rs_decref(n);
	settle_until(destroyed() == before + 1, 5000);
	is(destroyed(), before + 1, "then dies normally");
}

/* ---- owner gone: merged on the spot, destroyed by the last holder ---- */

static void *short_owner(void *arg)
{
	struct node *n;

	(void)arg;
	rs_thread_attach();
	n = node_new(5);
	n->kid[0] = node_new(6);	/* private child, owned by us */
	rs_publish(n);
	box_put(n);	/* our only reference goes to the main thread */
	return NULL;	/* exits attached: detached automatically */
}

static void test_gone_owner(void)
{
	pthread_t t;
	struct node *n;
	long before = destroyed();
	size_t attached;

	start_thread(&t, short_owner, NULL);
	n = (struct node *)box_take();
	join_offline(t);
	attached = stats().attached_threads;
	is(attached, (size_t)1, "the exited thread was detached automatically");
	ok(n->magic == NODE_ALIVE && n->kid[0]->magic == NODE_ALIVE,
	   "its objects outlive it while referenced");
	rs_decref(n);
	settle_until(destroyed() == before + 2, 5000);
	is(destroyed(), before + 2, "the last holder destroys them (owner gone)");
}

/* ---- many threads: exact counts ---- */

#define NOBJ 64
#define NTHREADS 4
static struct node *objs[NOBJ];
static struct node *slots[NOBJ];

static void *churn(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg;
	struct node *held[32], *n;
	int nheld = 0, i, k;

	rs_thread_attach();
	for (i = 0; i < 40000; i++) {
		k = rand_r(&seed) % NOBJ;
		switch (rand_r(&seed) % 4) {
		case 0:
			if (nheld < 32)
				held[nheld++] = (struct node *)rs_incref(objs[k]);
			break;
		case 1:
			if (nheld)
				rs_decref(held[--nheld]);
			break;
		case 2:	/* a fresh object through a shared slot */
			n = node_new(k);
			rs_set_steal(&slots[k], n);
			break;
		default: /* a counted reference from a slot */
			n = (struct node *)rs_get_ref(&slots[k]);
			if (n && nheld < 32)
				held[nheld++] = n;
			else
				rs_decref(n);
		}
		if (i % 64 == 0)
			rs_safepoint();
	}
	while (nheld)
		rs_decref(held[--nheld]);
	rs_thread_detach();
	return NULL;
}

static void test_many_threads(void)
{
	pthread_t t[NTHREADS];
	long live = live_objects(), wrong = 0;
	int i;

	for (i = 0; i < NOBJ; i++) {
		objs[i] = node_new(i);
		rs_publish(objs[i]);
	}
	for (i = 0; i < NTHREADS; i++)
		start_thread(&t[i], churn, (void *)(uintptr_t)(i + 1));
	rs_offline();
	for (i = 0; i < NTHREADS; i++)
		pthread_join(t[i], NULL);
	rs_online();
	for (i = 0; i < NOBJ; i++)
		wrong += rs_refcount(objs[i]) != 1;
	is(wrong, 0L, "every shared object is back to exactly count 1");
	is(rs_heap_verify(), 0L, "heap verifies");
	for (i = 0; i < NOBJ; i++) {
		rs_decref(objs[i]);
		rs_clear(&slots[i]);
	}
	settle_until(live_objects() == live, 5000);
	is(live_objects(), live, "all objects reclaimed, none twice");
}

int main(void)
{
	plan(21);
	ok(rs_init(NULL) == 0 && rs_thread_attach() == 0, "init and attach");
	test_nonowner();
	test_queue();
	test_offline_owner();
	test_gone_owner();
	test_many_threads();
	is(rs_shutdown(), 0L, "shutdown: nothing left alive");
	return exit_status();
}
