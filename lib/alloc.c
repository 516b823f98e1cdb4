/*
 * alloc.c - refstore's object allocator: size classes, slabs owned by
 * threads, remote frees, and type-stable memory until a grace period.
 *
 * Layout
 * ------
 * Objects up to RS__MAX_SMALL bytes (header included) live in arenas of
 * RS__ARENA_SIZE bytes aligned to RS__ARENA_SIZE.  An arena is RS__NSLABS
 * slabs of RS__SLAB_SIZE bytes; slab 0 holds the arena header, which carries
 * the descriptors (struct rs__slab) of all the slabs, so object memory holds
 * nothing but objects and a free slot can be poisoned whole.  The slab of an
 * object is arena(p)->slabs[(p >> RS__SLAB_SHIFT) % RS__NSLABS], arena(p)
 * being p with its low RS__ARENA_SHIFT bits cleared: no lookup.  Larger
 * objects come one by one from the host's calloc, with a small prefix that
 * links them into a list for the heap walk.
 *
 * Arena memory is mapped by us (mmap, aligned by trimming an over-sized
 * mapping when the first try is not aligned); an arena given back is kept
 * mapped as a spare for a while, then unmapped (spares_trim).
 * No allocator library is linked: one that defines malloc (Debian's
 * jemalloc does) would replace the host program's own, and a library must
 * leave its host's malloc as it was (docs/design.md §4).  Sanitizer builds
 * (RS_PLAIN_MALLOC) use posix_memalign, which ASan and TSan see.
 *
 * Size classes: 32..128 by 16, then eight per doubling up to 1024, so a
 * class wastes at most 1/8 of an object above 128 bytes (31 classes).
 *
 * Slab states and who changes them (all under the allocator lock except the
 * owner's own free list and counts):
 *
 *   FREE (no class) --assign (lock)--> OWNED by a thread
 *   OWNED --owner detaches, or fork retires the owner (lock)--> POOLED
 *   POOLED --a thread takes it (lock)--> OWNED
 *   OWNED/POOLED --found with no object in use (lock)--> EMPTY (stamped)
 *   EMPTY --same class needs a slab (lock)--> OWNED
 *   EMPTY --a grace period after the stamp (lock)--> FREE
 *   arena with every slab FREE --beyond the retention (lock)--> released
 *
 * Frees
 * -----
 * The slab's owner frees with plain stores: push on the slab's local free
 * list, used - 1.  Any other thread (or no thread: shutdown, the debug
 * quarantine) pushes the slot on the slab's remote list with a CAS; the
 * holder of the slab (its owner, or the lock holder for a pooled slab)
 * takes the whole remote list with one exchange when its local list runs
 * dry.  Push-only plus take-all has no ABA problem.  A remote freer touches
 * nothing after its successful CAS, so the slab may become empty and be
 * reused at once after it.  `owner` is only ever set to a thread by that
 * thread (under the lock) and cleared by that thread (or for it, once it is
 * gone), so "owner == me" is exact and a stale other value only sends a free
 * down the remote path, which is correct for any slab.
 *
 * Invariants (checked by rs__alloc_validate, world stopped):
 *   (A1) per assigned slab: used + local == bump <= cap, where local is the
 *        length of the local free list and bump the slots ever carved;
 *   (A2) used == live + remote: every slot on either free list is marked
 *        RS__B_FREE, and the FREE slots in [0, bump) are exactly local +
 *        remote;
 *   (A3) a slot is on at most one list, lists stay inside their slab.
 *
 * Type stability
 * --------------
 * A free slot keeps its header's type; its tid becomes RS__TID_DEAD and its
 * bits FREE|DEAD (so a late rs_incref/rs_decref dies loudly instead of
 * counting), and its `shared` word links the free list.  A slab stays in its
 * class while it holds objects and after it empties: it is stamped with
 * rs__gp_stamp() (threads/reclaim.c) and may go to another class (or its
 * arena back to the system) only when rs__gp_passed(stamp): a full grace
 * period ran after the slab emptied, so no thread still holds a borrowed
 * pointer read before it.  A racing reader of a dead object's header thus
 * always finds a header of the same class, never foreign data.  The
 * reclaimer reaps expired slabs after each grace period; an emptied slab
 * asks for one (rs__gp_request).
 *
 * Walk: with the world stopped no attached thread is inside the allocator
 * (offline threads may not allocate, docs/api.md), and the lock keeps the
 * reclaimer's reaping out: every slot in [0, bump) of an assigned slab is a
 * live object unless marked FREE (or DEAD: the debug quarantine).
 */
