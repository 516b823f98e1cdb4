/*
 * stress_alloc.c - the allocator under random sizes, cross-thread frees,
 * thread churn and racing readers of freed memory.
 *
 * Worker threads (generations of lanes: each attaches, works, hands what it
 * holds to other lanes' mailboxes and exits) allocate objects of types
 * covering every size class (32 B to 1 KiB with the header, two sizes per
 * class: the exact fit and one byte above the class below), a few tracked
 * types (collector trailer) that hold another object, and sizes above the
 * largest class (the large path).  They drop them, take more references,
 * hand them to other threads (the last reference often dropped elsewhere:
 * a free into a slab another thread owns, or a pooled slab once the owner
 * has exited), go offline (others then merge and free their objects on the
 * spot), now and then drop everything they hold, and allocate bursts of
 * two slabs' worth of one class that they post and drop together (slabs
 * empty and leave their class while others watch them).
 *
 * What it proves:
 *   - no memory is handed out twice: every object's payload carries a
 *     pattern derived from its id, checked whole when it is destroyed (and
 *     a destroyed object is marked, so a second destroy is seen);
 *   - exact accounting at quiescent checkpoints: the main thread closes a
 *     gate, every worker parks outside refstore (offline), and then
 *     rs_stats must agree with the program's own tally: live objects and
 *     bytes (header, payload, trailer of tracked types), objects allocated
 *     and freed; the allocator's figures must be consistent (whole arenas;
 *     assigned slabs within them; the size-class bytes of the live small
 *     objects fit in the slab bytes not on free lists); rs_heap_verify
 *     finds nothing;
 *   - no slab leaves its size class before a grace period: workers post
 *     the addresses of small objects they hold on a board (retracted before
 *     they give the reference up); other workers read a posted address and,
 *     until their own next safepoint, while its object may be freed, its
 *     slab emptied and reused, check that rs__alloc_slab_class still gives
 *     the same class and (except under TSan, where the read would race
 *     with a reuse by design) that the header still names a type of this
 *     program of that class: type-stable memory (lib/alloc.c);
 *   - at the end, with every worker gone and every decrement applied, the
 *     live objects are exactly those the program still reaches; once they
 *     are dropped every slab goes back (slab_bytes 0, arenas within the
 *     retention), and rs_shutdown finds nothing alive.
 */
#define RS_BUILDING 1
#include "internal.h"
#include "stress.h"

#define NCLASS 31
#define MAXHOLD 256	/* parcels a worker holds */
#define BOX_FULL 1024	/* a mailbox this full receives no more */
#define NPOST 4		/* board entries per lane */
#define NWATCH 8	/* posted addresses a reader watches at once */
#define MAXBURST 256	/* objects in a burst */
#define ARENA ((size_t)4 << 20)
#define SLAB ((size_t)64 << 10)
#define RETAIN ARENA	/* arena_retain_bytes we configure */

#define TAG_ALIVE 0xa11cULL
#define TAG_DEAD 0xdeadULL

/* The size classes as docs/design.md (section 4) describes them: 32 to
 * 128 bytes by 16, then eight per doubling up to 1024, header included. */
static size_t class_bytes[NCLASS];

static int class_of(size_t bytes)
{
	for (int c = 0; c < NCLASS; c++)
		if (bytes <= class_bytes[c])
			return c;
	return -1;
}

/* Types: two untracked per class, tracked "links" (a counted reference
 * first, then the pattern), and large ones. */
#define NLINK 3
#define NLARGE 5
#define NTYPES (2 * NCLASS - 1 + NLINK + NLARGE)
static rs_type types[NTYPES];
static char type_names[NTYPES][24];
static size_t type_bytes[NTYPES];	/* what rs_stats counts */
static int type_class[NTYPES];		/* -1: large */
static int first_link, first_large;
static int small_types[NTYPES], nsmall;

struct link {
	void *kid;		/* counted reference, or NULL */
	unsigned char data[];
};

static struct stress_counter c_ops = { "ops", 0 }, c_objects = { "objects", 0 },
	c_destroyed = { "destroyed", 0 }, c_foreign = { "foreign_frees", 0 },
	c_large = { "large", 0 }, c_parcels = { "parcels", 0 },
	c_gens = { "threads", 0 }, c_watched = { "watched", 0 },
	c_checkpoints = { "checkpoints", 0 }, c_massfree = { "mass_frees", 0 },
	c_offline = { "offline", 0 };

