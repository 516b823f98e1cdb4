/*
 * store.c - resp-server's values as refstore objects, and the database.
 *
 * Strings.  refstore objects have the fixed size of their type, so a string
 * is an object of the smallest size class that holds it: payload capacities
 * 16, 32, 64, 128, 256, 512 and 1024 bytes, each a type of its own with a
 * length in front.  Longer values (up to RESP_MAX_BULK) use a type whose
 * object holds a pointer to malloc'd bytes and frees them in its destroy
 * callback.  Strings hold no references: their types have no traverse, so
 * the collector does not track them (that is the default for such a type,
 * not a flag).  A string is never changed once published; SET and INCR put
 * a new object in the map.
 *
 * Lists.  A list object holds the head of a chain of chunks; a chunk holds
 * up to LIST_CHUNK counted references to strings, filled from the end
 * (LPUSH writes slot start - 1), and a counted reference to the next chunk.
 * Both types have a traverse and the default flags, so the collector tracks
 * them: that is what a user of refstore gets by default, and what the
 * benchmark measures.  Lists are changed in place, under the key's lock;
 * LRANGE reads them without a lock (see list_push_head).  Stores into these
 * published objects go through rs_set / rs_set_steal.
 *
 * The database.  One rs_map, held by the counted global g_db.  FLUSHALL
 * stores a new empty map there (rs_set_steal): the old one is given back
 * through the deferred decrement, so a worker that borrowed it for a
 * request in flight keeps a valid map until its next safepoint, and its
 * values go when the old map dies.
 *
 * A new map is moved out of the young generation at once.  The map is a
 * tracked object whose traverse visits every value; left young, it would
 * fill up while only untracked strings are allocated (SET, INCR make no
 * tracked object, so no young collection comes), and the first young
 * collection would then walk every entry with the world stopped: 117 ms
 * for 181,000 keys on the machine this was written on.  A collection of
 * generation 0 right after rs_map_new, while the map is empty, costs a
 * short stop and moves it (and whatever else is young) to generation 1,
 * which automatic collections reach only through cycle candidates.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "resp.h"

/* ---- strings ----------------------------------------------------------- */

struct sstr {
	uint32_t len;
	char data[];		/* the type's capacity */
};

struct bstr {
	size_t len;
	char *data;		/* malloc'd; freed by bstr_destroy */
};

