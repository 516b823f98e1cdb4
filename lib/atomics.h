/*
 * atomics.h - every atomic operation refstore performs, with its memory order
 * in its name.
 *
 * The wrappers use the GCC/Clang __atomic builtins rather than <stdatomic.h>
 * because the object header is shared with the public header, which must
 * compile as C++ and therefore declares plain fields.  The builtins are what
 * <stdatomic.h> expands to, and ThreadSanitizer instruments them the same way
 * (no inline assembly anywhere in our atomics).
 */
#ifndef RS_ATOMICS_H
#define RS_ATOMICS_H

#ifndef RS_BUILDING
#error "lib/atomics.h is internal to refstore"
#endif

#define rs__load_relaxed(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define rs__load_acquire(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define rs__load_seq_cst(p) __atomic_load_n((p), __ATOMIC_SEQ_CST)
#define rs__store_relaxed(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define rs__store_release(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define rs__store_seq_cst(p, v) __atomic_store_n((p), (v), __ATOMIC_SEQ_CST)
#define rs__add_relaxed(p, v) __atomic_fetch_add((p), (v), __ATOMIC_RELAXED)
#define rs__add_fetch_relaxed(p, v) __atomic_add_fetch((p), (v), __ATOMIC_RELAXED)
#define rs__add_release(p, v) __atomic_fetch_add((p), (v), __ATOMIC_RELEASE)
#define rs__or_relaxed(p, v) __atomic_fetch_or((p), (v), __ATOMIC_RELAXED)
#define rs__and_relaxed(p, v) __atomic_fetch_and((p), (v), __ATOMIC_RELAXED)
#define rs__xchg_acq_rel(p, v) __atomic_exchange_n((p), (v), __ATOMIC_ACQ_REL)
#define rs__xchg_acquire(p, v) __atomic_exchange_n((p), (v), __ATOMIC_ACQUIRE)
/* Strong compare-and-swap; on failure *expected receives the current value. */
#define rs__cas_acq_rel(p, expected, desired)                                 \
	__atomic_compare_exchange_n((p), (expected), (desired), 0,           \
				    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)
#define rs__cas_seq_cst(p, expected, desired)                                 \
	__atomic_compare_exchange_n((p), (expected), (desired), 0,           \
				    __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)
#define rs__fence_seq_cst() __atomic_thread_fence(__ATOMIC_SEQ_CST)

/* A counter that only its owner writes but others read: a relaxed load and
 * store, no read-modify-write. */
#define rs__bump_owner(p, v) rs__store_relaxed((p), rs__load_relaxed(p) + (v))

#endif /* RS_ATOMICS_H */