/* The program's tally, per type.  Workers count in thread-local arrays
 * and flush them before they park or exit. */
static _Atomic long created[NTYPES], destroyed[NTYPES];
static __thread long my_created[NTYPES], my_destroyed[NTYPES];
static __thread long my_foreign;
static __thread uint64_t my_token;	/* this thread, for foreign frees */
static _Atomic uint64_t next_id, next_token = 1;

static struct stress_box boxes[256];
static _Atomic(uintptr_t) board[256][NPOST];

/* The gate: workers count as inside from before they attach until after
 * they detach, except while parked; the checkpoint closes it and waits
 * until nobody is inside. */
static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static atomic_int gate_closed;
static int gate_inside;		/* Sync: gate_lock */

static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static int type_index(const rs_type *t)
{
	if (t < types || t >= types + NTYPES)
		return -1;
	return (int)(t - types);
}

/* The patterned region of an object's payload. */
static unsigned char *region(void *obj, int t, size_t *len)
{
	size_t off = t >= first_link && t < first_large ? sizeof(struct link) : 0;

	*len = types[t].size - off;
	return (unsigned char *)obj + off;
}

/* Word 0: tag and id; word 1: the creating thread; then mix(id + k). */
static uint64_t pattern_word(uint64_t id, size_t k)
{
	return mix(id * 1000003u + k);
}

static void fill(void *obj, int t, uint64_t id)
{
	size_t len, k;
	unsigned char *p = region(obj, t, &len);
	uint64_t w;

	for (k = 0; k * 8 < len; k++) {
		w = k == 0 ? TAG_ALIVE << 48 | id : k == 1 ? my_token
			: pattern_word(id, k);
		memcpy(p + k * 8, &w, len - k * 8 < 8 ? len - k * 8 : 8);
	}
}

static void obj_destroy(void *obj)
{
	int t = type_index(rs_type_of(obj));
	size_t len, k, n;
	unsigned char *p;
	uint64_t w0 = 0, id, w, got;

	stress_check(t >= 0, "destroy of an object %p whose type is not ours",
		     obj);
	p = region(obj, t, &len);
	if (len >= 8) {
		memcpy(&w0, p, 8);
		id = w0 & ((1ULL << 48) - 1);
		stress_check(w0 >> 48 == TAG_ALIVE,
			     "object %" PRIu64 " of type %s at %p destroyed "
			     "twice (or its first word overwritten: %#" PRIx64
			     ")", id, types[t].name, obj, w0);
		for (k = 1; k * 8 < len; k++) {
			n = len - k * 8 < 8 ? len - k * 8 : 8;
			got = 0;
			memcpy(&got, p + k * 8, n);
			if (k == 1) {	/* the creator */
				if (n == 8 && got != my_token)
					my_foreign++;
				continue;
			}
			w = pattern_word(id, k);
			if (n < 8)
				w &= (1ULL << (8 * n)) - 1;
			stress_check(got == w,
				     "object %" PRIu64 " of type %s at %p: payload "
				     "word %zu is %#" PRIx64 ", expected %#"
				     PRIx64 ": its memory was written by someone "
				     "else (handed out twice?)", id,
				     types[t].name, obj, k, got, w);
		}
		w0 = TAG_DEAD << 48 | id;
		memcpy(p, &w0, 8);
	}
	my_destroyed[t]++;
}

static void link_traverse(void *obj, rs_visit_fn visit, void *arg)
{
	visit(((struct link *)obj)->kid, arg);
}

