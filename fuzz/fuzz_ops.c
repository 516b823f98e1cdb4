/*
 * fuzz_ops.c - a libFuzzer harness that runs its input as a program of
 * refstore operations on one attached thread and checks every step against
 * a reference model of which objects must be alive.
 *
 * Build and run (Makefile, "Fuzzing"): make fuzz FUZZ_SECONDS=n, make
 * fuzz-regress.  FUZZ_OPS_TRACE=1 in the environment prints every decoded
 * operation on stderr (useful to read a crash input).
 *
 * One input, one runtime
 * -----------------------
 * Every input starts the runtime (rs_init, rs_thread_attach) and ends with
 * rs_shutdown, so that no state passes from one input to the next and a
 * crash reproduces from its input alone (the library does keep a thread
 * slot's batches across rs_shutdown, which regress/batch-entries-restart
 * below exercises).  The collector's controls (thresholds, enabled, debug flags),
 * which outlive rs_shutdown, are set at the start.
 * At the end every reference the harness holds is dropped, everything is
 * collected and checked, and rs_shutdown() must return 0 live objects.
 * (Keeping one runtime for all inputs was tried and is slower: the debug
 * build's quarantine of 65,536 destroyed objects fills up, and then every
 * rs_heap_verify walks it and libFuzzer's leak check scans it; rs_shutdown
 * empties it.)  Only the first MAX_INPUT bytes of an input are used.
 *
 * Input format
 * ------------
 *   byte 0        configuration:
 *                   bits 0-1  automatic collection thresholds (t0,t1,t2):
 *                             0 off, 1 (1,1,1), 2 (5,2,2), 3 (20,3,3)
 *                   bit 2     batch_entries 16 (else the default 2048)
 *                   bit 3     defer_limit_bytes 1024 (else 1 MiB)
 *                   bits 4-7  unused
 *   then ops      one opcode byte (taken modulo OP_COUNT) followed by its
 *                 operand bytes; a missing operand byte reads as 0.
 *
 * Operands name objects by index into the list (in id order) of the model
 * objects that qualify: "reach" = reachable in the model (so certainly
 * alive and safe to touch), "held" = the harness owns a counted reference,
 * "fields" = reachable and of a kind that has reference fields.
 *
 *   op  name      operands   what it does
 *    0  NEW       k          rs_new of kind (k&7)%5 (leaf, node, fin,
 *                            holder, big); fin and big: finalizer mode
 *                            (k>>3)&7
 *    1  LINK      a b f      rs_set(&A->f[f%4], B): A fields, B reach
 *    2  UNLINK    a f        rs_clear(&A->f[f%4])
 *    3  STEAL     a b f      rs_set_steal(&A->f[f%4], B): B held, the
 *                            harness's reference moves into the field
 *    4  DECREF    a          rs_decref of one held reference
 *    5  INCREF    a          rs_incref of a reachable object (now held)
 *    6  GETREF    a f        rs_get and rs_get_ref of a field (now held)
 *    7  SAFEPOINT            rs_safepoint
 *    8  COLLECT   g          rs_gc_collect(g%3)
 *    9  WNEW      a c        rs_weakref_new(A), with a callback if c&1
 *   10  WGET      w          rs_weakref_get (a result is held)
 *   11  WDROP     w          rs_decref of a weak reference
 *   12  SLOTSET   s a        rs_set(&slot[s%2], A): a harness root slot
 *   13  SLOTDROP  s          rs_clear(&slot[s%2])
 *   14  MAPNEW               rs_map_new (held); at most 4 per input
 *   15  MAPPUT    m k a      rs_map_put(M, key k%12, A)
 *   16  MAPGET    m k r      rs_map_get (r&1: rs_map_get_ref, now held;
 *                            r&2: also bad keys and a NULL value)
 *   17  MAPDEL    m k        rs_map_del
 *   18  MAPFREE   m          rs_map_free of a held map
 *   19  MAPITER   m d        rs_map_count, rs_map_foreach (d&1: the walk
 *                            deletes the odd keys it visits)
 *   20  PUBLISH   a          rs_publish
 *   21  OFFON                rs_offline then rs_online
 *   22  FREEZE    b          b&1 ? rs_gc_freeze : rs_gc_unfreeze
 *   23  VERIFY               every live-state check, rs_heap_verify
 *   24  DRAIN                collect until nothing is left, exact checks
 *   25  SAVEALL   b          b%3: RS_GC_DEBUG_SAVEALL on (automatic
 *                            collection off), off, rs_gc_garbage_clear
 *   26  INTRO     a b        b&1 ? rs_gc_get_referents : _referrers of A
 *   27  GCCTL     b          b%4: enable, disable, thresholds, get_count
 *                            (and bad generation / threshold errors)
 *   28  REFCNT    a          rs_refcount, rs_type_of, rs_gc_is_tracked,
 *                            rs_weakref_get of a non-weak reference
 *   29  RESTART   c          the end-of-input teardown and checks, then
 *                            rs_init again with configuration byte c
 *
 * Object kinds (harness types; all but the map carry an id and a magic):
 *   leaf    no traverse: untracked, no fields
 *   node    tracked, 4 reference fields
 *   fin     tracked, 4 fields, a finalizer (mode below)
 *   holder  4 fields, RS_TYPE_NO_CYCLES: untracked (the harness never lets
 *           a cycle pass through a holder, as the flag promises)
 *   big     tracked, 4 fields, a finalizer, over 2 KiB (the large path)
 *   map     an rs_map; its entries (12 keys of distinct lengths 0..1024)
 *           are its references
 * Finalizer modes: 0 nothing, 1 resurrect into slot 0 (rs_set), 2 into
 * slot 1, 3 resurrect as a harness reference (rs_incref), 4 clear field 0,
 * 5 put itself into the first reachable open map, 6 rs_gc_collect(2) from
 * inside (must return 0), 7 rs_safepoint from inside then slot 1.
 *
 * The model
 * ---------
 * Objects are numbered by creation (ids are not reused within an input).
 * The model holds, per object: the harness's count of counted references
 * (held), its out-edges (fields, or map entries), whether its destroy hook
 * ran, finalizer runs, and the roots: held > 0, the two slots, and the
 * collector's uncollectable list (SAVEALL).  An object is reachable iff a
 * root reaches it through out-edges; reachability is recomputed after
 * every model change.  The library may keep unreachable objects ("zombies")
 * until decrements mature and a collection runs; the harness never touches
 * a zombie except through a weak reference, which may legitimately revive
 * it.
 *
 * Checks
 * ------
 *  - destroy hook: the object is not reachable in the model, and is
 *    destroyed once (ASan and the debug quarantine catch any later use);
 *  - finalizer: runs at most once per object, only on an object that was
 *    unreachable when the collecting call began, never on a destroyed one;
 *  - rs_gc_collect: returns >= 0 and at most the number of unreachable
 *    tracked objects; the collection callback ran once for it, with its
 *    generation, and its collected + uncollectable is the result (at most
 *    the result when finalizers ran: resurrected objects are neither);
 *  - weak references: a result is the target, alive; NULL only if the
 *    target was unreachable at some time since the weak reference was made,
 *    and once NULL always NULL; a callback runs at most once, only then,
 *    and rs_weakref_get inside it is NULL;
 *  - fields (rs_get, rs_get_ref), map get/del/count/foreach, referents,
 *    referrers and the uncollectable list agree with the model; every call
 *    that must succeed does, and closed maps give EBADF;
 *  - VERIFY (and every 32 ops): rs_refcount is at least the references the
 *    model knows, types and tracking are right, rs_heap_verify() == 0;
 *  - DRAIN (and at the end): after safepoints and full collections until a
 *    round finds nothing, runs no finalizer or callback and leaves no
 *    pending decrement, every unreachable object was destroyed, the live
 *    object count equals the model's (reachable objects, map entries, held
 *    weak references), every rs_refcount is exact, a weak reference to
 *    an unreachable target is cleared, one with a callback is cleared iff
 *    its callback ran, rs_gc_get_freeze_count() == 0, rs_heap_verify() == 0;
 *  - zero live objects at the start; at the end, rs_shutdown() == 0.
 * A failure prints the step, the check and the model on stderr and aborts.
 *
 * Files
 * -----
 * fuzz/corpus/   seeds: hand-written programs (resurrection, weak callbacks,
 *                maps in cycles, SAVEALL, freeze, holders, finalizer modes,
 *                restarts) and fuzzer-generated inputs picked for coverage.
 * fuzz/regress/  every input that found a library bug (each crashed before
 *                its fix; make fuzz-regress replays them):
 *   gc-prefetch-null-entry   9 nodes, the last one dropped, a safepoint and
 *                            rs_gc_collect(2): lib/gc.c FOR_EACH_OBJ
 *                            prefetched `NULL - RS_HEAD_SIZE` for a hole in
 *                            a log, undefined behaviour UBSan reports;
 *   batch-entries-restart    batches of 16, rs_shutdown, rs_init with the
 *                            default 2048, 17 deferred decrements: the
 *                            thread slot's kept batch (sized for 16) was
 *                            overrun in lib/defer.c rs__log_decref (each
 *                            batch now keeps its capacity).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "refstore.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_INPUT 4096
#define MAXID 256		/* objects created per input */
#define MAXALIVE 64		/* not yet destroyed (maps: reachable) */
#define NF 4			/* reference fields per object */
#define NKEYS 12		/* keys of a map */
#define MAXOUT NKEYS		/* out-edges: max(NF, NKEYS) */
#define NSLOT 2			/* harness root slots */
#define MAXWR 48		/* weak references per input */
#define MAXMAPS 4		/* maps per input */
#define DRAIN_ROUNDS 300
#define VERIFY_EVERY 32
#define SMALL_BATCH 16		/* config bit 2: sealing and maturing */
#define SMALL_DEFER_LIMIT 1024	/* config bit 3: safepoints that wait */