#define RS_BUILDING 1
#include "internal.h"
#include "alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef RS_PLAIN_MALLOC
#include <sys/mman.h>
#endif

#define POOL_SCAN 8		/* pooled slabs looked at per acquisition */

enum { S_FREE, S_OWNED, S_POOLED, S_EMPTY };

struct slab_list {
	struct rs__slab *head, *tail;
};

/* All Sync: the allocator lock. */
static rs__mutex alloc_lock = {PTHREAD_MUTEX_INITIALIZER, RS__L_ALLOC};
static struct slab_list pooled[RS__NCLS], empty[RS__NCLS];
static struct rs__arena *arenas;
static size_t narenas, nempty_slabs;
static struct large *larges;
static int reap_wanted;		/* Sync: atomic; some slab is S_EMPTY */
static int pool_dirty;		/* Sync: atomic; a remote free went to a
				   pooled slab since the last sweep */

struct large {
	struct large *next, *prev;	/* Sync: lock */
	size_t bytes;
	size_t pad;
};

/* ---------------------------------------------------------------------- */
/* Size classes and address arithmetic                                      */
/* ---------------------------------------------------------------------- */

#define C1(k) RS__CLS((k) * 16)
#define C4(k) C1(k), C1(k + 1), C1(k + 2), C1(k + 3)
#define C16(k) C4(k), C4(k + 4), C4(k + 8), C4(k + 12)
const uint8_t rs__cls_of16[RS__MAX_SMALL / 16 + 1] = {
	C16(0), C16(16), C16(32), C16(48), C1(64)
};
_Static_assert(RS__CLS(RS__MAX_SMALL) == RS__NCLS - 1,
	       "31 classes up to 1 KiB");

static inline uint32_t class_size(unsigned c)
{
	unsigned e;

	if (c < 7)
		return 32 + 16 * c;
	c -= 7;
	e = 7 + c / 8;
	return (uint32_t)(((size_t)1 << e) + ((size_t)(c % 8 + 1) << (e - 3)));
}

static inline char *slab_base(struct rs__slab *s)
{
	return (char *)rs__arena_of(s) + (size_t)s->index * RS__SLAB_SIZE;
}

/* ---------------------------------------------------------------------- */
/* Lists                                                                    */
/* ---------------------------------------------------------------------- */

static void list_push(struct slab_list *l, struct rs__slab *s)
{
	s->next = NULL;
	s->prev = l->tail;
	if (l->tail)
		l->tail->next = s;
	else
		l->head = s;
	l->tail = s;
}

static void list_del(struct slab_list *l, struct rs__slab *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		l->head = s->next;
	if (s->next)
		s->next->prev = s->prev;
	else
		l->tail = s->prev;
	s->next = s->prev = NULL;
}

/* The owner's list of its other slabs of a class, doubly linked.  Slabs
 * known to have room go to the front (a local free into a full slab);
 * full ones to the back, so the refill scan is bounded (OWNED_SCAN). */
#define OWNED_SCAN 8

static void owned_push(struct rs__thread *t, unsigned c, struct rs__slab *s)
{
	s->prev = NULL;
	s->next = t->heap.owned[c];
	if (s->next)
		s->next->prev = s;
	else
		t->heap.owned_tail[c] = s;
	t->heap.owned[c] = s;
}

static void owned_append(struct rs__thread *t, unsigned c, struct rs__slab *s)
{
	s->next = NULL;
	s->prev = t->heap.owned_tail[c];
	if (s->prev)
		s->prev->next = s;
	else
		t->heap.owned[c] = s;
	t->heap.owned_tail[c] = s;
}

static void owned_del(struct rs__thread *t, unsigned c, struct rs__slab *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		t->heap.owned[c] = s->next;
	if (s->next)
		s->next->prev = s->prev;
	else
		t->heap.owned_tail[c] = s->prev;
	s->next = s->prev = NULL;
}

