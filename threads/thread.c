/*
 * thread.c - the thread registry, attach and detach.  The merge queues
 * through which non-owners hand objects to their owner are in lib/brc.c.
 *
 * Registry
 * --------
 * Every attached thread has a slot (1..RS_MAX_THREADS) and a struct
 * rs__thread that stays allocated for the life of the process and is reused
 * by the next thread that takes the slot.  A thread's id is
 * (generation << RS_SLOT_BITS) | slot; each reuse of a slot increments its
 * generation, so an id is never given twice and an object header naming an
 * exited owner can never be mistaken for a live thread's object.
 */
#define RS_BUILDING 1
#include "internal.h"

#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <urcu/static/urcu-qsbr.h>	/* struct urcu_qsbr_reader, for fork */

/* Sync: registry lock */
static uint32_t free_slots[RS_MAX_THREADS];
static uint32_t nfree;
static uint64_t slot_gen[RS_MAX_THREADS + 1];
/* urcu reader record of each attached thread, for the fork child */
static struct urcu_qsbr_reader *readers[RS_MAX_THREADS + 1];

static pthread_key_t exit_key;
static pthread_once_t exit_once = PTHREAD_ONCE_INIT;

static void exit_destructor(void *arg)
{
	/* The thread returned or called pthread_exit while attached. */
	if (arg && rs__self() == arg)
		rs_thread_detach();
}

static void make_exit_key(void)
{
	pthread_key_create(&exit_key, exit_destructor);
}

static struct rs__thread *slot_take(void)
{
	struct rs__thread *t;
	uint32_t slot;

	/* (tests: fails a reused slot too, so every attach can fail) */
	if (rs__fault(RS__FAULT_THREAD)) {
		errno = ENOMEM;
		return NULL;
	}
	if (nfree) {
		slot = free_slots[--nfree];
		return rs__slots[slot];
	}
	if (rs__nslots >= RS_MAX_THREADS) {
		errno = EAGAIN;
		return NULL;
	}
	t = calloc(1, sizeof(*t));
	if (!t) {
		errno = ENOMEM;
		return NULL;
	}
	slot = rs__nslots + 1;
	t->slot = slot;
	rs__mutex_init(&t->qlock, RS__L_QUEUE);
	t->sealed_tail = &t->sealed;
	rs__gc_thread_init(t);
	/* pairs with the acquire loads of rs__slots in world.c and below */
	rs__store_release(&rs__slots[slot], t);
	rs__store_release(&rs__nslots, slot);
	return t;
}

static void counters_fold(struct rs__counters *into, struct rs__counters *c)
{
	into->allocated += c->allocated;
	into->freed += c->freed;
	into->bytes_allocated += c->bytes_allocated;
	into->bytes_freed += c->bytes_freed;
	into->batches_sealed += c->batches_sealed;
	into->defer_waits += c->defer_waits;
	into->merges_queued += c->merges_queued;
	into->merges_on_the_spot += c->merges_on_the_spot;
	if (rs__pending_peak(c) > into->pending_bytes_max)
		into->pending_bytes_max = rs__pending_peak(c);
	memset(c, 0, sizeof(*c));
}

int rs_thread_attach(void)
{
	struct rs__thread *t;
	uint64_t tid;

	if (rs__tls.tid)
		return 0;
	if (rs__ensure_init())
		return -1;
	pthread_once(&exit_once, make_exit_key);

	rs__lock(&rs__registry_lock);
	t = slot_take();
	if (!t || rs__defer_init(t)) {
		if (t)
			free_slots[nfree++] = t->slot;
		rs__unlock(&rs__registry_lock);
		return -1;
	}
	tid = (++slot_gen[t->slot] << RS_SLOT_BITS) | t->slot;
	rs__lock(&t->qlock);
	t->tid = tid;
	rs__unlock(&t->qlock);
	t->pthread = pthread_self();
	t->no_reentry = 0;
	t->self_sync = false;
	rs__defer_adopt(t, NULL);	/* decrements left by a fork's dead */
	urcu_qsbr_register_thread();
	urcu_qsbr_thread_offline();
	readers[t->slot] = &URCU_TLS(urcu_qsbr_reader);
	rs__store_relaxed(&rs__nattached, rs__nattached + 1);
	/* Born offline; rs_online below joins the world (and waits if it is
	 * stopped).  The seq_cst store comes last: a stopped world (the
	 * verifier) may read this thread's fields once it sees OFFLINE. */
	rs__store_seq_cst(&t->state, RS__T_OFFLINE);
	rs__unlock(&rs__registry_lock);

	rs__tls.self = t;
	rs__tls.tid = tid;
	pthread_setspecific(exit_key, t);
	return rs_online();
}

