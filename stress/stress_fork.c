/*
 * stress_fork.c - fork() while other threads mutate graphs and maps, hold
 * counted references, collect, or sit offline; the child must find a sound
 * heap, keep working, and shut down with nothing left alive.
 *
 * Worker threads loop over random operations: build rings, chains and
 * self-loops into their root slots and break and re-close them; put,
 * delete and read values (small structures) under their own keys of one
 * shared map, read other threads' keys, keep counted references from
 * rs_map_get_ref, keep a weak reference, make cyclic garbage, collect
 * (rs_gc_collect(0/1/2)), go offline for a while (rs_offline, usleep,
 * rs_online).  Thread 0 also forks, every ~40 ms (~120 ms under the
 * sanitizers), up to two children at a time; one fork in four from
 * offline, and, when online, holding a counted reference (rs_map_get_ref
 * of a key another thread keeps replacing) across the fork.  Not a
 * borrowed one: fork() is a safepoint for the forking thread (its prepare
 * step stops the world, and may first wait offline for another thread's
 * collection), so a borrowed reference may die in it.
 *
 * The rule that makes the child's end exact: at every safepoint and while
 * offline, every counted reference a worker holds is in a global place the
 * child can find (its slots, its held references, its weak slot, the map)
 * and its model of them (plain memory) is up to date.  fork's prepare step
 * stops the world, so each other thread is parked at a safepoint or
 * offline: the child inherits consistent models, and the objects those
 * threads owned (biased counts, logged decrements, merge queues) must be
 * handled by refstore's fork handling (threads/fork.c: retired as if they
 * had exited).
 *
 * The child (the forking thread alone) checks, and exits non-zero on the
 * first failure, printing why:
 *   - the counted reference taken before fork is alive, before the child
 *     reaches any safepoint and after;
 *   - rs_heap_verify() == 0;
 *   - every thread's structures against its model, every key of the map
 *     exactly (each thread's keys hold the value it put last), rs_map_count,
 *     every held reference alive, the weak reference;
 *   - it keeps working: random operations, a new attached thread doing the
 *     same, cyclic garbage that rs_gc_collect(2) must find;
 *   - it drops every reference of every thread (including the lost ones),
 *     frees the map, collects: rs_shutdown() must return 0 and every
 *     object ever made in this process line must have been destroyed
 *     (births == deaths).
 * The parent waits for each child (offline; at most 30 s, else it kills it
 * and fails) and fails on a non-zero status or a signal.  The parent
 * checks the counted reference after fork too, and itself ends like the
 * child: everything dropped, births == deaths, rs_shutdown() == 0.
 *
 * ThreadSanitizer: TSan keeps the parent's threads in its registry in the
 * child, and aborts if a new thread gets the pthread_t of one of them,
 * which happens because glibc's child reuses the dead threads' cached
 * stacks (tests/test_fork.c skips for that reason).  Under TSan this
 * program gives the parent's threads 1 MiB stacks and, in a fork handler
 * that runs before refstore's (which may start the reclaimer thread), the
 * child's new threads 4 MiB ones: a cached stack is never reused, so no
 * pthread_t repeats.  With die_after_fork=0 TSan then follows the child.
 */
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>

#include "stress.h"

#ifdef __SANITIZE_THREAD__
/* TSan's runtime (a shared library) looks this up: default visibility */
__attribute__((visibility("default"))) const char *__tsan_default_options(void);
const char *__tsan_default_options(void)
{
	return "die_after_fork=0";
}
#define SANITIZED 1
#elif defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#else
#define SANITIZED 0
#endif

#define MAGIC_ALIVE 0xf0cc5afef0cc5afeULL
#define MAGIC_DEAD 0xdeadf0ccdeadf0ccULL

#define MAXN 6		/* objects in a structure */
#define NSLOT 8		/* root slots per thread */
#define NKEY 16		/* map keys per thread */
#define NHELD 4		/* counted references from rs_map_get_ref */
#define MAXKIDS 2	/* children running at once */
#define FORK_NS (SANITIZED ? 120000000u : 40000000u)
#define CHILD_LIMIT_NS 30000000000u

