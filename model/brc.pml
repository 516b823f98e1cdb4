/*
 * brc.pml - the biased reference count of one object and its merge
 * (lib/brc.c; lib/object.c for the dying list, threads/world.c for
 * rs_offline and rs_online).
 *
 * What is modelled
 * ----------------
 * One published object, created by the Owner.  A field (another object's
 * reference field, set with rs_set) holds one counted reference, counted in
 * the owner's `local`.  Three threads:
 *   Owner     nondeterministically, up to OBUDGET times: a safepoint (merges
 *             its queue), goes offline (rs_offline: a safepoint, then the
 *             OFFLINE store under the queue lock with the queue empty, else
 *             round again) and later online, borrows the field
 *             and takes a reference (rs_get_ref) then gives it back, clears
 *             the field (if it is the one to clear it) and applies that
 *             decrement after the grace period, gives back a reference the
 *             Borrower handed to it; then detaches (exit): a safepoint, drops
 *             what it holds, clears its id, merges what is left queued.
 *   Borrower  (non-owner) loads the field and, if set, takes its own counted
 *             reference (rs_get_ref: a shared increment), then either gives
 *             it back (a non-owner decrement) or hands it to the owner (a
 *             reference counted in `shared` that the owner gives back through
 *             `local`: how the local count reaches zero while QUEUED).
 *   Holder    (non-owner) if `handed`: holds a counted reference the owner
 *             made for it (counted in local) and gives it back; if
 *             `n2_clears`: it, not the owner, clears the field and applies
 *             that decrement.  Both are chosen at the start.
 * So the shared count can go below zero (QUEUED) and be queued to the owner
 * while the owner is online, offline (a lease and a merge on the spot),
 * exiting or gone, and the owner's local can reach zero with the shared count
 * positive (merge_zero_local) while non-owners decrement.
 *
 * Promela -> C
 *   h_tid, h_local,     struct rs__head: tid, local, and shared split in its
 *   h_cnt, h_st         count (h_cnt) and state (h_st: DEFAULT/QUEUED/MERGED)
 *                       (include/refstore.h, lib/internal.h)
 *   o_tid, o_state,     the owner's struct rs__thread: tid, state, qlock,
 *   o_qlock, o_qn,      qn (the queue holds at most this object), queue_hint
 *   o_hint
 *   incref              rs_incref / rs__incref_slow
 *   decref_now          rs__decref_now (brc.c)
 *   merge_zero_local    merge_zero_local (brc.c)
 *   merge               merge (merge_queued / merge_abandoned, brc.c)
 *   queue_to_owner      queue_to_owner with drain_leased, unlease (brc.c)
 *   drain_queue         rs__drain_queue / merge_queue (brc.c)
 *   give_up_ownership   rs__give_up_ownership (brc.c, from rs_thread_detach)
 *   rs_online           rs_online's CAS loop (world.c), the lease's other side
 *   rs_offline          the Owner's `off` action: the loop { rs_safepoint
 *                       (drain_queue); lock(qlock); if (!qn) break;
 *                       unlock(qlock) }, then the OFFLINE store and
 *                       unlock(qlock) (world.c); rs__defer_seal, urcu's
 *                       offline and wake_stopper are not modelled (no
 *                       deferral, no urcu, no stop: see world.pml)
 *   Owner's loop        one copy of each step (pan's size): an iteration
 *                       picks an action, then runs its drain (a loop for
 *                       rs_offline), OFFLINE store or decrement; detach drops
 *                       what is left the same way
 *   destroy             rs__push_dying + the cascade's free
 * Every load, store and CAS of a shared variable is its own atomic step; the
 * owner's local count is a load then a store (no RMW), as in the code.
 *
 * Abstracted away
 * ---------------
 * - Deferral (lib/defer.c): rs_decref logs, and the same thread applies the
 *   decrement (rs__decref_now) at a later safepoint.  Here the giving-back
 *   thread applies it itself at some later step; the grace period that must
 *   pass after a field is cleared before its decrement applies is modelled
 *   by waiting until no thread is between loading the field and its
 *   increment (`borrowing`).
 * - Private objects and the owner's immediate decrement (the object is
 *   published); weak references (TRYREF: the CAS to MERGED 0 paths); the
 *   collector's merges with the world stopped (rs__drain_queues_stopped,
 *   rs__defer_apply_stopped); the cascade to children; thread-id reuse.
 * - Memory model: sequentially consistent interleavings only.
 * - Non-owners are always online (they only apply decrements at safepoints).
 *
 * Properties
 * ----------
 * - destroy happens at most once, with the true count (ghost) 0 and nobody
 *   borrowing; no header access after destroy (use after free);
 * - the rs__die checks as assertions: no count underflow (local, MERGED
 *   count, merge total), merge only of a QUEUED object, at most one queue
 *   entry;
 * - no leak: when every thread has finished (every reference given back) the
 *   object was destroyed and the queue is empty;
 * - (Q) an owner that is OFFLINE or LEASED has an empty queue, in every
 *   reachable state (Q_OFFLINE_EMPTY, checked by init while it waits for the
 *   end).  No exception is needed: a push happens under the queue lock
 *   after a failed lease, so with the owner neither OFFLINE (the lease would
 *   succeed) nor LEASED (the lessee holds the lock); the owner turns OFFLINE
 *   only under the lock with qn == 0, and stays so until it unlocks; a lessee
 *   holds the lock from lease to unlease, so nobody pushes meanwhile.  It
 *   implies the weaker forms: no object is left queued to an OFFLINE owner
 *   once its queuer has left queue_to_owner; and drain_leased always
 *   finds the queue empty (so in the C code too, for any number of objects,
 *   since the same argument holds there);
 * - no invalid end state (deadlock) (pan -DSAFETY), and no fair
 *   non-terminating run (pan -DNP -l -f).
 *
 * Observations (no property fails)
 * - The branch of queue_to_owner for an owner id without a thread
 *   ("owner >> RS_SLOT_BITS == 0") is never taken here: a non-owner that
 *   turns DEFAULT 0 into QUEUED holds a reference counted in `local`, so
 *   merge_zero_local cannot have run; it needs paths not modelled (TRYREF).
 * - Before rs_offline took the queue lock (MUTANT_OFFLINE_UNLOCKED), an
 *   object queued after its safepoint read queue_hint (or pushed, hint not
 *   yet stored) and before its OFFLINE store stayed queued while the owner
 *   was offline (the pusher saw it ONLINE, so no lease), with all it
 *   references, until the owner's return, its detach or a collection.  (Q)
 *   now excludes it.  The queue check reads qn under the lock, not
 *   queue_hint, so a push whose hint store is still pending is seen too.
 *
 * Mutants (spin -DMUTANT_...; model/run.sh requires each to fail)
 *   MUTANT_TID_AFTER_CAS   merge_zero_local writes tid = MERGED after the CAS
 *                          that publishes MERGED (the order design.md says
 *                          ThreadSanitizer once caught): a non-owner may free
 *                          the object first (use after free).
 *   MUTANT_NO_GONE_CHECK   queue_to_owner does not compare the owner's
 *                          id under the queue lock: an object queued to an
 *                          owner that has exited is never merged (leak).
 *   MUTANT_OFFLINE_UNLOCKED  the old rs_offline: one safepoint, then
 *                          rs__set_state(OFFLINE), without the queue lock
 *                          or the queue check: a non-owner that failed the
 *                          lease (owner still ONLINE) pushes, then the owner
 *                          turns OFFLINE with the object queued ((Q) fails).
 */

