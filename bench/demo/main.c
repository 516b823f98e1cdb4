/*
 * main.c - the demo's entry: the options, then each side in a child
 * process of its own (forked before either runtime starts, so heaps,
 * threads and RSS stay apart; the results come back in shared memory),
 * watched for crashes and hangs, then the report and the files.  demo.h
 * describes the workload and the files of bench/demo/.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "demo.h"

/* ---------------------------------------------------------------------- */
/* The parent: run each side in a child, report                             */
/* ---------------------------------------------------------------------- */

/* How long a side may take in all before it counts as hung: the measured
 * time, generous room for setup (about a microsecond per object on this
 * kind of machine) and for the checks at the end. */
static double deadline_s(void)
{
	return 60 + 2 * cfg.seconds +
	       (double)(cfg.keys + cfg.ballast) * (cfg.ring + 3) * 20e-6;
}

/* Waits for the child; on the deadline, SIGABRT (a core file, if they are
 * enabled, shows where it hung), then SIGKILL.  0: *st is its status. */
static int wait_child(pid_t pid, int *st)
{
	uint64_t end = now_ns() + (uint64_t)(deadline_s() * 1e9);
	pid_t r;

	for (;;) {
		r = waitpid(pid, st, WNOHANG);
		if (r == pid)
			return 0;
		if (r < 0 && errno != EINTR)
			die("waitpid");
		if (now_ns() > end)
			break;
		usleep(50000);
	}
	kill(pid, SIGABRT);
	usleep(2000000);
	kill(pid, SIGKILL);
	while (waitpid(pid, st, 0) < 0 && errno == EINTR)
		;
	return -1;
}

static int run_side(int side)
{
	pid_t pid;
	int st, rc;

	R = g_res[side];
	if (!cfg.sides[side]) {
		R->skipped = 1;
		snprintf(R->note, sizeof(R->note), "not run (--side)");
		return 0;
	}
	if (side == SIDE_BOEHM && boehm_skip_reason()) {
		R->skipped = 1;
		snprintf(R->note, sizeof(R->note), "%s", boehm_skip_reason());
		printf("Boehm GC: %s\n", R->note);
		return 0;
	}
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		rc = 1;
		if (side == SIDE_RS)
			rc = run_refstore();
#ifdef HAVE_BOEHM
		else
			rc = run_boehm();
#endif
		fflush(stdout);
		fflush(stderr);
		/* refstore's side has shut its runtime down: a normal exit
		 * (LeakSanitizer checks it in the address build); Boehm's
		 * process still has its marker threads */
		if (side == SIDE_RS)
			exit(rc);
		_exit(rc);
	}
	if (wait_child(pid, &st)) {
		printf("%s: WRONG: the %s process did not finish within %.0f s "
		       "(a hang): killed\n", side_title[side], side_name[side],
		       deadline_s());
		R->ran = 0;
		return 1;
	}
	if (WIFSIGNALED(st) || !R->ran) {
		size_t n = strlen(R->note);

		snprintf(R->note + n, sizeof(R->note) - n, "%sthe %s process "
			 "%s %d", n ? "; " : "", side_name[side],
			 WIFSIGNALED(st) ? "died of signal" : "exited with",
			 WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
		printf("%s: %s\n", side_title[side], R->note);
		R->ran = 0;
		return 1;
	}
	return WEXITSTATUS(st) ? 1 : 0;
}

