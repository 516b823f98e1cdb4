/*
 * test_threads.c - the thread registry: attach and detach, automatic detach
 * at thread exit, slot reuse without id reuse, threads that exit while
 * owning objects others still hold, and many short-lived threads at once.
 */
#define RS_BUILDING 1
#include "internal.h"
#include "testlib.h"

static struct node *slots[64];

static void *owner_exits(void *arg)
{
	long k = (long)(intptr_t)arg, i;

	rs_thread_attach();
	for (i = 0; i < 8; i++) {
		struct node *n = node_new(k * 100 + i);

		n->kid[0] = node_new(-1);	/* private child, also ours */
		rs_set_steal(&slots[(k * 8 + i) % 64], n);
	}
	/* return while attached: the pthread key destructor detaches us */
	return (void *)(uintptr_t)rs__tls.tid;
}

static void test_exit_owning(void)
{
	pthread_t t[8];
	void *tid[8];
	long live = live_objects(), bad = 0;
	int i;

	for (i = 0; i < 8; i++) {
		start_thread(&t[i], owner_exits, (void *)(intptr_t)i);
		tid[i] = join_offline(t[i]);
	}
	{
		struct rs_stats st;

		rs_stats(&st);
		is(st.attached_threads, (size_t)1, "exited threads were detached");
	}
	for (i = 1; i < 8; i++)
		bad += tid[i] == tid[0];
	is(bad, 0L, "ids are never reused, even when the slot is");
	ok(rs__nslots <= 3, "slots are reused (%u used)", rs__nslots);
	for (i = 0; i < 64; i++)
		if (slots[i] && (slots[i]->magic != NODE_ALIVE ||
				 slots[i]->kid[0]->magic != NODE_ALIVE))
			bad++;
	is(bad, 0L, "objects of exited owners stay alive while referenced");
	is(rs_heap_verify(), 0L, "heap verifies");
	for (i = 0; i < 64; i++)
		rs_clear(&slots[i]);
	settle_until(live_objects() == live, 5000);
	is(live_objects(), live, "and are reclaimed when dropped");
}

static void *churn(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg;
	int i, k;

	for (i = 0; i < 20; i++) {
		rs_thread_attach();
		for (k = 0; k < 50; k++) {
			int s = rand_r(&seed) % 64;
			struct node *n = (struct node *)rs_get_ref(&slots[s]);

			if (n)
				rs_decref(n);
			else
				rs_set_steal(&slots[s], node_new(s));
			if (k % 8 == 0)
				rs_safepoint();
		}
		rs_thread_detach();
	}
	return NULL;
}

static void test_churn(void)
{
	pthread_t t[6];
	long live = live_objects();
	int i;

	for (i = 0; i < 6; i++)
		start_thread(&t[i], churn, (void *)(uintptr_t)(i + 7));
	rs_offline();
	for (i = 0; i < 6; i++)
		pthread_join(t[i], NULL);
	rs_online();
	is(rs_heap_verify(), 0L, "heap verifies after 120 attach/detach cycles");
	for (i = 0; i < 64; i++)
		rs_clear(&slots[i]);
	settle_until(live_objects() == live, 5000);
	is(live_objects(), live, "everything reclaimed");
}

static void *detach_twice(void *arg)
{
	(void)arg;
	rs_thread_attach();
	rs_offline();
	/* detaching while offline comes back online first */
	return (void *)(intptr_t)(rs_thread_detach() == 0 && rs_thread_detach() == 0);
}

int main(void)
{
	pthread_t t;
	void *r;

	plan(11);
	ok(rs_init(NULL) == 0 && rs_thread_attach() == 0, "init and attach");
	test_exit_owning();
	test_churn();
	start_thread(&t, detach_twice, NULL);
	rs_offline();
	pthread_join(t, &r);
	rs_online();
	ok(r != NULL, "detach from offline, then again: both succeed");
	is(rs_shutdown(), 0L, "shutdown clean");
	return exit_status();
}
