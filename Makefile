# refstore - one non-recursive Makefile.
#
#   make                  the static and shared library (build/release)
#   make check            build and run every TAP test through prove
#   make check SANITIZE=address   ... under ASan+UBSan (build/address)
#   make check SANITIZE=thread    ... under TSan (build/thread)
#   make check DEBUG=1    ... with the debug checks (build/debug)
#   make check-valgrind   the debug build's TAP tests under Valgrind's
#                         memcheck (VALGRIND_TESTS=... for a subset)
#   make bench            the benchmarks (release build), ratios against peers,
#                         briefly (a few minutes); outputs and one summary
#                         (table, chart) in build/bench
#   make bench-long       the same with longer runs and more repeats
#   make demo             the demo: a threaded server's requests on refstore and
#                         on the Boehm GC, pauses under contention (docs/demo.md)
#                         (flags through DEMO_ARGS, e.g. DEMO_ARGS="--seconds 4")
#   make resp-bench       resp-server (a Redis-protocol server on refstore)
#                         against redis-server with redis-benchmark, ~2 min
#                         (RESP_BENCH_ARGS=--short: seconds; docs/servers.md)
#   make stress           every stress program briefly (release, TSan, ASan)
#   make torture DURATION=s   the stress programs long, rotating seeds
#   make fuzz FUZZ_SECONDS=s  the libFuzzer harness (clang), from fuzz/corpus
#   make model            the Promela models, checked with spin
#   make install PREFIX=/usr/local
#   make deps             check (and on Debian, as root, install) what the
#                         library and tests need; scripts/deps.sh GROUP... does
#                         it for bench, demo, fuzz, model and ci
#
# WERROR=1 turns warnings into errors (CI sets it).

PREFIX  ?= /usr/local
LIBDIR  ?= $(PREFIX)/lib
INCDIR  ?= $(PREFIX)/include
CC      ?= cc
CXX     ?= c++
PROVE   ?= prove

SANITIZE ?=
DEBUG    ?= 0
WERROR   ?= 0

VARIANT := $(if $(SANITIZE),$(SANITIZE),release)$(if $(filter 1,$(DEBUG)),-debug,)
ifeq ($(VARIANT),release-debug)
VARIANT := debug
endif
B := build/$(VARIANT)

# Dependencies: pkg-config name -> Debian package
PKGS      := liburcu-qsbr liburcu-cds
PKG_DEBS  := liburcu-dev

WARN := -Wall -Wextra -Wpedantic -Wshadow -Wmissing-prototypes \
        -Wstrict-prototypes -Wpointer-arith -Wcast-align -Wwrite-strings \
        -Wformat=2 -Wvla -Wnull-dereference -Wundef
ifeq ($(WERROR),1)
WARN += -Werror
endif

OPT := $(if $(filter 1,$(DEBUG)),-O1 -DRS_DEBUG=1,-O2)
SAN :=
ifeq ($(SANITIZE),address)
SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined \
       -fno-omit-frame-pointer -DRS_PLAIN_MALLOC
else ifeq ($(SANITIZE),thread)
SAN := -fsanitize=thread -DRS_PLAIN_MALLOC
else ifneq ($(SANITIZE),)
$(error SANITIZE must be address or thread)
endif

DEP_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
DEP_LIBS   = $(shell pkg-config --libs liburcu-qsbr liburcu-cds 2>/dev/null) -lpthread

CFLAGS   ?=
CPPFLAGS := -Iinclude -Ilib -D_GNU_SOURCE
ALL_CFLAGS := -std=c11 -g -fPIC -fvisibility=hidden $(OPT) $(SAN) $(WARN) \
              $(DEP_CFLAGS) $(CFLAGS)
LDFLAGS  ?=
ALL_LDFLAGS := $(SAN) $(LDFLAGS)

