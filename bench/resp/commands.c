/*
 * commands.c - resp-server's commands: PING, ECHO, SET, GET, DEL, INCR,
 * MGET, EXISTS, DBSIZE, LPUSH, LRANGE, FLUSHALL, INFO, and CONFIG GET and
 * COMMAND as far as redis-benchmark and redis-cli ask for them.
 *
 * Every command runs between two safepoints of its worker (net.c calls
 * rs_safepoint after each), so the references it borrows (the map from
 * db(), values from rs_map_get) stay valid until its reply is written; the
 * reply copies the bytes.  Reads take no lock.  Writes take the key's lock
 * (store.c) so that read-modify-write commands are atomic against each
 * other and against SET and DEL; values are allocated before the lock is
 * taken where the command allows it.  LRANGE reads a list without the lock
 * (store.c says why that is a snapshot).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "resp.h"

#define WRONGTYPE \
	"WRONGTYPE Operation against a key holding the wrong kind of value"

static int arg_is(const struct req *r, int i, const char *s)
{
	size_t n = strlen(s);

	return r->argl[i] == n && strncasecmp(r->argv[i], s, n) == 0;
}

/* The error for a refstore call that failed with errno e. */
static void reply_errno(struct buf *out, const char *call, int e)
{
	char msg[160];

	snprintf(msg, sizeof(msg), "ERR refstore: %s: %s", call, strerror(e));
	reply_error(out, msg);
}

/* Keys longer than the map takes are refused up front. */
static int key_ok(const struct req *r, int i, struct buf *out)
{
	if (r->argl[i] <= RS_MAP_KEY_MAX)
		return 1;
	reply_error(out, "ERR key longer than 1024 bytes "
			 "(the most a refstore map takes)");
	return 0;
}

/* Redis's integer syntax: optional '-', digits, no leading zero, in the
 * range of a long long. */
static int parse_ll(const char *p, size_t n, long long *v)
{
	unsigned long long x = 0, lim;
	size_t i = 0;
	int neg = 0;

	if (n == 0 || n > 20)
		return -1;
	if (p[0] == '-') {
		neg = 1;
		i = 1;
		if (n == 1)
			return -1;
	}
	if (p[i] == '0' && n > i + 1)
		return -1;
	lim = neg ? (unsigned long long)LLONG_MAX + 1 : LLONG_MAX;
	for (; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		if (x > (lim - (unsigned)(p[i] - '0')) / 10)
			return -1;
		x = x * 10 + (unsigned)(p[i] - '0');
	}
	if (neg && n == 2 && p[1] == '0')
		return -1;	/* "-0" */
	*v = neg ? (long long)(0 - x) : (long long)x;
	return 0;
}

/* ---- the commands ------------------------------------------------------------ */

static void cmd_ping(const struct req *r, struct buf *out)
{
	if (r->argc == 2)
		reply_bulk(out, r->argv[1], r->argl[1]);
	else
		reply_status(out, "PONG");
}

static void cmd_echo(const struct req *r, struct buf *out)
{
	reply_bulk(out, r->argv[1], r->argl[1]);
}

/* Puts a new value under the key: the caller holds the key's lock and a
 * counted reference to v, which the map takes over (rs_map_put_steal: no
 * deferred decrement, and no cycle candidate made of a stored value); on
 * failure the caller still holds it. */
static int put_value(const char *k, size_t kl, void *v, struct buf *out)
{
	if (rs_map_put_steal(db(), k, kl, v) < 0) {
		reply_errno(out, "rs_map_put_steal", errno);
		return -1;
	}
	return 0;
}

static void cmd_set(const struct req *r, struct buf *out)
{
	pthread_mutex_t *lk;
	void *s;

	if (r->argc != 3) {
		reply_error(out, "ERR syntax error (SET key value only)");
		return;
	}
	if (!key_ok(r, 1, out))
		return;
	s = str_new(r->argv[2], r->argl[2]);
	if (!s) {
		reply_errno(out, "rs_new", errno);
		return;
	}
	lk = key_lock(r->argv[1], r->argl[1]);
	pthread_mutex_lock(lk);
	if (put_value(r->argv[1], r->argl[1], s, out) == 0)
		reply_status(out, "OK");
	else
		rs_decref(s);
	pthread_mutex_unlock(lk);
}

/* A borrowed value, or NULL with a reply already written unless the key
 * is simply absent (*absent). */
static void *get_value(const struct req *r, int i, struct buf *out,
		       int *absent)
{
	void *v;

	*absent = 0;
	if (!key_ok(r, i, out))
		return NULL;
	v = rs_map_get(db(), r->argv[i], r->argl[i]);
	if (!v) {
		if (errno == ENOENT)
			*absent = 1;
		else
			reply_errno(out, "rs_map_get", errno);
	}
	return v;
}