/* ---------------------------------------------------------------------- */
/* Arenas and slabs (lock held)                                             */
/* ---------------------------------------------------------------------- */

#ifdef __SANITIZE_ADDRESS__
/* ASan calls a poisoned free slot "use-after-poison": say what it is. */
static void asan_report(const char *report)
{
	char *p = __asan_get_report_address();
	struct rs__arena *a;
	struct rs__slab *s;
	struct rs__head *h;

	(void)report;
	for (a = arenas; a; a = a->next) {
		if (a != rs__arena_of(p))
			continue;
		s = rs__slab_of(p);
		if (s->state == S_FREE || !s->size || s->index == 0)
			break;
		h = (struct rs__head *)(slab_base(s) +
					(size_t)(p - slab_base(s)) / s->size * s->size);
		if (rs__load_relaxed(&h->bits) & RS__B_FREE)
			fprintf(stderr, "refstore: use-after-free: %p is inside "
				"the freed object %p (type '%s', slot of %u "
				"bytes)\n", (void *)p, (void *)(h + 1),
				h->type && h->type->name ? h->type->name : "?",
				s->size);
		break;
	}
}
#endif

#ifndef RS_PLAIN_MALLOC
/* Zeroed pages of our own, or NULL. */
static char *map_anon(size_t bytes)
{
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

/*
 * Arenas given back, still mapped, newest first: reused before a new
 * mapping, unmapped once given back SPARE_NS ago or beyond SPARE_MAX (and
 * at once when arena_retain_bytes is 0).  A program that drops a large heap
 * and builds it again (GCBench, binary-trees) would otherwise unmap and
 * fault in every page again each time; jemalloc's dirty-page decay used to
 * hide that (docs/design.md §4).  The link lives in the spare's first bytes.
 */
#define SPARE_MAX 16
#define SPARE_NS 1000000000u

struct spare {
	struct spare *next;
	uint64_t given_ns;	/* rs__now_ns() when given back */
};

static struct spare *spares;	/* Sync: lock */
static unsigned nspares;	/* Sync: lock; read relaxed by reap_wanted */

/* Unmap the spares given back too long ago and those beyond the cap (lock
 * held).  Newest first: the first one out and all after it go. */
static void spares_trim(uint64_t now)
{
	struct spare **p = &spares, *x;
	unsigned n = 0;

	while ((x = *p) && n < SPARE_MAX && now - x->given_ns < SPARE_NS) {
		p = &x->next;
		n++;
	}
	*p = NULL;
	while (x) {
		struct spare *next = x->next;

		munmap(x, RS__ARENA_SIZE);
		x = next;
	}
	rs__store_relaxed(&nspares, n);
}

/* An arena's memory straight from the kernel.  The kernel places a new
 * mapping next to the last one, so after the first arena a mapping of the
 * arena's size is usually aligned already: try that (one call); else map
 * twice the size and unmap what lies outside the aligned middle. */
static void *map_arena(void)
{
	char *p, *a;
	size_t head;

	p = map_anon(RS__ARENA_SIZE);
	if (p && ((uintptr_t)p & (RS__ARENA_SIZE - 1)) == 0)
		return p;
	if (p)
		munmap(p, RS__ARENA_SIZE);
	if (!(p = map_anon(2 * RS__ARENA_SIZE)))
		return NULL;
	a = (char *)(((uintptr_t)p + RS__ARENA_SIZE - 1) &
		     ~(uintptr_t)(RS__ARENA_SIZE - 1));
	head = (size_t)(a - p);
	if (head)
		munmap(p, head);
	munmap(a + RS__ARENA_SIZE, RS__ARENA_SIZE - head);
	return a;
}
#endif

/* RS__ARENA_SIZE bytes aligned to RS__ARENA_SIZE, or NULL. */
static void *arena_mem(void)
{
	void *p = NULL;

	if (rs__fault(RS__FAULT_ARENA))
		return NULL;
#ifdef RS_PLAIN_MALLOC
#ifdef __SANITIZE_ADDRESS__
	if (!narenas)
		__asan_set_error_report_callback(asan_report);
#endif
	if (posix_memalign(&p, RS__ARENA_SIZE, RS__ARENA_SIZE))
		return NULL;
#else
	if (spares) {
		p = spares;
		spares = spares->next;
		rs__store_relaxed(&nspares, nspares - 1);
		return p;
	}
	p = map_arena();
#endif
	return p;
}

static void arena_mem_free(void *p)
{
#ifdef RS_PLAIN_MALLOC
	UNPOISON(p, RS__ARENA_SIZE);
	free(p);
#else
	struct spare *x = p;
	uint64_t now = rs__now_ns();

	if (!rs__rt.arena_retain) {
		munmap(p, RS__ARENA_SIZE);
		return;
	}
	x->next = spares;
	x->given_ns = now;
	spares = x;
	rs__store_relaxed(&nspares, nspares + 1);
	spares_trim(now);
#endif
}

static struct rs__arena *arena_new(void)
{
	struct rs__arena *a = arena_mem();
	unsigned i;

	if (!a)
		return NULL;
	memset(a, 0, sizeof(*a));
	for (i = 0; i < RS__NSLABS; i++) {
		a->slabs[i].index = i;
		a->slabs[i].cls = -1;
	}
	a->nassigned = 1;	/* slab 0: the header */
	a->next = arenas;
	if (arenas)
		arenas->prev = a;
	arenas = a;
	narenas++;
	return a;
}

static void arena_release(struct rs__arena *a)
{
	if (a->prev)
		a->prev->next = a->next;
	else
		arenas = a->next;
	if (a->next)
		a->next->prev = a->prev;
	narenas--;
	arena_mem_free(a);
}

static void slab_setup(struct rs__slab *s, unsigned c)
{
	s->cls = (int)c;
	s->size = class_size(c);
	s->cap = (uint32_t)(RS__SLAB_SIZE / s->size);
	s->free = NULL;
	rs__store_relaxed(&s->used, 0);
	rs__store_relaxed(&s->bump, 0);
	rs__store_relaxed(&s->remote, NULL);
	/* a slab of another class before: forget its slot poisoning, and
	 * tell Valgrind the whole slab is addressable again (the old slots'
	 * freed payloads were made inaccessible, and new headers may lie
	 * where old payloads were) */
	UNPOISON(slab_base(s), RS__SLAB_SIZE);
	VG_UNDEFINED(slab_base(s), RS__SLAB_SIZE);
}

/* A slab with no class, from an arena we hold or a new one. */
static struct rs__slab *slab_fresh(unsigned c)
{
	struct rs__arena *a;
	unsigned i;

	if (rs__fault(RS__FAULT_SLAB))
		return NULL;
	for (a = arenas; a; a = a->next)
		if (a->nassigned < RS__NSLABS)
			break;
	if (!a && !(a = arena_new()))
		return NULL;
	for (i = 1; i < RS__NSLABS; i++)
		if (a->slabs[i].state == S_FREE)
			break;
	a->nassigned++;
	slab_setup(&a->slabs[i], c);
	return &a->slabs[i];
}

/* Back to FREE; the arena goes back when every slab is free and the empty
 * arenas we keep exceed the retention. */
static void slab_unassign(struct rs__slab *s)
{
	struct rs__arena *a = rs__arena_of(s), *x;
	size_t idle = 0;

	s->cls = -1;
	s->state = S_FREE;
	if (--a->nassigned > 1)
		return;
	for (x = arenas; x; x = x->next)
		idle += x->nassigned == 1 ? RS__ARENA_SIZE : 0;
	if (idle > rs__rt.arena_retain)
		arena_release(a);
}

/* The slab holds no object in use: stamp it and keep it in its class. */
static void slab_empty(struct rs__slab *s)
{
	rs__store_relaxed(&s->owner, NULL);
	s->state = S_EMPTY;
	s->stamp = rs__gp_stamp();
	list_push(&empty[s->cls], s);
	nempty_slabs++;
	rs__store_relaxed(&reap_wanted, 1);
}

/* Take the remote list into the local one.  Caller holds the slab. */
static void collect(struct rs__slab *s)
{
	struct rs__head *h, *last = NULL, *list;
	uint32_t n = 0;

	if (!rs__load_relaxed(&s->remote))
		return;
	list = rs__xchg_acquire(&s->remote, NULL);
	for (h = list; h; h = rs__link_of(h)) {
		last = h;
		n++;
	}
	if (!last)
		return;
	rs__set_link(last, s->free);
	s->free = list;
	rs__store_relaxed(&s->used, rs__load_relaxed(&s->used) - n);
}

static inline bool has_room(const struct rs__slab *s)
{
	return s->free || rs__load_relaxed(&s->bump) < s->cap;
}

/* Work for rs__alloc_reap after a grace period: emptied slabs, a pooled
 * slab freed into, or spare arenas to age out. */
bool rs__alloc_reap_wanted(void)
{
	return rs__load_relaxed(&reap_wanted) || rs__load_relaxed(&pool_dirty)
#ifndef RS_PLAIN_MALLOC
		|| rs__load_relaxed(&nspares)
#endif
		;
}

/* Pooled slabs belong to nobody, so nobody collects their remote frees
 * until a thread needs a slab of that class: sweep them (lock held) when a
 * remote free has gone to one, so slabs emptied that way are stamped and
 * eventually reused or released.  Returns whether any emptied. */
static bool sweep_pooled_locked(void)
{
	struct rs__slab *s, *next;
	bool emptied = false;
	unsigned c;

	if (!rs__load_relaxed(&pool_dirty))
		return false;
	rs__store_relaxed(&pool_dirty, 0);
	for (c = 0; c < RS__NCLS; c++) {
		for (s = pooled[c].head; s; s = next) {
			next = s->next;
			collect(s);
			if (rs__load_relaxed(&s->used) == 0) {
				list_del(&pooled[c], s);
				slab_empty(s);
				emptied = true;
			}
		}
	}
	return emptied;
}

static void reap_locked(void)
{
	struct rs__slab *s;
	unsigned c;

	for (c = 0; c < RS__NCLS; c++) {
		while ((s = empty[c].head) && rs__gp_passed(s->stamp)) {
			list_del(&empty[c], s);
			nempty_slabs--;
			slab_unassign(s);
		}
	}
	rs__store_relaxed(&reap_wanted, nempty_slabs != 0);
}

/* Emptied slabs whose grace period has passed go back to FREE (the
 * reclaimer, after each grace period). */
void rs__alloc_reap(void)
{
	bool emptied;

	rs__lock(&alloc_lock);
	emptied = sweep_pooled_locked();
	reap_locked();
#ifndef RS_PLAIN_MALLOC
	if (spares)
		spares_trim(rs__now_ns());
#endif
	rs__unlock(&alloc_lock);
	if (emptied)
		rs__gp_request();	/* their grace period */
}

/* A slab of class c for thread t (lock held).  *ask: a grace period would
 * free emptied slabs of other classes. */
static struct rs__slab *slab_acquire(struct rs__thread *t, unsigned c,
				     bool *emptied)
{
	struct rs__slab *s, *next;
	unsigned n = 0;

	for (s = pooled[c].head; s && n < POOL_SCAN; s = next, n++) {
		next = s->next;
		collect(s);
		if (rs__load_relaxed(&s->used) == 0) {
			list_del(&pooled[c], s);
			slab_empty(s);
			*emptied = true;
		} else if (has_room(s)) {
			list_del(&pooled[c], s);
			goto take;
		} else {
			/* full: to the back, so the next scan sees others */
			list_del(&pooled[c], s);
			list_push(&pooled[c], s);
		}
	}
	if ((s = empty[c].head)) {
		list_del(&empty[c], s);
		nempty_slabs--;
		goto take;
	}
	reap_locked();
	if (!(s = slab_fresh(c)))
		return NULL;
take:
	s->state = S_OWNED;
	s->next = s->prev = NULL;
	rs__store_relaxed(&s->owner, t);
	return s;
}

/* ---------------------------------------------------------------------- */
/* Allocation                                                               */
/* ---------------------------------------------------------------------- */

static struct rs__head *carve(struct rs__slab *s)
{
	struct rs__head *h = s->free;
	uint32_t b;

	if (h) {
		s->free = rs__link_of(h);
	} else {
		b = rs__load_relaxed(&s->bump);
		if (b == s->cap)
			return NULL;
		h = (struct rs__head *)(slab_base(s) + (size_t)b * s->size);
		rs__store_relaxed(&s->bump, b + 1);
	}
	rs__store_relaxed(&s->used, rs__load_relaxed(&s->used) + 1);
	return h;
}

static struct rs__head *alloc_slow(struct rs__thread *t, unsigned c)
{
	struct rs__slab *s = t->heap.cur[c], *x;
	struct rs__head *h;
	unsigned n;

	if (s) {
		if ((h = carve(s)))
			return h;
		collect(s);
		if ((h = carve(s)))
			return h;
	}
	/* another slab of ours that got frees back: look at a few from the
	 * front, sending the full ones to the back, so a refill costs the
	 * same however many slabs the thread holds */
	x = NULL;
	for (n = 0; n < OWNED_SCAN && (x = t->heap.owned[c]); n++) {
		collect(x);
		owned_del(t, c, x);
		if (has_room(x))
			break;
		owned_append(t, c, x);
		x = NULL;
	}
	if (!x) {
		bool emptied = false;

		rs__lock(&alloc_lock);
		x = slab_acquire(t, c, &emptied);
		rs__unlock(&alloc_lock);
		if (emptied)
			rs__gp_request();
		if (!x)
			return NULL;
	}
	if (s)
		owned_append(t, c, s);	/* full */
	t->heap.cur[c] = x;
	return carve(x);
}

static void *large_alloc(size_t bytes)
{
	struct large *l;

	if (rs__fault(RS__FAULT_LARGE))
		return NULL;
	l = calloc(1, sizeof(*l) + bytes);	/* the host's own malloc */
	if (!l)
		return NULL;
	l->bytes = bytes;
	rs__lock(&alloc_lock);
	l->prev = NULL;
	l->next = larges;
	if (larges)
		larges->prev = l;
	larges = l;
	rs__unlock(&alloc_lock);
	return l + 1;
}

static void large_free(void *p)
{
	struct large *l = (struct large *)p - 1;

	rs__lock(&alloc_lock);
	if (l->prev)
		l->prev->next = l->next;
	else
		larges = l->next;
	if (l->next)
		l->next->prev = l->prev;
	rs__unlock(&alloc_lock);
	free(l);
}

/* Everything but the pop from the current slab's local list: an armed
 * fault site, a large object, a slab to carve, collect or change. */
void *rs__obj_alloc_slow(struct rs__thread *t, size_t bytes)
{
	struct rs__head *h;

	if (rs__fault(RS__FAULT_OBJECT))
		return NULL;
	if (bytes > RS__MAX_SMALL)
		return large_alloc(bytes);
	if (!(h = alloc_slow(t, rs__size_class(bytes))))
		return NULL;
	UNPOISON(h + 1, bytes - RS_HEAD_SIZE);
	VG_ALLOC(h + 1, bytes - RS_HEAD_SIZE);
	rs__zero_payload(h + 1, bytes - RS_HEAD_SIZE);
	return h;
}

/* Called by the owner when a slab other than its current one empties. */
static void owner_emptied(struct rs__thread *t, struct rs__slab *s)
{
	owned_del(t, (unsigned)s->cls, s);
	rs__lock(&alloc_lock);
	slab_empty(s);
	rs__unlock(&alloc_lock);
	rs__gp_request();
}

void rs__obj_free(void *p, size_t bytes)
{
	struct rs__head *h = p, *old;
	struct rs__thread *self;
	struct rs__slab *s;
	uint32_t used;
	bool unowned;

	if (RS_UNLIKELY(bytes > RS__MAX_SMALL)) {
		large_free(p);
		return;
	}
	s = rs__slab_of(h);
	self = rs__self();
	rs__set_owner(h, RS__TID_DEAD);
	rs__store_relaxed(&h->bits, RS__B_FREE | RS__B_DEAD);
	rs__store_relaxed(&h->local, 0);
	VG_FREE(h + 1);
	POISON(h + 1, s->size - RS_HEAD_SIZE);
	if (self && rs__load_relaxed(&s->owner) == self) {
		bool was_full = !has_room(s);

		rs__set_link(h, s->free);
		s->free = h;
		used = rs__load_relaxed(&s->used) - 1;
		rs__store_relaxed(&s->used, used);
		if (RS_UNLIKELY(self->heap.cur[s->cls] != s)) {
			if (used == 0) {
				owner_emptied(self, s);
			} else if (was_full) {
				/* room again: to the front of the refill scan */
				owned_del(self, (unsigned)s->cls, s);
				owned_push(self, (unsigned)s->cls, s);
			}
		}
		return;
	}
	/* nobody owns a pooled slab: tell the reclaimer's sweep (read before
	 * the push, after which the slab is no longer ours to look at) */
	unowned = !rs__load_relaxed(&s->owner);
	/* release: the header writes above are seen by the collector */
	old = rs__load_relaxed(&s->remote);
	do {
		rs__set_link(h, old);
	} while (!__atomic_compare_exchange_n(&s->remote, &old, h, 0,
					      __ATOMIC_RELEASE,
					      __ATOMIC_RELAXED));
	if (unowned && !rs__load_relaxed(&pool_dirty)) {
		rs__store_relaxed(&pool_dirty, 1);
		rs__gp_request();	/* the reclaimer sweeps after it */
	}
}

/* ---------------------------------------------------------------------- */
/* Threads and fork                                                         */
/* ---------------------------------------------------------------------- */

static void give_back(struct rs__slab *s)
{
	collect(s);
	if (rs__load_relaxed(&s->used) == 0) {
		slab_empty(s);
		return;
	}
	rs__store_relaxed(&s->owner, NULL);
	s->state = S_POOLED;
	list_push(&pooled[s->cls], s);
}

/* Thread t is gone (detach, or dead in a fork child): its slabs go to the
 * pools, emptied ones to their class's empty list.  The fork child asks for
 * the grace period itself once urcu's registry is repaired (a reclaimer
 * started earlier would walk records being unlinked). */
void rs__alloc_thread_exit(struct rs__thread *t, bool ask_gp)
{
	struct rs__slab *s;
	unsigned c;
	bool emptied = false;

	rs__lock(&alloc_lock);
	for (c = 0; c < RS__NCLS; c++) {
		if ((s = t->heap.cur[c]))
			give_back(s);
		while ((s = t->heap.owned[c])) {
			owned_del(t, c, s);
			give_back(s);
		}
		t->heap.cur[c] = NULL;
	}
	emptied = nempty_slabs != 0;
	rs__unlock(&alloc_lock);
	if (emptied && ask_gp)
		rs__gp_request();
}

void rs__alloc_fork_prepare(void)
{
	rs__lock(&alloc_lock);
}

void rs__alloc_fork_parent(void)
{
	rs__unlock(&alloc_lock);
}

void rs__alloc_fork_child(void)
{
	rs__lock_reinit(&alloc_lock);
}

/* ---------------------------------------------------------------------- */
/* Walk, validation, statistics                                             */
/* ---------------------------------------------------------------------- */

static bool slab_in_use(const struct rs__slab *s)
{
	return s->state == S_OWNED || s->state == S_POOLED;
}

void rs__heap_walk(rs__walk_fn fn, void *arg)
{
	struct rs__arena *a;
	struct rs__slab *s;
	struct rs__head *h;
	struct large *l;
	uint32_t i, b;
	unsigned k;

	rs__lock(&alloc_lock);
	for (a = arenas; a; a = a->next) {
		for (k = 1; k < RS__NSLABS; k++) {
			s = &a->slabs[k];
			if (!slab_in_use(s))
				continue;
			b = rs__load_relaxed(&s->bump);
			for (i = 0; i < b; i++) {
				h = (struct rs__head *)(slab_base(s) +
							(size_t)i * s->size);
				if (rs__load_relaxed(&h->bits) &
				    (RS__B_FREE | RS__B_DEAD))
					continue;
				fn(h + 1, arg);
			}
		}
	}
	for (l = larges; l; l = l->next) {
		h = (struct rs__head *)(l + 1);
		if (!(rs__load_relaxed(&h->bits) & RS__B_DEAD))
			fn(h + 1, arg);
	}
	rs__unlock(&alloc_lock);
}

static long bad(const char *what, const struct rs__slab *s)
{
	fprintf(stderr, "refstore: rs_heap_verify: slab %p (class %d): %s\n",
		(const void *)s, s->cls, what);
	return 1;
}

/* Count a free list, checking each slot belongs to s and is marked free. */
static bool list_ok(struct rs__slab *s, struct rs__head *h, uint32_t *n)
{
	char *base = slab_base(s);
	uint32_t b = rs__load_relaxed(&s->bump);

	for (*n = 0; h; h = rs__link_of(h)) {
		if ((char *)h < base || (size_t)((char *)h - base) % s->size ||
		    (size_t)((char *)h - base) / s->size >= b || *n > b)
			return false;
		if ((rs__load_relaxed(&h->bits) & RS__B_FREE) == 0)
			return false;
		(*n)++;
	}
	return true;
}

long rs__alloc_validate(void)
{
	struct rs__arena *a;
	struct rs__slab *s;
	struct rs__head *h;
	uint32_t local, remote, nfree, i, b, used;
	unsigned k, assigned;
	long problems = 0;

	rs__lock(&alloc_lock);
	for (a = arenas; a; a = a->next) {
		assigned = 1;
		for (k = 1; k < RS__NSLABS; k++) {
			s = &a->slabs[k];
			if (s->state == S_FREE)
				continue;
			assigned++;
			b = rs__load_relaxed(&s->bump);
			used = rs__load_relaxed(&s->used);
			if (s->cls < 0 || s->cap != RS__SLAB_SIZE / s->size || b > s->cap) {
				problems += bad("bad geometry", s);
				continue;
			}
			if (!list_ok(s, s->free, &local) ||
			    !list_ok(s, rs__load_acquire(&s->remote), &remote)) {
				problems += bad("free list corrupt or holds a "
						"live object", s);
				continue;
			}
			for (nfree = 0, i = 0; i < b; i++) {
				h = (struct rs__head *)(slab_base(s) +
							(size_t)i * s->size);
				nfree += (rs__load_relaxed(&h->bits) &
					  RS__B_FREE) != 0;
			}
			if (used + local != b)
				problems += bad("used + local free != carved", s);
			if (nfree != local + remote)
				problems += bad("free slots not all on free lists", s);
			if (s->state == S_EMPTY && used != remote)
				problems += bad("empty slab holds objects", s);
		}
		if (assigned != a->nassigned)
			problems += bad("arena count of assigned slabs wrong",
					&a->slabs[0]);
	}
	rs__unlock(&alloc_lock);
	return problems;
}

int rs__alloc_slab_class(const void *obj)
{
	const struct rs__head *h = rs__head_of(obj);
	struct rs__slab *s;
	struct rs__arena *a;
	int c = -1;

	rs__lock(&alloc_lock);
	for (a = arenas; a; a = a->next)
		if (a == rs__arena_of(h))
			break;
	if (a) {
		s = rs__slab_of(h);
		c = s->state == S_FREE ? -1 : s->cls;
	}
	rs__unlock(&alloc_lock);
	return c;
}

void rs__alloc_stats(struct rs_stats *out)
{
	struct rs__arena *a;
	struct rs__slab *s;
	uint32_t used, b;
	unsigned k;

	rs__lock(&alloc_lock);
	for (a = arenas; a; a = a->next) {
		out->arena_bytes += RS__ARENA_SIZE;
		for (k = 1; k < RS__NSLABS; k++) {
			s = &a->slabs[k];
			if (s->state == S_FREE) {
				out->retained_bytes += RS__SLAB_SIZE;
				continue;
			}
			out->slab_bytes += RS__SLAB_SIZE;
			if (s->state == S_EMPTY)
				out->retained_bytes += RS__SLAB_SIZE;
			used = rs__load_relaxed(&s->used);
			b = rs__load_relaxed(&s->bump);
			if (b >= used)
				out->free_list_bytes += (size_t)(b - used) * s->size;
		}
	}
	rs__unlock(&alloc_lock);
}
