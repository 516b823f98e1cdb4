/*
 * resp.h - resp-server: a Redis-protocol (RESP2) server whose data lives in
 * refstore objects, built on the public API alone (include/refstore.h).  It
 * exists to measure what a server author gets from refstore with default
 * settings, against redis-server, with redis-benchmark (make resp-bench,
 * bench/resp/resp-bench.sh); docs/servers.md explains the design.
 *
 * Files of bench/resp/:
 *   main.c      options, runtime start, signals, shutdown and leak report
 *   net.c       the worker threads: epoll, connections, the request loop
 *               (rs_offline/rs_online around epoll_wait, rs_safepoint
 *               between requests)
 *   proto.c     RESP2: the request parser, reply encoders, growable buffers
 *   store.c     the values as refstore objects (size-class strings, a
 *               large string over malloc'd bytes, chunked lists), the
 *               database map and the key locks
 *   commands.c  the command table and the commands
 *   info.c      INFO: the server, refstore's statistics, RSS
 *
 * Threads.  Every worker is attached to refstore and owns its connections
 * (a connection never moves).  Values are published objects in one rs_map
 * held by the counted global g_db; reads take borrowed references (valid
 * until the worker's next safepoint, which comes only after the reply has
 * been copied into the connection's buffer); writes to one key are
 * serialised by a striped mutex so that read-modify-write commands (INCR,
 * LPUSH) are atomic, as Redis's are.  No lock is held across a safepoint.
 */
#ifndef RESP_H
#define RESP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "refstore.h"

/* ---- proto.c: buffers, parser, replies ---------------------------------- */

/* A growable byte buffer (plain malloc: connection state is not shared). */
struct buf {
	char *p;
	size_t len, cap;
};

void buf_reserve(struct buf *b, size_t more);
void buf_put(struct buf *b, const void *p, size_t n);
void buf_free(struct buf *b);

/* Requests above these are protocol errors (the connection is closed). */
#define RESP_MAX_BULK ((size_t)64 << 20)	/* one argument */
#define RESP_MAX_ARGS (1024 * 1024)		/* arguments in one request */
#define RESP_MAX_INLINE (64 * 1024)		/* an inline command's line */

/* One parsed request: pointers into the connection's read buffer. */
struct req {
	int argc;
	int cap;
	const char **argv;
	size_t *argl;
};

/* Parses one request from p[0..n).  1: *r is filled and *used bytes were
 * taken; 0: incomplete, read more; -1: protocol error, *err says what. */
int resp_parse(const char *p, size_t n, struct req *r, size_t *used,
	       const char **err);
void req_free(struct req *r);

void reply_status(struct buf *b, const char *s);
void reply_error(struct buf *b, const char *s);
void reply_int(struct buf *b, long long v);
void reply_bulk(struct buf *b, const void *p, size_t n);
void reply_nil(struct buf *b);
void reply_array(struct buf *b, long n);

/* ---- store.c: values and the database ------------------------------------ */

/* Strings: payload capacities of the size-class types; longer values use a
 * type holding a pointer to malloc'd bytes. */
#define STR_CLASSES 7
#define STR_SMALL_MAX 1024

void *str_new(const void *p, size_t n);	/* counted; NULL + errno */
/* The bytes of a string value, or NULL if v is not a string. */
const char *str_bytes(const void *v, size_t *n);
int is_list(const void *v);

/* A list of strings, pushed at the head (LPUSH), in chunks of counted
 * references.  Writers hold the key's lock; readers take a view (a
 * snapshot, borrowed until the next safepoint) without it. */
struct rlist;
struct list_view {
	const void *head;	/* the newest chunk */
	uint32_t start;		/* its first element */
	long len;		/* elements in the snapshot */
};
struct rlist *list_new(void);		/* counted; NULL + errno */
int list_push_head(struct rlist *l, void *str);	/* takes the count */
void list_view(const struct rlist *l, struct list_view *v);
/* Calls fn(bytes, len, arg) for elements start..stop of the view
 * (inclusive, 0-based, 0 <= start <= stop < v->len). */
void list_view_range(const struct list_view *v, long start, long stop,
		     void (*fn)(const char *p, size_t n, void *arg), void *arg);

/* The database: an rs_map held by a counted global, replaced whole by
 * FLUSHALL.  db() is a borrowed reference (until the next safepoint). */
extern rs_map *g_db;
static inline rs_map *db(void)
{
	return rs_get(&g_db);
}
int db_init(void);			/* attached thread; 0 or -1 */
/* A new empty map; 0 or -1.  Reaches a safepoint: borrowed references the
 * caller holds end. */
int db_flush(void);
void db_fini(void);			/* gives the map back */

/* The lock of a key (one of KEY_LOCKS mutexes, by hash). */
#define KEY_LOCKS 1024
pthread_mutex_t *key_lock(const void *key, size_t n);

/* ---- commands.c ----------------------------------------------------------- */

/* Runs one request, appending its reply to out.  Only FLUSHALL reaches a
 * safepoint (after it has used its last borrowed reference); every other
 * command's borrowed references stay valid until it returns. */
void command_run(const struct req *r, struct buf *out);

/* ---- info.c ---------------------------------------------------------------- */

void info_reply(const char *section, size_t slen, struct buf *out);
long rss_bytes(void);			/* current RSS, from /proc/self/statm */

/* ---- net.c ------------------------------------------------------------------ */

struct server {
	int port;
	int threads;
	struct worker *workers;
	int stop_fd;			/* eventfd: readable once stopping */
	uint64_t started_ns;
	atomic_long clients;		/* connected now */
	atomic_long connections;	/* accepted since start */
	atomic_long commands;		/* run since start */
	atomic_long rejected;		/* protocol errors (closed) */
};

extern struct server srv;

int net_listen_all(void);		/* one SO_REUSEPORT socket per worker */
int net_start(void);			/* starts the workers */
void net_stop(void);			/* wakes them and joins them */
uint64_t now_ns(void);

#endif /* RESP_H */
