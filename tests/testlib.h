/*
 * testlib.h - object types and helpers shared by refstore's tests.
 *
 * `node` holds two counted references and a magic word: rs_new leaves it 0,
 * node_new sets NODE_ALIVE, and destroy overwrites it with NODE_DEAD, so a
 * test that reaches a destroyed node through a borrowed reference sees it
 * (and ASan builds report the access outright).
 */
#ifndef RS_TESTLIB_H
#define RS_TESTLIB_H

#include <pthread.h>
#include <sched.h>
#include <sys/wait.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include "refstore.h"
#include "tap.h"

/* Whether the test runs under Valgrind (make check-valgrind): checks of
 * page faults or timings do not hold there. */
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define UNDER_VALGRIND() (RUNNING_ON_VALGRIND != 0)
#endif
#endif
#ifndef UNDER_VALGRIND
#define UNDER_VALGRIND() 0
#endif

#define NODE_ALIVE 0x600dcafe600dcafeULL
#define NODE_DEAD 0xdeadbeefdeadbeefULL

struct node {
	struct node *kid[2];
	uint64_t magic;
	long value;
};

static long nodes_destroyed;	/* atomic */

static void node_traverse(void *obj, rs_visit_fn visit, void *arg)
{
	struct node *n = (struct node *)obj;

	visit(n->kid[0], arg);
	visit(n->kid[1], arg);
}

static void node_destroy(void *obj)
{
	struct node *n = (struct node *)obj;

	__atomic_store_n(&n->magic, NODE_DEAD, __ATOMIC_RELAXED);
	__atomic_fetch_add(&nodes_destroyed, 1, __ATOMIC_RELAXED);
}

static const rs_type node_type = {
	"node", sizeof(struct node), node_traverse, NULL, node_destroy, 0,
};

static inline struct node *node_new(long value)
{
	struct node *n = (struct node *)rs_new(&node_type);

	if (n) {
		n->magic = NODE_ALIVE;
		n->value = value;
	}
	return n;
}

static inline long destroyed(void)
{
	return __atomic_load_n(&nodes_destroyed, __ATOMIC_RELAXED);
}

static inline uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Safepoints until `cond` holds or `ms` milliseconds pass. */
#define settle_until(cond, ms)                                               \
	do {                                                                 \
		uint64_t settle_end_ = now_ns() + (uint64_t)(ms) * 1000000u; \
		while (!(cond) && now_ns() < settle_end_) {                  \
			rs_safepoint();                                      \
			sched_yield();                                       \
		}                                                            \
	} while (0)

static inline long live_objects(void)
{
	struct rs_stats st;

	rs_stats(&st);
	return (long)st.live_objects;
}

static inline void start_thread(pthread_t *t, void *(*fn)(void *), void *arg)
{
	if (pthread_create(t, NULL, fn, arg))
		bail_out("pthread_create failed");
}

/* Join a thread while offline, so the wait holds up nobody. */
static inline void *join_offline(pthread_t t)
{
	void *ret = NULL;

	rs_offline();
	pthread_join(t, &ret);
	rs_online();
	return ret;
}

/* Run fn in a child process with its stderr captured into buf (NUL
 * terminated); returns the child's wait status. */
static inline int run_capture(void (*fn)(void), char *buf, size_t size)
{
	int fds[2], status;
	ssize_t n, got = 0;
	pid_t pid;

	if (pipe(fds))
		bail_out("pipe");
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		dup2(fds[1], 2);
		close(fds[0]);
		fn();
		_exit(0);
	}
	close(fds[1]);
	while (got < (ssize_t)size - 1 &&
	       (n = read(fds[0], buf + got, size - 1 - (size_t)got)) > 0)
		got += n;
	buf[got] = 0;
	close(fds[0]);
	waitpid(pid, &status, 0);
	return status;
}

#endif /* RS_TESTLIB_H */
