/*
 * net.c - resp-server's worker threads: sockets, epoll and the request
 * loop.
 *
 * Each worker has its own listening socket on 127.0.0.1:<port> (all bound
 * with SO_REUSEPORT, so the kernel spreads new connections over them), its
 * own epoll instance and its own connections, which never move to another
 * worker: connection state is plain memory no other thread reads.
 *
 * The request loop of a worker, and where refstore comes in:
 *
 *   attach (rs_thread_attach)
 *   loop:
 *     rs_offline()          epoll_wait may block for a long time: offline,
 *     epoll_wait(...)       the worker holds up neither grace periods nor
 *     rs_online()           stops of the world (rs_online waits if one is
 *                           in progress)
 *     for each ready connection:
 *       read what is there
 *       for each complete request in the input:
 *         run it            borrowed references (the map, values) are
 *                           used and the reply bytes copied out
 *         rs_safepoint()    they end here; deferred decrements mature,
 *                           the worker parks if a collection stops the world
 *       write the replies
 *   detach (rs_thread_detach): what the worker logged is applied
 *
 * A safepoint after every request, not after every read, bounds the time
 * to safepoint by one request even when a client pipelines hundreds.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "resp.h"

/* Per read event, at most this much input before the worker turns to its
 * other connections (fairness under pipelining). */
#define READ_BUDGET (256 * 1024)
/* Buffers above this are given back once empty. */
#define BUF_KEEP (1024 * 1024)

struct conn {
	int fd;
	int want_out;		/* EPOLLOUT registered */
	int closing;		/* close once the output is written */
	struct buf in, out;
	size_t out_off;		/* bytes of out already sent */
	struct req req;
	struct conn *prev, *next;	/* the worker's connections */
};

struct worker {
	int idx;
	int ep;			/* epoll */
	int lfd;		/* listening socket */
	pthread_t thread;
	int started;
	struct conn *conns;
};

struct server srv;

/* epoll data for the two descriptors that are not connections */
static char listen_mark, stop_mark;

uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- listening ---------------------------------------------------------------- */

static int listen_one(int port)
{
	struct sockaddr_in a;
	int one = 1, fd;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
		goto fail;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);	/* 127.0.0.1 only */
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    listen(fd, 1024) < 0)
		goto fail;
	return fd;
fail:
	close(fd);
	return -1;
}

int net_listen_all(void)
{
	int i;

	srv.workers = calloc((size_t)srv.threads, sizeof(*srv.workers));
	if (!srv.workers)
		return -1;
	for (i = 0; i < srv.threads; i++)
		srv.workers[i].ep = srv.workers[i].lfd = -1;
	for (i = 0; i < srv.threads; i++) {
		struct worker *w = &srv.workers[i];

		w->idx = i;
		w->lfd = listen_one(srv.port);
		if (w->lfd < 0)
			return -1;
		if (srv.port == 0) {	/* the first socket chose the port */
			struct sockaddr_in a;
			socklen_t len = sizeof(a);

			if (getsockname(w->lfd, (struct sockaddr *)&a, &len) < 0)
				return -1;
			srv.port = ntohs(a.sin_port);
		}
	}
	return 0;
}

/* ---- connections -------------------------------------------------------------- */

