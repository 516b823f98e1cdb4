/*
 * proto.c - RESP2 for resp-server: growable buffers, the request parser and
 * the reply encoders.  Nothing here touches refstore.
 *
 * Requests come as multi-bulk arrays (what redis-cli and redis-benchmark
 * send):  *<argc>\r\n  then for each argument  $<len>\r\n<bytes>\r\n
 * or as inline commands, one line of words separated by spaces (telnet).
 * The parser is restartable in the simplest way: it parses from the start
 * of the unconsumed input each time and reports "incomplete" without
 * keeping state; an argument's bytes are never scanned, only skipped, so a
 * large value read in many pieces costs one pass over its headers per read.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resp.h"

/* ---- buffers --------------------------------------------------------------- */

static void oom(void)
{
	fputs("resp-server: out of memory\n", stderr);
	abort();
}

void buf_reserve(struct buf *b, size_t more)
{
	size_t cap;
	char *p;

	if (b->cap - b->len >= more)
		return;
	cap = b->cap ? b->cap : 4096;
	while (cap - b->len < more)
		cap *= 2;
	p = realloc(b->p, cap);
	if (!p)
		oom();
	b->p = p;
	b->cap = cap;
}

void buf_put(struct buf *b, const void *p, size_t n)
{
	buf_reserve(b, n);
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

void buf_free(struct buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

/* ---- the parser ------------------------------------------------------------ */

static void req_grow(struct req *r, int need)
{
	int cap = r->cap ? r->cap : 16;
	const char **argv;
	size_t *argl;

	if (need <= r->cap)
		return;
	while (cap < need)
		cap *= 2;
	argv = realloc(r->argv, (size_t)cap * sizeof(*argv));
	if (!argv)
		oom();
	r->argv = argv;
	argl = realloc(r->argl, (size_t)cap * sizeof(*argl));
	if (!argl)
		oom();
	r->argl = argl;
	r->cap = cap;
}

void req_free(struct req *r)
{
	free(r->argv);
	free(r->argl);
	memset(r, 0, sizeof(*r));
}

/* Reads "<prefix><decimal>\r\n" at p[0..n).  1 with *v and *len (bytes
 * taken), 0 incomplete, -1 malformed. */
static int parse_line_num(const char *p, size_t n, char prefix, long long *v,
			  size_t *len)
{
	const char *nl;
	long long x = 0;
	size_t i = 1;
	int neg = 0;

	if (n < 1)
		return 0;
	if (p[0] != prefix)
		return -1;
	nl = memchr(p, '\r', n > 32 ? 32 : n);
	if (!nl)
		return n > 32 ? -1 : 0;
	if ((size_t)(nl - p) + 1 >= n)
		return 0;
	if (nl[1] != '\n')
		return -1;
	if (i < (size_t)(nl - p) && p[i] == '-') {
		neg = 1;
		i++;
	}
	if (i == (size_t)(nl - p))
		return -1;
	for (; i < (size_t)(nl - p); i++) {
		if (p[i] < '0' || p[i] > '9' || x > (LLONG_MAX - 9) / 10)
			return -1;
		x = x * 10 + (p[i] - '0');
	}
	*v = neg ? -x : x;
	*len = (size_t)(nl - p) + 2;
	return 1;
}

static int parse_inline(const char *p, size_t n, struct req *r, size_t *used,
			const char **err)
{
	const char *nl = memchr(p, '\n', n);
	size_t end, i = 0;

	if (!nl) {
		if (n > RESP_MAX_INLINE) {
			*err = "Protocol error: too big inline request";
			return -1;
		}
		return 0;
	}
	end = (size_t)(nl - p);
	*used = end + 1;
	if (end > 0 && p[end - 1] == '\r')
		end--;
	r->argc = 0;
	while (i < end) {
		size_t s;

		while (i < end && (p[i] == ' ' || p[i] == '\t'))
			i++;
		if (i == end)
			break;
		s = i;
		while (i < end && p[i] != ' ' && p[i] != '\t')
			i++;
		req_grow(r, r->argc + 1);
		r->argv[r->argc] = p + s;
		r->argl[r->argc] = i - s;
		r->argc++;
	}
	return 1;
}

int resp_parse(const char *p, size_t n, struct req *r, size_t *used,
	       const char **err)
{
	long long argc, blen;
	size_t off, len;
	int rc, i;

	if (n == 0)
		return 0;
	if (p[0] != '*')
		return parse_inline(p, n, r, used, err);
	rc = parse_line_num(p, n, '*', &argc, &len);
	if (rc <= 0) {
		*err = "Protocol error: invalid multibulk length";
		return rc;
	}
	if (argc > RESP_MAX_ARGS) {
		*err = "Protocol error: invalid multibulk length";
		return -1;
	}
	off = len;
	r->argc = 0;
	if (argc <= 0) {
		*used = off;
		return 1;
	}
	req_grow(r, (int)argc);
	for (i = 0; i < argc; i++) {
		rc = parse_line_num(p + off, n - off, '$', &blen, &len);
		if (rc <= 0) {
			*err = "Protocol error: expected '$' and a length";
			return rc;
		}
		if (blen < 0 || (size_t)blen > RESP_MAX_BULK) {
			*err = "Protocol error: invalid bulk length";
			return -1;
		}
		off += len;
		if (n - off < (size_t)blen + 2)
			return 0;
		if (p[off + blen] != '\r' || p[off + blen + 1] != '\n') {
			*err = "Protocol error: bulk not followed by CRLF";
			return -1;
		}
		r->argv[i] = p + off;
		r->argl[i] = (size_t)blen;
		off += (size_t)blen + 2;
	}
	r->argc = (int)argc;
	*used = off;
	return 1;
}

/* ---- replies --------------------------------------------------------------- */

/* "<c><v>\r\n", formatted by hand: a reply of 100 elements has 100 of
 * them, and snprintf would be most of its cost. */
static void put_num_line(struct buf *b, char c, long long v)
{
	char tmp[32];
	char *e = tmp + sizeof(tmp), *p = e;
	unsigned long long u = v < 0 ? 0 - (unsigned long long)v
				     : (unsigned long long)v;

	*--p = '\n';
	*--p = '\r';
	do {
		*--p = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (v < 0)
		*--p = '-';
	*--p = c;
	buf_put(b, p, (size_t)(e - p));
}

void reply_status(struct buf *b, const char *s)
{
	buf_put(b, "+", 1);
	buf_put(b, s, strlen(s));
	buf_put(b, "\r\n", 2);
}

void reply_error(struct buf *b, const char *s)
{
	buf_put(b, "-", 1);
	buf_put(b, s, strlen(s));
	buf_put(b, "\r\n", 2);
}

void reply_int(struct buf *b, long long v)
{
	put_num_line(b, ':', v);
}

void reply_bulk(struct buf *b, const void *p, size_t n)
{
	buf_reserve(b, n + 32);
	put_num_line(b, '$', (long long)n);
	buf_put(b, p, n);
	buf_put(b, "\r\n", 2);
}

void reply_nil(struct buf *b)
{
	buf_put(b, "$-1\r\n", 5);
}

void reply_array(struct buf *b, long n)
{
	put_num_line(b, '*', n);
}