/* A ring, a chain or a self-loop of fnodes. */
struct fnode {
	struct fnode *next;
	_Atomic uint64_t magic;
	uint64_t sid;		/* structure id */
	uint32_t idx, n;
	uint32_t circ;		/* built as a ring */
};

struct model {
	uint64_t sid;		/* 0: empty / absent */
	uint32_t n, circ;
};

struct worker {
	int id;
	struct stress_rng rng;
	uint64_t serial;
	struct fnode *slot[NSLOT];	/* fields */
	struct model smodel[NSLOT];
	struct model kmodel[NKEY];	/* this thread's keys of the map */
	struct fnode *held[NHELD];	/* counted, immutable structures */
	void *weak;			/* field: a weak reference */
	uint64_t weak_sid;
	int weak_slot;
};

static struct stress_counter c_ops = { "ops", 0 }, c_forks = { "forks", 0 },
	c_children = { "children_ok", 0 }, c_child_ms = { "child_ms", 0 },
	c_held = { "held_across_fork", 0 },
	c_offline = { "offline", 0 }, c_collect = { "collect", 0 },
	c_built = { "built", 0 }, c_verified = { "verified", 0 };

static struct worker *workers;	/* stress_threads + 1: the child's thread */
static rs_map *fmap;		/* counted */
static struct fnode *priv;	/* thread 0's private ring (never published) */
static struct model priv_model;
static atomic_long births, deaths;
static int in_child;		/* this process is a fork child */
static long fork_no;

/* ------------------------------------------------------------------------ */
/* Failing: the verdict in the parent, a message and exit status 1 in the   */
/* child (the parent then gives the verdict).                               */
/* ------------------------------------------------------------------------ */

static void ffail(const char *fmt, ...) __attribute__((format(printf, 1, 2),
						       noreturn));
static void ffail(const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (!in_child)
		stress_fail("%s", buf);
	dprintf(1, "%s: child %d (fork %ld): %s\n", stress_name, (int)getpid(),
		fork_no, buf);
	_exit(1);
}

#define fcheck(cond, ...)                                                    \
	do {                                                                 \
		if (!(cond))                                                 \
			ffail(__VA_ARGS__);                                  \
	} while (0)

/* ------------------------------------------------------------------------ */
/* Objects                                                                  */
/* ------------------------------------------------------------------------ */

static void fnode_traverse(void *obj, rs_visit_fn visit, void *arg)
{
	visit(((struct fnode *)obj)->next, arg);
}

static void fnode_destroy(void *obj)
{
	struct fnode *o = obj;
	uint64_t m = atomic_exchange_explicit(&o->magic, MAGIC_DEAD,
					      memory_order_relaxed);

	fcheck(m == MAGIC_ALIVE, "fnode %p destroyed twice (magic %#" PRIx64 ")",
	       obj, m);
	atomic_fetch_add_explicit(&deaths, 1, memory_order_relaxed);
}

static const rs_type fnode_type = {
	"stress_fnode", sizeof(struct fnode), fnode_traverse, NULL,
	fnode_destroy, 0,
};

/* A private structure of n nodes; one counted reference to its head. */
static struct fnode *build(struct worker *w, uint32_t n, int circ)
{
	struct fnode *v[MAXN];
	uint64_t sid = ((uint64_t)(w->id + 1) << 40) | ++w->serial;

	for (uint32_t i = 0; i < n; i++) {
		v[i] = rs_new(&fnode_type);
		fcheck(v[i] != NULL, "rs_new failed: errno %d", errno);
		atomic_fetch_add_explicit(&births, 1, memory_order_relaxed);
		v[i]->sid = sid;
		v[i]->idx = i;
		v[i]->n = n;
		v[i]->circ = (uint32_t)circ;
		atomic_store_explicit(&v[i]->magic, MAGIC_ALIVE,
				      memory_order_relaxed);
	}
	for (uint32_t i = 0; i + 1 < n; i++)
		v[i]->next = v[i + 1];	/* takes over the local reference */
	if (circ)
		v[n - 1]->next = rs_incref(v[0]);
	stress_add(&c_built, 1);
	return v[0];
}