/* Under the registry lock, so fork's prepare step (which holds it) never
 * finds a thread inside urcu's registration. */
static void slot_release(struct rs__thread *t)
{
	rs__lock(&rs__registry_lock);
	urcu_qsbr_unregister_thread();
	counters_fold(&rs__retired, &t->c);
	readers[t->slot] = NULL;
	free_slots[nfree++] = t->slot;
	rs__store_relaxed(&rs__nattached, rs__nattached - 1);
	rs__unlock(&rs__registry_lock);
}

int rs_thread_detach(void)
{
	struct rs__thread *t = rs__self();

	if (!t)
		return 0;
	if (t->no_reentry || t->gc_depth || t->in_weak_cb) {
		errno = EDEADLK;	/* from a destroy callback, a
					   collection's finalizer or callback,
					   or a weak-reference callback (whose
					   reference the caller still gives
					   back afterwards) */
		return -1;
	}
	if (rs__load_relaxed(&t->state) != RS__T_ONLINE)
		rs_online();
	rs_safepoint();
	t->no_reentry = 1;	/* destroy callbacks must not reenter */
	for (;;) {
		rs__defer_flush(t);	/* every logged decrement applied */
		if (!t->callbacks)
			break;
		/* weak-reference callbacks may log more */
		t->no_reentry = 0;
		rs__weak_run_callbacks(t);
		if (rs__load_relaxed(&t->state) != RS__T_ONLINE)
			rs_online();	/* a callback went offline */
		t->no_reentry = 1;
	}
	rs__gc_thread_exit(t);

	/* From here the thread owns nothing: owner fast paths stop matching. */
	rs__tls.tid = 0;
	rs__give_up_ownership(t);
	rs__cascade(t);
	rs__weak_orphan_callbacks(t);	/* too late to run them here */
	rs__defer_release(t);
	rs__alloc_thread_exit(t, true);	/* slabs back to the shared pools */
	t->no_reentry = 0;

	/* Offline for urcu before DEAD: a DEAD thread counts as stopped, and
	 * a fork's prepare step may then hold the registry lock we wait for
	 * below while the reclaimer's grace period waits for us. */
	RS_TSAN_QUIESCENT();
	urcu_qsbr_thread_offline();
	rs__set_state(t, RS__T_DEAD);
	pthread_setspecific(exit_key, NULL);
	rs__tls.self = NULL;
	slot_release(t);
	return 0;
}

/*
 * The fork child: only the forking thread exists.  Every other attached
 * thread is gone: its queue is merged, its logged decrements are adopted
 * (they still need the grace period that the forking thread's own borrowed
 * references impose), its counters are retired and its slot freed.  Its urcu
 * reader record is unlinked from urcu's registry: the record lives in the
 * dead thread's TLS, which the child's next threads may reuse, and urcu has
 * no call that unregisters another thread.  Every other thread was parked
 * (offline for urcu) when fork ran, so the record was idle.
 */
void rs__thread_fork_child(void)
{
	struct rs__thread *self = rs__self(), *t;
	uint32_t slot;

	rs__lock_reinit(&rs__registry_lock);
	if (self)
		self->no_reentry = 1;	/* destroy callbacks must not reenter */
	for (slot = 1; slot <= rs__nslots; slot++) {
		t = rs__slots[slot];
		rs__lock_reinit(&t->qlock);
		if (t == self)
			continue;
		if (rs__load_relaxed(&t->state) != RS__T_DEAD) {
			rs__store_relaxed(&t->state, RS__T_DEAD);
			rs__give_up_ownership(t);
			rs__cascade(t);
			rs__weak_orphan_callbacks(t);
			rs__defer_adopt(self, t);
			rs__alloc_thread_exit(t, false);
		} else if (!readers[slot]) {
			continue;	/* long gone */
		}
		/* alive, or detached but not yet released (its detach was
		 * waiting for the registry lock that prepare held) */
		counters_fold(&rs__retired, &t->c);
		if (readers[slot]) {
			cds_list_del(&readers[slot]->node);
			readers[slot] = NULL;
		}
		free_slots[nfree++] = slot;
		rs__store_relaxed(&rs__nattached, rs__nattached - 1);
	}
	if (self)
		self->no_reentry = 0;
	rs__defer_resubmit_all();
	rs__reclaim_fork_done();	/* may start the reclaimer now */
	if (rs__alloc_reap_wanted())
		rs__gp_request();	/* the dead threads' emptied slabs */
}
