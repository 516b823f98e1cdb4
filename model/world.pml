/*
 * world.pml - the stop-the-world handshake of threads/world.c.
 *
 * What is modelled
 * ----------------
 * Three attached threads (NT).  Each one attaches (born OFFLINE, then
 * rs_online), performs up to BUDGET actions chosen nondeterministically and
 * detaches.  The actions are
 *   work        run mutator code (touch objects)
 *   safepoint   rs_safepoint: park if a stop is requested
 *   offline     rs_offline: a safepoint, the OFFLINE store under the
 *               thread's own queue lock, then (lock released) the stopper's
 *               wake-up; the thread later runs rs_online, or detaches while
 *               still offline (detach goes online first)
 *   lease       as queue_to_owner (lib/brc.c) does: under the other
 *               thread's queue lock, CAS its state OFFLINE -> LEASED, then
 *               give the lease back (LEASED -> OFFLINE); the owner's
 *               rs_online spins meanwhile.  A failed lease stands for the
 *               queue push
 *   stop        threads 0 and 1 only, once each: rs__world_stop, the stopped
 *               section (a collection: rs__drain_queues_stopped takes every
 *               thread's queue lock in turn), rs__world_resume.
 * So two stoppers may race (the loser parks as PARKED), a thread may come
 * back online or attach during a stop (it turns WAITING in rs_online), and a
 * thread may detach during a stop.
 *
 * Promela -> C (threads/world.c unless named)
 *   state[i]            struct rs__thread.state (enum rs__tstate, internal.h)
 *   stop_requested      rs__stop_requested
 *   stopper, epoch      the statics of the same names
 *   wlock               world_lock; lock()/unlock() = rs__lock/rs__unlock
 *   qlock[i]            struct rs__thread.qlock (lib/brc.c);
 *                       qlock_take/qlock_give = rs__lock/rs__unlock
 *   world_cv[i],        world_cv and stopped_cv: bit i is set while thread
 *   stopped_cv[i]       i sleeps in pthread_cond_wait on it; a broadcast
 *                       clears every bit; the woken thread then competes
 *                       for wlock again (cond_wait below)
 *   wait_for_resume, stop_self, park, wake_stopper, set_state
 *   (rs__set_state), rs_online, rs_offline, world_stop (rs__world_stop),
 *   world_resume (rs__world_resume)
 *                       one inline each, same steps in the same order
 *   detach              rs_thread_detach (threads/thread.c): rs_online if
 *                       not ONLINE, a safepoint, object work (flush, cascade),
 *                       rs__set_state(DEAD)
 * Every load, store and CAS of a shared variable is its own atomic step.
 *
 * Abstracted away
 * ---------------
 * - Memory model: spin explores sequentially consistent interleavings only.
 *   The C code needs seq_cst exactly for the Dekker pair of (W1): the CAS
 *   OFFLINE -> ONLINE then load of stop_requested in rs_online, against the
 *   store of stop_requested then load of each state in rs__world_stop; the
 *   other relaxed loads are re-checked under the world lock.
 * - urcu (thread_offline/online around every wait, W4) and grace periods.
 * - spin_until_stopped: it only loads states and gives up at a deadline, so
 *   it is modelled as "release the lock, take it again".
 * - The slot array: NT fixed slots.  Each thread attaches once, at any
 *   point of the run (so possibly during a stop), and its slot reads DEAD
 *   before attach and after detach; slot reuse and rs__nslots growth are
 *   not modelled.
 * - Stoppers are ONLINE attached threads (rs_gc_collect goes online
 *   first).  An unattached or offline stopper (fork's prepare or
 *   rs_heap_verify from such a thread: the wait_for_resume branch of
 *   world_stop) and the stop statistics/tokens are not modelled.
 * - Spurious wake-ups are not generated; every wait is in a loop anyway.
 * - The queues: only their locks.  rs_offline's rounds that find the queue
 *   non-empty hold qlock across no other wait, so only the last round (the
 *   lock kept across the OFFLINE store) is modelled; the owner's drain at
 *   a safepoint and give_up_ownership take the lock alone, and are left
 *   out.  What the queue lock guarantees for the objects is brc.pml's (Q).
 *
 * Properties
 * ----------
 * (W1) assertions: while a stopper is in its stopped section (ghost
 *      stopped_by), no other thread runs mutator code (ghost inmut[]); a
 *      thread runs mutator code only in state ONLINE.
 * (R)  at the end of world_resume no thread is PARKED or WAITING.
 * (D)  no invalid end state: every thread reaches the end of detach, no
 *      thread is left waiting on a lock or condition variable (pan -DSAFETY).
 *      This includes the queue locks: rs_offline holds its qlock across
 *      the OFFLINE store (a stopper may see it OFFLINE and finish the stop
 *      meanwhile), leasers hold the owner's, a stopper takes each in turn
 *      once the world is stopped.
 * (K)  lock order (rs__lock's rank check in debug builds): the world lock
 *      is never taken with a queue lock held, nor a queue lock with another
 *      one held.
 * (L)  no fair non-terminating run (pan -DNP -l -f, no progress labels):
 *      under weak fairness every run ends, so the LEASED spin in rs_online
 *      and the stopper's waits always end.  Without -f pan finds the cycle
 *      of a thread spinning on LEASED while the lessee never runs.
 * model/run.sh checks the safety properties with BUDGET=3 and (L) with
 * BUDGET=1 (its search is several times larger).
 * At the end the world is clean: all DEAD, no stop, lock free.
 *
 * Limitations of the protocol itself (true of the code, outside the model)
 * - A stop waits without a time limit for every ONLINE thread to reach a
 *   safepoint, go offline or detach: a thread that runs on without either
 *   holds the stopper (and every parked thread) forever.  Here every thread
 *   has a finite budget and ends by detaching, so this never shows.
 * - "Stopped" is a snapshot: after the stopper has seen a thread OFFLINE,
 *   that thread may CAS itself ONLINE during the stop and only then turn
 *   WAITING, so the world can be stopped with a state reading ONLINE.  Only
 *   mutator code is excluded, which is what the assertions check.
 * - Stoppers are not queued: a thread waiting in world_stop for another
 *   stop to end can be overtaken again and again by other stoppers; (W3)
 *   is about threads that want to run, not to stop.  Finite budgets hide it.
 *
 * Mutants (spin -DMUTANT_... ; model/run.sh requires each to fail)
 *   MUTANT_ONLINE_NO_CHECK  rs_online skips the load of stop_requested after
 *                           its CAS (half of the Dekker pair): a thread that
 *                           comes online during a stop runs mutator code.
 *   MUTANT_STOPPER_NO_PARK  a second stopper waits for the resume without
 *                           turning PARKED: the first stopper waits forever
 *                           for it to leave ONLINE (deadlock).
 *   MUTANT_WAKE_UNDER_QLOCK  rs_offline calls rs__set_state (store, then
 *                           the wake-up under the world lock) before it
 *                           unlocks its qlock: the world lock is taken
 *                           under a queue lock ((K) fails; a debug build
 *                           dies "lock order violated").  No deadlock
 *                           follows in this model, as nothing takes a qlock
 *                           with the world lock held.
 */