static void check_header(const void *p)
{
	char buf[64];
	const char *wrong = stress_header_wrong(p, buf, sizeof(buf));

	fcheck(!wrong, "object %p is reachable but its header says%s", p, wrong);
	fcheck(rs_type_of(p) == &fnode_type, "object %p has the wrong type", p);
}

/* Walks a structure the caller can reach (no safepoint since) and checks
 * it against (sid, n, circ). */
static void verify(const struct fnode *head, uint64_t sid, uint32_t n,
		   uint32_t circ)
{
	const struct fnode *p = head;

	for (uint32_t i = 0; i < n; i++) {
		uint64_t m;

		fcheck(p != NULL, "structure %" PRIx64 ": object %u of %u "
		       "missing", sid, i, n);
		m = atomic_load_explicit(&p->magic, memory_order_relaxed);
		fcheck(m == MAGIC_ALIVE, "structure %" PRIx64 " (reachable): "
		       "object %u of %u at %p was destroyed (magic %#" PRIx64
		       ")", sid, i, n, (void *)p, m);
		check_header(p);
		fcheck(p->sid == sid && p->idx == i && p->n == n, "structure %"
		       PRIx64 ": expected object %u of %u, found %p = object "
		       "%u of %u of %" PRIx64, sid, i, n, (void *)p, p->idx,
		       p->n, p->sid);
		if (i + 1 < n)
			p = rs_get(&p->next);
	}
	fcheck(rs_get(&p->next) == (circ ? head : NULL), "structure %" PRIx64
	       ": the last next is wrong (circ %u)", sid, circ);
	stress_add(&c_verified, 1);
}

static void verify_value(const struct fnode *v)
{
	fcheck(atomic_load_explicit(&v->magic, memory_order_relaxed) ==
	       MAGIC_ALIVE, "value %p (reachable) was destroyed", (void *)v);
	verify(v, v->sid, v->n, v->circ);
}

static uint32_t key_of(char *buf, int t, int k)
{
	return (uint32_t)snprintf(buf, 16, "t%d.%d", t, k);
}

/* ------------------------------------------------------------------------ */
/* Checks of one thread's state (its own, or any, in the child)             */
/* ------------------------------------------------------------------------ */

static void verify_slots(struct worker *w)
{
	for (int k = 0; k < NSLOT; k++) {
		struct fnode *h = rs_get(&w->slot[k]);
		struct model *m = &w->smodel[k];

		if (!m->sid) {
			fcheck(h == NULL, "thread %d: slot %d should be empty",
			       w->id, k);
			continue;
		}
		fcheck(h != NULL, "thread %d: slot %d lost structure %" PRIx64,
		       w->id, k, m->sid);
		verify(h, m->sid, m->n, m->circ);
	}
	for (int i = 0; i < NHELD; i++)
		if (w->held[i])
			verify_value(w->held[i]);
}

/* Exact: only w puts and deletes its keys.  Returns the keys present. */
static long verify_keys(struct worker *w)
{
	long present = 0;
	char key[16];

	for (int k = 0; k < NKEY; k++) {
		uint32_t klen = key_of(key, w->id, k);
		struct fnode *v = rs_map_get(fmap, key, klen);
		struct model *m = &w->kmodel[k];

		if (!m->sid) {
			fcheck(!v && errno == ENOENT, "key %s should be absent, "
			       "holds %p (errno %d)", key, (void *)v, errno);
			continue;
		}
		fcheck(v != NULL, "key %s lost its value %" PRIx64 " (errno %d)",
		       key, m->sid, errno);
		verify(v, m->sid, m->n, m->circ);
		present++;
	}
	return present;
}

