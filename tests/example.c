/* example.c - the README's example: a shared "latest config" slot that one
 * thread keeps replacing while reader threads use it without counting. */
#include <pthread.h>
#include <stdio.h>
#include <refstore.h>

struct config {
	struct config *previous;	/* a counted reference, or NULL */
	long version;
};

static void config_traverse(void *obj, rs_visit_fn visit, void *arg)
{
	visit(((struct config *)obj)->previous, arg);
}

static const rs_type config_type = {
	.name = "config",
	.size = sizeof(struct config),
	.traverse = config_traverse,
};

static struct config *current;	/* shared slot: holds a counted reference */

static void *reader(void *arg)
{
	long seen = 0, i;

	(void)arg;
	rs_thread_attach();
	for (i = 0; i < 100000; i++) {
		/* borrowed: valid until this thread's next safepoint */
		struct config *c = rs_get(&current);

		if (c && c->version > seen)
			seen = c->version;
		rs_safepoint();	/* between requests */
	}
	rs_thread_detach();
	return (void *)seen;
}

int main(void)
{
	pthread_t r[2];
	void *seen[2];
	long v;

	rs_init(NULL);
	rs_thread_attach();
	pthread_create(&r[0], NULL, reader, NULL);
	pthread_create(&r[1], NULL, reader, NULL);
	for (v = 1; v <= 1000; v++) {
		struct config *c = rs_new(&config_type);

		c->version = v;	/* private until stored: plain stores */
		rs_set_steal(&current, c);	/* the old one is given back later */
		rs_safepoint();
	}
	rs_offline();	/* about to block */
	pthread_join(r[0], &seen[0]);
	pthread_join(r[1], &seen[1]);
	rs_online();
	printf("readers saw versions up to %ld and %ld\n", (long)seen[0],
	       (long)seen[1]);
	rs_clear(&current);
	printf("objects still alive at shutdown: %ld\n", rs_shutdown());
	return 0;
}