static void make_types(void)
{
	size_t c, i, n = 0;
	static const size_t link_sizes[NLINK] = { 8, 100, 500 };
	static const size_t large_sizes[NLARGE] = { 993, 1500, 3000, 9000, 30000 };

	for (c = 0; c < 7; c++)
		class_bytes[c] = 32 + 16 * c;
	for (i = 0; c < NCLASS; c++, i++)
		class_bytes[c] = ((size_t)128 << (i / 8)) +
				 ((size_t)16 << (i / 8)) * (i % 8 + 1);
	for (c = 0; c < NCLASS; c++) {
		/* exact fit, and one byte above the class below */
		types[n].size = class_bytes[c] - RS_HEAD_SIZE;
		snprintf(type_names[n], sizeof(type_names[n]), "fit%zu",
			 class_bytes[c]);
		n++;
		if (c == 0)
			continue;
		types[n].size = class_bytes[c - 1] + 1 - RS_HEAD_SIZE;
		snprintf(type_names[n], sizeof(type_names[n]), "above%zu",
			 class_bytes[c - 1]);
		n++;
	}
	first_link = (int)n;
	for (i = 0; i < NLINK; i++, n++) {
		types[n].size = sizeof(struct link) + link_sizes[i];
		types[n].traverse = link_traverse;
		snprintf(type_names[n], sizeof(type_names[n]), "link%zu",
			 link_sizes[i]);
	}
	first_large = (int)n;
	for (i = 0; i < NLARGE; i++, n++) {
		types[n].size = large_sizes[i];
		snprintf(type_names[n], sizeof(type_names[n]), "large%zu",
			 large_sizes[i]);
	}
	stress_check(n == NTYPES, "type table: %zu types", n);
	for (i = 0; i < NTYPES; i++) {
		types[i].name = type_names[i];
		types[i].destroy = obj_destroy;
		/* what the documentation says an object takes: the 32-byte
		 * header, the payload, and for tracked types the payload
		 * rounded to 8 plus a 16-byte trailer */
		type_bytes[i] = 32 + (types[i].traverse
				      ? ((types[i].size + 7) & ~(size_t)7) + 16
				      : types[i].size);
		type_class[i] = class_of(type_bytes[i]);
		if (type_class[i] >= 0)
			small_types[nsmall++] = (int)i;
		stress_check((type_class[i] < 0) == (i >= (size_t)first_large),
			     "type %s (%zu bytes) is in class %d", types[i].name,
			     type_bytes[i], type_class[i]);
	}
}

/* ---------------------------------------------------------------------- */
/* Workers                                                                  */
/* ---------------------------------------------------------------------- */

struct watch {
	void *p;
	int cls;
};

struct worker {
	struct stress_rng r;
	int lane;
	int n;
	struct stress_parcel hold[MAXHOLD];
	void *posted[NPOST];		/* our board entries */
	struct watch watch[NWATCH];	/* others' entries, this interval */
	int nwatch;
	void *burst[MAXBURST];		/* a burst: two slabs' worth of one
					   class, posted, then all dropped */
	int nburst;
	long burst_left;		/* operations until it is dropped */
	long ops, parcels, watched, large;
};

static void flush_tally(struct worker *w)
{
	long c = 0, d = 0;

	for (int t = 0; t < NTYPES; t++) {
		if (my_created[t])
			atomic_fetch_add(&created[t], my_created[t]);
		if (my_destroyed[t])
			atomic_fetch_add(&destroyed[t], my_destroyed[t]);
		c += my_created[t];
		d += my_destroyed[t];
		my_created[t] = my_destroyed[t] = 0;
	}
	stress_add(&c_objects, c);
	stress_add(&c_destroyed, d);
	stress_add(&c_foreign, my_foreign);
	my_foreign = 0;
	if (w) {
		stress_add(&c_ops, w->ops);
		stress_add(&c_parcels, w->parcels);
		stress_add(&c_watched, w->watched);
		stress_add(&c_large, w->large);
		w->ops = w->parcels = w->watched = w->large = 0;
	}
}

/* A posted address of ours must not outlive our reference. */
static void unpost(struct worker *w, void *obj)
{
	for (int b = 0; b < NPOST; b++) {
		if (w->posted[b] == obj) {
			atomic_store(&board[w->lane][b], 0);
			w->posted[b] = NULL;
		}
	}
}

static void check_watch(struct worker *w, struct watch *x, const char *when)
{
	int cls = rs__alloc_slab_class(x->p);

	stress_check(cls == x->cls,
		     "thread of lane %d: the slab of %p (an object posted by "
		     "another thread, read before this thread's safepoint) "
		     "went from class %d to %d %s: memory left its class "
		     "before a grace period", w->lane, x->p, x->cls, cls, when);
#ifndef __SANITIZE_THREAD__
	{
		const rs_type *ty = __atomic_load_n(&rs__head_of(x->p)->type,
						    __ATOMIC_RELAXED);
		int t = type_index(ty);

		stress_check(t >= 0 && type_class[t] == x->cls,
			     "thread of lane %d: the header at %p (slab class "
			     "%d) names type %p (%s), not a type of this "
			     "program of that class, %s: memory not "
			     "type-stable", w->lane, x->p, x->cls,
			     (const void *)ty, t >= 0 ? types[t].name : "?",
			     when);
	}
#endif
}