#define NT 3
#ifndef BUDGET
#define BUDGET 3
#endif
#define NONE 255

/* enum rs__tstate (lib/internal.h) */
#define T_DEAD    0
#define T_ONLINE  1
#define T_OFFLINE 2
#define T_LEASED  3
#define T_PARKED  4
#define T_WAITING 5

byte state[NT];			/* all DEAD before attach */
bit  stop_requested;
byte stopper = NONE;
byte epoch;
byte wlock = NONE;		/* holder of world_lock */
bit  world_cv[NT];		/* waiting on world_cv */
bit  stopped_cv[NT];		/* waiting on stopped_cv */
byte qlock[NT] = NONE;		/* holder of each thread's queue lock */

/* ghosts */
byte stopped_by = NONE;		/* a stopper between world_stop and resume */
bit  inmut[NT];			/* thread runs mutator code */

/* (K) the rank order of enum rs__lock_rank (rs__lock's debug check): the
 * world lock (RS__L_WORLD) ranks below a queue lock (RS__L_QUEUE), and one
 * queue lock is held at a time */
#define NO_QLOCK (qlock[0] != me && qlock[1] != me && qlock[2] != me)

inline lock()   { atomic { wlock == NONE -> assert(NO_QLOCK); wlock = me } }
inline unlock() { assert(wlock == me); wlock = NONE }
inline qlock_take(i) {
	atomic { qlock[i] == NONE -> assert(NO_QLOCK); qlock[i] = me }
}
inline qlock_give(i) { assert(qlock[i] == me); qlock[i] = NONE }

