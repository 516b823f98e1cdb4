// header.cc - the public header compiles as C++ and its inline fast paths
// work from C++ code linked against the shared library.
#include "refstore.h"
#include "tap.h"

struct cell {
	cell *next;
	int v;
};

static void cell_traverse(void *obj, rs_visit_fn visit, void *arg)
{
	visit(static_cast<cell *>(obj)->next, arg);
}

static const rs_type cell_type = {"cell", sizeof(cell), cell_traverse, nullptr,
				  nullptr, 0};
static cell *root;

int main()
{
	plan(5);
	ok(rs_thread_attach() == 0, "attach from C++ (initialises the runtime)");
	cell *c = static_cast<cell *>(rs_new(&cell_type));
	ok(c != nullptr, "rs_new");
	rs_incref(c);
	is_long(rs_refcount(c), 2L, "inline incref from C++");
	rs_set_steal(&root, c);
	ok(static_cast<cell *>(rs_get(&root)) == c, "inline rs_get from C++");
	rs_decref(c);
	rs_clear(&root);
	is_long(rs_shutdown(), 0L, "shutdown frees everything");
	return exit_status();
}