#define MAGIC_LIVE 0x66757a7a6c697665ULL	/* "fuzzlive" */
#define MAGIC_DEAD 0x66757a7a64656164ULL	/* "fuzzdead" */

enum kind { K_LEAF, K_NODE, K_FIN, K_HOLDER, K_BIG, K_MAP };
static const char *const kind_name[] = {"leaf", "node", "fin", "holder",
					"big", "map"};

/* The payload of every harness object but the map. */
struct hobj {
	uint64_t magic;
	uint32_t id;
	uint8_t kind, mode, pad[2];
	void *f[NF];
};

struct hbig {
	struct hobj h;
	unsigned char tail[2048];
};

/* ------------------------------------------------------------------------ */
/* The model                                                                */
/* ------------------------------------------------------------------------ */

enum { WR_FREE, WR_HELD, WR_DROPPED };

struct wrec {
	void *wr;
	int target;
	uint8_t state;
	uint8_t has_cb;
	uint8_t cb_runs;
	uint8_t may_clear;	/* target was unreachable at some time since */
	uint8_t cleared;	/* rs_weakref_get returned NULL, or callback */
};

static struct model {
	int n;				/* ids in use */
	void *ptr[MAXID];
	uint8_t kind[MAXID], mode[MAXID];
	uint8_t destroyed[MAXID];	/* harness kinds only (the hook) */
	uint8_t fins[MAXID];
	uint8_t frozen[MAXID];
	uint8_t inlist[MAXID];		/* in the uncollectable list */
	uint8_t closed[MAXID];		/* maps */
	int held[MAXID];
	int16_t out[MAXID][MAXOUT];
	uint8_t reach[MAXID];		/* now */
	uint8_t snap[MAXID];		/* when the current call began */
	int slot[NSLOT];
	struct wrec wr[MAXWR];
	int nwr;
	int nmaps;
	int saveall;
	int gc_on;			/* automatic collection requested */
	long t0, t1, t2;
	/* counters the hooks bump */
	long fin_runs, cb_runs, destroys;
	long gc_cb_calls;
	struct rs_gc_info last_info;
	/* where we are */
	long step;
	const char *op;
	int in_finalizer;
} M;

static void *slots[NSLOT];	/* the harness's root slots (counted) */
static int trace;

static void dump_model(void)
{
	int i, j;

	fprintf(stderr, "model: %d ids, slots [%d %d], saveall %d\n", M.n,
		M.slot[0], M.slot[1], M.saveall);
	for (i = 0; i < M.n; i++) {
		if (M.kind[i] != K_MAP && M.destroyed[i] && !M.reach[i])
			continue;
		fprintf(stderr,
			"  #%d %s%s mode %d held %d %s%s%s%s fins %d ->",
			i, kind_name[M.kind[i]],
			M.closed[i] ? "(closed)" : "", M.mode[i], M.held[i],
			M.reach[i] ? "reachable" : "unreachable",
			M.destroyed[i] ? " DESTROYED" : "",
			M.inlist[i] ? " in-garbage-list" : "",
			M.frozen[i] ? " frozen" : "", M.fins[i]);
		for (j = 0; j < MAXOUT; j++)
			if (M.out[i][j] >= 0)
				fprintf(stderr, " [%d]=#%d", j, M.out[i][j]);
		fputc('\n', stderr);
	}
	for (i = 0; i < M.nwr; i++)
		if (M.wr[i].state != WR_FREE)
			fprintf(stderr, "  weakref w%d -> #%d %s cb %d runs %d "
				"may_clear %d cleared %d\n", i, M.wr[i].target,
				M.wr[i].state == WR_HELD ? "held" : "dropped",
				M.wr[i].has_cb, M.wr[i].cb_runs,
				M.wr[i].may_clear, M.wr[i].cleared);
}

__attribute__((noreturn, format(printf, 1, 2)))
static void fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "\nfuzz_ops: FAILED at op %ld (%s)%s: ", M.step,
		M.op ? M.op : "-", M.in_finalizer ? " in a finalizer" : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	dump_model();
	fflush(stderr);
	abort();
}

#define CHECK(cond, ...)                   \
	do {                               \
		if (!(cond))               \
			fail(__VA_ARGS__); \
	} while (0)

