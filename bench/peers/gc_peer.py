#!/usr/bin/env python3
"""gc_peer.py - CPython's gc on the shapes of bench/bench_gc.c, for its
peer columns.  Run by bench_gc, not by hand (but it can be):

    python3 gc_peer.py N LIVE_REPS GARB_REPS YOUNG_REPS YOUNG RING

Prints "version X.Y.Z", then one line per timed collection:
"<case> <objects> <found> <ns>", case one of live, garbage, young0, youngN
(found: what gc.collect returned; ns: its wall time).  The shapes, as in
bench_gc.c: N nodes with __slots__ a, b, v, each pointing at two random
nodes, all held by a list (live; one warm-up gc.collect(), then LIVE_REPS
timed full collections); N nodes in rings of RING, a the next node, b a
random node of the ring, nothing else referring to them (garbage; one timed
gc.collect() per fresh build); YOUNG nodes of the first shape, collected
with gc.collect(0) over an old heap of 0 and of the N-node graph (young0,
youngN; one untimed warm-up, and the young set is dropped and collected
untimed between repeats).
Automatic collection is off (gc.disable()) and nothing is frozen: a plain
gc.collect() is what a Python program gets.
"""
import gc
import platform
import random
import sys
import time


class Node:
    __slots__ = ("a", "b", "v")


def build_graph(n):
    """n nodes, each pointing at two random ones; the list holds them."""
    nodes = [Node() for _ in range(n)]
    # random.choices loops in C: the build stays a small part of the run
    for x, p, q, i in zip(nodes, random.choices(nodes, k=n),
                          random.choices(nodes, k=n), range(n)):
        x.a = p
        x.b = q
        x.v = i
    return nodes


def build_rings(n, ring):
    """n // ring rings, dropped as they are made; returns the nodes made."""
    made = 0
    for r in range(n // ring):
        nodes = [Node() for _ in range(ring)]
        for k, x in enumerate(nodes):
            x.a = nodes[(k + 1) % ring]
            x.b = nodes[random.randrange(ring)]
            x.v = made + k
        made += ring
    del nodes
    return made


def timed(gen, case, objects):
    t0 = time.perf_counter_ns()
    found = gc.collect(gen)
    ns = time.perf_counter_ns() - t0
    print(f"{case} {objects} {found} {ns}", flush=True)


def young(case, reps, n_young):
    for rep in range(-1, reps):  # -1: warm-up, not printed
        ys = build_graph(n_young)
        t0 = time.perf_counter_ns()
        found = gc.collect(0)
        ns = time.perf_counter_ns() - t0
        if rep >= 0:
            print(f"{case} {n_young} {found} {ns}", flush=True)
        del ys
        gc.collect(1)  # untimed: every repeat starts from the same heap


def main():
    if len(sys.argv) != 7:
        sys.exit("usage: gc_peer.py N LIVE_REPS GARB_REPS YOUNG_REPS YOUNG RING")
    n, live_reps, garb_reps, young_reps, n_young, ring = map(int, sys.argv[1:])
    random.seed(1)
    gc.disable()
    gc.collect()
    print(f"version {platform.python_version()}", flush=True)

    nodes = build_graph(n)
    gc.collect()  # warm-up: everything in the oldest generation
    for _ in range(live_reps):
        timed(2, "live", n)
    young("youngN", young_reps, n_young)
    del nodes
    gc.collect()

    for _ in range(garb_reps):
        made = build_rings(n, ring)
        timed(2, "garbage", made)
    young("young0", young_reps, n_young)  # last, as in bench_gc.c


if __name__ == "__main__":
    main()