static void conn_close(struct worker *w, struct conn *c)
{
	epoll_ctl(w->ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	if (c->prev)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	buf_free(&c->in);
	buf_free(&c->out);
	req_free(&c->req);
	free(c);
	atomic_fetch_sub(&srv.clients, 1);
}

static void accept_all(struct worker *w)
{
	for (;;) {
		struct epoll_event ev;
		struct conn *c;
		int one = 1;
		int fd = accept4(w->lfd, NULL, NULL,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			return;	/* EAGAIN, or out of descriptors: later */
		}
		c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c->fd = fd;
		ev.events = EPOLLIN;
		ev.data.ptr = c;
		if (epoll_ctl(w->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
			close(fd);
			free(c);
			continue;
		}
		c->next = w->conns;
		if (w->conns)
			w->conns->prev = c;
		w->conns = c;
		atomic_fetch_add(&srv.clients, 1);
		atomic_fetch_add(&srv.connections, 1);
	}
}

static void want_output(struct worker *w, struct conn *c, int on)
{
	struct epoll_event ev;

	if (c->want_out == on)
		return;
	ev.events = EPOLLIN | (on ? EPOLLOUT : 0u);
	ev.data.ptr = c;
	if (epoll_ctl(w->ep, EPOLL_CTL_MOD, c->fd, &ev) == 0)
		c->want_out = on;
}

/* Sends what it can.  0, or -1 when the connection was closed. */
static int conn_flush(struct worker *w, struct conn *c)
{
	while (c->out_off < c->out.len) {
		ssize_t n = send(c->fd, c->out.p + c->out_off,
				 c->out.len - c->out_off, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				want_output(w, c, 1);
				return 0;
			}
			conn_close(w, c);
			return -1;
		}
		c->out_off += (size_t)n;
	}
	c->out.len = c->out_off = 0;
	if (c->out.cap > BUF_KEEP)
		buf_free(&c->out);
	want_output(w, c, 0);
	if (c->closing) {
		conn_close(w, c);
		return -1;
	}
	return 0;
}

/* Runs every complete request in the input, a safepoint after each. */
static void conn_run(struct conn *c)
{
	size_t off = 0, used = 0;
	long ran = 0;

	while (off < c->in.len && !c->closing) {
		const char *err = NULL;
		int rc = resp_parse(c->in.p + off, c->in.len - off, &c->req,
				    &used, &err);

		if (rc == 0)
			break;
		if (rc < 0) {
			char msg[128];

			snprintf(msg, sizeof(msg), "ERR %s", err);
			reply_error(&c->out, msg);
			c->closing = 1;
			atomic_fetch_add(&srv.rejected, 1);
			break;
		}
		command_run(&c->req, &c->out);
		off += used;
		ran++;
		rs_safepoint();
	}
	if (off) {
		memmove(c->in.p, c->in.p + off, c->in.len - off);
		c->in.len -= off;
	}
	if (c->in.len == 0 && c->in.cap > BUF_KEEP)
		buf_free(&c->in);
	if (ran)
		atomic_fetch_add_explicit(&srv.commands, ran,
					  memory_order_relaxed);
}

static void conn_event(struct worker *w, struct conn *c, uint32_t events)
{
	size_t budget = READ_BUDGET;
	int eof = 0;

	if (events & EPOLLOUT) {
		if (conn_flush(w, c) < 0)
			return;
	}
	if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)) || c->closing)
		return;
	while (budget > 0) {
		ssize_t n;

		buf_reserve(&c->in, 16384);
		n = recv(c->fd, c->in.p + c->in.len, c->in.cap - c->in.len, 0);
		if (n > 0) {
			c->in.len += (size_t)n;
			budget = (size_t)n >= budget ? 0 : budget - (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
			eof = 1;
		break;
	}
	conn_run(c);
	if (conn_flush(w, c) < 0)
		return;
	if (eof)
		conn_close(w, c);
}

/* ---- the workers -------------------------------------------------------------- */

static int worker_setup(struct worker *w)
{
	struct epoll_event ev;

	w->ep = epoll_create1(EPOLL_CLOEXEC);
	if (w->ep < 0)
		return -1;
	ev.events = EPOLLIN;
	ev.data.ptr = &listen_mark;
	if (epoll_ctl(w->ep, EPOLL_CTL_ADD, w->lfd, &ev) < 0)
		return -1;
	ev.events = EPOLLIN;	/* level-triggered: every worker sees it */
	ev.data.ptr = &stop_mark;
	return epoll_ctl(w->ep, EPOLL_CTL_ADD, srv.stop_fd, &ev);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct epoll_event ev[128];
	int stop = 0;

	if (rs_thread_attach() < 0) {
		perror("resp-server: rs_thread_attach");
		return NULL;
	}
	while (!stop) {
		int i, n;

		rs_offline();
		n = epoll_wait(w->ep, ev, 128, -1);
		rs_online();
		if (n < 0) {
			if (errno == EINTR)
				continue;
			perror("resp-server: epoll_wait");
			break;
		}
		for (i = 0; i < n; i++) {
			void *p = ev[i].data.ptr;

			if (p == &stop_mark)
				stop = 1;
			else if (p == &listen_mark)
				accept_all(w);
			else
				conn_event(w, p, ev[i].events);
		}
	}
	while (w->conns)
		conn_close(w, w->conns);
	rs_thread_detach();
	return NULL;
}

int net_start(void)
{
	int i;

	srv.stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (srv.stop_fd < 0)
		return -1;
	for (i = 0; i < srv.threads; i++) {
		struct worker *w = &srv.workers[i];

		if (worker_setup(w) < 0)
			return -1;
		errno = pthread_create(&w->thread, NULL, worker_main, w);
		if (errno)
			return -1;
		w->started = 1;
	}
	return 0;
}

void net_stop(void)
{
	uint64_t one = 1;
	int i;

	if (srv.stop_fd >= 0 && write(srv.stop_fd, &one, sizeof(one)) < 0)
		perror("resp-server: eventfd");
	for (i = 0; srv.workers && i < srv.threads; i++) {
		struct worker *w = &srv.workers[i];

		if (w->started)
			pthread_join(w->thread, NULL);
		if (w->ep >= 0)
			close(w->ep);
		if (w->lfd >= 0)
			close(w->lfd);
	}
	free(srv.workers);
	srv.workers = NULL;
	if (srv.stop_fd >= 0)
		close(srv.stop_fd);
}
