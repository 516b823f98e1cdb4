/*
 * host.c - a host program that links refstore as a user would (built twice,
 * against the shared library and against the static one with the link line
 * pkg-config gives: tests/malloc_binding.sh).  It makes and frees small and
 * large objects, calls malloc itself, then prints what provides its malloc
 * and whether jemalloc's entry points exist in the process, one fact a line,
 * for the script to judge: linking refstore must leave the program's own
 * malloc as it was.
 */
#define _GNU_SOURCE 1	/* dladdr, RTLD_DEFAULT */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <refstore.h>

struct small {
	long v;
};

struct large {
	char bytes[4000];	/* over the allocator's 1 KiB: the large path */
};

static const rs_type small_type = {.name = "small", .size = sizeof(struct small)};
static const rs_type large_type = {.name = "large", .size = sizeof(struct large)};

/* The file that defines `sym' as the program's own calls see it. */
static const char *provider(void *sym)
{
	Dl_info info;

	if (!sym || !dladdr(sym, &info) || !info.dli_fname)
		return "(none)";
	return info.dli_fname;
}

int main(void)
{
	void *m, *libc, *libc_malloc;
	char *own;
	int i;

	rs_init(NULL);
	rs_thread_attach();
	for (i = 0; i < 1000; i++) {
		struct small *s = rs_new(&small_type);
		struct large *l = rs_new(&large_type);

		if (!s || !l)
			return 1;
		s->v = i;
		l->bytes[sizeof(l->bytes) - 1] = (char)i;
		rs_decref(s);
		rs_decref(l);
		rs_safepoint();
	}
	own = malloc(100);	/* the host's own malloc */
	if (!own)
		return 1;
	strcpy(own, "host");
	free(own);
	printf("alive at shutdown: %ld\n", rs_shutdown());

	m = dlsym(RTLD_DEFAULT, "malloc");
	libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
	libc_malloc = libc ? dlsym(libc, "malloc") : NULL;
	printf("malloc from: %s\n", provider(m));
	printf("malloc is the C library's: %s\n",
	       m && m == libc_malloc ? "yes" : "no");
	printf("mallctl defined: %s (%s)\n",
	       dlsym(RTLD_DEFAULT, "mallctl") ? "yes" : "no",
	       provider(dlsym(RTLD_DEFAULT, "mallctl")));
	return 0;
}