/* Read another thread's posted address: from now until our next
 * safepoint its memory keeps its class, whatever happens to the object. */
static void op_watch(struct worker *w)
{
	int lane = (int)stress_below(&w->r, (uint64_t)stress_threads);
	uintptr_t a = atomic_load(&board[lane][stress_below(&w->r, NPOST)]);
	struct watch *x;

	if (!a || w->nwatch == NWATCH)
		return;
	x = &w->watch[w->nwatch++];
	x->p = (void *)a;
	x->cls = rs__alloc_slab_class(x->p);
	stress_check(x->cls >= 0, "thread of lane %d: posted address %p is "
		     "in no size class (read before its object was given up)",
		     w->lane, x->p);
	check_watch(w, x, "at once");
	w->watched++;
}

/* Before any safepoint: the watched memory kept its class all interval. */
static void end_interval(struct worker *w)
{
	for (int j = 0; j < w->nwatch; j++)
		check_watch(w, &w->watch[j], "before the reader's safepoint");
	w->nwatch = 0;
}

static void safepoint(struct worker *w)
{
	end_interval(w);
	rs_safepoint();
}

static void gate_enter_first(void)
{
	pthread_mutex_lock(&gate_lock);
	while (atomic_load(&gate_closed))
		pthread_cond_wait(&gate_cv, &gate_lock);
	gate_inside++;
	pthread_mutex_unlock(&gate_lock);
}

static void gate_leave_last(void)
{
	pthread_mutex_lock(&gate_lock);
	gate_inside--;
	pthread_cond_broadcast(&gate_cv);
	pthread_mutex_unlock(&gate_lock);
}

/* Park while a checkpoint runs: offline (a safepoint, which may destroy
 * objects), the tally flushed, then wait. */
static void gate_pass(struct worker *w)
{
	if (!atomic_load_explicit(&gate_closed, memory_order_relaxed))
		return;
	end_interval(w);
	rs_offline();
	flush_tally(w);
	pthread_mutex_lock(&gate_lock);
	gate_inside--;
	pthread_cond_broadcast(&gate_cv);
	while (atomic_load(&gate_closed))
		pthread_cond_wait(&gate_cv, &gate_lock);
	gate_inside++;
	pthread_mutex_unlock(&gate_lock);
	rs_online();
}

static void drop(struct worker *w, int k)
{
	void *o = w->hold[k].obj;

	unpost(w, o);
	stress_check(rs_decref(o) == 0, "rs_decref: %s", strerror(errno));
	if (--w->hold[k].n == 0)
		w->hold[k] = w->hold[--w->n];
}

static void hold_add(struct worker *w, void *o, long n)
{
	if (w->n == MAXHOLD) {
		while (n--)
			rs_decref(o);
		return;
	}
	w->hold[w->n++] = (struct stress_parcel){ o, n };
}

static int pick_type(struct worker *w)
{
	uint64_t x = stress_below(&w->r, 1000);

	if (x < 15)
		return first_large + (int)stress_below(&w->r, NLARGE);
	if (x < 130)
		return first_link + (int)stress_below(&w->r, NLINK);
	return small_types[stress_below(&w->r, (uint64_t)nsmall)];
}

static void op_alloc(struct worker *w)
{
	int t = pick_type(w);
	void *o = rs_new(&types[t]);
	uint64_t id = atomic_fetch_add(&next_id, 1);

	stress_check(o != NULL, "rs_new(%s) failed: %s", types[t].name,
		     strerror(errno));
	fill(o, t, id);
	my_created[t]++;
	if (t >= first_large)
		w->large++;
	/* a link takes one of our references as its kid */
	if (t >= first_link && t < first_large && w->n &&
	    stress_below(&w->r, 2)) {
		int k = (int)stress_below(&w->r, (uint64_t)w->n);
		void *kid = w->hold[k].obj;

		unpost(w, kid);
		if (w->hold[k].n > 1)
			rs_publish(kid);	/* now held by us and the link */
		((struct link *)o)->kid = kid;
		if (--w->hold[k].n == 0)
			w->hold[k] = w->hold[--w->n];
	}
	hold_add(w, o, 1);
}