static void verify_weak(struct worker *w)
{
	void *wr = rs_get(&w->weak);
	struct fnode *t;

	if (!wr)
		return;
	t = rs_weakref_get(wr);
	if (w->smodel[w->weak_slot].sid == w->weak_sid)
		fcheck(t == rs_get(&w->slot[w->weak_slot]), "thread %d: weak "
		       "reference to slot %d's head gave %p", w->id,
		       w->weak_slot, (void *)t);
	if (t) {
		fcheck(t->sid == w->weak_sid && t->idx == 0, "weak reference "
		       "gave object %u of %" PRIx64 ", expected the head of %"
		       PRIx64, t->idx, t->sid, w->weak_sid);
		check_header(t);
		rs_decref(t);
	}
}

/* ------------------------------------------------------------------------ */
/* Operations                                                               */
/* ------------------------------------------------------------------------ */

static void one_op(struct worker *w)
{
	unsigned op = (unsigned)stress_below(&w->rng, 1000);
	int k = (int)stress_below(&w->rng, NSLOT);
	char key[16];

	if (op < 150) {				/* build into a slot */
		uint32_t n = 1 + (uint32_t)stress_below(&w->rng, MAXN);
		int circ = stress_below(&w->rng, 4) != 0;
		struct fnode *h = build(w, n, circ);

		w->smodel[k] = (struct model){ h->sid, n, (uint32_t)circ };
		rs_set_steal(&w->slot[k], h);
	} else if (op < 250) {			/* break or close its ring */
		struct model *m = &w->smodel[k];
		struct fnode *h = rs_get(&w->slot[k]), *last = h;

		if (!m->sid)
			return;
		for (uint32_t i = 1; i < m->n; i++)
			last = rs_get(&last->next);
		fcheck((m->circ ? rs_clear(&last->next)
				: rs_set(&last->next, h)) == 0,
		       "rs_set/rs_clear failed: errno %d", errno);
		m->circ ^= 1;
	} else if (op < 280) {
		rs_clear(&w->slot[k]);
		w->smodel[k].sid = 0;
	} else if (op < 400) {			/* put under its key */
		int kk = (int)stress_below(&w->rng, NKEY);
		uint32_t n = 1 + (uint32_t)stress_below(&w->rng, 3);
		int circ = (int)stress_below(&w->rng, 2);
		struct fnode *v = build(w, n, circ);
		uint32_t klen = key_of(key, w->id, kk);

		fcheck(rs_map_put(fmap, key, klen, v) == 0, "rs_map_put: errno %d",
		       errno);
		w->kmodel[kk] = (struct model){ v->sid, n, (uint32_t)circ };
		rs_decref(v);
	} else if (op < 450) {
		int kk = (int)stress_below(&w->rng, NKEY);
		uint32_t klen = key_of(key, w->id, kk);
		int rc = rs_map_del(fmap, key, klen);

		fcheck(w->kmodel[kk].sid ? rc == 0 : rc == -1 && errno == ENOENT,
		       "rs_map_del(%s): %d, errno %d", key, rc, errno);
		w->kmodel[kk].sid = 0;
	} else if (op < 600) {			/* read any thread's key */
		int t = (int)stress_below(&w->rng, (uint64_t)stress_threads);
		uint32_t klen = key_of(key, t, (int)stress_below(&w->rng, NKEY));
		struct fnode *v = rs_map_get(fmap, key, klen);

		if (v)
			verify_value(v);
		else
			fcheck(errno == ENOENT, "rs_map_get: errno %d", errno);
	} else if (op < 640) {			/* keep a counted value */
		int i = (int)stress_below(&w->rng, NHELD);
		int t = (int)stress_below(&w->rng, (uint64_t)stress_threads);
		uint32_t klen = key_of(key, t, (int)stress_below(&w->rng, NKEY));

		rs_decref(w->held[i]);
		w->held[i] = rs_map_get_ref(fmap, key, klen);
		if (w->held[i])
			verify_value(w->held[i]);
	} else if (op < 660) {			/* a weak reference */
		struct fnode *h = rs_get(&w->slot[k]);

		rs_clear(&w->weak);
		w->weak_sid = 0;
		if (h) {
			void *wr = rs_weakref_new(h, NULL, NULL);

			fcheck(wr != NULL, "rs_weakref_new: errno %d", errno);
			rs_set_steal(&w->weak, wr);
			w->weak_sid = w->smodel[k].sid;
			w->weak_slot = k;
		}
	} else if (op < 700) {
		verify_weak(w);
	} else if (op < 740) {			/* cyclic garbage */
		rs_decref(build(w, 1 + (uint32_t)stress_below(&w->rng, MAXN), 1));
	} else if (op < 745) {
		int g = (int)stress_below(&w->rng, 6);

		fcheck(rs_gc_collect(g < 3 ? 0 : g < 5 ? 1 : 2) >= 0,
		       "rs_gc_collect: errno %d", errno);
		stress_add(&c_collect, 1);
		verify_slots(w);
	} else if (op < 755) {
		rs_offline();
		usleep(20 + (unsigned)stress_below(&w->rng, 200));
		rs_online();
		stress_add(&c_offline, 1);
		verify_slots(w);
	} else if (op < 760 && w->id == 0) {	/* the private ring */
		rs_decref(priv);
		priv = build(w, 1 + (uint32_t)stress_below(&w->rng, MAXN), 1);
		priv_model = (struct model){ priv->sid, priv->n, 1 };
	} else {
		rs_safepoint();
		verify_slots(w);
	}
}