/* pthread_cond_wait: release and sleep in one step, then wake (a broadcast
 * cleared our bit) and take the lock again */
#define cond_wait(cv)						\
	atomic { assert(wlock == me); cv[me] = 1; wlock = NONE };	\
	atomic { cv[me] == 0 && wlock == NONE -> wlock = me }
#define broadcast(cv) atomic { cv[0] = 0; cv[1] = 0; cv[2] = 0 }

inline wait_for_resume() {
	e = epoch;
	do
	:: epoch == e -> cond_wait(world_cv)
	:: else -> break
	od;
	e = 0
}

/* called with the lock held */
inline stop_self(st) {
	state[me] = st;
	broadcast(stopped_cv);
	wait_for_resume()
}

inline park() {
	lock();
	if
	:: stop_requested && stopper != me -> stop_self(T_PARKED)
	:: else -> skip
	fi;
	unlock()
}

/* rs_safepoint / safepoint_slow: park if a stop is requested (the queue
 * drain and deferred decrements that follow are mutator work) */
inline safepoint() {
	if
	:: stop_requested -> park()
	:: else -> skip
	fi
}

/* after a seq_cst store of a stopped state */
inline wake_stopper() {
	if
	:: stop_requested -> lock(); broadcast(stopped_cv); unlock()
	:: else -> skip
	fi
}

inline set_state(st) {
	state[me] = st;
	wake_stopper()
}

inline rs_online() {
	do
	:: atomic {	/* CAS OFFLINE -> ONLINE, seq_cst */
		if
		:: state[me] == T_OFFLINE -> state[me] = T_ONLINE; r = 1
		:: state[me] == T_LEASED -> r = 2
		:: else -> r = 0
		fi };
	   if
	   :: r == 2 -> skip	/* a merger holds our lease: yield, retry */
	   :: else -> break
	   fi
	od;
#ifndef MUTANT_ONLINE_NO_CHECK
	if
	:: r == 1 && stop_requested ->	/* Dekker with world_stop (W1) */
		lock();
		if
		:: stop_requested && stopper != me -> stop_self(T_WAITING)
		:: else -> skip
		fi;
		unlock()
	:: else -> skip
	fi;
#endif
	r = 0;
	/* back in mutator code: never while another thread holds the world */
	assert(stopped_by == NONE || stopped_by == me)
}

/* The queue itself is not modelled: the loop's rounds that find the queue
 * non-empty take and release qlock around no other wait, so only the last
 * round is kept: the OFFLINE store under the thread's qlock, the stopper
 * woken after the unlock. */
inline rs_offline() {
	safepoint();		/* rs_safepoint (and rs__defer_seal) */
	qlock_take(me);		/* ... qn == 0: keep the lock */
#ifdef MUTANT_WAKE_UNDER_QLOCK
	set_state(T_OFFLINE);
	qlock_give(me)
#else
	state[me] = T_OFFLINE;	/* seq_cst */
	qlock_give(me);
	wake_stopper()
#endif
}

inline work() {
	atomic {
		assert(stopped_by == NONE || stopped_by == me);
		assert(state[me] == T_ONLINE);
		inmut[me] = 1
	};
	inmut[me] = 0
}