__attribute__((format(printf, 1, 2)))
static void tracef(const char *fmt, ...)
{
	va_list ap;

	if (!trace)
		return;
	va_start(ap, fmt);
	fprintf(stderr, "[%ld] ", M.step);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static int has_fields(int id)
{
	return M.kind[id] == K_NODE || M.kind[id] == K_FIN ||
	       M.kind[id] == K_HOLDER || M.kind[id] == K_BIG;
}

static int is_tracked(int id)
{
	return M.kind[id] == K_NODE || M.kind[id] == K_FIN ||
	       M.kind[id] == K_BIG || M.kind[id] == K_MAP;
}

static int nout(int id)
{
	return M.kind[id] == K_MAP ? NKEYS : has_fields(id) ? NF : 0;
}

/* Reachability from the roots; weak references whose target is now
 * unreachable may be cleared from now on. */
static void recompute(void)
{
	int stack[MAXID], sp = 0, i, j, c;

	memset(M.reach, 0, sizeof(M.reach));
	for (i = 0; i < M.n; i++)
		if (M.held[i] > 0 || M.inlist[i]) {
			M.reach[i] = 1;
			stack[sp++] = i;
		}
	for (i = 0; i < NSLOT; i++)
		if (M.slot[i] >= 0 && !M.reach[M.slot[i]]) {
			M.reach[M.slot[i]] = 1;
			stack[sp++] = M.slot[i];
		}
	while (sp) {
		i = stack[--sp];
		for (j = 0; j < nout(i); j++) {
			c = M.out[i][j];
			if (c >= 0 && !M.reach[c]) {
				M.reach[c] = 1;
				stack[sp++] = c;
			}
		}
	}
	for (i = 0; i < M.nwr; i++)
		if (M.wr[i].state != WR_FREE && !M.reach[M.wr[i].target])
			M.wr[i].may_clear = 1;
}

/* The state a collecting call starts from (for the finalizer check). */
static void snap(void)
{
	memcpy(M.snap, M.reach, sizeof(M.snap));
}

/* Which objects `from` reaches through out-edges (any object). */
static void reach_from(int from, uint8_t *seen)
{
	int stack[MAXID], sp = 0, i, j, c;

	memset(seen, 0, MAXID);
	seen[from] = 1;
	stack[sp++] = from;
	while (sp) {
		i = stack[--sp];
		for (j = 0; j < nout(i); j++) {
			c = M.out[i][j];
			if (c >= 0 && !seen[c]) {
				seen[c] = 1;
				stack[sp++] = c;
			}
		}
	}
}

/* Would an edge a -> b close a cycle through a holder?  RS_TYPE_NO_CYCLES
 * promises that never happens, so the harness refuses such edges.  The new
 * cycles are the paths b ~> a; a holder on one of them is a holder h with
 * b ~> h and h ~> a. */
static int holder_cycle(int a, int b)
{
	uint8_t from_b[MAXID], from_h[MAXID];
	int h;

	reach_from(b, from_b);
	if (!from_b[a])
		return 0;
	for (h = 0; h < M.n; h++) {
		if (M.kind[h] != K_HOLDER || !from_b[h])
			continue;
		reach_from(h, from_h);
		if (from_h[a])
			return 1;
	}
	return 0;
}

/* References the model knows into `id` from reachable places. */
static long known_refs(int id)
{
	long n = M.held[id] + M.inlist[id];
	int i, j;

	for (i = 0; i < NSLOT; i++)
		n += M.slot[i] == id;
	for (i = 0; i < M.n; i++)
		if (M.reach[i])
			for (j = 0; j < nout(i); j++)
				n += M.out[i][j] == id;
	return n;
}

/* The newest model object at address p that may be alive, or -1. */
static int id_of_ptr(const void *p)
{
	int i;

	for (i = M.n - 1; i >= 0; i--)
		if (M.ptr[i] == p && !M.destroyed[i])
			return i;
	return -1;
}

static void *ptr_of(int id)
{
	return id >= 0 ? M.ptr[id] : NULL;
}

/* ------------------------------------------------------------------------ */
/* Map keys: 12 keys of distinct lengths (node size classes 8 .. 1024)      */
/* ------------------------------------------------------------------------ */

static const size_t key_len[NKEYS] = {0, 1, 3, 8, 9, 23, 24, 25, 56, 57,
				      300, RS_MAP_KEY_MAX};
static unsigned char key_buf[NKEYS][RS_MAP_KEY_MAX];

static void keys_init(void)
{
	size_t k, j;

	for (k = 0; k < NKEYS; k++)
		for (j = 0; j < key_len[k]; j++)
			key_buf[k][j] = (unsigned char)(k * 31 + j * 7 + 1);
}

static int key_index(const void *key, size_t klen)
{
	int k;

	for (k = 0; k < NKEYS; k++)
		if (key_len[k] == klen &&
		    (!klen || !memcmp(key, key_buf[k], klen)))
			return k;
	return -1;
}

/* ------------------------------------------------------------------------ */
/* Types and hooks                                                          */
/* ------------------------------------------------------------------------ */

static void h_traverse(void *obj, rs_visit_fn visit, void *arg)
{
	struct hobj *h = obj;
	int i;

	for (i = 0; i < NF; i++)
		if (h->f[i])
			visit(h->f[i], arg);
}

static int hobj_id(void *obj, const char *hook)
{
	struct hobj *h = obj;

	CHECK(h->magic == MAGIC_LIVE, "%s hook on %p: bad magic %#llx", hook,
	      obj, (unsigned long long)h->magic);
	CHECK(h->id < (uint32_t)M.n && M.ptr[h->id] == obj,
	      "%s hook on %p: unknown object (id %u)", hook, obj, h->id);
	return (int)h->id;
}

static void h_destroy(void *obj)
{
	int id = hobj_id(obj, "destroy"), j;

	CHECK(!M.destroyed[id], "#%d destroyed twice", id);
	CHECK(!M.reach[id], "#%d (%s) destroyed while reachable", id,
	      kind_name[M.kind[id]]);
	M.destroyed[id] = 1;
	M.destroys++;
	/* its children were given back */
	for (j = 0; j < MAXOUT; j++)
		M.out[id][j] = -1;
	((struct hobj *)obj)->magic = MAGIC_DEAD;
	tracef("  destroyed #%d", id);
}

static void h_finalize(void *obj);

static const rs_type types[] = {
	[K_LEAF] = {"fz_leaf", sizeof(struct hobj), NULL, NULL, h_destroy, 0},
	[K_NODE] = {"fz_node", sizeof(struct hobj), h_traverse, NULL,
		    h_destroy, 0},
	[K_FIN] = {"fz_fin", sizeof(struct hobj), h_traverse, h_finalize,
		   h_destroy, 0},
	[K_HOLDER] = {"fz_holder", sizeof(struct hobj), h_traverse, NULL,
		      h_destroy, RS_TYPE_NO_CYCLES},
	[K_BIG] = {"fz_big", sizeof(struct hbig), h_traverse, h_finalize,
		   h_destroy, 0},
};

static int first_open_map(void)
{
	int i;

	for (i = 0; i < M.n; i++)
		if (M.kind[i] == K_MAP && M.reach[i] && !M.closed[i])
			return i;
	return -1;
}

static void set_slot(int s, int id)
{
	CHECK(rs_set(&slots[s], M.ptr[id]) == 0, "rs_set(slot %d, #%d) failed",
	      s, id);
	M.slot[s] = id;
}

static void h_finalize(void *obj)
{
	int id = hobj_id(obj, "finalize"), m, k;
	struct hobj *h = obj;
	long r;

	CHECK(!M.destroyed[id], "finalizer of destroyed #%d", id);
	CHECK(!M.snap[id], "finalizer of #%d, reachable when the call began",
	      id);
	CHECK(++M.fins[id] == 1, "finalizer of #%d ran %d times", id,
	      M.fins[id]);
	M.fin_runs++;
	M.in_finalizer++;
	tracef("  finalize #%d mode %d", id, M.mode[id]);
	switch (M.mode[id]) {
	case 0:
		break;
	case 1:
	case 2:
		set_slot(M.mode[id] - 1, id);
		break;
	case 3:
		CHECK(rs_incref(obj) == obj, "rs_incref in finalizer");
		M.held[id]++;
		break;
	case 4:
		CHECK(rs_clear(&h->f[0]) == 0, "rs_clear in finalizer");
		M.out[id][0] = -1;
		break;
	case 5:
		recompute();
		m = first_open_map();
		k = id % NKEYS;
		if (m >= 0 && !holder_cycle(m, id)) {
			r = rs_map_put(M.ptr[m], key_buf[k], key_len[k], obj);
			CHECK(r == 0, "rs_map_put(#%d, key %d, #%d) in "
			      "finalizer", m, k, id);
			M.out[m][k] = (int16_t)id;
		}
		break;
	case 6:
		r = rs_gc_collect(2);
		CHECK(r == 0, "rs_gc_collect from a finalizer returned %ld", r);
		break;
	case 7:
		CHECK(rs_safepoint() == 0, "rs_safepoint in finalizer");
		set_slot(1, id);
		break;
	}
	M.in_finalizer--;
	recompute();
}

static void wr_callback(void *wr, void *arg)
{
	uintptr_t idx = (uintptr_t)arg - 1;
	struct wrec *w;
	void *t;

	CHECK(idx < (uintptr_t)M.nwr, "weak callback with a bad argument");
	w = &M.wr[idx];
	CHECK(w->state != WR_FREE && w->wr == wr,
	      "weak callback w%d: wrong weak reference %p", (int)idx, wr);
	CHECK(w->has_cb, "weak callback w%d registered without one", (int)idx);
	CHECK(++w->cb_runs == 1, "weak callback w%d ran %d times", (int)idx,
	      w->cb_runs);
	CHECK(w->may_clear, "weak callback w%d while its target #%d was "
	      "always reachable", (int)idx, w->target);
	t = rs_weakref_get(wr);
	CHECK(t == NULL, "rs_weakref_get in the callback of w%d gave %p",
	      (int)idx, t);
	w->cleared = 1;
	M.cb_runs++;
	tracef("  weak callback w%d (target #%d)", (int)idx, w->target);
}

static void gc_callback(const struct rs_gc_info *info, void *arg)
{
	(void)arg;
	CHECK(info->generation >= 0 && info->generation < RS_GC_GENERATIONS,
	      "collection callback: generation %d", info->generation);
	CHECK(info->collected >= 0 && info->uncollectable >= 0,
	      "collection callback: collected %ld uncollectable %ld",
	      info->collected, info->uncollectable);
	M.gc_cb_calls++;
	M.last_info = *info;
}

/* ------------------------------------------------------------------------ */
/* Input and operand selection                                              */
/* ------------------------------------------------------------------------ */

static const uint8_t *in_p;
static size_t in_n, in_i;

static uint8_t next(void)
{
	return in_i < in_n ? in_p[in_i++] : 0;
}

enum sel { S_REACH, S_HELD, S_FIELDS, S_MAP, S_HELD_MAP };

static int qualifies(int id, enum sel s)
{
	switch (s) {
	case S_REACH:
		return M.reach[id];
	case S_HELD:
		return M.held[id] > 0;
	case S_FIELDS:
		return M.reach[id] && has_fields(id);
	case S_MAP:
		return M.reach[id] && M.kind[id] == K_MAP;
	case S_HELD_MAP:
		return M.held[id] > 0 && M.kind[id] == K_MAP;
	}
	return 0;
}

/* The (b mod count)-th qualifying id, or -1 if none. */
static int pick(uint8_t b, enum sel s)
{
	int i, n = 0;

	for (i = 0; i < M.n; i++)
		n += qualifies(i, s);
	if (!n)
		return -1;
	n = b % n;
	for (i = 0; i < M.n; i++)
		if (qualifies(i, s) && n-- == 0)
			return i;
	return -1;
}

static int alive_count(void)
{
	int i, n = 0;

	for (i = 0; i < M.n; i++)
		n += M.kind[i] == K_MAP ? M.reach[i] : !M.destroyed[i];
	return n;
}

/* ------------------------------------------------------------------------ */
/* Collections and the uncollectable list                                   */
/* ------------------------------------------------------------------------ */

struct glist {
	int n;
	uint8_t seen[MAXID];
};

static void garbage_visit(void *obj, void *arg)
{
	struct glist *g = arg;
	int id = id_of_ptr(obj);

	g->n++;
	CHECK(id >= 0, "uncollectable list holds %p, no live model object",
	      obj);
	CHECK(!g->seen[id], "#%d twice in the uncollectable list", id);
	g->seen[id] = 1;
}

/* SAVEALL: the list grew by exactly what the collection found, all of it
 * unreachable when the call began; it now holds references (roots). */
static void sync_garbage_list(long found)
{
	struct glist g;
	long n, before = 0, added = 0;
	int i;

	memset(&g, 0, sizeof(g));
	for (i = 0; i < M.n; i++)
		before += M.inlist[i];
	n = rs_gc_garbage(garbage_visit, &g);
	CHECK(n == g.n, "rs_gc_garbage returned %ld, visited %d", n, g.n);
	for (i = 0; i < M.n; i++) {
		if (M.inlist[i]) {
			CHECK(g.seen[i], "#%d left the uncollectable list", i);
		} else if (g.seen[i]) {
			CHECK(!M.snap[i], "#%d put in the uncollectable list "
			      "while reachable", i);
			CHECK(is_tracked(i), "untracked #%d in the list", i);
			added++;
		}
	}
	CHECK(added == found && n == before + found,
	      "uncollectable list: %ld before, %ld now, %ld added, collection "
	      "found %ld", before, n, added, found);
	for (i = 0; i < M.n; i++)
		M.inlist[i] = g.seen[i];
	recompute();
}

/* An upper bound for what a collection can find: unreachable tracked
 * objects that may still be alive. */
static long garbage_bound(void)
{
	long n = 0;
	int i;

	for (i = 0; i < M.n; i++)
		n += !M.snap[i] && is_tracked(i) &&
		     (M.kind[i] == K_MAP || !M.destroyed[i]);
	return n;
}

static long do_collect(int gen)
{
	long calls = M.gc_cb_calls, fins = M.fin_runs, bound, r, sum;

	recompute();
	snap();
	bound = garbage_bound();
	r = rs_gc_collect(gen);
	CHECK(r >= 0, "rs_gc_collect(%d) failed: %ld (errno %d)", gen, r,
	      errno);
	CHECK(r <= bound, "rs_gc_collect(%d) found %ld, at most %ld "
	      "unreachable tracked objects exist", gen, r, bound);
	CHECK(M.gc_cb_calls == calls + 1, "rs_gc_collect(%d): %ld collection "
	      "callbacks", gen, M.gc_cb_calls - calls);
	CHECK(M.last_info.generation == gen, "rs_gc_collect(%d): callback says "
	      "generation %d", gen, M.last_info.generation);
	sum = M.last_info.collected + M.last_info.uncollectable;
	CHECK(sum <= r && (M.fin_runs != fins || sum == r),
	      "rs_gc_collect(%d) = %ld but the callback saw collected %ld "
	      "uncollectable %ld", gen, r, M.last_info.collected,
	      M.last_info.uncollectable);
	if (M.saveall)
		CHECK(M.last_info.collected == 0,
		      "SAVEALL collection freed %ld", M.last_info.collected);
	recompute();
	if (M.saveall)
		sync_garbage_list(r);
	tracef("  collect(%d) = %ld", gen, r);
	return r;
}

static void do_safepoint(void)
{
	recompute();
	snap();
	CHECK(rs_safepoint() == 0, "rs_safepoint failed");
	recompute();
}

/* ------------------------------------------------------------------------ */
/* Whole-state checks                                                       */
/* ------------------------------------------------------------------------ */

static long live_objects(void)
{
	struct rs_stats st;

	CHECK(rs_stats(&st) == 0, "rs_stats failed");
	return (long)st.live_objects;
}

static int map_entries(int id)
{
	int k, n = 0;

	for (k = 0; k < NKEYS; k++)
		n += M.out[id][k] >= 0;
	return n;
}

/* A reachable object: its count covers (exact: equals) the references
 * the model knows, and the library agrees on its type, tracking, fields
 * or entries. */
static void check_object(int id, int exact)
{
	struct hobj *h = M.ptr[id];
	long rc = rs_refcount(M.ptr[id]), want = known_refs(id);
	int j;

	CHECK(exact ? rc == want : rc >= want,
	      "rs_refcount(#%d) = %ld, model counts %ld references", id, rc,
	      want);
	CHECK(rs_gc_is_tracked(M.ptr[id]) == is_tracked(id),
	      "rs_gc_is_tracked(#%d) wrong", id);
	if (M.kind[id] == K_MAP) {
		if (!M.closed[id])
			CHECK(rs_map_count(M.ptr[id]) == map_entries(id),
			      "rs_map_count(#%d) = %ld, model %d", id,
			      rs_map_count(M.ptr[id]), map_entries(id));
		return;
	}
	CHECK(!M.destroyed[id], "reachable #%d was destroyed", id);
	CHECK(h->magic == MAGIC_LIVE && h->id == (uint32_t)id,
	      "#%d: payload overwritten", id);
	CHECK(rs_type_of(h) == &types[M.kind[id]], "rs_type_of(#%d) wrong", id);
	for (j = 0; j < nout(id); j++)
		CHECK(rs_get(&h->f[j]) == ptr_of(M.out[id][j]),
		      "#%d field %d holds %p, model #%d", id, j,
		      rs_get(&h->f[j]), M.out[id][j]);
}

static void verify_all(void)
{
	long v;
	int i;

	recompute();
	for (i = 0; i < M.n; i++)
		if (M.reach[i])
			check_object(i, 0);
	snap();
	v = rs_heap_verify();
	CHECK(v == 0, "rs_heap_verify() = %ld", v);
	recompute();
}

/* Live objects the model expects once everything unreachable is gone:
 * reachable objects, the entries (nodes) of reachable maps, weak
 * references the harness holds. */
static long expected_live(void)
{
	long n = 0;
	int i;

	for (i = 0; i < M.n; i++) {
		if (!M.reach[i])
			continue;
		n++;
		if (M.kind[i] == K_MAP)
			n += map_entries(i);
	}
	for (i = 0; i < M.nwr; i++)
		n += M.wr[i].state == WR_HELD;
	return n;
}

static void do_unfreeze(void)
{
	recompute();
	snap();
	CHECK(rs_gc_unfreeze() == 0, "rs_gc_unfreeze failed");
	memset(M.frozen, 0, sizeof(M.frozen));
	recompute();
}

/* Collect until nothing is left to do, then every exact check. */
static void drain(void)
{
	long r, fins, cbs, dest, live = -1, want, fc;
	uint64_t freed;
	struct rs_stats st;
	int round, i, j;
	void *t;

	do_unfreeze();
	CHECK(rs_stats(&st) == 0, "rs_stats failed");
	/* a round that freed anything (maps have no hook: objects_freed
	 * tells) may have made new cycles garbage: go on */
	for (round = 0; round < DRAIN_ROUNDS; round++) {
		fins = M.fin_runs;
		cbs = M.cb_runs;
		dest = M.destroys;
		freed = st.objects_freed;
		do_safepoint();
		r = do_collect(2);
		CHECK(rs_stats(&st) == 0, "rs_stats failed");
		if (r == 0 && fins == M.fin_runs && cbs == M.cb_runs &&
		    dest == M.destroys && freed == st.objects_freed &&
		    st.pending_decrements == 0)
			break;
	}
	CHECK(round < DRAIN_ROUNDS, "drain: still finding work after %d rounds",
	      DRAIN_ROUNDS);
	recompute();
	for (i = 0; i < M.n; i++)
		if (M.kind[i] != K_MAP && !M.reach[i])
			CHECK(M.destroyed[i], "drain: unreachable #%d (%s) was "
			      "never destroyed", i, kind_name[M.kind[i]]);
	/* a dead map's nodes are freed by the reclaimer thread: wait */
	want = expected_live();
	for (i = 0; i < 4000; i++) {
		live = live_objects();
		if (live == want)
			break;
		do_safepoint();
		want = expected_live();
		usleep(500);
	}
	CHECK(live == want, "drain: %ld live objects, the model expects %ld",
	      live, want);
	for (i = 0; i < M.n; i++)
		if (M.reach[i])
			check_object(i, 1);
	for (i = 0; i < M.nwr; i++) {
		if (M.wr[i].state != WR_HELD)
			continue;
		j = M.wr[i].target;
		t = rs_weakref_get(M.wr[i].wr);
		if (!M.reach[j])
			CHECK(t == NULL, "drain: w%d gives dead #%d", i, j);
		if (t) {
			CHECK(t == M.ptr[j] && !M.wr[i].cleared,
			      "drain: w%d gives %p, target #%d", i, t, j);
			rs_decref(t);
		} else {
			CHECK(M.wr[i].may_clear, "drain: w%d cleared, target "
			      "#%d always reachable", i, j);
			M.wr[i].cleared = 1;
		}
		if (M.wr[i].has_cb)
			CHECK(M.wr[i].cb_runs == (t == NULL),
			      "drain: w%d cleared %d, callback ran %d times", i,
			      t == NULL, M.wr[i].cb_runs);
	}
	fc = rs_gc_get_freeze_count();
	CHECK(fc == 0, "drain: rs_gc_get_freeze_count() = %ld after unfreeze",
	      fc);
	verify_all();
}

/* ------------------------------------------------------------------------ */
/* Operations                                                               */
/* ------------------------------------------------------------------------ */

enum op {
	OP_NEW, OP_LINK, OP_UNLINK, OP_STEAL, OP_DECREF, OP_INCREF, OP_GETREF,
	OP_SAFEPOINT, OP_COLLECT, OP_WNEW, OP_WGET, OP_WDROP, OP_SLOTSET,
	OP_SLOTDROP, OP_MAPNEW, OP_MAPPUT, OP_MAPGET, OP_MAPDEL, OP_MAPFREE,
	OP_MAPITER, OP_PUBLISH, OP_OFFON, OP_FREEZE, OP_VERIFY, OP_DRAIN,
	OP_SAVEALL, OP_INTRO, OP_GCCTL, OP_REFCNT, OP_RESTART, OP_COUNT
};

static const char *const op_name[OP_COUNT] = {
	"NEW", "LINK", "UNLINK", "STEAL", "DECREF", "INCREF", "GETREF",
	"SAFEPOINT", "COLLECT", "WNEW", "WGET", "WDROP", "SLOTSET", "SLOTDROP",
	"MAPNEW", "MAPPUT", "MAPGET", "MAPDEL", "MAPFREE", "MAPITER",
	"PUBLISH", "OFFON", "FREEZE", "VERIFY", "DRAIN", "SAVEALL", "INTRO",
	"GCCTL", "REFCNT", "RESTART",
};

static void op_new(uint8_t k)
{
	int kind = (k & 7) % 5, id = M.n, j;
	struct hobj *h;

	if (M.n >= MAXID || alive_count() >= MAXALIVE)
		return;
	h = rs_new(&types[kind]);
	CHECK(h != NULL, "rs_new(%s) failed (errno %d)", kind_name[kind],
	      errno);
	h->magic = MAGIC_LIVE;
	h->id = (uint32_t)id;
	h->kind = (uint8_t)kind;
	h->mode = kind == K_FIN || kind == K_BIG ? (uint8_t)((k >> 3) & 7)
						 : 0;
	M.n++;
	M.ptr[id] = h;
	M.kind[id] = (uint8_t)kind;
	M.mode[id] = h->mode;
	M.held[id] = 1;
	for (j = 0; j < MAXOUT; j++)
		M.out[id][j] = -1;
	tracef("NEW #%d %s mode %d", id, kind_name[kind], h->mode);
}

static void op_link(uint8_t a, uint8_t b, uint8_t f, int steal)
{
	int x = pick(a, S_FIELDS), y = pick(b, steal ? S_HELD : S_REACH);
	int fi = f % NF, rc;
	struct hobj *h;

	if (x < 0 || y < 0 || holder_cycle(x, y))
		return;
	h = M.ptr[x];
	tracef("%s #%d.f%d = #%d", steal ? "STEAL" : "LINK", x, fi, y);
	rc = steal ? rs_set_steal(&h->f[fi], M.ptr[y])
		   : rs_set(&h->f[fi], M.ptr[y]);
	CHECK(rc == 0, "rs_set%s(#%d.f%d, #%d) failed", steal ? "_steal" : "",
	      x, fi, y);
	if (steal)
		M.held[y]--;
	M.out[x][fi] = (int16_t)y;
}

static void op_unlink(uint8_t a, uint8_t f)
{
	int x = pick(a, S_FIELDS), fi = f % NF;

	if (x < 0)
		return;
	tracef("UNLINK #%d.f%d", x, fi);
	CHECK(rs_clear(&((struct hobj *)M.ptr[x])->f[fi]) == 0,
	      "rs_clear(#%d.f%d) failed", x, fi);
	M.out[x][fi] = -1;
}

static void op_decref(uint8_t a)
{
	int x = pick(a, S_HELD);

	if (x < 0)
		return;
	tracef("DECREF #%d (held %d)", x, M.held[x]);
	M.held[x]--;
	recompute();
	CHECK(rs_decref(M.ptr[x]) == 0, "rs_decref(#%d) failed", x);
}

static void op_incref(uint8_t a)
{
	int x = pick(a, S_REACH);

	if (x < 0)
		return;
	tracef("INCREF #%d", x);
	CHECK(rs_incref(M.ptr[x]) == M.ptr[x], "rs_incref(#%d)", x);
	M.held[x]++;
}

static void op_getref(uint8_t a, uint8_t f)
{
	int x = pick(a, S_FIELDS), fi = f % NF, y;
	struct hobj *h;
	void *p;

	if (x < 0)
		return;
	h = M.ptr[x];
	y = M.out[x][fi];
	tracef("GETREF #%d.f%d (model #%d)", x, fi, y);
	p = rs_get(&h->f[fi]);
	CHECK(p == ptr_of(y), "rs_get(#%d.f%d) = %p, model #%d", x, fi, p, y);
	p = rs_get_ref(&h->f[fi]);
	CHECK(p == ptr_of(y), "rs_get_ref(#%d.f%d) = %p, model #%d", x, fi, p,
	      y);
	if (y >= 0)
		M.held[y]++;
}

static void op_wnew(uint8_t a, uint8_t c)
{
	int x = pick(a, S_REACH), i = M.nwr;
	struct wrec *w;

	if (x < 0 || M.nwr >= MAXWR)
		return;
	w = &M.wr[i];
	memset(w, 0, sizeof(*w));
	w->target = x;
	w->has_cb = c & 1;
	w->state = WR_HELD;
	M.nwr++;
	tracef("WNEW w%d -> #%d cb %d", i, x, w->has_cb);
	w->wr = rs_weakref_new(M.ptr[x], w->has_cb ? wr_callback : NULL,
			       (void *)(uintptr_t)(i + 1));
	CHECK(w->wr != NULL, "rs_weakref_new(#%d) failed (errno %d)", x, errno);
}

static int pick_wr(uint8_t b)
{
	int i, n = 0;

	for (i = 0; i < M.nwr; i++)
		n += M.wr[i].state == WR_HELD;
	if (!n)
		return -1;
	n = b % n;
	for (i = 0; i < M.nwr; i++)
		if (M.wr[i].state == WR_HELD && n-- == 0)
			return i;
	return -1;
}

static void op_wget(uint8_t b)
{
	int i = pick_wr(b), x;
	struct wrec *w;
	void *p;

	if (i < 0)
		return;
	w = &M.wr[i];
	x = w->target;
	p = rs_weakref_get(w->wr);
	tracef("WGET w%d -> #%d: %s", i, x, p ? "object" : "NULL");
	if (p) {
		CHECK(p == M.ptr[x], "rs_weakref_get(w%d) = %p, target #%d "
		      "at %p", i, p, x, M.ptr[x]);
		CHECK(!w->cleared, "w%d gave its target after it gave NULL", i);
		CHECK(M.kind[x] == K_MAP || !M.destroyed[x],
		      "w%d gave destroyed #%d", i, x);
		M.held[x]++;	/* may revive a zombie */
	} else {
		CHECK(w->may_clear, "rs_weakref_get(w%d) = NULL, target #%d "
		      "always reachable", i, x);
		w->cleared = 1;
	}
}

static void op_wdrop(uint8_t b)
{
	int i = pick_wr(b);

	if (i < 0)
		return;
	tracef("WDROP w%d", i);
	M.wr[i].state = WR_DROPPED;
	CHECK(rs_decref(M.wr[i].wr) == 0, "rs_decref(w%d) failed", i);
}

static void op_slotset(uint8_t s, uint8_t a)
{
	int x = pick(a, S_REACH);

	if (x < 0)
		return;
	tracef("SLOTSET slot%d = #%d", s % NSLOT, x);
	set_slot(s % NSLOT, x);
}

static void op_slotdrop(uint8_t s)
{
	tracef("SLOTDROP slot%d", s % NSLOT);
	CHECK(rs_clear(&slots[s % NSLOT]) == 0, "rs_clear(slot) failed");
	M.slot[s % NSLOT] = -1;
}

static void op_mapnew(void)
{
	int id = M.n, j;
	rs_map *m;

	if (M.n >= MAXID || M.nmaps >= MAXMAPS || alive_count() >= MAXALIVE)
		return;
	m = rs_map_new();
	CHECK(m != NULL, "rs_map_new failed (errno %d)", errno);
	M.n++;
	M.nmaps++;
	M.ptr[id] = m;
	M.kind[id] = K_MAP;
	M.held[id] = 1;
	for (j = 0; j < MAXOUT; j++)
		M.out[id][j] = -1;
	tracef("MAPNEW #%d", id);
}

static void op_mapput(uint8_t mb, uint8_t kb, uint8_t a)
{
	int m = pick(mb, S_MAP), k = kb % NKEYS, x = pick(a, S_REACH), rc;

	if (m < 0 || x < 0)
		return;
	tracef("MAPPUT #%d[%d] = #%d%s", m, k, x,
	       M.closed[m] ? " (closed)" : "");
	if (M.closed[m]) {
		errno = 0;
		rc = rs_map_put(M.ptr[m], key_buf[k], key_len[k], M.ptr[x]);
		CHECK(rc == -1 && errno == EBADF,
		      "rs_map_put on closed #%d: %d errno %d", m, rc, errno);
		return;
	}
	if (holder_cycle(m, x))
		return;
	rc = rs_map_put(M.ptr[m], key_buf[k], key_len[k], M.ptr[x]);
	CHECK(rc == 0, "rs_map_put(#%d, %d, #%d) failed (errno %d)", m, k, x,
	      errno);
	M.out[m][k] = (int16_t)x;
}

static void op_mapget(uint8_t mb, uint8_t kb, uint8_t r)
{
	int m = pick(mb, S_MAP), k = kb % NKEYS, y;
	void *p;

	if (m < 0)
		return;
	y = M.closed[m] ? -1 : M.out[m][k];
	tracef("MAPGET%s #%d[%d] (model #%d)", r & 1 ? "_REF" : "", m, k, y);
	errno = 0;
	p = r & 1 ? rs_map_get_ref(M.ptr[m], key_buf[k], key_len[k])
		  : rs_map_get(M.ptr[m], key_buf[k], key_len[k]);
	CHECK(p == ptr_of(y), "rs_map_get(#%d, %d) = %p, model #%d", m, k, p,
	      y);
	if (!p)
		CHECK(errno == (M.closed[m] ? EBADF : ENOENT),
		      "rs_map_get(#%d, %d): errno %d", m, k, errno);
	if (p && (r & 1))
		M.held[y]++;
	if (!(r & 2))
		return;
	/* bad arguments: the errors docs/api.md lists, nothing changed */
	errno = 0;
	CHECK(!rs_map_get(M.ptr[m], NULL, 1) &&
	      errno == (M.closed[m] ? EBADF : EINVAL),
	      "rs_map_get(#%d, NULL, 1): errno %d", m, errno);
	errno = 0;
	CHECK(!rs_map_get(M.ptr[m], key_buf[NKEYS - 1], RS_MAP_KEY_MAX + 1) &&
	      errno == (M.closed[m] ? EBADF : ENAMETOOLONG),
	      "rs_map_get(#%d, klen %d): errno %d", m, RS_MAP_KEY_MAX + 1,
	      errno);
	errno = 0;
	CHECK(rs_map_put(M.ptr[m], key_buf[k], key_len[k], NULL) == -1 &&
	      errno == (M.closed[m] ? EBADF : EINVAL),
	      "rs_map_put(#%d, %d, NULL): errno %d", m, k, errno);
}

static void op_mapdel(uint8_t mb, uint8_t kb)
{
	int m = pick(mb, S_MAP), k = kb % NKEYS, rc, want;

	if (m < 0)
		return;
	tracef("MAPDEL #%d[%d]", m, k);
	errno = 0;
	rc = rs_map_del(M.ptr[m], key_buf[k], key_len[k]);
	want = M.closed[m] ? EBADF : M.out[m][k] < 0 ? ENOENT : 0;
	CHECK(want ? rc == -1 && errno == want : rc == 0,
	      "rs_map_del(#%d, %d) = %d errno %d, expected errno %d", m, k, rc,
	      errno, want);
	if (!want)
		M.out[m][k] = -1;
}

static void op_mapfree(uint8_t mb)
{
	int m = pick(mb, S_HELD_MAP), k, rc;

	if (m < 0)
		return;
	tracef("MAPFREE #%d%s", m, M.closed[m] ? " (closed)" : "");
	errno = 0;
	rc = rs_map_free(M.ptr[m]);
	if (M.closed[m]) {
		CHECK(rc == -1 && errno == EBADF,
		      "rs_map_free of closed #%d: %d errno %d", m, rc, errno);
		return;
	}
	CHECK(rc == 0, "rs_map_free(#%d) failed (errno %d)", m, errno);
	M.closed[m] = 1;
	M.held[m]--;
	for (k = 0; k < NKEYS; k++)
		M.out[m][k] = -1;
}

struct iter {
	int m, del, calls;
	uint8_t seen[NKEYS];
};

static int iter_fn(const void *key, size_t klen, void *value, void *arg)
{
	struct iter *it = arg;
	int k = key_index(key, klen), y;

	it->calls++;
	CHECK(k >= 0, "rs_map_foreach(#%d): unknown key of %zu bytes", it->m,
	      klen);
	CHECK(!it->seen[k], "rs_map_foreach(#%d): key %d twice", it->m, k);
	it->seen[k] = 1;
	y = M.out[it->m][k];
	CHECK(y >= 0 && value == M.ptr[y], "rs_map_foreach(#%d): key %d holds "
	      "%p, model #%d", it->m, k, value, y);
	if (it->del && (k & 1)) {
		CHECK(rs_map_del(M.ptr[it->m], key, klen) == 0,
		      "rs_map_del(#%d, %d) during foreach failed", it->m, k);
		M.out[it->m][k] = -1;
		recompute();
	}
	return 0;
}

static void op_mapiter(uint8_t mb, uint8_t d)
{
	int m = pick(mb, S_MAP), k, n;
	struct iter it;
	long c, r;

	if (m < 0)
		return;
	tracef("MAPITER #%d del %d", m, d & 1);
	memset(&it, 0, sizeof(it));
	it.m = m;
	it.del = d & 1;
	errno = 0;
	c = rs_map_count(M.ptr[m]);
	if (M.closed[m]) {
		CHECK(c == -1 && errno == EBADF, "rs_map_count of closed #%d",
		      m);
		errno = 0;
		r = rs_map_foreach(M.ptr[m], iter_fn, &it);
		CHECK(r == -1 && errno == EBADF && !it.calls,
		      "rs_map_foreach of closed #%d", m);
		return;
	}
	n = map_entries(m);
	CHECK(c == n, "rs_map_count(#%d) = %ld, model %d", m, c, n);
	r = rs_map_foreach(M.ptr[m], iter_fn, &it);
	CHECK(r == n && it.calls == n, "rs_map_foreach(#%d) = %ld, %d calls, "
	      "model %d entries", m, r, it.calls, n);
	for (k = 0; k < NKEYS; k++)
		CHECK(it.seen[k] || M.out[m][k] < 0,
		      "rs_map_foreach(#%d) missed key %d", m, k);
	c = rs_map_count(M.ptr[m]);
	CHECK(c == map_entries(m), "rs_map_count(#%d) = %ld after foreach, "
	      "model %d", m, c, map_entries(m));
}

static void op_freeze(uint8_t b)
{
	long fc, lo = 0, hi = 0;
	int i;

	if (!(b & 1)) {
		tracef("UNFREEZE");
		do_unfreeze();
		return;
	}
	tracef("FREEZE");
	recompute();
	snap();
	CHECK(rs_gc_freeze() == 0, "rs_gc_freeze failed");
	recompute();
	for (i = 0; i < M.n; i++)
		if (is_tracked(i) && (M.kind[i] == K_MAP || !M.destroyed[i]))
			M.frozen[i] = 1;
	for (i = 0; i < M.n; i++) {
		lo += M.frozen[i] && M.reach[i];
		hi += M.frozen[i] && (M.kind[i] == K_MAP || !M.destroyed[i]);
	}
	fc = rs_gc_get_freeze_count();
	CHECK(fc >= lo && fc <= hi, "rs_gc_get_freeze_count() = %ld, model "
	      "%ld..%ld", fc, lo, hi);
}

static void op_saveall(uint8_t b)
{
	long n, want = 0;
	int i;

	switch (b % 3) {
	case 0:
		tracef("SAVEALL on");
		CHECK(rs_gc_set_debug(RS_GC_DEBUG_SAVEALL) == 0, "set_debug");
		CHECK(rs_gc_disable() == 0, "rs_gc_disable");
		M.saveall = 1;
		break;
	case 1:
		tracef("SAVEALL off");
		CHECK(rs_gc_set_debug(0) == 0, "set_debug");
		if (M.gc_on)
			CHECK(rs_gc_enable() == 0, "rs_gc_enable");
		M.saveall = 0;
		break;
	case 2:
		tracef("GARBAGE_CLEAR");
		for (i = 0; i < M.n; i++)
			want += M.inlist[i];
		recompute();
		snap();
		n = rs_gc_garbage_clear();
		CHECK(n == want, "rs_gc_garbage_clear() = %ld, model %ld", n,
		      want);
		memset(M.inlist, 0, sizeof(M.inlist));
		break;
	}
}

struct refs {
	int target, calls;
	int count[MAXID];
};

static void referent_fn(void *child, void *arg)
{
	struct refs *r = arg;
	int id = id_of_ptr(child);

	CHECK(id >= 0, "referent %p of #%d is no live model object", child,
	      r->target);
	r->count[id]++;
	r->calls++;
}

static void referrer_fn(void *obj, void *arg)
{
	struct refs *r = arg;
	int id = id_of_ptr(obj), j, has = 0;

	CHECK(id >= 0, "referrer %p of #%d is no live model object", obj,
	      r->target);
	for (j = 0; j < nout(id); j++)
		has |= M.out[id][j] == r->target;
	CHECK(has, "#%d reported as a referrer of #%d", id, r->target);
	CHECK(is_tracked(id), "untracked #%d reported as a referrer", id);
	CHECK(!r->count[id]++, "referrer #%d of #%d reported twice", id,
	      r->target);
	r->calls++;
}

static void op_intro(uint8_t a, uint8_t b)
{
	int x = pick(a, S_REACH), i, j, n;
	struct refs r;
	long rc;

	if (x < 0)
		return;
	memset(&r, 0, sizeof(r));
	r.target = x;
	if (b & 1) {
		tracef("REFERENTS #%d", x);
		CHECK(rs_gc_get_referents(M.ptr[x], referent_fn, &r) == 0,
		      "rs_gc_get_referents(#%d) failed", x);
		for (i = 0; i < M.n; i++) {
			n = 0;
			for (j = 0; j < nout(x); j++)
				n += M.out[x][j] == i;
			CHECK(r.count[i] == n, "rs_gc_get_referents(#%d): #%d "
			      "%d times, model %d", x, i, r.count[i], n);
		}
		return;
	}
	tracef("REFERRERS #%d", x);
	recompute();
	snap();
	rc = rs_gc_get_referrers(M.ptr[x], referrer_fn, &r);
	recompute();
	CHECK(rc == r.calls, "rs_gc_get_referrers(#%d) = %ld, %d calls", x, rc,
	      r.calls);
	for (i = 0; i < M.n; i++) {
		if (!M.reach[i] || !is_tracked(i) || r.count[i])
			continue;
		for (j = 0; j < nout(i); j++)
			CHECK(M.out[i][j] != x, "rs_gc_get_referrers(#%d) "
			      "missed #%d", x, i);
	}
}

static void op_gcctl(uint8_t b)
{
	long c0, c1, c2;

	switch (b % 4) {
	case 0:
		tracef("GC enable");
		M.gc_on = 1;
		if (!M.saveall)
			CHECK(rs_gc_enable() == 0, "rs_gc_enable");
		break;
	case 1:
		tracef("GC disable");
		M.gc_on = 0;
		CHECK(rs_gc_disable() == 0, "rs_gc_disable");
		break;
	case 2:
		M.t0 = (b >> 2) % 8;
		M.t1 = 1 + (b >> 5) % 3;
		M.t2 = 1 + (b >> 5) % 2;
		tracef("GC thresholds %ld %ld %ld", M.t0, M.t1, M.t2);
		CHECK(rs_gc_set_threshold(M.t0, M.t1, M.t2) == 0, "thresholds");
		break;
	case 3:
		CHECK(rs_gc_get_count(&c0, &c1, &c2) == 0, "rs_gc_get_count");
		CHECK(c1 >= 0 && c2 >= 0, "rs_gc_get_count: %ld %ld %ld", c0,
		      c1, c2);
		errno = 0;
		CHECK(rs_gc_collect(RS_GC_GENERATIONS) == -1 && errno == EINVAL,
		      "rs_gc_collect(%d): errno %d", RS_GC_GENERATIONS, errno);
		errno = 0;
		CHECK(rs_gc_set_threshold(-1, 0, 0) == -1 && errno == EINVAL,
		      "rs_gc_set_threshold(-1): errno %d", errno);
		break;
	}
}

static void op_refcnt(uint8_t a)
{
	int x = pick(a, S_REACH);

	if (x < 0)
		return;
	tracef("REFCNT #%d", x);
	recompute();
	check_object(x, 0);
	errno = 0;
	CHECK(!rs_weakref_get(M.ptr[x]) && errno == EINVAL,
	      "rs_weakref_get(#%d), not a weak reference: errno %d", x, errno);
}

static void start(uint8_t cfgb);
static void finish(void);

static void run_op(void)
{
	enum op op = (enum op)(next() % OP_COUNT);
	uint8_t a, b, c;
	int x;

	M.op = op_name[op];
	recompute();
	snap();
	switch (op) {
	case OP_NEW:
		op_new(next());
		break;
	case OP_LINK:
	case OP_STEAL:
		a = next();
		b = next();
		c = next();
		op_link(a, b, c, op == OP_STEAL);
		break;
	case OP_UNLINK:
		a = next();
		op_unlink(a, next());
		break;
	case OP_DECREF:
		op_decref(next());
		break;
	case OP_INCREF:
		op_incref(next());
		break;
	case OP_GETREF:
		a = next();
		op_getref(a, next());
		break;
	case OP_SAFEPOINT:
		tracef("SAFEPOINT");
		do_safepoint();
		break;
	case OP_COLLECT:
		a = next() % 3;
		tracef("COLLECT %d", a);
		do_collect(a);
		break;
	case OP_WNEW:
		a = next();
		op_wnew(a, next());
		break;
	case OP_WGET:
		op_wget(next());
		break;
	case OP_WDROP:
		op_wdrop(next());
		break;
	case OP_SLOTSET:
		a = next();
		op_slotset(a, next());
		break;
	case OP_SLOTDROP:
		op_slotdrop(next());
		break;
	case OP_MAPNEW:
		op_mapnew();
		break;
	case OP_MAPPUT:
		a = next();
		b = next();
		op_mapput(a, b, next());
		break;
	case OP_MAPGET:
		a = next();
		b = next();
		op_mapget(a, b, next());
		break;
	case OP_MAPDEL:
		a = next();
		op_mapdel(a, next());
		break;
	case OP_MAPFREE:
		op_mapfree(next());
		break;
	case OP_MAPITER:
		a = next();
		op_mapiter(a, next());
		break;
	case OP_PUBLISH:
		x = pick(next(), S_REACH);
		if (x >= 0) {
			tracef("PUBLISH #%d", x);
			CHECK(rs_publish(M.ptr[x]) == 0, "rs_publish(#%d)", x);
		}
		break;
	case OP_OFFON:
		tracef("OFFLINE/ONLINE");
		CHECK(rs_offline() == 0 && rs_online() == 0, "offline/online");
		break;
	case OP_FREEZE:
		op_freeze(next());
		break;
	case OP_VERIFY:
		tracef("VERIFY");
		verify_all();
		break;
	case OP_DRAIN:
		tracef("DRAIN");
		drain();
		break;
	case OP_SAVEALL:
		op_saveall(next());
		break;
	case OP_INTRO:
		a = next();
		op_intro(a, next());
		break;
	case OP_GCCTL:
		op_gcctl(next());
		break;
	case OP_REFCNT:
		op_refcnt(next());
		break;
	case OP_RESTART:
		a = next();
		tracef("RESTART cfg %#x", a);
		finish();
		start(a);
		break;
	case OP_COUNT:
		break;
	}
	recompute();
}

/* ------------------------------------------------------------------------ */
/* One input                                                                */
/* ------------------------------------------------------------------------ */

static void start(uint8_t cfgb)
{
	static const long th[4][3] = {{0, 0, 0}, {1, 1, 1}, {5, 2, 2},
				      {20, 3, 3}};
	rs_config cfg;
	long step = M.step;
	int i;

	memset(&M, 0, sizeof(M));
	M.step = step;
	for (i = 0; i < NSLOT; i++) {
		M.slot[i] = -1;
		slots[i] = NULL;
	}
	M.op = "start";
	memset(&cfg, 0, sizeof(cfg));
	cfg.report_leaks = 1;
	if (cfgb & 4)
		cfg.batch_entries = SMALL_BATCH;
	if (cfgb & 8)
		cfg.defer_limit_bytes = SMALL_DEFER_LIMIT;
	CHECK(rs_init(&cfg) == 0, "rs_init failed (errno %d)", errno);
	CHECK(rs_thread_attach() == 0, "rs_thread_attach failed");
	CHECK(live_objects() == 0, "%ld live objects at the start",
	      live_objects());
	/* the collector's controls outlive rs_shutdown: set them */
	CHECK(rs_gc_set_debug(0) == 0, "rs_gc_set_debug");
	M.t0 = th[cfgb & 3][0];
	M.t1 = th[cfgb & 3][1];
	M.t2 = th[cfgb & 3][2];
	M.gc_on = M.t0 > 0;
	CHECK(rs_gc_set_threshold(M.t0, M.t1, M.t2) == 0, "thresholds");
	CHECK((M.gc_on ? rs_gc_enable() : rs_gc_disable()) == 0, "gc enable");
	tracef("START cfg %#x thresholds %ld %ld %ld", cfgb, M.t0, M.t1, M.t2);
}

static void finish(void)
{
	long live, n;
	int i, round;

	M.op = "finish";
	tracef("FINISH");
	if (M.saveall) {
		CHECK(rs_gc_set_debug(0) == 0, "set_debug");
		M.saveall = 0;
	}
	recompute();
	snap();
	n = rs_gc_garbage_clear();
	CHECK(n >= 0, "rs_gc_garbage_clear failed");
	memset(M.inlist, 0, sizeof(M.inlist));
	for (i = 0; i < M.nwr; i++)
		if (M.wr[i].state == WR_HELD) {
			M.wr[i].state = WR_DROPPED;
			CHECK(rs_decref(M.wr[i].wr) == 0, "rs_decref(w%d)", i);
		}
	/* finalizers a drain runs may resurrect into the slots or as held
	 * references; each runs once, so this ends */
	for (round = 0;; round++) {
		CHECK(round <= MAXID, "finish: objects keep coming back");
		for (i = 0; i < NSLOT; i++) {
			CHECK(rs_clear(&slots[i]) == 0, "rs_clear(slot)");
			M.slot[i] = -1;
		}
		for (i = 0; i < M.n; i++)
			for (; M.held[i] > 0; M.held[i]--)
				CHECK(rs_decref(M.ptr[i]) == 0,
				      "rs_decref(#%d)", i);
		recompute();
		drain();
		for (i = 0, n = 0; i < M.n; i++)
			n += M.reach[i];
		if (!n)
			break;
	}
	for (i = 0; i < M.n; i++)
		CHECK(M.kind[i] == K_MAP || M.destroyed[i],
		      "finish: #%d never destroyed", i);
	recompute();
	snap();
	live = rs_shutdown();
	CHECK(live == 0, "rs_shutdown() = %ld live objects", live);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *t = getenv("FUZZ_OPS_TRACE");

	(void)argc;
	(void)argv;
	trace = t && *t && *t != '0';
	keys_init();
	/* the table of collection callbacks outlives rs_shutdown: once */
	if (rs_thread_attach() || rs_gc_add_callback(gc_callback, NULL)) {
		fprintf(stderr, "fuzz_ops: rs_gc_add_callback failed\n");
		abort();
	}
	rs_shutdown();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	if (size > MAX_INPUT)
		size = MAX_INPUT;
	in_p = data;
	in_n = size;
	in_i = 1;
	M.step = 0;
	start(data[0]);
	while (in_i < in_n) {
		M.step++;
		run_op();
		if (M.step % VERIFY_EVERY == 0) {
			M.op = "periodic VERIFY";
			verify_all();
		}
	}
	finish();
	return 0;
}