/* Gives back every reference w holds. */
static void drop_all(struct worker *w)
{
	for (int k = 0; k < NSLOT; k++) {
		rs_clear(&w->slot[k]);
		w->smodel[k].sid = 0;
	}
	for (int i = 0; i < NHELD; i++) {
		rs_decref(w->held[i]);
		w->held[i] = NULL;
	}
	rs_clear(&w->weak);
}

/* ------------------------------------------------------------------------ */
/* The child                                                                */
/* ------------------------------------------------------------------------ */

static void *child_thread(void *arg)
{
	struct worker *w = arg;

	fcheck(rs_thread_attach() == 0, "rs_thread_attach in the child failed");
	for (int i = 0; i < 300; i++)
		one_op(w);
	verify_slots(w);
	fcheck(rs_gc_collect(1) >= 0, "rs_gc_collect in the child's thread");
	drop_all(w);
	fcheck(rs_thread_detach() == 0, "rs_thread_detach in the child failed");
	return NULL;
}

/* Checks the value held (counted) across fork. */
static void check_held_value(struct fnode *hv, uint64_t sid, const char *where)
{
	fcheck(atomic_load_explicit(&hv->magic, memory_order_relaxed) ==
	       MAGIC_ALIVE && hv->sid == sid, "a value held (counted) across "
	       "fork was destroyed in the %s (magic %#" PRIx64 ")", where,
	       atomic_load_explicit(&hv->magic, memory_order_relaxed));
	verify_value(hv);
}