/* lib/brc.c queue_to_owner's lease of an offline owner, inside mutator code */
inline lease_other() {
	if
	:: o = (me + 1) % NT
	:: o = (me + 2) % NT
	fi;
	atomic {
		assert(stopped_by == NONE || stopped_by == me);
		inmut[me] = 1
	};
	qlock_take(o);		/* the lease and the push are under o's qlock */
	atomic {
		if	/* lease_offline (lib/brc.c): CAS OFFLINE -> LEASED */
		:: state[o] == T_OFFLINE -> state[o] = T_LEASED; r = 1
		:: else -> r = 0
		fi };
	if
	:: r == 1 -> state[o] = T_OFFLINE	/* unlease */
	:: else -> skip		/* queue_push */
	fi;
	qlock_give(o);
	inmut[me] = 0;
	r = 0;
	o = 0
}

inline world_stop() {
	lock();
	do
	:: stop_requested ->	/* another stop in progress */
#ifdef MUTANT_STOPPER_NO_PARK
		wait_for_resume()
#else
		if
		:: state[me] == T_ONLINE -> stop_self(T_PARKED)
		:: else -> wait_for_resume()
		fi
#endif
	:: else -> break
	od;
	stop_requested = 1;
	stopper = me;
	unlock();
	/* spin_until_stopped: only loads, bounded by a deadline */
	lock();
	j = 0;
	do
	:: j == me -> j++
	:: j < NT && j != me ->
		do
		:: state[j] == T_ONLINE -> cond_wait(stopped_cv)
		:: else -> break
		od;
		j++
	:: j == NT -> break
	od;
	j = 0;
	atomic {	/* the world is stopped */
		assert(stopped_by == NONE);
		stopped_by = me
	};
	unlock()
}

/* what the collector does while the world is stopped: check (W1), then
 * rs__drain_queues_stopped: merge_queue takes every thread's qlock in turn
 * (the world lock is not held) */
inline stopped_section() {
	atomic {
		assert(stopped_by == me);
		assert(!inmut[(me + 1) % NT] && !inmut[(me + 2) % NT])
	};
	j = 0;
	do
	:: j < NT -> qlock_take(j); qlock_give(j); j++
	:: else -> break
	od;
	j = 0
}

inline world_resume() {
	lock();
	atomic { assert(stopped_by == me); stopped_by = NONE };
	j = 0;
	do
	:: j < NT ->
		atomic {	/* relaxed load, seq_cst store */
			if
			:: state[j] == T_PARKED || state[j] == T_WAITING ->
				state[j] = T_ONLINE
			:: else -> skip
			fi };
		j++
	:: else -> break
	od;
	j = 0;
	stopper = NONE;
	stop_requested = 0;
	epoch++;
	broadcast(world_cv);
	assert(state[0] != T_PARKED && state[0] != T_WAITING &&
	       state[1] != T_PARKED && state[1] != T_WAITING &&
	       state[2] != T_PARKED && state[2] != T_WAITING);
	unlock()
}

proctype Thread(byte me; byte nstops)
{
	byte budget = BUDGET;
	byte e, r, j, o;
	bit off;

	/* rs_thread_attach: born OFFLINE, then rs_online */
	state[me] = T_OFFLINE;
	rs_online();
	do
	:: off -> rs_online(); off = 0
	:: !off && budget > 0 ->
		if
		:: budget--; work()
		:: budget--; safepoint()
		:: budget--; lease_other()
		:: budget--; rs_offline(); off = 1
		:: nstops > 0 ->
			budget--;
			nstops--;
			world_stop();
			stopped_section();
			world_resume()
		fi
	:: budget == 0 -> break
	od;
	/* rs_thread_detach */
	if
	:: off -> rs_online(); off = 0
	:: else -> skip
	fi;
	safepoint();
	work();			/* flush, give_up_ownership, cascade */
	set_state(T_DEAD)
}

init
{
	atomic {
		run Thread(0, 1);
		run Thread(1, 1);
		run Thread(2, 0)
	};
	_nr_pr == 1;
	assert(state[0] == T_DEAD && state[1] == T_DEAD && state[2] == T_DEAD);
	assert(!stop_requested && stopper == NONE && wlock == NONE);
	assert(qlock[0] == NONE && qlock[1] == NONE && qlock[2] == NONE)
}
