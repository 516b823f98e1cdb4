/*
 * info.c - INFO for resp-server: the sections a Redis client expects
 * (server, clients, memory, stats, keyspace) with the fields tools read,
 * and two of refstore's own: "refstore", every field of rs_stats, and
 * "collector", rs_gc_get_stats for each generation (collections, objects
 * collected, pauses: total, max, and the time to safepoint) with the
 * thresholds and counts.  Times are in microseconds, as Redis reports
 * latencies.  resp-bench.sh reads world_stops, pause_total_us,
 * pause_max_us and used_memory_rss from here.
 *
 * INFO [section]: one section by name, or "all"/"everything"/"default"
 * (or none) for all of them.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "resp.h"

long rss_bytes(void)
{
	long pages = -1, rss = -1;
	FILE *f = fopen("/proc/self/statm", "r");

	if (!f)
		return -1;
	if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
		rss = -1;
	fclose(f);
	return rss < 0 ? -1 : rss * sysconf(_SC_PAGESIZE);
}

/* The peak RSS (VmHWM), in bytes, or -1. */
static long rss_peak_bytes(void)
{
	char line[256];
	long kb = -1;
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmHWM: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb < 0 ? -1 : kb * 1024;
}

__attribute__((format(printf, 2, 3)))
static void addf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	buf_reserve(b, 256);
	va_start(ap, fmt);
	n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= b->cap - b->len) {
		buf_reserve(b, (size_t)n + 1);
		va_start(ap, fmt);
		vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
	}
	b->len += (size_t)n;
}

static unsigned long long us(uint64_t ns)
{
	return (unsigned long long)(ns / 1000);
}

static void sec_server(struct buf *b)
{
	addf(b, "# Server\r\n");
	/* The protocol level it answers at, for tools that read this field;
	 * server_name says what it is. */
	addf(b, "redis_version:7.0.0\r\n");
	addf(b, "server_name:resp-server (refstore %d.%d)\r\n",
	     REFSTORE_VERSION_MAJOR, REFSTORE_VERSION_MINOR);
	addf(b, "process_id:%ld\r\n", (long)getpid());
	addf(b, "tcp_port:%d\r\n", srv.port);
	addf(b, "worker_threads:%d\r\n", srv.threads);
	addf(b, "uptime_in_seconds:%llu\r\n",
	     (unsigned long long)((now_ns() - srv.started_ns) / 1000000000u));
}

static void sec_clients(struct buf *b)
{
	addf(b, "# Clients\r\n");
	addf(b, "connected_clients:%ld\r\n", atomic_load(&srv.clients));
}

static void sec_memory(struct buf *b, const struct rs_stats *st)
{
	addf(b, "# Memory\r\n");
	addf(b, "used_memory:%zu\r\n", st->live_bytes);
	addf(b, "used_memory_rss:%ld\r\n", rss_bytes());
	addf(b, "used_memory_peak_rss:%ld\r\n", rss_peak_bytes());
}

static void sec_stats(struct buf *b)
{
	addf(b, "# Stats\r\n");
	addf(b, "total_connections_received:%ld\r\n",
	     atomic_load(&srv.connections));
	addf(b, "total_commands_processed:%ld\r\n", atomic_load(&srv.commands));
	addf(b, "rejected_protocol_errors:%ld\r\n", atomic_load(&srv.rejected));
}

static void sec_keyspace(struct buf *b)
{
	long n = rs_map_count(db());

	addf(b, "# Keyspace\r\n");
	if (n > 0)
		addf(b, "db0:keys=%ld,expires=0,avg_ttl=0\r\n", n);
}