static void child_main(struct fnode *hv, uint64_t hv_sid, int online)
{
	struct worker *me = &workers[0], *extra = &workers[stress_threads];
	long present = 0, live, r, before;
	pthread_t t;
	int rounds = 0;

	in_child = 1;
	if (hv)		/* no safepoint in the child yet */
		check_held_value(hv, hv_sid, "child");
	if (!online)
		fcheck(rs_online() == 0, "rs_online in the child");
	fcheck(rs_heap_verify() == 0, "rs_heap_verify in the child");
	for (int i = 0; i < stress_threads; i++) {
		verify_slots(&workers[i]);
		verify_weak(&workers[i]);
		present += verify_keys(&workers[i]);
	}
	fcheck(rs_map_count(fmap) == present, "rs_map_count %ld in the child, "
	       "%ld keys present", rs_map_count(fmap), present);
	if (priv)
		verify(priv, priv_model.sid, priv_model.n, 1);

	/* keep working: this thread, a new thread, garbage, collections */
	for (int i = 0; i < 200; i++)
		one_op(me);
	fcheck(pthread_create(&t, NULL, child_thread, extra) == 0,
	       "pthread_create in the child failed");
	for (int i = 0; i < 200; i++)
		one_op(me);
	rs_offline();
	pthread_join(t, NULL);
	rs_online();
	if (hv) {
		check_held_value(hv, hv_sid, "child, after safepoints");
		rs_decref(hv);
	}
	before = atomic_load(&deaths);
	for (int i = 0; i < 8; i++)
		rs_decref(build(me, 3, 1));
	r = rs_gc_collect(2);
	fcheck(r >= 0 && atomic_load(&deaths) - before >= 24, "rs_gc_collect(2)"
	       " in the child: %ld, %ld objects destroyed, 24 rings' members "
	       "were garbage", r, atomic_load(&deaths) - before);
	fcheck(rs_heap_verify() == 0, "rs_heap_verify in the child (later)");
	present = 0;
	for (int i = 0; i < stress_threads; i++) {
		verify_slots(&workers[i]);
		present += verify_keys(&workers[i]);
	}

	/* the end: every reference of every thread, lost or not */
	for (int i = 0; i <= stress_threads; i++)
		drop_all(&workers[i]);
	rs_decref(priv);
	fcheck(rs_map_free(fmap) == 0, "rs_map_free in the child: errno %d",
	       errno);
	do {
		fcheck(rs_gc_collect(2) >= 0, "rs_gc_collect in the child");
		rs_safepoint();
	} while (atomic_load(&births) != atomic_load(&deaths) && ++rounds < 100);
	live = rs_shutdown();
	fcheck(live == 0, "rs_shutdown in the child: %ld objects alive", live);
	fcheck(atomic_load(&births) == atomic_load(&deaths), "child: %ld objects"
	       " made, %ld destroyed", atomic_load(&births),
	       atomic_load(&deaths));
	_exit(0);
}

/* ------------------------------------------------------------------------ */
/* The parent's side of fork                                                */
/* ------------------------------------------------------------------------ */

struct kid {
	pid_t pid;
	long no;
	uint64_t t0;
};

static struct kid kids[MAXKIDS];
static int nkids;