static void cmd_get(const struct req *r, struct buf *out)
{
	const char *p;
	int absent;
	size_t n;
	void *v = get_value(r, 1, out, &absent);

	if (!v) {
		if (absent)
			reply_nil(out);
		return;
	}
	p = str_bytes(v, &n);
	if (!p)
		reply_error(out, WRONGTYPE);
	else
		reply_bulk(out, p, n);
}

static void cmd_mget(const struct req *r, struct buf *out)
{
	int i;

	reply_array(out, r->argc - 1);
	for (i = 1; i < r->argc; i++) {
		void *v = NULL;
		const char *p = NULL;
		size_t n;

		if (r->argl[i] <= RS_MAP_KEY_MAX)
			v = rs_map_get(db(), r->argv[i], r->argl[i]);
		if (v)
			p = str_bytes(v, &n);
		if (p)
			reply_bulk(out, p, n);
		else
			reply_nil(out);
	}
}

static void cmd_exists(const struct req *r, struct buf *out)
{
	long long n = 0;
	int i;

	for (i = 1; i < r->argc; i++)
		if (r->argl[i] <= RS_MAP_KEY_MAX &&
		    rs_map_get(db(), r->argv[i], r->argl[i]))
			n++;
	reply_int(out, n);
}

static void cmd_del(const struct req *r, struct buf *out)
{
	long long n = 0;
	int i;

	for (i = 1; i < r->argc; i++) {
		pthread_mutex_t *lk;

		if (r->argl[i] > RS_MAP_KEY_MAX)
			continue;
		lk = key_lock(r->argv[i], r->argl[i]);
		pthread_mutex_lock(lk);
		if (rs_map_del(db(), r->argv[i], r->argl[i]) == 0)
			n++;
		pthread_mutex_unlock(lk);
	}
	reply_int(out, n);
}

static void cmd_incr(const struct req *r, struct buf *out)
{
	pthread_mutex_t *lk;
	long long x = 0;
	char num[24];
	int absent, k;
	void *v, *s;

	if (!key_ok(r, 1, out))
		return;
	lk = key_lock(r->argv[1], r->argl[1]);
	pthread_mutex_lock(lk);
	v = get_value(r, 1, out, &absent);
	if (v) {
		size_t n;
		const char *p = str_bytes(v, &n);

		if (!p) {
			reply_error(out, WRONGTYPE);
			goto out;
		}
		if (parse_ll(p, n, &x) < 0) {
			reply_error(out, "ERR value is not an integer or out of range");
			goto out;
		}
	} else if (!absent) {
		goto out;
	}
	if (x == LLONG_MAX) {
		reply_error(out, "ERR increment or decrement would overflow");
		goto out;
	}
	x++;
	k = snprintf(num, sizeof(num), "%lld", x);
	s = str_new(num, (size_t)k);
	if (!s) {
		reply_errno(out, "rs_new", errno);
		goto out;
	}
	if (put_value(r->argv[1], r->argl[1], s, out) == 0)
		reply_int(out, x);
	else
		rs_decref(s);
out:
	pthread_mutex_unlock(lk);
}

static void cmd_lpush(const struct req *r, struct buf *out)
{
	struct rlist *l;
	pthread_mutex_t *lk;
	int absent, i, fresh = 0;

	if (!key_ok(r, 1, out))
		return;
	lk = key_lock(r->argv[1], r->argl[1]);
	pthread_mutex_lock(lk);
	l = get_value(r, 1, out, &absent);
	if (!l) {
		if (!absent)
			goto out;
		l = list_new();
		if (!l) {
			reply_errno(out, "rs_new", errno);
			goto out;
		}
		fresh = 1;
	} else if (!is_list(l)) {
		reply_error(out, WRONGTYPE);
		goto out;
	}
	for (i = 2; i < r->argc; i++) {
		void *s = str_new(r->argv[i], r->argl[i]);

		if (!s || list_push_head(l, s) < 0) {
			reply_errno(out, s ? "rs_set" : "rs_new", errno);
			rs_decref(s);
			goto out;
		}
	}
	if (!fresh || put_value(r->argv[1], r->argl[1], l, out) == 0) {
		struct list_view v;

		list_view(l, &v);	/* borrowed: the lock keeps it */
		reply_int(out, v.len);
		fresh = 0;		/* the map took the reference */
	}
out:
	if (fresh)
		rs_decref(l);
	pthread_mutex_unlock(lk);
}

static void range_elem(const char *p, size_t n, void *arg)
{
	reply_bulk(arg, p, n);
}