LIB_SRC := $(sort $(wildcard lib/*.c threads/*.c))
LIB_OBJ := $(patsubst %.c,$(B)/obj/%.o,$(LIB_SRC))

# Header dependencies: every compile writes, next to its output, a .d file
# naming the headers it read (-MMD; -MP adds an empty rule for each, so a
# header that is removed is no error); the end of this file includes them.
# Nothing lists headers by hand.
DEPFLAGS := -MMD -MP

TEST_SRC := $(wildcard tests/test_*.c)
TESTS    := $(patsubst tests/%.c,$(B)/tests/%.t,$(TEST_SRC)) \
            $(B)/tests/test_header_cxx.t $(B)/tests/test_shared.t
EXAMPLE  := $(B)/tests/example $(B)/tests/uaf
TEST_SH  := $(wildcard tests/*.sh)

BENCH_SRC := $(wildcard bench/bench_*.c)
BENCHES   := $(patsubst bench/%.c,$(B)/bench/%,$(BENCH_SRC))
DEMO      := $(B)/bench/demo
RESP_SERVER := $(B)/bench/resp-server

# The version, written once: VERSION (major.minor.patch).  refstore.pc takes
# it from here; tests/version.sh checks that include/refstore.h's
# REFSTORE_VERSION_MAJOR and _MINOR say the same.
VERSION := $(strip $(file < VERSION))

.PHONY: all lib check bench demo install uninstall clean deps FORCE
all: lib
lib: $(B)/librefstore.a $(B)/librefstore.so

# --------------------------------------------------------------------------
# Dependencies: scripts/deps.sh checks each group once per build folder (a
# stamp file), installs what is missing with apt-get when run as root on
# Debian, and otherwise says in one line what is missing; it fails only for
# what is required (build, fuzz, model, bench's mimalloc and jemalloc).
# --------------------------------------------------------------------------
DEPS = PROVE='$(PROVE)' FUZZ_CC='$(FUZZ_CC)' scripts/deps.sh

deps: $(B)/.deps
$(B)/.deps:
	@mkdir -p $(B)
	@$(DEPS) build
	@touch $@

# --------------------------------------------------------------------------
# The library
# --------------------------------------------------------------------------
$(B)/obj/%.o: %.c | $(B)/.deps
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -DRS_BUILDING=1 $(ALL_CFLAGS) $(DEPFLAGS) -c $< -o $@

$(B)/librefstore.a: $(LIB_OBJ)
	rm -f $@
	ar rcs $@ $^

$(B)/librefstore.so.0: $(LIB_OBJ)
	$(CC) -shared -Wl,-soname,librefstore.so.0 -Wl,-z,defs $(ALL_LDFLAGS) \
	  -o $@ $^ $(DEP_LIBS)

$(B)/librefstore.so: $(B)/librefstore.so.0
	ln -sf librefstore.so.0 $@

# --------------------------------------------------------------------------
# Tests: one TAP program per module, linked statically (they may use the
# internal rs__ functions); two more link the shared library and include only
# the public header, as C and as C++.
# --------------------------------------------------------------------------
$(B)/tests/%.t: tests/%.c $(B)/librefstore.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) $(DEPFLAGS) -Wno-missing-prototypes $< -o $@ \
	  $(ALL_LDFLAGS) $(B)/librefstore.a $(DEP_LIBS) -lm

$(B)/tests/test_shared.t: tests/shared.c $(B)/librefstore.so
	@mkdir -p $(dir $@)
	$(CC) -Iinclude -std=c99 -g $(OPT) $(SAN) $(WARN) $(DEPFLAGS) $< -o $@ \
	  $(ALL_LDFLAGS) -L$(B) -l:librefstore.so -Wl,-rpath,$(abspath $(B)) -lpthread

$(B)/tests/test_header_cxx.t: tests/header.cc $(B)/librefstore.so
	@mkdir -p $(dir $@)
	$(CXX) -Iinclude -std=c++11 -g $(OPT) $(SAN) -Wall -Wextra -Wpedantic \
	  $(if $(filter 1,$(WERROR)),-Werror,) $(DEPFLAGS) $< -o $@ \
	  $(ALL_LDFLAGS) -L$(B) -l:librefstore.so -Wl,-rpath,$(abspath $(B)) -lpthread

# The README's example, built as a user would: public header, the library.
$(EXAMPLE): $(B)/tests/%: tests/%.c $(B)/librefstore.a
	@mkdir -p $(dir $@)
	$(CC) -Iinclude -std=c11 -g $(OPT) $(SAN) $(WARN) $(DEPFLAGS) $< -o $@ \
	  $(ALL_LDFLAGS) $(B)/librefstore.a $(DEP_LIBS)

# A host program linked as a user would link it (tests/malloc_binding.sh):
# with the shared library, and with the static one and the link line
# pkg-config gives for it, from a folder that holds only the archive (as an
# installed librefstore.a would be found).
HOSTS := $(B)/tests/host_shared $(B)/tests/host_static
HOST_PC = PKG_CONFIG_PATH=$(B) pkg-config --define-variable=includedir=$(abspath include) \
	  --define-variable=libdir=$(abspath $(B)/tests/static)

$(B)/tests/host_shared: tests/host.c $(B)/librefstore.so
	@mkdir -p $(dir $@)
	$(CC) -Iinclude -std=c11 -g $(OPT) $(SAN) $(WARN) $(DEPFLAGS) $< -o $@ \
	  $(ALL_LDFLAGS) -L$(B) -l:librefstore.so -Wl,-rpath,$(abspath $(B))

# And a host that chose jemalloc for itself (outside sanitizer builds, whose
# runtime owns malloc): its malloc must stay jemalloc's.
ifeq ($(SANITIZE),)
ifneq ($(shell pkg-config --exists jemalloc 2>/dev/null && echo 1),)
HOSTS += $(B)/tests/host_jemalloc
endif
endif
$(B)/tests/host_jemalloc: HOST_LIBS = $(shell pkg-config --libs jemalloc 2>/dev/null)

$(B)/tests/static/librefstore.a: $(B)/librefstore.a
	@mkdir -p $(dir $@)
	ln -sf ../../librefstore.a $@

$(B)/tests/host_static $(B)/tests/host_jemalloc: $(B)/tests/host_%: tests/host.c \
		$(B)/tests/static/librefstore.a $(B)/refstore.pc
	$(CC) $$($(HOST_PC) --cflags refstore) -std=c11 -g $(OPT) $(SAN) $(WARN) \
	  $(DEPFLAGS) $< -o $@ $(ALL_LDFLAGS) $$($(HOST_PC) --static --libs refstore) \
	  $(HOST_LIBS)

check: $(TESTS) $(EXAMPLE) $(HOSTS) $(RESP_SERVER) $(B)/refstore.pc
	B=$(B) $(PROVE) --exec '' --merge --timer $(TESTS) $(TEST_SH)

# The debug build (whose allocator tells Valgrind which slots are objects)
# under memcheck: any error fails the test (exit 9).  All tests take ~8
# minutes on 2 cores; VALGRIND_TESTS picks some by name (test_gc ...).
VALGRIND_TESTS ?= $(patsubst tests/%.c,%,$(TEST_SRC))
.PHONY: check-valgrind
ifeq ($(VARIANT),debug)
check-valgrind: $(patsubst %,$(B)/tests/%.t,$(VALGRIND_TESTS))
	@command -v valgrind >/dev/null 2>&1 || { \
	  echo "refstore: make check-valgrind needs valgrind: apt-get install valgrind"; exit 1; }
	B=$(B) $(PROVE) --exec 'valgrind -q --error-exitcode=9' --merge --timer $^
else
check-valgrind:
	@$(MAKE) --no-print-directory DEBUG=1 check-valgrind
endif

# --------------------------------------------------------------------------
# Benchmarks (not tests: no thresholds; each prints ratios against a peer)
# --------------------------------------------------------------------------
$(B)/bench/%: bench/%.c $(B)/librefstore.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) $(DEPFLAGS) -Wno-missing-prototypes $< -o $@ \
	  $(ALL_LDFLAGS) $(B)/librefstore.a $(DEP_LIBS) -lm

# bench_alloc also measures mimalloc (libmimalloc-dev) and jemalloc
# (libjemalloc-dev), calling both directly, so it links both whatever the
# build.  They are its peers: the library itself links neither.
BENCH_ALLOC_LIBS = $(shell pkg-config --libs mimalloc 2>/dev/null || echo -lmimalloc) \
                   $(shell pkg-config --libs jemalloc 2>/dev/null || echo -ljemalloc)
$(B)/bench/bench_alloc: bench/bench_alloc.c $(B)/librefstore.a $(B)/.bench-deps
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) $(shell pkg-config --cflags jemalloc 2>/dev/null) \
	  $(DEPFLAGS) -Wno-missing-prototypes $< -o $@ \
	  $(ALL_LDFLAGS) $(B)/librefstore.a $(DEP_LIBS) $(BENCH_ALLOC_LIBS) -lm

# bench_gc measures the Boehm GC (libgc-dev) in this process, so it links
# libgc; without gc.h it is built without that peer and says so when run.
# Its other peer, CPython, is bench/peers/gc_peer.py run by python3.
# Recursive variables: read when the recipe runs, after .bench-deps.
BENCH_GC_BOEHM = $(shell { pkg-config --exists bdw-gc || [ -f /usr/include/gc.h ]; } \
                   2>/dev/null && echo 1)
BENCH_GC_FLAGS = $(if $(BENCH_GC_BOEHM),-DHAVE_BOEHM=1 $(shell pkg-config --cflags bdw-gc 2>/dev/null),)
BENCH_GC_LIBS  = $(if $(BENCH_GC_BOEHM),$(shell pkg-config --libs bdw-gc 2>/dev/null || echo -lgc),)
$(B)/bench/bench_gc: bench/bench_gc.c $(B)/librefstore.a $(B)/.bench-deps
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) $(BENCH_GC_FLAGS) $(DEPFLAGS) -Wno-missing-prototypes $< -o $@ \
	  $(ALL_LDFLAGS) $(B)/librefstore.a $(DEP_LIBS) $(BENCH_GC_LIBS) -lm

# bench_gcbench (GCBench) and bench_bintree (binary-trees) run the same
# trees on refstore, the Boehm GC and glibc malloc: linked like bench_gc
# (with libgc when gc.h is there, else without that peer).
$(B)/bench/bench_gcbench: bench/bench_gcbench.c $(B)/librefstore.a $(B)/.bench-deps
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) $(BENCH_GC_FLAGS) $(DEPFLAGS) -Wno-missing-prototypes $< -o $@ \
	  $(ALL_LDFLAGS) $(B)/librefstore.a $(DEP_LIBS) $(BENCH_GC_LIBS) -lm

$(B)/bench/bench_bintree: bench/bench_bintree.c $(B)/librefstore.a $(B)/.bench-deps
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) $(BENCH_GC_FLAGS) $(DEPFLAGS) -Wno-missing-prototypes $< -o $@ \
	  $(ALL_LDFLAGS) $(B)/librefstore.a $(DEP_LIBS) $(BENCH_GC_LIBS) -lm

# The benchmarks' extra peers and tools: mimalloc and jemalloc (bench_alloc;
# required), the Boehm GC and python3 (bench_gc, which skips a missing peer),
# python3 for the summary (bench/report.py) and gnuplot for its chart (both
# skipped when missing, so they are not required).
$(B)/.bench-deps: | $(B)/.deps
	@$(DEPS) bench
	@touch $@

# make bench runs every bench/bench_*.c program in turn (the demo is built
# but not run: that is make demo), each with BENCH_ARGS_<program> (short
# settings: all of it in a few minutes on 2 cores) or, for make bench-long,
# BENCH_LONG_ARGS_<program>; a program without such a variable runs with its
# own defaults.  Each one's output goes to the terminal and to
# $(BENCH_OUT)/<program>.txt; then bench/report.py reads the summary rows
# (BENCHROW lines) of those files and writes $(BENCH_OUT)/summary.md and
# ratios.png.  A program that fails does not stop the others; the target
# fails at the end.  A missing peer only drops that peer's rows.
BENCH_OUT ?= build/bench
BENCH_ARGS_bench_refcount      ?= 0.2 5
BENCH_LONG_ARGS_bench_refcount ?= 1 9
BENCH_ARGS_bench_alloc         ?= 0.1 5
BENCH_LONG_ARGS_bench_alloc    ?= 0.5 9
BENCH_ARGS_bench_stw           ?= -d 2 -r 5
BENCH_LONG_ARGS_bench_stw      ?= -d 10 -r 10
BENCH_ARGS_bench_gc            ?= -n 1000000 -b 15000000
BENCH_LONG_ARGS_bench_gc       ?= -n 1000000 -b 15000000
BENCH_ARGS_bench_map           ?= -d 0.3 -r 5
BENCH_LONG_ARGS_bench_map      ?= -d 2 -r 9

# $(call bench_run,program,arguments): one program; a failure is noted in
# the shell variable failed.
bench_run = n=$(notdir $(1)); t=$$(date +%s); echo "== $$n $(2)"; \
	{ $(1) $(2) 2>&1; echo $$? >$(BENCH_OUT)/$$n.rc; } | tee $(BENCH_OUT)/$$n.txt; \
	rc=$$(cat $(BENCH_OUT)/$$n.rc); rm -f $(BENCH_OUT)/$$n.rc; \
	echo "== $$n: exit $$rc, $$(( $$(date +%s) - t )) s"; \
	[ "$$rc" = 0 ] || failed="$$failed $$n";

# $(call bench_all,BENCH_ARGS or BENCH_LONG_ARGS)
bench_all = @mkdir -p $(BENCH_OUT); failed=""; start=$$(date +%s); \
	$(foreach b,$(BENCHES),$(call bench_run,$(b),$($(1)_$(notdir $(b))))) \
	echo "== all benchmarks: $$(( $$(date +%s) - start )) s"; \
	if command -v python3 >/dev/null 2>&1; then \
	  python3 bench/report.py --out $(BENCH_OUT) \
	    $(foreach b,$(BENCHES),$(BENCH_OUT)/$(notdir $(b)).txt) || failed="$$failed report.py"; \
	else \
	  echo "refstore: python3 is missing: no summary (apt-get install python3)"; \
	fi; \
	if [ -n "$$failed" ]; then echo "bench: failed:$$failed"; exit 1; fi

.PHONY: bench-long
bench: $(BENCHES) $(DEMO) $(B)/.bench-deps
	$(call bench_all,BENCH_ARGS)

bench-long: $(BENCHES) $(DEMO) $(B)/.bench-deps
	$(call bench_all,BENCH_LONG_ARGS)

# --------------------------------------------------------------------------
# The demo (docs/demo.md): worker threads serving requests against a map of
# object graphs, on refstore and, in another process, on the Boehm GC.  Built
# like bench_gc (with libgc when gc.h is there, else without that peer);
# gnuplot draws its chart.  Both are optional (scripts/deps.sh demo).
# --------------------------------------------------------------------------
DEMO_ARGS ?=

# The demo is bench/demo.c or, once that is split, every bench/demo/*.c.
# One compiler call builds all of them, so its header dependencies come from
# a -MM pass over all the sources (-MMD would keep only the last one's); the
# sources themselves are left out of that file, being listed here.
DEMO_SRC := $(if $(wildcard bench/demo/*.c),$(sort $(wildcard bench/demo/*.c)),bench/demo.c)

$(DEMO): $(DEMO_SRC) $(B)/librefstore.a $(B)/.demo-deps
	@mkdir -p $(dir $@)
	@$(CC) $(CPPFLAGS) $(ALL_CFLAGS) $(BENCH_GC_FLAGS) -MM -MP -MT $@ $(DEMO_SRC) | \
	  sed 's|^\([^:]*\): *[^ ]*\.c|\1:|' >$@.d
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) $(BENCH_GC_FLAGS) $(DEMO_SRC) -o $@ \
	  $(ALL_LDFLAGS) $(B)/librefstore.a $(DEP_LIBS) $(BENCH_GC_LIBS) -lm

$(B)/.demo-deps: | $(B)/.deps
	@$(DEPS) demo
	@touch $@

demo: $(DEMO)
	$(DEMO) $(DEMO_ARGS)

# --------------------------------------------------------------------------
# resp-server (bench/resp/, docs/servers.md): a Redis-protocol server on
# refstore's public API, built from every bench/resp/*.c in one compiler
# call like the demo (header dependencies from a -MM pass).  make check
# builds it for tests/resp.sh.  make resp-bench runs it against
# redis-server with redis-benchmark (bench/resp/resp-bench.sh; scripts/
# deps.sh resp installs redis-server and redis-tools), both on 127.0.0.1.
# --------------------------------------------------------------------------
RESP_SRC := $(sort $(wildcard bench/resp/*.c))
RESP_BENCH_ARGS ?=

$(RESP_SERVER): $(RESP_SRC) $(B)/librefstore.a
	@mkdir -p $(dir $@)
	@$(CC) -Iinclude $(ALL_CFLAGS) -MM -MP -MT $@ $(RESP_SRC) | \
	  sed 's|^\([^:]*\): *[^ ]*\.c|\1:|' >$@.d
	$(CC) -Iinclude -D_GNU_SOURCE $(ALL_CFLAGS) $(RESP_SRC) -o $@ \
	  $(ALL_LDFLAGS) $(B)/librefstore.a $(DEP_LIBS)

$(B)/.resp-deps: | $(B)/.deps
	@$(DEPS) resp
	@touch $@

.PHONY: resp-bench
resp-bench: $(RESP_SERVER) $(B)/.resp-deps
	bench/resp/resp-bench.sh --server $(RESP_SERVER) --out $(BENCH_OUT)/resp $(RESP_BENCH_ARGS)

# --------------------------------------------------------------------------
# Stress programs (stress/stress_*.c, docs/testing.md): self-checking, each
# run as <program> <threads> <seconds> <seed>.  make stress runs every one
# briefly in the release build, then under TSan and under ASan+UBSan with
# smaller settings; make torture runs them long (DURATION seconds in all,
# default 3600), rotating programs, builds and seeds, and stops at the first
# failure with the line that replays it.  Both drive stress/run.sh.
# --------------------------------------------------------------------------
STRESS_SRC := $(wildcard stress/stress_*.c)
STRESS     := $(patsubst stress/%.c,$(B)/stress/%,$(STRESS_SRC))
STRESS_THREADS ?= 3
STRESS_SECONDS ?= 4
STRESS_SAN_SECONDS ?= 2
DURATION ?= 3600
TORTURE_RUN ?= 60

$(B)/stress/%: stress/%.c $(B)/librefstore.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) $(DEPFLAGS) -Wno-missing-prototypes $< -o $@ \
	  $(ALL_LDFLAGS) $(B)/librefstore.a $(DEP_LIBS) -lm

stress-build: $(STRESS)

.PHONY: stress stress-build torture
ifeq ($(SANITIZE)$(DEBUG),0)
stress: stress-build
	$(MAKE) --no-print-directory SANITIZE=thread stress-build
	$(MAKE) --no-print-directory SANITIZE=address stress-build
	stress/run.sh brief $(STRESS_THREADS) $(STRESS_SECONDS) $(STRESS_SAN_SECONDS)

torture: stress-build
	$(MAKE) --no-print-directory SANITIZE=thread stress-build
	$(MAKE) --no-print-directory SANITIZE=address stress-build
	stress/run.sh torture $(STRESS_THREADS) $(TORTURE_RUN) $(DURATION)
else
stress torture:
	@echo "make $@ builds its own variants: run it without SANITIZE or DEBUG"; exit 2
endif

# --------------------------------------------------------------------------
# Fuzzing (fuzz/, docs/testing.md): a libFuzzer harness that runs bytes as
# a program of operations against a reference model.  The library is built
# again with clang, the fuzzer's coverage and ASan+UBSan (build/fuzz).
# make fuzz FUZZ_SECONDS=n runs it from the seed corpus fuzz/corpus (new
# inputs go to build/fuzz/corpus; crashes to build/fuzz/crash-*); make
# fuzz-regress runs every file of fuzz/corpus and fuzz/regress once.
# --------------------------------------------------------------------------
FUZZ_CC  ?= clang
FUZZ_B   := build/fuzz
FUZZ_SECONDS ?= 60
FUZZ_CFLAGS := -std=c11 -g -O1 -fno-omit-frame-pointer -DRS_PLAIN_MALLOC \
	-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined \
	$(CPPFLAGS) $(DEP_CFLAGS)
FUZZ_OBJ := $(patsubst %.c,$(FUZZ_B)/obj/%.o,$(LIB_SRC))

$(FUZZ_B)/.deps:
	@mkdir -p $(FUZZ_B)
	@$(DEPS) fuzz
	@touch $@

$(FUZZ_B)/obj/%.o: %.c $(B)/.deps $(FUZZ_B)/.deps
	@mkdir -p $(dir $@)
	$(FUZZ_CC) -DRS_BUILDING=1 -DRS_DEBUG=1 $(FUZZ_CFLAGS) $(DEPFLAGS) -c $< -o $@

$(FUZZ_B)/fuzz_ops: fuzz/fuzz_ops.c $(FUZZ_OBJ)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(DEPFLAGS) -fsanitize=fuzzer $< $(FUZZ_OBJ) -o $@ $(DEP_LIBS) -lm

.PHONY: fuzz fuzz-regress
fuzz: $(FUZZ_B)/fuzz_ops
	@mkdir -p $(FUZZ_B)/corpus
	$(FUZZ_B)/fuzz_ops -max_total_time=$(FUZZ_SECONDS) -timeout=10 \
	  -artifact_prefix=$(FUZZ_B)/ $(FUZZ_B)/corpus fuzz/corpus

fuzz-regress: $(FUZZ_B)/fuzz_ops
	$(FUZZ_B)/fuzz_ops -runs=0 $(wildcard fuzz/corpus/* fuzz/regress/*)

# --------------------------------------------------------------------------
# Model checking (model/, docs/testing.md): Promela models of the stop-the-
# world handshake and of the biased count's merge, checked with spin.
# --------------------------------------------------------------------------
.PHONY: model
model:
	@$(DEPS) model
	model/run.sh build/model

# --------------------------------------------------------------------------
# Install
# --------------------------------------------------------------------------
# refstore.pc from refstore.pc.in, for this PREFIX (hence FORCE; the file
# is replaced only when its text changes).
$(B)/refstore.pc: refstore.pc.in VERSION FORCE
	@mkdir -p $(B)
	@sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' \
	  -e 's|@INCDIR@|$(INCDIR)|g' -e 's|@VERSION@|$(VERSION)|g' refstore.pc.in >$@.tmp
	@if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv $@.tmp $@; fi

install: lib $(B)/refstore.pc
	install -d $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCDIR)
	install -m 644 include/refstore.h $(DESTDIR)$(INCDIR)/
	install -m 644 $(B)/librefstore.a $(DESTDIR)$(LIBDIR)/
	install -m 755 $(B)/librefstore.so.0 $(DESTDIR)$(LIBDIR)/librefstore.so.0
	ln -sf librefstore.so.0 $(DESTDIR)$(LIBDIR)/librefstore.so
	install -m 644 $(B)/refstore.pc $(DESTDIR)$(LIBDIR)/pkgconfig/

uninstall:
	rm -f $(DESTDIR)$(INCDIR)/refstore.h $(DESTDIR)$(LIBDIR)/librefstore.a \
	  $(DESTDIR)$(LIBDIR)/librefstore.so $(DESTDIR)$(LIBDIR)/librefstore.so.0 \
	  $(DESTDIR)$(LIBDIR)/pkgconfig/refstore.pc

clean:
	rm -rf build

# --------------------------------------------------------------------------
# The header dependencies written by the compiles above (DEPFLAGS), of the
# sources that exist now.
# --------------------------------------------------------------------------
DEP_FILES := $(LIB_OBJ:.o=.d) $(TESTS:.t=.d) $(EXAMPLE:=.d) $(BENCHES:=.d) \
             $(DEMO).d $(RESP_SERVER).d $(STRESS:=.d) $(FUZZ_OBJ:.o=.d) $(FUZZ_B)/fuzz_ops.d
-include $(wildcard $(DEP_FILES))