/* ---- options ---------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
"usage: demo [options]\n"
"\n"
"A threaded server's requests against a map of shared object graphs, on\n"
"refstore and then on the Boehm GC (each side in its own process); reports\n"
"throughput, request latency, collector pauses and time-to-safepoint.\n"
"\n"
"  --threads N      worker threads (default: online CPUs, here %ld)\n"
"  --seconds S      measured time per side, may be fractional (default 8)\n"
"  --keys K         keys the requests use; all present at the start\n"
"                   (default 100000)\n"
"  --writes PCT     percent of requests that write: put, update, delete in\n"
"                   the ratio 40:50:10 (default 20)\n"
"  --ring N         ring nodes per value, 0..%d (default 3; 0: no cycles)\n"
"  --heap-mb M      extra cold records totalling about M MiB of refstore\n"
"                   objects, the same records on both sides (default 64)\n"
"  --cold WHERE     map: the cold records are entries of the map (default);\n"
"                   root: one array object holds them instead\n"
"  --side S         refstore, boehm or both (default both)\n"
"  --seed N         random seed (default 1)\n"
"  --out DIR        where the raw samples, summary.json and demo.png go\n"
"                   (default build/demo)\n"
"  --format F       raw samples as csv (default) or json\n"
"  --quiet          no progress lines\n"
"  --help           this text\n"
"\n"
"Exit status: 0, or 1 when a value read back wrong or a self-check failed,\n"
"2 for bad options.  See docs/demo.md.\n",
		sysconf(_SC_NPROCESSORS_ONLN), MAX_RING);
}

static void bad(const char *opt, const char *val, const char *want)
{
	fprintf(stderr, "demo: %s %s: expected %s (see --help)\n", opt, val,
		want);
	exit(2);
}

static long long parse_int(const char *opt, const char *val, long long lo,
			   long long hi, const char *want)
{
	long long v;
	char *end;

	errno = 0;
	v = strtoll(val, &end, 10);
	if (errno || end == val || *end || v < lo || v > hi)
		bad(opt, val, want);
	return v;
}

static void parse(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "threads", required_argument, NULL, 't' },
		{ "seconds", required_argument, NULL, 's' },
		{ "keys", required_argument, NULL, 'k' },
		{ "writes", required_argument, NULL, 'w' },
		{ "ring", required_argument, NULL, 'r' },
		{ "heap-mb", required_argument, NULL, 'm' },
		{ "side", required_argument, NULL, 'S' },
		{ "cold", required_argument, NULL, 'c' },
		{ "seed", required_argument, NULL, 'x' },
		{ "out", required_argument, NULL, 'o' },
		{ "format", required_argument, NULL, 'f' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	unsigned long long seed;
	char *end;
	int c, idx;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", lo, &idx)) != -1) {
		switch (c) {
		case 't':
			cfg.threads = (int)parse_int("--threads", optarg, 1,
						     MAX_THREADS, "an integer "
						     "from 1 to 1024");
			break;
		case 's':
			errno = 0;
			cfg.seconds = strtod(optarg, &end);
			if (errno || end == optarg || *end ||
			    !(cfg.seconds >= 0.1 && cfg.seconds <= MAX_SECONDS))
				bad("--seconds", optarg, "a number of seconds "
				    "from 0.1 to 3600");
			break;
		case 'k':
			cfg.keys = (long)parse_int("--keys", optarg, 1,
						   100000000, "an integer "
						   "from 1 to 100000000");
			break;
		case 'w':
			cfg.writes = (int)parse_int("--writes", optarg, 0, 100,
						    "a percentage from 0 to "
						    "100");
			break;
		case 'r':
			cfg.ring = (int)parse_int("--ring", optarg, 0, MAX_RING,
						  "an integer from 0 to 64");
			break;
		case 'm':
			cfg.heap_mb = (long)parse_int("--heap-mb", optarg, 0,
						      65536, "an integer from "
						      "0 to 65536");
			break;
		case 'S':
			if (!strcmp(optarg, "refstore")) {
				cfg.sides[SIDE_RS] = 1;
				cfg.sides[SIDE_BOEHM] = 0;
			} else if (!strcmp(optarg, "boehm")) {
				cfg.sides[SIDE_RS] = 0;
				cfg.sides[SIDE_BOEHM] = 1;
			} else if (!strcmp(optarg, "both")) {
				cfg.sides[SIDE_RS] = cfg.sides[SIDE_BOEHM] = 1;
			} else {
				bad("--side", optarg, "refstore, boehm or both");
			}
			break;
		case 'c':
			if (!strcmp(optarg, "map"))
				cfg.cold_root = 0;
			else if (!strcmp(optarg, "root"))
				cfg.cold_root = 1;
			else
				bad("--cold", optarg, "map or root");
			break;
		case 'x':
			errno = 0;
			seed = strtoull(optarg, &end, 0);
			if (errno || end == optarg || *end || optarg[0] == '-')
				bad("--seed", optarg, "an unsigned integer");
			cfg.seed = seed;
			break;
		case 'o':
			if (!optarg[0])
				bad("--out", "''", "a directory");
			cfg.out = optarg;
			break;
		case 'f':
			if (!strcmp(optarg, "csv"))
				cfg.json = 0;
			else if (!strcmp(optarg, "json"))
				cfg.json = 1;
			else
				bad("--format", optarg, "csv or json");
			break;
		case 'q':
			cfg.quiet = 1;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case ':':
			fprintf(stderr, "demo: %s needs a value (see --help)\n",
				argv[optind - 1]);
			exit(2);
		default:
			if (optopt)
				fprintf(stderr, "demo: unknown option '-%c' "
					"(see --help)\n", optopt);
			else
				fprintf(stderr, "demo: unknown option '%s' "
					"(see --help)\n", argv[optind - 1]);
			exit(2);
		}
	}
	if (optind != argc) {
		fprintf(stderr, "demo: unexpected argument '%s' (see --help)\n",
			argv[optind]);
		exit(2);
	}
}

int main(int argc, char **argv)
{
	char paths[2 * PATH_MAX + 256], path[PATH_MAX + 64];
	int s, rc = 0;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	cfg.threads = cpus > 0 ? (int)(cpus > MAX_THREADS ? MAX_THREADS : cpus)
			       : 1;
	parse(argc, argv);
	cfg.thr_get = (unsigned)(100 - cfg.writes) * 100;
	cfg.thr_put = cfg.thr_get + (unsigned)cfg.writes * 40;
	cfg.thr_upd = cfg.thr_put + (unsigned)cfg.writes * 50;
	cfg.ballast = (long)((double)cfg.heap_mb * 1048576.0 / rs_record_bytes());
	if (mkdirs(cfg.out)) {
		fprintf(stderr, "demo: cannot create --out %s: %s\n", cfg.out,
			strerror(errno));
		return 2;
	}
	for (s = 0; s < NSIDES; s++)
		g_res[s] = result_new();

	printf("demo: %d worker threads on %ld CPUs, %g s per side; %ld keys, "
	       "values = record + ring of %d + leaf;\n      %d%% writes (put "
	       "%d%%, update %d%%, delete %d%% of all requests); %ld MiB of "
	       "cold records (%ld, in the %s); seed %llu\n", cfg.threads, cpus,
	       cfg.seconds, cfg.keys, cfg.ring, cfg.writes,
	       cfg.writes * 40 / 100, cfg.writes * 50 / 100,
	       cfg.writes - cfg.writes * 40 / 100 - cfg.writes * 50 / 100,
	       cfg.heap_mb, cfg.ballast, cfg.cold_root ? "root object" : "map",
	       (unsigned long long)cfg.seed);
	if (cfg.threads > cpus)
		printf("note: more threads than CPUs: a refstore stop waits for "
		       "descheduled threads to reach a safepoint\n");

	for (s = 0; s < NSIDES; s++) {
		if (run_side(s))
			rc = 1;
		if (side_ok(s))
			printf("%s: %s, setup %.2f s (%ld keys + %ld cold "
			       "records), %.2f s measured%s\n", side_title[s],
			       g_res[s]->version, g_res[s]->setup_s,
			       g_res[s]->records, g_res[s]->ballast,
			       g_res[s]->elapsed_s, g_res[s]->check_failed
			       ? "; SELF-CHECK FAILED" : "");
		pause_stats(g_res[s], &g_ps[s]);
	}

	print_tables();
	if (side_ok(SIDE_RS))
		printf("\nself-check, refstore: %s (%llu reads verified, live "
		       "objects after rs_map_free and a full collection: %llu, "
		       "rs_shutdown() = %ld)\n", g_res[SIDE_RS]->check_failed ?
		       g_res[SIDE_RS]->note : "ok",
		       (unsigned long long)(g_res[SIDE_RS]->ops[OP_GET] -
					    g_res[SIDE_RS]->misses[OP_GET]),
		       (unsigned long long)g_res[SIDE_RS]->live_objects_end,
		       g_res[SIDE_RS]->shutdown_left);
	if (side_ok(SIDE_BOEHM))
		printf("self-check, Boehm GC: %s (%llu reads verified)\n",
		       g_res[SIDE_BOEHM]->check_failed ?
		       g_res[SIDE_BOEHM]->note : "ok",
		       (unsigned long long)(g_res[SIDE_BOEHM]->ops[OP_GET] -
					    g_res[SIDE_BOEHM]->misses[OP_GET]));

	printf("\nfiles:\n");
	if (write_raw(paths, sizeof(paths)) == 0)
		printf("  %s\n", paths);
	else
		rc = 1;
	if (write_summary(path, sizeof(path)) == 0)
		printf("  %s\n", path);
	else
		rc = 1;
	if (!side_ok(SIDE_RS) && !side_ok(SIDE_BOEHM))
		printf("chart: skipped (no side ran)\n");
	else if (write_chart_data() == 0)
		draw_chart();
	print_verdict();
	if (rc)
		printf("demo: FAILED (see the WRONG lines above)\n");
	return rc;
}