/* Hand parcel k to a mailbox: published objects in part, others whole. */
static void op_send(struct worker *w, int k)
{
	struct stress_box *b = &boxes[stress_below(&w->r,
						   (uint64_t)stress_threads)];
	void *o = w->hold[k].obj;
	long n = w->hold[k].n, m = n;

	if (stress_box_size(b) >= BOX_FULL)
		return;
	unpost(w, o);
	if (stress_below(&w->r, 2)) {
		rs_publish(o);
		m = 1 + (long)stress_below(&w->r, (uint64_t)n);
	}
	w->hold[k].n -= m;
	if (w->hold[k].n == 0)
		w->hold[k] = w->hold[--w->n];
	stress_box_put(b, o, m);
	w->parcels++;
}

static void op_post(struct worker *w, int k)
{
	void *o = w->hold[k].obj;
	int b = (int)stress_below(&w->r, NPOST);

	if (type_class[type_index(rs_type_of(o))] < 0)
		return;		/* large: not in a slab */
	w->posted[b] = o;
	atomic_store(&board[w->lane][b], (uintptr_t)o);
}

/* Two slabs' worth of objects of one of the larger classes, some posted
 * on the board, all dropped together a little later: the first slab is no
 * longer the one being allocated from, so it empties, waits for its grace
 * period and leaves its class, while other threads may still be watching
 * its addresses.  That is the case the watch must catch if a slab left its
 * class too early. */
static void op_burst(struct worker *w)
{
	int t, c, b;
	size_t per_slab;

	if (w->nburst) {
		if (--w->burst_left > 0)
			return;
		for (b = 0; b < NPOST; b++)
			unpost(w, w->posted[b]);
		while (w->nburst)
			rs_decref(w->burst[--w->nburst]);
		return;
	}
	do {	/* an untracked type of a class above 256 bytes */
		t = small_types[stress_below(&w->r, (uint64_t)nsmall)];
		c = type_class[t];
	} while (class_bytes[c] <= 256 || t >= first_link);
	per_slab = SLAB / class_bytes[c];
	for (size_t i = 0; i < 2 * per_slab && i < MAXBURST; i++) {
		void *o = rs_new(&types[t]);

		stress_check(o != NULL, "rs_new(%s) failed: %s", types[t].name,
			     strerror(errno));
		fill(o, t, atomic_fetch_add(&next_id, 1));
		my_created[t]++;
		w->burst[w->nburst++] = o;
	}
	for (b = 0; b < NPOST; b++) {
		w->posted[b] = w->burst[stress_below(&w->r, per_slab)];
		atomic_store(&board[w->lane][b], (uintptr_t)w->posted[b]);
	}
	w->burst_left = 50 + (long)stress_below(&w->r, 200);
}

static void step(struct worker *w)
{
	unsigned x = (unsigned)stress_below(&w->r, 1000);
	int k;

	if (x < 1) {	/* drop everything: slabs empty */
		while (w->n)
			drop(w, 0);
		stress_add(&c_massfree, 1);
		return;
	}
	if (w->nburst) {
		op_burst(w);	/* counts down, then drops it */
	} else if (x >= 997) {
		op_burst(w);
		return;
	}
	if (x < 3) {
		end_interval(w);
		rs_offline();	/* others merge and free ours on the spot */
		usleep((useconds_t)stress_below(&w->r, 100));
		rs_online();
		stress_add(&c_offline, 1);
		return;
	}
	if (w->n == 0 || (x < 300 && w->n < MAXHOLD)) {
		op_alloc(w);
		return;
	}
	k = (int)stress_below(&w->r, (uint64_t)w->n);
	if (x < 560) {
		drop(w, k);
	} else if (x < 620) {
		if (w->hold[k].n < 100) {
			rs_incref(w->hold[k].obj);
			w->hold[k].n++;
		}
	} else if (x < 760) {
		op_send(w, k);
	} else if (x < 860) {
		struct stress_parcel p;

		if (w->n < MAXHOLD && stress_box_take(&boxes[w->lane], &p))
			hold_add(w, p.obj, p.n);
	} else if (x < 930) {
		op_post(w, k);
	} else {
		op_watch(w);
	}
}

