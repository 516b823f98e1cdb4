/*
 * fork.c - keeping refstore usable in the child of fork().
 *
 * prepare (the forking thread): take the collector role, stop the world,
 *          take the registry lock, go offline for urcu, take the
 *          reclaimer's job lock and its other locks, then the allocator lock.
 * parent:  release in reverse and resume the world.
 * child:   the forking thread is the only thread: make every lock new,
 *          retire every other attached thread as if it had exited
 *          (thread.c), submit the batches that had not matured to a new
 *          reclaimer.
 *
 * The argument (what each step guarantees the child): docs/design.md §14.
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