#define SSTR_TYPE(cap)                                                      \
	{ .name = "resp_str" #cap, .size = sizeof(struct sstr) + (cap) }

static const rs_type sstr_types[STR_CLASSES] = {
	SSTR_TYPE(16), SSTR_TYPE(32), SSTR_TYPE(64), SSTR_TYPE(128),
	SSTR_TYPE(256), SSTR_TYPE(512), SSTR_TYPE(1024),
};

static void bstr_destroy(void *obj)
{
	struct bstr *s = obj;

	free(s->data);
	s->data = NULL;
}

static const rs_type bstr_type = {
	.name = "resp_bigstr", .size = sizeof(struct bstr),
	.destroy = bstr_destroy,
};

/* The size class of a payload of n bytes (n <= STR_SMALL_MAX). */
static int str_class(size_t n)
{
	int c = 0;
	size_t cap = 16;

	while (cap < n) {
		cap *= 2;
		c++;
	}
	return c;
}

void *str_new(const void *p, size_t n)
{
	if (n <= STR_SMALL_MAX) {
		struct sstr *s = rs_new(&sstr_types[str_class(n)]);

		if (!s)
			return NULL;
		s->len = (uint32_t)n;
		if (n)
			memcpy(s->data, p, n);
		return s;
	} else {
		struct bstr *s;
		char *d = malloc(n);

		if (!d) {
			errno = ENOMEM;
			return NULL;
		}
		s = rs_new(&bstr_type);
		if (!s) {
			free(d);
			return NULL;
		}
		memcpy(d, p, n);
		s->data = d;
		s->len = n;
		return s;
	}
}

const char *str_bytes(const void *v, size_t *n)
{
	const rs_type *t = rs_type_of(v);

	if (t >= sstr_types && t < sstr_types + STR_CLASSES) {
		const struct sstr *s = v;

		*n = s->len;
		return s->data;
	}
	if (t == &bstr_type) {
		const struct bstr *s = v;

		*n = s->len;
		return s->data;
	}
	return NULL;
}

/* ---- lists --------------------------------------------------------------- */

#define LIST_CHUNK 32

struct chunk {
	struct chunk *next;	/* counted; older elements */
	long base;		/* elements in next and beyond.
				   Sync: immutable after publication */
	_Atomic uint32_t start;	/* slots start..LIST_CHUNK-1 are in use.
				   Sync: atomic (release store by LPUSH under
				   the key's lock, acquire load by readers) */
	void *item[LIST_CHUNK];	/* counted strings */
};

struct rlist {
	struct chunk *head;	/* counted; the newest elements */
};

static void chunk_traverse(void *obj, rs_visit_fn visit, void *arg)
{
	struct chunk *c = obj;
	int i;

	if (c->next)
		visit(c->next, arg);
	for (i = 0; i < LIST_CHUNK; i++)
		if (c->item[i])
			visit(c->item[i], arg);
}

static void list_traverse(void *obj, rs_visit_fn visit, void *arg)
{
	struct rlist *l = obj;

	if (l->head)
		visit(l->head, arg);
}

/* Default flags: tracked by the collector (see the top of this file). */
static const rs_type chunk_type = {
	.name = "resp_list_chunk", .size = sizeof(struct chunk),
	.traverse = chunk_traverse,
};
static const rs_type list_type = {
	.name = "resp_list", .size = sizeof(struct rlist),
	.traverse = list_traverse,
};

int is_list(const void *v)
{
	return rs_type_of(v) == &list_type;
}

struct rlist *list_new(void)
{
	return rs_new(&list_type);
}

/*
 * Readers take no lock.  Only the head chunk ever changes, and only by
 * gaining elements in front: LPUSH stores the string into slot start - 1
 * (rs_set_steal: a release exchange), then stores start - 1 with release
 * order; a full head gets a new chunk in front, published whole by
 * rs_set_steal into l->head.  A reader loads the head (rs_get: acquire),
 * then its start (acquire): every slot from start on, and every older
 * chunk, is complete and never changes again, so (head, start) is a
 * snapshot of the list at that moment, of length base + LIST_CHUNK -
 * start.  The strings and chunks it reaches are borrowed: they stay valid
 * until the reader's next safepoint even if the list is deleted meanwhile.
 */
int list_push_head(struct rlist *l, void *str)
{
	struct chunk *c = rs_get(&l->head);
	uint32_t s = c ? atomic_load_explicit(&c->start, memory_order_relaxed)
		       : 0;

	if (s == 0) {
		struct chunk *n = rs_new(&chunk_type);

		if (!n)
			return -1;
		n->base = c ? c->base + LIST_CHUNK : 0;
		atomic_store_explicit(&n->start, LIST_CHUNK,
				      memory_order_relaxed);
		/* The new chunk is private: a plain store of a counted
		 * reference would do, but there is no way to move the list's
		 * reference to the old head into it, so count it again and
		 * let rs_set_steal give the list's reference back. */
		if (rs_set(&n->next, c) < 0 || rs_set_steal(&l->head, n) < 0) {
			rs_decref(n);
			return -1;
		}
		c = n;
		s = LIST_CHUNK;
	}
	if (rs_set_steal(&c->item[s - 1], str) < 0)
		return -1;
	/* pairs with the acquire load in list_view */
	atomic_store_explicit(&c->start, s - 1, memory_order_release);
	return 0;
}

void list_view(const struct rlist *l, struct list_view *v)
{
	const struct chunk *c = rs_get(&l->head);

	v->head = c;
	v->start = c ? atomic_load_explicit(&c->start, memory_order_acquire)
		     : LIST_CHUNK;
	v->len = c ? c->base + LIST_CHUNK - (long)v->start : 0;
}

void list_view_range(const struct list_view *v, long start, long stop,
		     void (*fn)(const char *p, size_t n, void *arg), void *arg)
{
	const struct chunk *c = v->head;
	uint32_t first = v->start;	/* of this chunk */
	long i = 0;

	/* Whole chunks before start are skipped by their counts. */
	while (c && i + (LIST_CHUNK - (long)first) <= start) {
		i += LIST_CHUNK - (long)first;
		c = rs_get(&c->next);
		first = 0;
	}
	for (; c && i <= stop; c = rs_get(&c->next), first = 0) {
		uint32_t k;

		for (k = first; k < LIST_CHUNK && i <= stop; k++, i++) {
			const char *p;
			size_t n = 0;

			if (i < start)
				continue;
			p = str_bytes(rs_get(&c->item[k]), &n);
			fn(p, n, arg);
		}
	}
}

/* ---- the database ---------------------------------------------------------- */

rs_map *g_db;
static pthread_mutex_t key_locks[KEY_LOCKS];

/* A new empty map in g_db, out of the young generation (see above).
 * Reaches a safepoint (rs_gc_collect). */
static int db_new_map(void)
{
	rs_map *m = rs_map_new();

	if (!m)
		return -1;
	if (rs_set_steal(&g_db, m) < 0) {
		rs_decref(m);
		return -1;
	}
	rs_gc_collect(0);
	return 0;
}

int db_init(void)
{
	int i;

	for (i = 0; i < KEY_LOCKS; i++)
		pthread_mutex_init(&key_locks[i], NULL);
	return db_new_map();
}

int db_flush(void)
{
	return db_new_map();
}

void db_fini(void)
{
	int i;

	rs_clear(&g_db);
	for (i = 0; i < KEY_LOCKS; i++)
		pthread_mutex_destroy(&key_locks[i]);
}

/* FNV-1a over the key: only to spread the locks. */
pthread_mutex_t *key_lock(const void *key, size_t n)
{
	const unsigned char *p = key;
	uint64_t h = 1469598103934665603ull;
	size_t i;

	for (i = 0; i < n; i++)
		h = (h ^ p[i]) * 1099511628211ull;
	return &key_locks[(h ^ (h >> 29)) % KEY_LOCKS];
}
