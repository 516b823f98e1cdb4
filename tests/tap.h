/*
 * tap.h - a small TAP producer for refstore's tests (header only).
 *
 *   plan(n)                      or done_testing() at the end
 *   ok(cond, fmt, ...)           one test point
 *   is(got, want, fmt, ...)      typed comparison (C11 _Generic: integers,
 *                                pointers, strings), prints both values
 *   is_long / is_ulong / is_ptr / is_str   the same, explicitly typed
 *   diag(fmt, ...)               a comment on stderr
 *   skip(n, why)                 n skipped test points
 *   skip_all(why)                plan 0 and exit
 *   bail_out(fmt, ...)           "Bail out!" and exit 255
 *   exit_status()                return value for main
 *
 * ok/is may be called from several threads.
 */
#ifndef RS_TAP_H
#define RS_TAP_H

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pthread_mutex_t tap_lock = PTHREAD_MUTEX_INITIALIZER;
static int tap_planned = -1, tap_run, tap_failed;

static inline void plan(int n)
{
	tap_planned = n;
	printf("1..%d\n", n);
	fflush(stdout);
}

static inline void tap_vdiag(const char *fmt, va_list ap)
{
	fprintf(stderr, "# ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	fflush(stderr);
}

static inline void diag(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));
static inline void diag(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	tap_vdiag(fmt, ap);
	va_end(ap);
}

static inline int tap_vok(int cond, const char *file, int line,
			  const char *fmt, va_list ap)
{
	pthread_mutex_lock(&tap_lock);
	tap_run++;
	if (!cond)
		tap_failed++;
	printf("%sok %d - ", cond ? "" : "not ", tap_run);
	vprintf(fmt, ap);
	putchar('\n');
	if (!cond)
		printf("#   Failed test at %s line %d\n", file, line);
	fflush(stdout);
	pthread_mutex_unlock(&tap_lock);
	return cond;
}

static inline int tap_ok(int cond, const char *file, int line,
			 const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static inline int tap_ok(int cond, const char *file, int line,
			 const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = tap_vok(cond, file, line, fmt, ap);
	va_end(ap);
	return r;
}
#define ok(cond, ...) tap_ok(!!(cond), __FILE__, __LINE__, __VA_ARGS__)

#define TAP_IS_BODY(cond, gotfmt, got, want)                                  \
	va_list ap;                                                            \
	int r;                                                                 \
	va_start(ap, fmt);                                                     \
	r = tap_vok(cond, file, line, fmt, ap);                                \
	va_end(ap);                                                            \
	if (!r) {                                                              \
		printf("#          got: " gotfmt "\n#     expected: " gotfmt "\n", \
		       got, want);                                             \
		fflush(stdout);                                                \
	}                                                                      \
	return r;

static inline int tap_is_long(long long got, long long want, const char *file,
			      int line, const char *fmt, ...)
{
	TAP_IS_BODY(got == want, "%lld", got, want)
}
static inline int tap_is_ulong(unsigned long long got, unsigned long long want,
			       const char *file, int line, const char *fmt, ...)
{
	TAP_IS_BODY(got == want, "%llu", got, want)
}
static inline int tap_is_ptr(const void *got, const void *want,
			     const char *file, int line, const char *fmt, ...)
{
	TAP_IS_BODY(got == want, "%p", got, want)
}
static inline int tap_is_str(const char *got, const char *want,
			     const char *file, int line, const char *fmt, ...)
{
	TAP_IS_BODY((got && want) ? !strcmp(got, want) : got == want, "%s",
		    got ? got : "(null)", want ? want : "(null)")
}

#define is_long(g, w, ...) tap_is_long((g), (w), __FILE__, __LINE__, __VA_ARGS__)
#define is_ulong(g, w, ...) tap_is_ulong((g), (w), __FILE__, __LINE__, __VA_ARGS__)
#define is_ptr(g, w, ...) tap_is_ptr((g), (w), __FILE__, __LINE__, __VA_ARGS__)
#define is_str(g, w, ...) tap_is_str((g), (w), __FILE__, __LINE__, __VA_ARGS__)

#if !defined(__cplusplus) && __STDC_VERSION__ >= 201112L
#define is(g, w, ...)                                                          \
	_Generic((g), char *: tap_is_str, const char *: tap_is_str,            \
		 void *: tap_is_ptr, const void *: tap_is_ptr,                 \
		 unsigned: tap_is_ulong, unsigned long: tap_is_ulong,          \
		 unsigned long long: tap_is_ulong, default: tap_is_long)(      \
		(g), (w), __FILE__, __LINE__, __VA_ARGS__)
#endif

static inline void skip(int n, const char *why)
{
	pthread_mutex_lock(&tap_lock);
	while (n-- > 0)
		printf("ok %d # skip %s\n", ++tap_run, why);
	fflush(stdout);
	pthread_mutex_unlock(&tap_lock);
}

static inline void skip_all(const char *why)
{
	printf("1..0 # skip %s\n", why);
	exit(0);
}

static inline void bail_out(const char *fmt, ...)
	__attribute__((noreturn, format(printf, 1, 2)));
static inline void bail_out(const char *fmt, ...)
{
	va_list ap;

	printf("Bail out! ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
	exit(255);
}

static inline int exit_status(void)
{
	if (tap_planned < 0) {
		printf("1..%d\n", tap_run);
		tap_planned = tap_run;
	}
	if (tap_run != tap_planned)
		diag("planned %d tests but ran %d", tap_planned, tap_run);
	return tap_failed > 254 ? 254 : tap_failed + (tap_run != tap_planned);
}
#define done_testing() exit_status()

#endif /* RS_TAP_H */