/* Without a lock: the view is a snapshot of the list (store.c). */
static void cmd_lrange(const struct req *r, struct buf *out)
{
	long long start, stop, len;
	struct list_view v;
	struct rlist *l;
	int absent;

	if (parse_ll(r->argv[2], r->argl[2], &start) < 0 ||
	    parse_ll(r->argv[3], r->argl[3], &stop) < 0) {
		reply_error(out, "ERR value is not an integer or out of range");
		return;
	}
	l = get_value(r, 1, out, &absent);
	if (!l) {
		if (absent)
			reply_array(out, 0);
		return;
	}
	if (!is_list(l)) {
		reply_error(out, WRONGTYPE);
		return;
	}
	list_view(l, &v);
	len = v.len;
	if (start < 0)
		start = len + start < 0 ? 0 : len + start;
	if (stop < 0)
		stop += len;
	if (stop >= len)
		stop = len - 1;
	if (start > stop || start >= len) {
		reply_array(out, 0);
		return;
	}
	reply_array(out, (long)(stop - start + 1));
	list_view_range(&v, (long)start, (long)stop, range_elem, out);
}

static void cmd_dbsize(const struct req *r, struct buf *out)
{
	long n = rs_map_count(db());

	(void)r;
	if (n < 0)
		reply_errno(out, "rs_map_count", errno);
	else
		reply_int(out, n);
}

/* A new map (store.c): reaches a safepoint, and borrows nothing. */
static void cmd_flushall(const struct req *r, struct buf *out)
{
	if (r->argc == 2 && !arg_is(r, 1, "SYNC") && !arg_is(r, 1, "ASYNC")) {
		reply_error(out, "ERR syntax error");
		return;
	}
	if (db_flush() < 0)
		reply_errno(out, "rs_map_new", errno);
	else
		reply_status(out, "OK");
}

static void cmd_info(const struct req *r, struct buf *out)
{
	if (r->argc == 2)
		info_reply(r->argv[1], r->argl[1], out);
	else
		info_reply("", 0, out);
}

/* CONFIG GET save / appendonly, which redis-benchmark asks at its start;
 * every other parameter is unknown (an empty answer). */
static void cmd_config(const struct req *r, struct buf *out)
{
	if (!arg_is(r, 1, "GET") || r->argc != 3) {
		reply_error(out, "ERR only CONFIG GET <parameter> is supported");
		return;
	}
	if (arg_is(r, 2, "save")) {
		reply_array(out, 2);
		reply_bulk(out, "save", 4);
		reply_bulk(out, "", 0);
	} else if (arg_is(r, 2, "appendonly")) {
		reply_array(out, 2);
		reply_bulk(out, "appendonly", 10);
		reply_bulk(out, "no", 2);
	} else {
		reply_array(out, 0);
	}
}

/* redis-cli asks COMMAND DOCS when it starts interactively. */
static void cmd_command(const struct req *r, struct buf *out)
{
	(void)r;
	reply_array(out, 0);
}

/* ---- dispatch ---------------------------------------------------------------- */

struct command {
	const char *name;
	int min_argc, max_argc;		/* max -1: any */
	void (*run)(const struct req *r, struct buf *out);
};

static const struct command commands[] = {
	{ "GET", 2, 2, cmd_get },
	{ "SET", 3, -1, cmd_set },
	{ "INCR", 2, 2, cmd_incr },
	{ "LPUSH", 3, -1, cmd_lpush },
	{ "LRANGE", 4, 4, cmd_lrange },
	{ "MGET", 2, -1, cmd_mget },
	{ "DEL", 2, -1, cmd_del },
	{ "EXISTS", 2, -1, cmd_exists },
	{ "PING", 1, 2, cmd_ping },
	{ "ECHO", 2, 2, cmd_echo },
	{ "DBSIZE", 1, 1, cmd_dbsize },
	{ "FLUSHALL", 1, 2, cmd_flushall },
	{ "INFO", 1, 2, cmd_info },
	{ "CONFIG", 2, -1, cmd_config },
	{ "COMMAND", 1, -1, cmd_command },
};

void command_run(const struct req *r, struct buf *out)
{
	char msg[128];
	size_t i;

	if (r->argc == 0)
		return;		/* an empty inline line: no reply */
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		const struct command *c = &commands[i];

		if (!arg_is(r, 0, c->name))
			continue;
		if (r->argc < c->min_argc ||
		    (c->max_argc >= 0 && r->argc > c->max_argc)) {
			snprintf(msg, sizeof(msg),
				 "ERR wrong number of arguments for '%s' command",
				 c->name);
			reply_error(out, msg);
			return;
		}
		c->run(r, out);
		return;
	}
	snprintf(msg, sizeof(msg), "ERR unknown command '%.*s'",
		 (int)(r->argl[0] > 64 ? 64 : r->argl[0]), r->argv[0]);
	reply_error(out, msg);
}
