/* uaf.c - reads an object after its last reference was dropped and its
 * thread passed a safepoint: a use after free inside refstore's own memory,
 * which tests/valgrind.sh expects Valgrind to report (debug builds). */
#include <stdio.h>
#include <refstore.h>

struct pair {
	long a, b;
};

static const rs_type pair_type = {"pair", sizeof(struct pair), NULL, NULL,
				  NULL, 0};

int main(void)
{
	struct pair *p;
	volatile long v;

	rs_init(NULL);
	rs_thread_attach();
	p = rs_new(&pair_type);
	p->a = 1;
	rs_decref(p);
	rs_safepoint();	/* p is destroyed here */
	v = p->b;	/* the bug */
	(void)v;
	printf("read done\n");
	return rs_shutdown() != 0;
}