#define NONE 255

/* thread ids (rs__tls.tid); MERGED is not a thread id (RS__TID_MERGED) */
#define TID_MERGED 1
#define TID_O 10
#define TID_N1 20
#define TID_N2 30

/* RS__S_* */
#define S_DEFAULT 0
#define S_QUEUED 1
#define S_MERGED 2

/* enum rs__tstate (the owner's) */
#define T_DEAD 0
#define T_ONLINE 1
#define T_OFFLINE 2
#define T_LEASED 3

#ifndef OBUDGET
#define OBUDGET 4
#endif

/* the object header */
byte h_tid = TID_O;
byte h_local;
short h_cnt;
byte h_st = S_DEFAULT;

/* the owner's struct rs__thread */
byte o_tid = TID_O;
byte o_state = T_ONLINE;
byte o_qlock = NONE;
byte o_qn;
byte o_hint;

bit field = 1;		/* the field still holds its reference */
byte borrowing;		/* threads between loading the field and incref */
bit handed;		/* the owner made a reference for the Holder */
bit n2_clears;		/* the Holder clears the field, not the owner */
byte owner_pid;		/* _pid of the Owner process */
bit gift;		/* a reference the Borrower handed to the owner */
bit gift_open = 1;	/* the owner still takes references handed to it */

