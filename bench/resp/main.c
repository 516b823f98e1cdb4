/*
 * main.c - resp-server's entry: options, the runtime, the workers, and a
 * clean shutdown on SIGTERM or SIGINT.
 *
 *   resp-server [--port P] [--threads N]
 *
 * Listens on 127.0.0.1:P only (default 6380; 0 picks a free port, printed
 * on stderr) with N worker threads (default 2).  The main thread starts
 * refstore with its defaults (REFSTORE_* variables apply), creates the
 * database map, starts the workers, then waits for a signal, offline (it
 * holds nothing up while it waits).  On SIGTERM or SIGINT it stops and
 * joins the workers (each detaches, applying what it logged), gives the
 * map back and calls rs_shutdown, which reports any object still alive;
 * the last line on stderr says how many there were, and the exit status is
 * 1 if there were any.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resp.h"

static void usage(FILE *f)
{
	fputs("usage: resp-server [--port P] [--threads N]\n"
	      "  -p, --port P     TCP port on 127.0.0.1 (default 6380; 0: any free one)\n"
	      "  -t, --threads N  worker threads (default 2)\n"
	      "Stops on SIGTERM or SIGINT and reports refstore's leaks.\n", f);
}

static long parse_num(const char *s, long lo, long hi, const char *what)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || end == s || v < lo || v > hi) {
		fprintf(stderr, "resp-server: bad %s '%s' (%ld to %ld)\n", what,
			s, lo, hi);
		exit(2);
	}
	return v;
}

static void parse_args(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "threads", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	srv.port = 6380;
	srv.threads = 2;
	while ((c = getopt_long(argc, argv, "p:t:h", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			srv.port = (int)parse_num(optarg, 0, 65535, "port");
			break;
		case 't':
			srv.threads = (int)parse_num(optarg, 1, 256, "thread count");
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			exit(2);
		}
	}
	if (optind < argc) {
		usage(stderr);
		exit(2);
	}
}

/* One line with what refstore did during the run. */
static void print_summary(void)
{
	struct rs_stats st;
	int g;

	memset(&st, 0, sizeof(st));
	rs_stats(&st);
	fprintf(stderr,
		"resp-server: %ld commands, %ld connections; refstore: %llu "
		"world stops, pauses %llu us in all, %llu us at most; "
		"%llu objects allocated\n",
		atomic_load(&srv.commands), atomic_load(&srv.connections),
		(unsigned long long)st.world_stops,
		(unsigned long long)(st.pause_total_ns / 1000),
		(unsigned long long)(st.pause_max_ns / 1000),
		(unsigned long long)st.objects_allocated);
	for (g = 0; g < RS_GC_GENERATIONS; g++) {
		struct rs_gc_stats s;

		if (rs_gc_get_stats(g, &s) == 0 && s.collections)
			fprintf(stderr,
				"resp-server: generation %d: %llu collections, "
				"%llu objects collected, pause max %llu us\n",
				g, (unsigned long long)s.collections,
				(unsigned long long)s.collected,
				(unsigned long long)(s.pause_max_ns / 1000));
	}
}

int main(int argc, char **argv)
{
	sigset_t set;
	long left;
	int sig = 0;

	srv.stop_fd = -1;
	parse_args(argc, argv);

	/* The workers inherit this mask: the signals come to sigwait. */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (rs_init(NULL) < 0 || rs_thread_attach() < 0 || db_init() < 0) {
		perror("resp-server: starting refstore");
		return 1;
	}
	if (net_listen_all() < 0) {
		fprintf(stderr, "resp-server: cannot listen on 127.0.0.1:%d: %s\n",
			srv.port, strerror(errno));
		return 1;
	}
	srv.started_ns = now_ns();
	if (net_start() < 0) {
		perror("resp-server: starting the workers");
		net_stop();
		return 1;
	}
	fprintf(stderr, "resp-server: listening on 127.0.0.1:%d, %d worker threads\n",
		srv.port, srv.threads);

	rs_offline();
	while (sigwait(&set, &sig) != 0)
		;
	rs_online();
	fprintf(stderr, "resp-server: %s, stopping\n", strsignal(sig));

	net_stop();
	print_summary();
	db_fini();
	left = rs_shutdown();
	fprintf(stderr, "resp-server: objects still alive at shutdown: %ld\n", left);
	return left == 0 ? 0 : 1;
}
