/*
 * fork.c - keeping refstore usable in the child of fork().
 *
 * prepare (parent, the forking thread): stop the world, so every other
 * attached thread is parked or offline: offline for urcu, and inside no
 * refstore lock but, for an instant, its own queue lock (rs_offline stores
 * OFFLINE under it, with the queue empty: the child makes every queue lock
 * new, and the queue it guards is consistent).  Then take the registry
 * lock (no attach or detach in progress, so no thread is inside urcu's
 * registration) and the reclaimer's locks: first its job lock (no job is
 * running, so the reclaimer is not registered with urcu and no map table
 * is half resized or destroyed), then the others (the reclaimer is not
 * inside a grace period, so urcu's own locks are free), then the allocator
 * lock (no thread is moving slabs between pools; attached threads are
 * stopped or offline, and neither allocates).  The forking thread goes
 * offline for urcu while it takes them, because the grace period in
 * progress may be waiting for it.
 *
 * parent: release in reverse and resume the world.
 *
 * child: the forking thread is the only thread.  Synchronisation objects are
 * made new, the other attached threads are retired as if they had exited
 * (queues merged, logged decrements adopted by the forking thread or kept for
 * the next thread to attach, urcu records unlinked, their slabs given to the
 * allocator's shared pools: thread.c), batches that
 * had not matured are submitted again to a new reclaimer.
 *
 * The host's malloc (large objects, our own records) is usable in our child
 * step: glibc takes its malloc locks inside fork() after the prepare handlers
 * and makes them new in the child before the child handlers, and an
 * allocator the host links or preloads registered its fork handlers when it
 * started, before ours, so its prepare step runs after ours and its child
 * step before ours.
 */
#define RS_BUILDING 1
#include "internal.h"

static bool fork_stopped, fork_online;

static void prepare(void)
{
	fork_stopped = rs__runtime_up();
	if (!fork_stopped)
		return;
	rs__gc_fork_prepare();	/* no collection in progress */
	rs__world_stop();
	rs__lock(&rs__registry_lock);
	fork_online = rs__self() && urcu_qsbr_read_ongoing();
	if (fork_online)
		urcu_qsbr_thread_offline();
	rs__reclaim_fork_prepare();
	rs__alloc_fork_prepare();
}

static void parent(void)
{
	if (!fork_stopped)
		return;
	rs__alloc_fork_parent();
	rs__reclaim_fork_parent();
	if (fork_online)
		urcu_qsbr_thread_online();
	rs__unlock(&rs__registry_lock);
	rs__world_resume(NULL);
	rs__gc_fork_parent();
}

static void child(void)
{
	if (!fork_stopped)
		return;
	rs__world_fork_child();
	rs__reclaim_fork_child();
	rs__alloc_fork_child();
	rs__gc_fork_child();	/* its locks first: the next step takes them */
	rs__thread_fork_child();
	if (fork_online)
		urcu_qsbr_thread_online();
}

void rs__fork_install(void)
{
	pthread_atfork(prepare, parent, child);
}