/* ghosts */
byte ghost;		/* true count: references whose decrement is unapplied */
bit destroyed;

#define LOCALS byte tidr, lr, ws, ns, n, r, mg; short wc, nc, total; bit ok

#define ALIVE assert(!destroyed)

/* (Q): an owner that is OFFLINE or LEASED has an empty queue (see the
 * header; false at once under MUTANT_OFFLINE_UNLOCKED) */
#define Q_OFFLINE_EMPTY \
	(!(o_state == T_OFFLINE || o_state == T_LEASED) || o_qn == 0)

inline destroy() {
	atomic {
		assert(!destroyed);
		assert(ghost == 0);
		assert(borrowing == 0);
		destroyed = 1
	}
}

/* CAS on the shared word: expected (ec, es), new (nc2, ns2); dg is taken
 * off the ghost count on success (1 for a decrement, 0 for a merge) */
inline cas(ec, es, nc2, ns2, dg) {
	atomic {
		ALIVE;
		if
		:: h_cnt == ec && h_st == es ->
			h_cnt = nc2; h_st = ns2; ghost = ghost - dg; ok = 1
		:: else -> ec = h_cnt; es = h_st; ok = 0
		fi
	}
}

inline qlock()   { atomic { o_qlock == NONE -> o_qlock = _pid } }
inline qunlock() { assert(o_qlock == _pid); o_qlock = NONE }

inline merge() {
	atomic { ALIVE; lr = h_local };
	atomic { ALIVE; wc = h_cnt; ws = h_st };
	atomic { ALIVE; h_local = 0 };
	atomic { ALIVE; h_tid = TID_MERGED };
	do
	:: assert(ws == S_QUEUED);	/* "merge of an object ... not queued" */
		total = wc + lr;
		assert(total >= 0);	/* "count underflow" */
		if
		:: total == 0 -> destroy(); break
		:: else ->
			cas(wc, ws, total, S_MERGED, 0);
			if
			:: ok -> break
			:: else -> skip
			fi
		fi
	od
}

inline merge_zero_local() {
	atomic { ALIVE; wc = h_cnt; ws = h_st };
	if
	:: wc == 0 && ws == S_DEFAULT -> destroy()	/* no RMW at all */
	:: else ->
#ifndef MUTANT_TID_AFTER_CAS
		atomic { ALIVE; h_tid = TID_MERGED };
#endif
		do
		:: ws == S_QUEUED -> break	/* its queue entry merges it */
		:: ws == S_DEFAULT && wc == 0 -> destroy(); break
		:: else ->
			assert(ws == S_DEFAULT && wc > 0);
			cas(wc, ws, wc, S_MERGED, 0);
			if
			:: ok ->
#ifdef MUTANT_TID_AFTER_CAS
				atomic { ALIVE; h_tid = TID_MERGED };
#endif
				break
			:: else -> skip
			fi
		od
	fi
}

#ifdef MUTANT_NO_GONE_CHECK
#define OWNER_GONE false
#else
#define OWNER_GONE (o_tid != tidr)
#endif

