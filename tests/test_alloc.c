/*
 * test_alloc.c - the object allocator (lib/alloc.c): size classes, remote
 * frees, type stability until a grace period, the heap walk, thread exit
 * and fork, allocation failure, and ASan's view of freed slots.
 */
#define RS_BUILDING 1
#include "internal.h"
#include "alloc.h"

#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "testlib.h"

#ifdef RS_PLAIN_MALLOC
#define SCALE 4
#else
#define SCALE 1
#endif

#define NTYPES 126	/* payloads 0, 8, ..., 1000: headers included, 32..1032 */
static rs_type types[NTYPES];

static void make_types(void)
{
	int i;

	for (i = 0; i < NTYPES; i++) {
		types[i].name = "sized";
		types[i].size = (size_t)i * 8;
	}
}

/* Debug builds quarantine destroyed objects: give them to the allocator. */
static void flush(void)
{
	if (RS_DEBUG)
		rs__quarantine_flush();
}

static bool all_zero(const unsigned char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

/* Every class: zeroed object, header as rs_new promises, freed at the next
 * safepoint, and the same memory comes back for the next object. */
static void test_classes(void)
{
	int i, bad_zero = 0, bad_reuse = 0, bad_align = 0, bad_head = 0;
	unsigned char *o, *o2;

	for (i = 0; i < NTYPES; i++) {
		o = rs_new(&types[i]);
		if (!o)
			bail_out("rs_new failed for size %zu", types[i].size);
		bad_zero += !all_zero(o, types[i].size);
		bad_align += ((uintptr_t)o & 15) != 0;
		bad_head += rs_refcount(o) != 1 || rs_type_of(o) != &types[i] ||
			    rs__head_of(o)->bits != 0;
		memset(o, 0xa5, types[i].size);
		rs_decref(o);
		rs_safepoint();
		flush();
		o2 = rs_new(&types[i]);
		bad_zero += !all_zero(o2, types[i].size);
		if (RS_HEAD_SIZE + types[i].size <= 1024)
			bad_reuse += o2 != o;
		rs_decref(o2);
		rs_safepoint();
	}
	is(bad_zero, 0, "every class hands out zeroed objects");
	is(bad_align, 0, "every object is 16-byte aligned");
	is(bad_head, 0, "every header is initialised");
	is(bad_reuse, 0, "a freed slot is the next one its class hands out");
}

/* Each size goes to the smallest class that holds it: the classes are 32 to
 * 128 bytes by 16, then eight per doubling up to 1024, listed here
 * independently of the allocator's table (lib/alloc.h RS__CLS); above 128
 * bytes a slot wastes less than 1/8 of itself. */
static void test_class_choice(void)
{
	unsigned slot[31], n = 0, c, e, j, want;
	int bad = 0, waste = 0;
	size_t size, bytes;
	rs_type t = {"any size", 0, NULL, NULL, NULL, 0};
	void *o;

	for (c = 32; c <= 128; c += 16)
		slot[n++] = c;
	for (e = 128; e < 1024; e *= 2)
		for (j = 1; j <= 8; j++)
			slot[n++] = e + j * (e / 8);
	for (size = 1; RS_HEAD_SIZE + size <= 1024; size++) {
		bytes = RS_HEAD_SIZE + size;
		for (want = 0; slot[want] < bytes; want++)
			;
		t.size = size;
		o = rs_new(&t);
		if (!o)
			bail_out("rs_new failed for size %zu", size);
		if (rs__alloc_slab_class(o) != (int)want && bad++ < 5)
			diag("%zu bytes: class %d, want %u (%u bytes)", bytes,
			     rs__alloc_slab_class(o), want, slot[want]);
		waste += bytes > 128 && (slot[want] - bytes) * 8 >= slot[want];
		rs_decref(o);
		rs_safepoint();	/* freed before its type changes size */
	}
	is(n, 31u, "31 size classes");
	is(bad, 0, "every size from 33 to 1024 bytes gets the smallest class "
	   "that holds it");
	is(waste, 0, "... wasting less than 1/8 of the slot above 128 bytes");
}

/* Raw allocator under contention: threads swap blocks in and out of a
 * shared table, so most frees are by another thread than the owner. */
#define TABLE 4096
static struct rs__head *table[TABLE];
static const rs_type raw_type = {"raw", 0, NULL, NULL, NULL, 0};
static long raw_allocs, raw_frees;	/* atomic */

static size_t raw_bytes(unsigned r)
{
	return 32 + (r % 60) * 16;	/* 32..976 */
}

static void raw_free(struct rs__head *h)
{
	rs__obj_free(h, (size_t)h->local);
	__atomic_fetch_add(&raw_frees, 1, __ATOMIC_RELAXED);
}

static void *swapper(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg, i, r;
	struct rs__head *h, *old;
	size_t bytes;

	rs_thread_attach();
	for (i = 0; i < 200000u / SCALE; i++) {
		r = rand_r(&seed);
		bytes = raw_bytes(r >> 8);
		h = rs__obj_alloc(rs__self(), bytes);
		if (!h)
			bail_out("allocation failed");
		h->type = &raw_type;
		h->bits = 0;
		h->tid = RS__TID_MERGED;
		h->local = (uint32_t)bytes;	/* the test keeps the size here */
		__atomic_fetch_add(&raw_allocs, 1, __ATOMIC_RELAXED);
		old = __atomic_exchange_n(&table[r % TABLE], h, __ATOMIC_ACQ_REL);
		if (old)
			raw_free(old);
		if ((i & 255) == 0)
			rs_safepoint();
	}
	rs_thread_detach();
	return NULL;
}

struct count {
	const rs_type *type;
	long n;
};

static void count_visit(void *obj, void *arg)
{
	struct count *c = arg;

	if (!c->type || rs_type_of(obj) == c->type)
		c->n++;
}

static long count_live(const rs_type *type)
{
	struct count c = {type, 0};

	rs__heap_walk(count_visit, &c);
	return c.n;
}

static void test_remote_frees(void)
{
	pthread_t t[4];
	long in_table = 0;
	int i;

	for (i = 0; i < 4; i++)
		start_thread(&t[i], swapper, (void *)(uintptr_t)(i + 1));
	for (i = 0; i < 4; i++)
		join_offline(t[i]);
	for (i = 0; i < TABLE; i++)
		in_table += table[i] != NULL;
	is(raw_allocs - raw_frees, in_table,
	   "allocations minus frees == blocks still in the table");
	is(count_live(&raw_type), in_table,
	   "the heap walk finds exactly the blocks in the table");
	is(rs__alloc_validate(), 0L, "slab invariants hold after 4 threads swapped");
	for (i = 0; i < TABLE; i++) {
		if (table[i])
			raw_free(table[i]);
		table[i] = NULL;
	}
	is(count_live(&raw_type), 0L, "all freed: the walk finds none");
	is(rs__alloc_validate(), 0L, "slab invariants hold after freeing all");
	is(rs_heap_verify(), 0L, "rs_heap_verify agrees");
}

/* The walk sees exactly the live objects, large ones included. */
#define WALKN 3000
static void test_walk(void)
{
	static void *objs[WALKN];
	static const rs_type big = {"big", 4000, NULL, NULL, NULL, 0};
	int i, freed = 0;

	for (i = 0; i < WALKN; i++)
		objs[i] = i % 100 == 0 ? rs_new(&big) : rs_new(&types[i % NTYPES]);
	for (i = 0; i < WALKN; i += 3) {
		rs_decref(objs[i]);
		objs[i] = NULL;
		freed++;
	}
	rs_safepoint();
	is(count_live(&big), (long)(WALKN / 100 - (WALKN / 100 + 2) / 3),
	   "the walk finds the live large objects");
	is(count_live(&types[5]) + count_live(&types[6]) > 0, 1,
	   "and small ones");
	{
		long n = 0;

		for (i = 0; i < NTYPES; i++)
			n += count_live(&types[i]);
		n += count_live(&big);
		is(n, (long)(WALKN - freed), "the walk finds exactly the live objects");
	}
	is(rs_heap_verify(), 0L, "rs_heap_verify finds nothing wrong");
	for (i = 0; i < WALKN; i++)
		rs_decref(objs[i]);
	rs_safepoint();
}

/* An emptied slab keeps its class until a grace period has passed: an
 * online thread that does not pass a safepoint holds it there. */
static int stall_go, stall_ready;	/* atomic */

static void *staller(void *unused)
{
	(void)unused;
	rs_thread_attach();
	__atomic_store_n(&stall_ready, 1, __ATOMIC_RELEASE);
	while (!__atomic_load_n(&stall_go, __ATOMIC_ACQUIRE))
		usleep(1000);	/* online, no safepoint: grace periods wait */
	rs_thread_detach();
	return NULL;
}

static void test_grace_period(void)
{
	enum { N = 4000 };
	static void *objs[N];
	const rs_type *ty = &types[60];	/* 512 bytes: 128 per slab */
	pthread_t t;
	int i, c, j;
	void *first;

	for (i = 0; i < N; i++)
		objs[i] = rs_new(ty);
	first = objs[0];
	c = rs__alloc_slab_class(first);
	ok(c >= 0, "the object's slab has a class (%d)", c);
	start_thread(&t, staller, NULL);
	while (!__atomic_load_n(&stall_ready, __ATOMIC_ACQUIRE))
		usleep(1000);
	/* empty the first slab (not the one being allocated from) */
	for (i = 0; i < N / 2; i++)
		rs_decref(objs[i]);
	rs_safepoint();
	flush();
	for (j = 0; j < 50; j++) {
		rs__gp_request();
		rs__alloc_reap();
		/* other classes want slabs meanwhile */
		for (i = 0; i < 200; i++)
			rs_decref(rs_new(&types[i % 20]));
		rs_safepoint();
		usleep(1000);
	}
	is(rs__alloc_slab_class(first), c,
	   "while a thread stalls online, the emptied slab keeps its class");
	__atomic_store_n(&stall_go, 1, __ATOMIC_RELEASE);
	join_offline(t);
	settle_until((rs__gp_request(), rs__alloc_reap(),
		      rs__alloc_slab_class(first) != c), 5000);
	ok(rs__alloc_slab_class(first) != c,
	   "after a grace period the slab left its class");
	for (i = N / 2; i < N; i++)
		rs_decref(objs[i]);
	rs_safepoint();
}

/* A thread's slabs outlive it; others free into them and reuse them. */
static void *maker(void *arg)
{
	void **objs = arg;
	int i;

	rs_thread_attach();
	for (i = 0; i < 5000; i++)
		rs_set_steal(&objs[i], node_new(i));
	rs_thread_detach();
	return NULL;
}

static void test_thread_exit(void)
{
	static void *objs[5000];
	pthread_t t;
	long live = live_objects();
	int i;

	start_thread(&t, maker, objs);
	join_offline(t);
	is(live_objects(), live + 5000, "the exited thread's objects live on");
	is(rs_heap_verify(), 0L, "heap consistent after the exit");
	for (i = 0; i < 5000; i++)
		rs_clear(&objs[i]);
	settle_until(live_objects() == live, 5000);
	is(live_objects(), live, "others destroyed them (remote frees)");
	is(rs_heap_verify(), 0L, "heap consistent after the remote frees");
}

/* A thread leaves many slabs behind (they go to the shared pool) and
 * others free every object in them: nobody owns those slabs, yet they must
 * come back to the allocator and their arenas go back beyond the retention
 * (a review found them held forever). */
#define BULK 100000
static void *bulk[BULK];

static void *bulk_maker(void *unused)
{
	int i;

	(void)unused;
	rs_thread_attach();
	for (i = 0; i < BULK; i++)
		bulk[i] = rs_new(&types[25]);	/* 200-byte payload */
	rs_thread_detach();
	return NULL;
}

static size_t slab_bytes(void)
{
	struct rs_stats st;

	rs_stats(&st);
	return st.slab_bytes;
}

static void test_pooled_reclaim(void)
{
	pthread_t t;
	size_t peak;
	long live;
	int i;

	start_thread(&t, bulk_maker, NULL);
	join_offline(t);
	peak = slab_bytes();	/* the 100,000 objects need over 24 MiB */
	live = live_objects();
	for (i = 0; i < BULK; i++)
		rs_decref(bulk[i]);
	settle_until(live_objects() <= live - BULK, 5000);
	if (RS_DEBUG)	/* debug builds hold destroyed objects back */
		rs__quarantine_flush();
	settle_until(slab_bytes() + (20u << 20) <= peak, 5000);
	ok(slab_bytes() + (20u << 20) <= peak,
	   "slabs emptied by other threads' frees go back (slabs %zu -> %zu KiB)",
	   peak >> 10, slab_bytes() >> 10);
	is(rs_heap_verify(), 0L, "heap consistent afterwards");
}

/* Arenas given back stay mapped for a moment as spares and the next arenas
 * are taken from them (lib/alloc.c): a heap dropped and built again at once
 * does not fault its pages in again.  (Sanitizer builds take arenas from
 * posix_memalign and have no spares.) */
#ifndef RS_PLAIN_MALLOC
#define SPARE_OBJS 80000	/* 200-byte payloads, 232-byte slots: 18 MiB */
static void *spare_objs[SPARE_OBJS];

static long minor_faults(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_minflt;
}

static size_t arena_bytes(void)
{
	struct rs_stats st;

	rs_stats(&st);
	return st.arena_bytes;
}
#endif

static void test_spares(void)
{
#ifdef RS_PLAIN_MALLOC
	skip(1, "sanitizer builds have no spare arenas");
#else
	long pages = (long)((size_t)SPARE_OBJS * 232 / 4096), faults = 0;
	size_t peak = 0;
	int i, round;

	for (round = 0; round < 2; round++) {
		faults = minor_faults();
		for (i = 0; i < SPARE_OBJS; i++)
			spare_objs[i] = rs_new(&types[25]);
		faults = minor_faults() - faults;
		peak = arena_bytes();
		for (i = 0; i < SPARE_OBJS; i++)
			rs_decref(spare_objs[i]);
		rs_safepoint();
		flush();
		/* at least three arenas given back (to the spares) */
		settle_until(arena_bytes() + 3 * RS__ARENA_SIZE <= peak, 5000);
	}
	diag("arenas %zu -> %zu KiB; rebuilding %ld pages of objects took "
	     "%ld minor faults", peak >> 10, arena_bytes() >> 10, pages, faults);
	if (UNDER_VALGRIND())	/* it maps and faults pages its own way */
		skip(1, "page faults under Valgrind");
	else
		ok(faults < pages / 4, "a heap dropped and built again reuses "
		   "the arenas given back (%ld faults for %ld pages)", faults,
		   pages);
#endif
}

static int holder_ready;	/* atomic */

static void *holder(void *unused)
{
	void *o[1000];
	int i;

	(void)unused;
	rs_thread_attach();
	for (i = 0; i < 1000; i++)
		o[i] = rs_new(&types[i % NTYPES]);
	__atomic_store_n(&holder_ready, 1, __ATOMIC_RELEASE);
	while (!__atomic_load_n(&stall_go, __ATOMIC_ACQUIRE))
		rs_safepoint();
	for (i = 0; i < 1000; i++)
		rs_decref(o[i]);
	rs_thread_detach();
	return NULL;
}

static void test_fork(void)
{
	pthread_t t;
	pid_t pid;
	int status = -1;

#ifdef __SANITIZE_THREAD__
	skip(1, "ThreadSanitizer cannot follow a forked child's threads");
	return;
#endif
	__atomic_store_n(&stall_go, 0, __ATOMIC_RELEASE);
	start_thread(&t, holder, NULL);
	settle_until(__atomic_load_n(&holder_ready, __ATOMIC_ACQUIRE), 5000);
	pid = fork();
	if (pid == 0) {
		void *o[3000];
		int i;

		if (rs_heap_verify() != 0)
			_exit(2);
		for (i = 0; i < 3000; i++)
			if (!(o[i] = rs_new(&types[i % NTYPES])))
				_exit(3);
		for (i = 0; i < 3000; i++)
			rs_decref(o[i]);
		rs_safepoint();
		_exit(rs_heap_verify() != 0 ? 4 : 0);
	}
	rs_offline();
	waitpid(pid, &status, 0);
	rs_online();
	is(status, 0, "fork child: verify, allocate, free, verify");
	__atomic_store_n(&stall_go, 1, __ATOMIC_RELEASE);
	join_offline(t);
}

/* Each allocation site fails once: rs_new gives NULL/ENOMEM, nothing else
 * changes, and the next attempt works. */
static void test_faults(void)
{
	static const rs_type big = {"big", 5000, NULL, NULL, NULL, 0};
	static const rs_type odd = {"odd", 870, NULL, NULL, NULL, 0};
	static void *objs[20000];
	struct rs_stats st;
	long live = live_objects();
	int i, fails = 0, n = 0;
	void *o;

	rs__fault_set(RS__FAULT_LARGE, 1);
	errno = 0;
	o = rs_new(&big);
	ok(!o && errno == ENOMEM, "large object: NULL/ENOMEM");
	o = rs_new(&big);
	ok(o != NULL, "then it works");
	rs_decref(o);
	rs_safepoint();

	/* a tracked object needs room in its thread's nursery log */
	rs__fault_set(RS__FAULT_GCLOG, 1);
	for (i = 0; i < 10000; i++) {
		o = node_new(i);
		if (!o) {
			fails += errno == ENOMEM;
			continue;
		}
		objs[n++] = o;
	}
	is(fails, 1, "collector log: one NULL/ENOMEM in 10000 tracked objects");
	is(live_objects(), live + n, "the failure left no object behind");
	is(rs_heap_verify(), 0L, "heap and collector logs consistent");
	for (i = 0; i < n; i++)
		rs_decref(objs[i]);
	rs_safepoint();
	fails = n = 0;

	rs__fault_set(RS__FAULT_SLAB, 1);
	for (i = 0; i < 3000; i++) {
		o = rs_new(&odd);
		if (!o) {
			fails += errno == ENOMEM;
			continue;
		}
		objs[n++] = o;
	}
	is(fails, 1, "slab: one NULL/ENOMEM in 3000 objects of 902 bytes");
	is(live_objects(), live + n, "the failure left no object behind");
	for (i = 0; i < n; i++)
		rs_decref(objs[i]);
	rs_safepoint();
	fails = n = 0;

	/* fill past the arenas held, so a new one is needed */
	rs__fault_set(RS__FAULT_ARENA, 1);
	rs_stats(&st);
	for (i = 0; i < 20000 && n < 20000; i++) {
		o = rs_new(&types[120]);
		if (!o) {
			fails += errno == ENOMEM;
			continue;
		}
		objs[n++] = o;
	}
	is(fails, 1, "arena: one NULL/ENOMEM while filling %zu MiB",
	   st.arena_bytes >> 20);
	is(live_objects(), live + n, "the failures left no object behind");
	is(rs_heap_verify(), 0L, "heap consistent after the failures");
	for (i = 0; i < n; i++)
		rs_decref(objs[i]);
	rs_safepoint();
	rs_safepoint();
	is(live_objects(), live, "all freed");
}

static void test_stats(void)
{
	struct rs_stats st;

	rs_stats(&st);
	ok(st.arena_bytes > 0 && st.slab_bytes > 0 &&
	   st.slab_bytes + st.retained_bytes >= st.slab_bytes &&
	   st.free_list_bytes <= st.slab_bytes && st.slab_bytes < st.arena_bytes,
	   "stats: arenas %zu, slabs %zu, free lists %zu, retained %zu",
	   st.arena_bytes, st.slab_bytes, st.free_list_bytes, st.retained_bytes);
}

#ifdef __SANITIZE_ADDRESS__
static void read_freed(void)
{
	struct node *nd = node_new(7);
	volatile long v;

	rs_decref(nd);
	rs_safepoint();		/* freed now, slot poisoned */
	v = nd->value;		/* use after free */
	(void)v;
}
#endif

static void test_asan_uaf(void)
{
#ifndef __SANITIZE_ADDRESS__
	skip(1, "use-after-free report: ASan builds only");
#else
	char buf[8192];
	int status = run_capture(read_freed, buf, sizeof(buf));

	ok(!(WIFEXITED(status) && WEXITSTATUS(status) == 0) &&
	   strstr(buf, "use-after-free") && strstr(buf, "'node'"),
	   "ASan reports a read of a freed slot as use-after-free of a 'node'");
	if (!strstr(buf, "use-after-free"))
		diag("child said: %.400s", buf);
#endif
}

int main(void)
{
	make_types();
	rs_thread_attach();
	test_spares();	/* first: later tests leave arenas part used */
	test_classes();
	test_class_choice();
	test_remote_frees();
	test_walk();
	test_grace_period();
	test_thread_exit();
	test_pooled_reclaim();
	test_fork();
	test_faults();
	test_stats();
	test_asan_uaf();
	is(rs_heap_verify(), 0L, "final verify");
	rs_thread_detach();
	is(rs_shutdown(), 0L, "no leaks");
	done_testing();
	return exit_status();
}