static void *generation(void *arg)
{
	struct stress_lane *lane = arg;
	struct worker *w = calloc(1, sizeof(*w));
	long life, gap = 32;

	stress_check(w != NULL, "out of memory");
	w->lane = lane->index;
	stress_lane_rng(lane, &w->r);
	my_token = atomic_fetch_add(&next_token, 1);
	gate_enter_first();
	stress_attach();
	life = 500 + (long)stress_below(&w->r, 30000);
	for (long i = 1; i <= life && !stress_stopping(); i++) {
		step(w);
		w->ops++;
		if (i % gap == 0) {
			safepoint(w);
			/* now and then a long interval: more happens to the
			 * watched memory before our next safepoint */
			gap = stress_below(&w->r, 16) ? 32 : 2000;
		}
		if ((i & 15) == 0)
			gate_pass(w);
		if ((i & 4095) == 0)
			flush_tally(w);
	}
	end_interval(w);
	for (int b = 0; b < NPOST; b++)
		unpost(w, w->posted[b]);
	while (w->nburst)
		rs_decref(w->burst[--w->nburst]);
	while (w->n) {
		struct stress_parcel p = w->hold[--w->n];

		if (stress_below(&w->r, 4)) {
			stress_box_put(&boxes[stress_below(&w->r,
							   (uint64_t)stress_threads)],
				       p.obj, p.n);
			w->parcels++;
		} else {
			while (p.n--)
				rs_decref(p.obj);
		}
	}
	stress_check(rs_thread_detach() == 0, "rs_thread_detach: %s",
		     strerror(errno));
	flush_tally(w);
	stress_add(&c_gens, 1);
	gate_leave_last();
	free(w);
	return NULL;
}

/* ---------------------------------------------------------------------- */
/* Checkpoints                                                              */
/* ---------------------------------------------------------------------- */

struct tally {
	long objects, small_class_bytes;
	long created, destroyed;
	size_t bytes;
};

static struct tally tally(void)
{
	struct tally s = { 0, 0, 0, 0, 0 };

	for (int t = 0; t < NTYPES; t++) {
		long c = atomic_load(&created[t]), d = atomic_load(&destroyed[t]);

		stress_check(d <= c, "type %s: %ld destroyed, %ld created",
			     types[t].name, d, c);
		s.created += c;
		s.destroyed += d;
		s.objects += c - d;
		s.bytes += (size_t)(c - d) * type_bytes[t];
		if (type_class[t] >= 0)
			s.small_class_bytes += (c - d) *
					       (long)class_bytes[type_class[t]];
	}
	return s;
}

/* Everything the allocator says must be consistent with itself and with
 * the program's tally; `where` names the checkpoint. */
static void check_stats(const char *where)
{
	struct rs_stats st;
	struct tally s = tally();
	size_t narenas, usable;
	long problems;

	stress_check(rs_stats(&st) == 0, "rs_stats: %s", strerror(errno));
	stress_check(st.live_objects == (size_t)s.objects &&
		     st.live_bytes == s.bytes &&
		     st.objects_allocated == (uint64_t)s.created &&
		     st.objects_freed == (uint64_t)s.destroyed,
		     "%s: rs_stats says %zu live objects (%zu bytes), %" PRIu64
		     " allocated, %" PRIu64 " freed; the program counts %ld "
		     "(%zu bytes), %ld created, %ld destroyed", where,
		     st.live_objects, st.live_bytes, st.objects_allocated,
		     st.objects_freed, s.objects, s.bytes, s.created,
		     s.destroyed);
	narenas = st.arena_bytes / ARENA;
	usable = narenas * (ARENA / SLAB - 1);	/* slab 0: the header */
	usable *= SLAB;
	stress_check(st.arena_bytes % ARENA == 0 && st.slab_bytes <= usable &&
		     st.retained_bytes <= usable &&
		     st.slab_bytes + st.retained_bytes >= usable &&
		     st.free_list_bytes <= st.slab_bytes &&
		     (size_t)s.small_class_bytes <=
		     st.slab_bytes - st.free_list_bytes,
		     "%s: allocator figures inconsistent: arena_bytes %zu, "
		     "slab_bytes %zu, free_list_bytes %zu, retained_bytes %zu, "
		     "live small objects take %ld bytes of their classes",
		     where, st.arena_bytes, st.slab_bytes, st.free_list_bytes,
		     st.retained_bytes, s.small_class_bytes);
	problems = rs_heap_verify();
	stress_check(problems == 0, "%s: rs_heap_verify found %ld problem(s) "
		     "(see stderr)", where, problems);
}

/* The main thread (attached, offline between checkpoints). */
static void checkpoint(void)
{
	pthread_mutex_lock(&gate_lock);
	atomic_store(&gate_closed, 1);
	while (gate_inside)
		pthread_cond_wait(&gate_cv, &gate_lock);
	pthread_mutex_unlock(&gate_lock);
	rs_online();
	check_stats("checkpoint");
	rs_offline();
	pthread_mutex_lock(&gate_lock);
	atomic_store(&gate_closed, 0);
	pthread_cond_broadcast(&gate_cv);
	pthread_mutex_unlock(&gate_lock);
	stress_add(&c_checkpoints, 1);
}