inline queue_to_owner() {
	if
	:: tidr != TID_O -> mg = 1	/* no owner id was read */
	:: else ->
		qlock();
		if
		:: OWNER_GONE ->	/* the owner is gone */
			qunlock();
			mg = 1
		:: else ->
			atomic {	/* o != t && lease_offline(o) */
				if
				:: _pid != owner_pid && o_state == T_OFFLINE ->
					o_state = T_LEASED; mg = 2
				:: else -> mg = 0
				fi };
			if
			:: mg == 0 ->	/* queue_push */
				o_qn++;
				assert(o_qn == 1);	/* one entry per object */
				o_hint = o_qn;
				qunlock()
			:: else -> skip
			fi
		fi
	fi;
	if
	:: mg != 0 ->
		merge();	/* merge_abandoned */
		if
		:: mg == 2 ->
			assert(o_qn == 0);	/* drain_leased: one object */
			o_hint = 0;
			o_state = T_OFFLINE;	/* unlease */
			qunlock()
		:: else -> skip
		fi;
		mg = 0
	:: else -> skip
	fi
}

inline decref_now(mytid) {
	atomic { ALIVE; tidr = h_tid };
	if
	:: tidr == mytid ->	/* owner: local - 1, a load and a store */
		atomic { ALIVE; lr = h_local };
		assert(lr > 0);
		atomic { ALIVE; h_local = lr - 1; ghost-- };
		if
		:: lr == 1 -> merge_zero_local()
		:: else -> skip
		fi
	:: else ->
		atomic { ALIVE; wc = h_cnt; ws = h_st };
		do
		:: assert(!(ws == S_MERGED && wc <= 0));
			if
			:: ws == S_DEFAULT && wc == 0 -> nc = -1; ns = S_QUEUED
			:: else -> nc = wc - 1; ns = ws
			fi;
			cas(wc, ws, nc, ns, 1);
			if
			:: ok -> break
			:: else -> skip
			fi
		od;
		if
		:: ns == S_MERGED && nc == 0 -> destroy()
		:: ws == S_DEFAULT && ns == S_QUEUED -> queue_to_owner()
		:: else -> skip
		fi
	fi;
	tidr = 0; lr = 0; ws = 0; ns = 0; wc = 0; nc = 0; total = 0; ok = 0
}

inline incref(mytid) {
	atomic { ALIVE; tidr = h_tid };
	if
	:: tidr == mytid ->
		atomic { ALIVE; lr = h_local };
		atomic { ALIVE; h_local = lr + 1; ghost++ }
	:: else -> atomic { ALIVE; h_cnt++; ghost++ }	/* atomic add */
	fi;
	tidr = 0; lr = 0
}

/* rs_get_ref(&field) by a thread holding no reference of its own */
inline get_ref(mytid, got) {
	atomic {
		if
		:: field -> borrowing++; got = 1
		:: else -> got = 0
		fi };
	if
	:: got -> incref(mytid); borrowing--
	:: else -> skip
	fi
}

inline drain_queue() {
	if
	:: o_hint > 0 ->
		qlock();
		n = o_qn; o_qn = 0; o_hint = 0;
		qunlock();
		if
		:: n > 0 -> merge()
		:: else -> skip
		fi;
		n = 0
	:: else -> skip
	fi
}

inline rs_online() {
	do
	:: atomic {
		if
		:: o_state == T_OFFLINE -> o_state = T_ONLINE; r = 1
		:: o_state == T_LEASED -> r = 2
		:: else -> r = 0
		fi };
	   if
	   :: r == 2 -> skip		/* leased: yield and retry */
	   :: else -> break
	   fi
	od;
	r = 0
}