static void reaped(int i, int status)
{
	uint64_t ms = (stress_now_ns() - kids[i].t0) / 1000000u;

	fcheck(WIFEXITED(status) && WEXITSTATUS(status) == 0, "fork child %d "
	       "(fork %ld) %s %d", (int)kids[i].pid, kids[i].no,
	       WIFEXITED(status) ? "exited with status" : "died of signal",
	       WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
	stress_add(&c_children, 1);
	stress_add(&c_child_ms, (long)ms);
	kids[i] = kids[--nkids];
}

/* Reaps finished children, then waits (offline) until at most `keep`
 * remain.  A child past its time limit is killed: a hang. */
static void reap(int keep)
{
	for (;;) {
		for (int i = 0; i < nkids; i++) {
			int status;
			pid_t p = waitpid(kids[i].pid, &status, WNOHANG);

			if (p == kids[i].pid) {
				reaped(i, status);
				i--;
			} else if (stress_now_ns() - kids[i].t0 > CHILD_LIMIT_NS) {
				kill(kids[i].pid, SIGKILL);
				ffail("fork child %d (fork %ld) hung for %.0f s",
				      (int)kids[i].pid, kids[i].no,
				      (double)CHILD_LIMIT_NS / 1e9);
			}
		}
		if (nkids <= keep)
			return;
		rs_offline();
		usleep(1000);
		rs_online();
	}
}

static void do_fork(struct worker *w)
{
	int online = stress_below(&w->rng, 4) != 0;
	struct fnode *hv = NULL;
	uint64_t hv_sid = 0;
	pid_t pid;

	reap(MAXKIDS - 1);
	if (online && stress_threads > 1) {
		/* hold a value another thread keeps replacing */
		char key[16];
		int t = 1 + (int)stress_below(&w->rng, (uint64_t)stress_threads - 1);
		uint32_t klen = key_of(key, t, (int)stress_below(&w->rng, NKEY));

		hv = rs_map_get_ref(fmap, key, klen);
		if (hv)
			hv_sid = hv->sid;
	}
	if (!online)
		rs_offline();
	fflush(stdout);
	fork_no++;
	pid = fork();
	fcheck(pid >= 0, "fork failed: errno %d", errno);
	if (pid == 0)
		child_main(hv, hv_sid, online);
	if (!online)
		rs_online();
	if (hv) {
		check_held_value(hv, hv_sid, "parent");
		rs_decref(hv);
		stress_add(&c_held, 1);
	}
	kids[nkids++] = (struct kid){ pid, fork_no, stress_now_ns() };
	stress_add(&c_forks, 1);
}

static void *worker_main(void *arg)
{
	struct worker *w = &workers[(intptr_t)arg];
	uint64_t next_fork = stress_now_ns() + FORK_NS / 2;

	fcheck(rs_thread_attach() == 0, "rs_thread_attach failed");
	while (!stress_stopping()) {
		for (int i = 0; i < 32; i++)
			one_op(w);
		stress_add(&c_ops, 32);
		if (w->id == 0 && nkids)
			reap(MAXKIDS);		/* only those done */
		if (w->id == 0 && stress_now_ns() >= next_fork) {
			do_fork(w);
			next_fork = stress_now_ns() + FORK_NS;
		}
	}
	if (w->id == 0) {
		reap(0);
		rs_decref(priv);
		priv = NULL;
	}
	verify_slots(w);
	drop_all(w);
	rs_thread_detach();
	return NULL;
}

#ifdef __SANITIZE_THREAD__
static void set_default_stack(size_t bytes)
{
	pthread_attr_t a;

	pthread_attr_init(&a);
	pthread_attr_setstacksize(&a, bytes);
	pthread_setattr_default_np(&a);
	pthread_attr_destroy(&a);
}

static void child_stacks(void)
{
	set_default_stack((size_t)4 << 20);
}
#endif

int main(int argc, char **argv)
{
	pthread_t *t;
	uint64_t end;

#ifdef __SANITIZE_THREAD__
	set_default_stack((size_t)1 << 20);	/* see the file's comment */
	pthread_atfork(NULL, NULL, child_stacks);
#endif
	stress_start(argc, argv, "stress_fork", (struct stress_counter *[]){
		     &c_ops, &c_forks, &c_children, &c_child_ms, &c_held,
		     &c_offline, &c_collect, &c_built, &c_verified, NULL });
	fcheck(rs_init(NULL) == 0 && rs_thread_attach() == 0,
	       "rs_init/rs_thread_attach failed");
	rs_gc_set_threshold(500, 5, 5);
	workers = calloc((size_t)stress_threads + 1, sizeof(*workers));
	t = calloc((size_t)stress_threads, sizeof(*t));
	fcheck(workers && t, "out of memory");
	for (int i = 0; i <= stress_threads; i++) {
		workers[i].id = i;
		stress_rng_init(&workers[i].rng, (uint64_t)i);
	}
	fmap = rs_map_new();
	fcheck(fmap != NULL, "rs_map_new failed");

	stress_spawn(t, stress_threads, worker_main);
	stress_join(t, stress_threads);

	fcheck(rs_map_free(fmap) == 0, "rs_map_free: errno %d", errno);
	end = stress_now_ns() + 5000000000u;
	do {
		fcheck(rs_gc_collect(2) >= 0, "rs_gc_collect failed");
		rs_safepoint();
	} while (atomic_load(&births) != atomic_load(&deaths) &&
		 stress_now_ns() < end);
	fcheck(atomic_load(&births) == atomic_load(&deaths), "%ld objects made, "
	       "%ld destroyed after everything was dropped",
	       atomic_load(&births), atomic_load(&deaths));
	fcheck(rs_heap_verify() == 0, "rs_heap_verify at the end");
	stress_shutdown(0);
	free(workers);
	free(t);
	return stress_finish();
}