static int by_address(const void *a, const void *b)
{
	uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;

	return x < y ? -1 : x > y;
}

/* Every worker is gone: the live objects are exactly those the mailboxes
 * hold and those links reach.  Then drop them all and wait for the
 * allocator to give everything back. */
static void check_final(void)
{
	uintptr_t *all = NULL;
	size_t n = 0, cap = 0, distinct = 0, i;
	struct stress_parcel *parcels = NULL;
	size_t np = 0, pcap = 0;
	struct stress_parcel p;
	struct rs_stats st;
	struct tally s;
	uint64_t end;

	for (int b = 0; b < stress_threads; b++) {
		while (stress_box_take(&boxes[b], &p)) {
			if (np == pcap) {
				pcap = pcap ? 2 * pcap : 1024;
				parcels = realloc(parcels, pcap * sizeof(*parcels));
				stress_check(parcels != NULL, "out of memory");
			}
			parcels[np++] = p;
			for (void *o = p.obj; o; ) {
				int t = type_index(rs_type_of(o));

				if (n == cap) {
					cap = cap ? 2 * cap : 1024;
					all = realloc(all, cap * sizeof(*all));
					stress_check(all != NULL, "out of memory");
				}
				all[n++] = (uintptr_t)o;
				o = t >= first_link && t < first_large
				    ? ((struct link *)o)->kid : NULL;
			}
		}
	}
	if (n)
		qsort(all, n, sizeof(*all), by_address);
	for (i = 0; i < n; i++)
		distinct += i == 0 || all[i] != all[i - 1];
	free(all);
	flush_tally(NULL);
	s = tally();
	rs_stats(&st);
	stress_check(st.live_objects == distinct && (size_t)s.objects == distinct,
		     "final: the program reaches %zu objects; rs_stats counts "
		     "%zu live, the tally %ld", distinct, st.live_objects,
		     s.objects);
	check_stats("final, before the drop");
	for (i = 0; i < np; i++)
		while (parcels[i].n--)
			rs_decref(parcels[i].obj);
	free(parcels);
	end = stress_now_ns() + 5000000000u;
	do {
		rs_safepoint();
		if (RS_DEBUG)	/* debug builds keep destroyed objects a while */
			rs__quarantine_flush();
		flush_tally(NULL);
		s = tally();
		rs__gp_request();
		rs__alloc_reap();
		rs_stats(&st);
		if (s.objects == 0 && st.slab_bytes == 0 &&
		    st.arena_bytes <= RETAIN)
			break;
		usleep(1000);
	} while (stress_now_ns() < end);
	stress_check(s.objects == 0, "final: %ld objects still alive 5 s "
		     "after the last references were dropped", s.objects);
	stress_check(st.slab_bytes == 0 && st.arena_bytes <= RETAIN,
		     "final: nothing is alive, yet 5 s later the allocator "
		     "holds %zu bytes of slabs and %zu of arenas (retention "
		     "%zu)", st.slab_bytes, st.arena_bytes, (size_t)RETAIN);
	check_stats("final, after the drop");
}

int main(int argc, char **argv)
{
	rs_config cfg = { 0, 0, 0, RETAIN };

	stress_start(argc, argv, "stress_alloc", (struct stress_counter *[]){
		     &c_ops, &c_objects, &c_destroyed, &c_foreign, &c_large,
		     &c_parcels, &c_gens, &c_watched, &c_checkpoints,
		     &c_massfree, &c_offline, NULL });
	make_types();
	stress_check(rs_init(&cfg) == 0, "rs_init: %s", strerror(errno));
	for (int i = 0; i < stress_threads; i++)
		stress_box_init(&boxes[i]);
	stress_attach();
	rs_offline();
	stress_lanes_start(stress_threads, generation);
	while (!stress_stopping()) {
		usleep(100000 + (useconds_t)(stress_now_ns() % 100000));
		if (!stress_stopping())
			checkpoint();
	}
	stress_lanes_join();
	rs_online();
	check_final();
	stress_check(rs_thread_detach() == 0, "rs_thread_detach: %s",
		     strerror(errno));
	stress_shutdown(0);
	return stress_finish();
}