proctype Owner()
{
	LOCALS;
	byte budget = OBUDGET;
	byte mytid = TID_O;	/* rs__tls.tid */
	bit off, tmp, pend, leaving, drain, dec;

	/* One loop, so that each protocol step has one copy in pan: an action
	 * is chosen, then its safepoint (drain), OFFLINE store or decrement
	 * runs at the end of the iteration. */
	do
	:: off -> rs_online(); off = 0
	:: !off ->
		if
		:: !leaving && budget > 0 ->
			budget--;
			if
			:: drain = 1			/* rs_safepoint */
			:: drain = 1; off = 1		/* rs_offline */
			:: !tmp -> get_ref(mytid, tmp)	/* rs_get_ref(field) */
			:: tmp -> tmp = 0; dec = 1	/* its rs_decref, applied */
			:: field && !n2_clears -> field = 0; pend = 1	/* rs_clear */
			:: pend && borrowing == 0 -> pend = 0; dec = 1	/* after the grace period */
			:: gift -> gift = 0; dec = 1	/* the handed reference */
			fi
		:: !leaving && budget == 0 ->	/* rs_thread_detach: safepoint */
			leaving = 1; drain = 1; gift_open = 0
		:: leaving ->			/* ... then drop everything */
			if
			:: gift -> gift = 0; dec = 1
			:: !gift && tmp -> tmp = 0; dec = 1
			:: !gift && !tmp && field && !n2_clears -> field = 0; pend = 1
			:: !gift && !tmp && !(field && !n2_clears) && pend ->
				borrowing == 0; pend = 0; dec = 1
			:: !gift && !tmp && !(field && !n2_clears) && !pend -> break
			fi
		fi;
		/* rs_safepoint; for rs_offline the loop around it: safepoint,
		 * lock(qlock), break if the queue is empty (the lock kept),
		 * else unlock and go round again */
		do
		:: drain ->
			drain_queue();
#ifdef MUTANT_OFFLINE_UNLOCKED
			drain = 0
#else
			if
			:: off ->
				qlock();
				if
				:: o_qn == 0 -> drain = 0
				:: else -> qunlock()
				fi
			:: else -> drain = 0
			fi
#endif
		:: else -> break
		od;
		if
		:: off ->
			o_state = T_OFFLINE;	/* seq_cst store */
#ifndef MUTANT_OFFLINE_UNLOCKED
			qunlock()
#endif
		:: else -> skip
		fi;
		if
		:: dec -> decref_now(mytid); dec = 0
		:: else -> skip
		fi
	od;
	mytid = 0;		/* rs__tls.tid = 0 */
	qlock();		/* rs__give_up_ownership */
	o_tid = 0;
	n = o_qn; o_qn = 0; o_hint = 0;
	qunlock();
	if
	:: n > 0 -> merge()
	:: else -> skip
	fi;
	o_state = T_DEAD
}

proctype Borrower()
{
	LOCALS;
	bit got;

	get_ref(TID_N1, got);
	if
	:: got ->
		if		/* hand the reference to the owner, or drop it */
		:: atomic { gift_open -> gift = 1 }
		:: decref_now(TID_N1)
		fi
	:: else -> skip
	fi
}

proctype Holder()
{
	LOCALS;
	bit h = handed, c = n2_clears;

	do
	:: h -> h = 0; decref_now(TID_N2)	/* the handed reference */
	:: !h && c ->				/* rs_clear(field), applied */
		c = 0; field = 0; borrowing == 0; decref_now(TID_N2)
	:: !h && !c -> break
	od
}

init
{
	atomic {
		if
		:: handed = 1
		:: handed = 0
		fi;
		if
		:: n2_clears = 1
		:: n2_clears = 0
		fi;
		h_local = 1 + handed;	/* rs_new (the field's) + the handed one */
		ghost = h_local;
		owner_pid = run Owner();
		run Borrower();
		run Holder()
	};
	/* wait for every other process to end; meanwhile, in every reachable
	 * state, check (Q) */
	do
	:: _nr_pr == 1 -> break
	:: !Q_OFFLINE_EMPTY -> assert(Q_OFFLINE_EMPTY)
	od;
	assert(ghost == 0 && destroyed && o_qn == 0)
}