static void sec_refstore(struct buf *b, const struct rs_stats *st)
{
	addf(b, "# Refstore\r\n");
	addf(b, "live_objects:%zu\r\n", st->live_objects);
	addf(b, "live_bytes:%zu\r\n", st->live_bytes);
	addf(b, "objects_allocated:%llu\r\n",
	     (unsigned long long)st->objects_allocated);
	addf(b, "objects_freed:%llu\r\n", (unsigned long long)st->objects_freed);
	addf(b, "pending_decrements:%zu\r\n", st->pending_decrements);
	addf(b, "pending_bytes:%zu\r\n", st->pending_bytes);
	addf(b, "pending_bytes_max:%zu\r\n", st->pending_bytes_max);
	addf(b, "defer_limit_bytes:%zu\r\n", st->defer_limit_bytes);
	addf(b, "grace_periods:%llu\r\n", (unsigned long long)st->grace_periods);
	addf(b, "gp_latency_avg_us:%llu\r\n", us(st->gp_latency_avg_ns));
	addf(b, "gp_latency_max_us:%llu\r\n", us(st->gp_latency_max_ns));
	addf(b, "batches_sealed:%llu\r\n",
	     (unsigned long long)st->batches_sealed);
	addf(b, "defer_waits:%llu\r\n", (unsigned long long)st->defer_waits);
	addf(b, "merges_queued:%llu\r\n", (unsigned long long)st->merges_queued);
	addf(b, "merges_on_the_spot:%llu\r\n",
	     (unsigned long long)st->merges_on_the_spot);
	addf(b, "attached_threads:%zu\r\n", st->attached_threads);
	addf(b, "world_stops:%llu\r\n", (unsigned long long)st->world_stops);
	addf(b, "ttsp_max_us:%llu\r\n", us(st->ttsp_max_ns));
	addf(b, "ttsp_total_us:%llu\r\n", us(st->ttsp_total_ns));
	addf(b, "pause_max_us:%llu\r\n", us(st->pause_max_ns));
	addf(b, "pause_total_us:%llu\r\n", us(st->pause_total_ns));
	addf(b, "arena_bytes:%zu\r\n", st->arena_bytes);
	addf(b, "slab_bytes:%zu\r\n", st->slab_bytes);
	addf(b, "free_list_bytes:%zu\r\n", st->free_list_bytes);
	addf(b, "retained_bytes:%zu\r\n", st->retained_bytes);
}

static void sec_collector(struct buf *b)
{
	long t0 = 0, t1 = 0, t2 = 0, c0 = 0, c1 = 0, c2 = 0;
	int g;

	addf(b, "# Collector\r\n");
	addf(b, "gc_enabled:%d\r\n", rs_gc_is_enabled());
	rs_gc_get_threshold(&t0, &t1, &t2);
	rs_gc_get_count(&c0, &c1, &c2);
	addf(b, "gc_thresholds:%ld,%ld,%ld\r\n", t0, t1, t2);
	addf(b, "gc_counts:%ld,%ld,%ld\r\n", c0, c1, c2);
	for (g = 0; g < RS_GC_GENERATIONS; g++) {
		struct rs_gc_stats s;

		if (rs_gc_get_stats(g, &s) < 0)
			continue;
		addf(b, "gen%d:collections=%llu,collected=%llu,uncollectable=%llu,"
			"pause_total_us=%llu,pause_max_us=%llu,"
			"ttsp_total_us=%llu,ttsp_max_us=%llu\r\n",
		     g, (unsigned long long)s.collections,
		     (unsigned long long)s.collected,
		     (unsigned long long)s.uncollectable, us(s.pause_total_ns),
		     us(s.pause_max_ns), us(s.ttsp_total_ns), us(s.ttsp_max_ns));
	}
}

static int want(const char *sec, size_t n, const char *name)
{
	size_t k = strlen(name);

	if (n == 0 || (n == 3 && strncasecmp(sec, "all", 3) == 0) ||
	    (n == 7 && strncasecmp(sec, "default", 7) == 0) ||
	    (n == 10 && strncasecmp(sec, "everything", 10) == 0))
		return 1;
	return n == k && strncasecmp(sec, name, k) == 0;
}

void info_reply(const char *section, size_t slen, struct buf *out)
{
	struct buf b = { NULL, 0, 0 };
	struct rs_stats st;

	memset(&st, 0, sizeof(st));
	rs_stats(&st);
	if (want(section, slen, "server"))
		sec_server(&b);
	if (want(section, slen, "clients"))
		sec_clients(&b);
	if (want(section, slen, "memory"))
		sec_memory(&b, &st);
	if (want(section, slen, "stats"))
		sec_stats(&b);
	if (want(section, slen, "refstore"))
		sec_refstore(&b, &st);
	if (want(section, slen, "collector"))
		sec_collector(&b);
	if (want(section, slen, "keyspace"))
		sec_keyspace(&b);
	reply_bulk(out, b.p ? b.p : "", b.len);
	buf_free(&b);
}
