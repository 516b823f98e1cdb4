/*
 * test_debug.c - misuse is reported, not silently absorbed.  Each case runs
 * in a child process; the test checks that the child aborted and that the
 * message names the call, the object's address and its type.
 *
 * The cases that depend on the debug build's quarantine of destroyed
 * objects (use after the last decref) run only when RS_DEBUG is set; count
 * underflow of a live object is caught in every build.
 */
#include <signal.h>
#include <sys/wait.h>

#include "testlib.h"

#ifndef RS_DEBUG
#define RS_DEBUG 0
#endif

static char msg[4096];

static void (*child_fn)(void);

static void attached_child(void)
{
	rs_thread_attach();
	child_fn();
}

/* Run fn attached in a child with stderr captured in msg. */
static int run_child(void (*fn)(void))
{
	child_fn = fn;
	return run_capture(attached_child, msg, sizeof(msg));
}

static void double_decref(void)
{
	struct node *n = node_new(1);

	rs_decref(n);
	rs_safepoint();	/* destroyed here */
	rs_decref(n);	/* the object is gone */
}

static void use_after_destroy(void)
{
	struct node *n = node_new(1);

	rs_decref(n);
	rs_safepoint();
	rs_incref(n);
}

static void underflow_published(void)
{
	struct node *n = node_new(1);

	rs_publish(n);
	rs_decref(n);
	rs_decref(n);	/* both logged: the second application underflows */
	for (;;)
		rs_safepoint();
}

static void underflow_shared(void)
{
	static struct node *slot;
	struct node *n = node_new(1);

	rs_set_steal(&slot, n);
	rs_incref(n);
	/* hand the count to "another" holder by merging: after this the
	 * object's counts live in the shared word */
	rs_decref(n);
	rs_decref(n);
	rs_decref(n);	/* one too many */
	rs_clear(&slot);
	for (;;)
		rs_safepoint();
}

/* What the build can promise about a decrement of a destroyed object:
 * debug builds keep destroyed objects in quarantine and name the misuse;
 * release builds check the header, which the allocator leaves in place; ASan
 * builds return freed memory to ASan, which reports the access itself. */
/* Every build aborts with a message: a freed slot of refstore's allocator
 * keeps its header, marked FREE|DEAD, so the checks see it (lib/alloc.c). */
#define MODE_ABORT 1

static void check_death(void (*fn)(void), const char *call, const char *name)
{
	int st = run_child(fn);

#if defined(MODE_ABORT)
	ok(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT, "%s: the child aborts", name);
	ok(strstr(msg, call) != NULL, "%s: the message names %s", name, call);
	ok(strstr(msg, "type 'node'") != NULL, "%s: and the type", name);
	ok(strstr(msg, "already destroyed") || strstr(msg, "underflow"),
	   "%s: and what went wrong", name);
	ok(strstr(msg, "(0x") != NULL, "%s: and the address", name);
	if (!WIFSIGNALED(st) || !strstr(msg, call))
		diag("child said: %s", msg);
#elif defined(MODE_ASAN)
	ok(WIFEXITED(st) && WEXITSTATUS(st) != 0, "%s: the child fails", name);
	ok(strstr(msg, "heap-use-after-free") != NULL,
	   "%s: AddressSanitizer reports the use after free", name);
	ok(strstr(msg, "rs_safepoint") != NULL,
	   "%s: where the decrement is applied (%s, at rs_safepoint)", name, call);
	skip(2, "type and address are named by debug and release builds");
#else
	(void)st;
	(void)call;
	(void)name;
	skip(5, "ThreadSanitizer builds neither keep nor check freed objects");
#endif
}

/* An offline thread counts as stopped: allocating then is misuse that the
 * debug build reports (a collection may be moving its nursery log). */
static void new_offline(void)
{
	rs_offline();
	rs_new(&node_type);
	_exit(0);
}

/* Calls the documentation forbids, each caught where it happens. */
static rs_map *walk_map;
static void (*in_walk)(void);

static int walk_fn(const void *key, size_t klen, void *value, void *arg)
{
	(void)key, (void)klen, (void)value, (void)arg;
	in_walk();
	return 1;
}

static void walk_with(void (*fn)(void))
{
	struct node *n = node_new(1);

	walk_map = rs_map_new();
	rs_map_put(walk_map, "k", 1, n);
	in_walk = fn;
	rs_map_foreach(walk_map, walk_fn, NULL);
	_exit(0);
}

static void call_safepoint(void) { rs_safepoint(); }
static void call_collect(void) { rs_gc_collect(0); }
static void call_map_free(void) { rs_map_free(walk_map); }
static void safepoint_in_walk(void) { walk_with(call_safepoint); }
static void collect_in_walk(void) { walk_with(call_collect); }
static void map_free_in_walk(void) { walk_with(call_map_free); }

static void set_offline(void)
{
	static void *slot;
	struct node *n = node_new(1);

	rs_offline();
	rs_set(&slot, n);
	_exit(0);
}

static void check_forbidden(void (*fn)(void), const char *call,
			    const char *cause, const char *name)
{
	int st = run_child(fn);

	ok(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT, "%s: the child aborts",
	   name);
	ok(strstr(msg, call) && strstr(msg, cause),
	   "... naming %s and the cause", call);
	if (!WIFSIGNALED(st) || !strstr(msg, call))
		diag("child said: %s", msg);
}

int main(void)
{
	int st;

	plan(1 + 4 * 5 + 3 + 4 * 2);
	ok(rs_init(NULL) == 0, "init");
	check_death(underflow_published, "rs_decref",
		    "double decref of a published object");
	check_death(underflow_shared, "rs_decref",
		    "extra decref of a shared object");
	if (RS_DEBUG) {
		check_death(double_decref, "rs_decref", "decref after destruction");
		check_death(use_after_destroy, "rs_incref", "incref after destruction");
	} else {
		skip(10, "needs the debug build's quarantine (make check DEBUG=1)");
	}
	if (RS_DEBUG) {
		st = run_child(new_offline);
		ok(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT,
		   "rs_new from an offline thread: the child aborts");
		ok(strstr(msg, "rs_new") && strstr(msg, "offline"),
		   "... the message names the call and the cause");
		ok(strstr(msg, "type 'node'") != NULL, "... and the type");
	} else {
		skip(3, "rs_new from an offline thread: debug builds only");
	}
	if (RS_DEBUG) {
		check_forbidden(safepoint_in_walk, "rs_safepoint",
				"rs_map_foreach", "rs_safepoint inside rs_map_foreach");
		check_forbidden(collect_in_walk, "rs_gc_collect",
				"rs_map_foreach", "rs_gc_collect inside rs_map_foreach");
		check_forbidden(map_free_in_walk, "rs_map_free",
				"rs_map_foreach", "rs_map_free inside rs_map_foreach");
		check_forbidden(set_offline, "rs_set", "offline",
				"rs_set from an offline thread");
	} else {
		skip(8, "calls the docs forbid: debug builds only");
	}
	rs_shutdown();
	return exit_status();
}
