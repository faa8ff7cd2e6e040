# blkstack — plain GNU make. `make help` lists the targets.
#
# Objects go to $(BUILD) (default build/); sanitizer and coverage builds use
# their own directories so they never mix with the normal one.

VERSION    := 0.1.0
CC         ?= gcc
BUILD      ?= build
PREFIX     ?= /usr/local
DESTDIR    ?=
LIBDIR     ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
BINDIR     ?= $(PREFIX)/bin

OPT        ?= -O2
WARN       := -Wall -Wextra -Werror -Wno-unused-parameter -Wshadow=local \
              -Wstrict-prototypes -Wmissing-prototypes
CPPFLAGS   += -Iinclude -I. -D_GNU_SOURCE
CFLAGS     ?=
CFLAGS     += -std=gnu11 $(OPT) -g -fPIC -pthread $(WARN) $(SANFLAGS)
LDFLAGS    += -pthread $(SANFLAGS)
LDLIBS     += -lm
# io_uring (drivers/uring.c) and the NBD client (drivers/nbd.c, tests)
DEP_PKGS   := liburing libnbd
CPPFLAGS   += $(shell pkg-config --cflags $(DEP_PKGS) 2>/dev/null)
LDLIBS     += $(shell pkg-config --libs $(DEP_PKGS) 2>/dev/null || echo -luring -lnbd)

ifneq ($(SANITIZE),)
SANFLAGS   := -fsanitize=$(SANITIZE) -fno-omit-frame-pointer
# a UBSan report fails the test instead of scrolling past
ifneq ($(findstring undefined,$(SANITIZE)),)
SANFLAGS   += -fno-sanitize-recover=undefined
endif
endif

LIB_SRCS   := $(sort $(wildcard lib/*.c block/*.c drivers/*.c export/*.c))
LIB_OBJS   := $(LIB_SRCS:%.c=$(BUILD)/%.o)
TOOL_SRCS  := $(sort $(wildcard tools/*.c))
TOOLS      := $(TOOL_SRCS:tools/%.c=$(BUILD)/tools/%)
# blkstackd: every daemon/*.c linked into one program
DAEMON_SRCS := $(sort $(wildcard daemon/*.c))
DAEMON_OBJS := $(DAEMON_SRCS:%.c=$(BUILD)/%.o)
DAEMON     := $(if $(DAEMON_SRCS),$(BUILD)/daemon/blkstackd)
TEST_SRCS  := $(sort $(wildcard tests/unit/test-*.c))
TESTS      := $(TEST_SRCS:tests/unit/%.c=$(BUILD)/tests/unit/%)
TESTLIB_SRCS := $(sort $(filter-out tests/unit/test-%.c,$(wildcard tests/unit/*.c)))
TESTLIB_OBJS := $(TESTLIB_SRCS:%.c=$(BUILD)/%.o)
BENCH_SRCS := $(sort $(wildcard bench/*.c))
BENCHES    := $(BENCH_SRCS:bench/%.c=$(BUILD)/bench/%)

STATIC_LIB := $(BUILD)/libblkstack.a
SHARED_LIB := $(BUILD)/libblkstack.so.$(VERSION)
SONAME     := libblkstack.so.0

.SECONDARY:

.PHONY: all check check-asan check-tsan coverage bench install uninstall \
        clean style help tests

all: $(STATIC_LIB) $(SHARED_LIB) $(TOOLS) $(DAEMON) $(BUILD)/blkstack.pc

help:
	@echo "make               build the library, tools (build/)"
	@echo "make check         build and run every test; ends 'N passed, N failed'"
	@echo "make check-asan    the same under ASan+UBSan (build-asan/)"
	@echo "make check-tsan    the same under TSan (build-tsan/)"
	@echo "make coverage      line and branch coverage of block/ and lib/ (build-cov/)"
	@echo "make bench         run the benchmarks, write bench/results/"
	@echo "make install       PREFIX=$(PREFIX) DESTDIR=$(DESTDIR)"
	@echo "make style         check formatting with clang-format"

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

$(STATIC_LIB): $(LIB_OBJS)
	@rm -f $@
	$(AR) rcs $@ $^

$(SHARED_LIB): $(LIB_OBJS) libblkstack.map
	$(CC) -shared -Wl,-soname,$(SONAME) -Wl,--version-script=libblkstack.map \
		$(LDFLAGS) -o $@ $(LIB_OBJS) $(LDLIBS)
	ln -sf $(notdir $@) $(BUILD)/$(SONAME)
	ln -sf $(notdir $@) $(BUILD)/libblkstack.so

PC_SED = sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' \
	     -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' -e 's|@VERSION@|$(VERSION)|'

$(BUILD)/blkstack.pc: blkstack.pc.in Makefile
	@mkdir -p $(dir $@)
	$(PC_SED) $< > $@

$(BUILD)/tools/%: $(BUILD)/tools/%.o $(STATIC_LIB)
	$(CC) $(LDFLAGS) -o $@ $< $(STATIC_LIB) $(LDLIBS)

$(BUILD)/daemon/blkstackd: $(DAEMON_OBJS) $(STATIC_LIB)
	$(CC) $(LDFLAGS) -o $@ $(DAEMON_OBJS) $(STATIC_LIB) $(LDLIBS)

$(BUILD)/tests/unit/%: $(BUILD)/tests/unit/%.o $(TESTLIB_OBJS) $(STATIC_LIB)
	$(CC) $(LDFLAGS) -o $@ $< $(TESTLIB_OBJS) $(STATIC_LIB) $(LDLIBS)

$(BUILD)/bench/%: $(BUILD)/bench/%.o $(STATIC_LIB)
	$(CC) $(LDFLAGS) -o $@ $< $(STATIC_LIB) $(LDLIBS)

tests: all $(TESTS) $(BENCHES)

check: tests
	@BUILD=$(BUILD) SANITIZE=$(SANITIZE) tests/run-tests.sh

check-asan:
	$(MAKE) BUILD=build-asan SANITIZE=address,undefined OPT=-O1 check

check-tsan:
	$(MAKE) BUILD=build-tsan SANITIZE=thread OPT=-O1 check

coverage:
	rm -rf build-cov/coverage.info build-cov/html
	find build-cov -name '*.gcda' -delete 2>/dev/null || true
	$(MAKE) BUILD=build-cov OPT=-O0 SANFLAGS=--coverage check
	lcov --quiet --capture --directory build-cov --rc lcov_branch_coverage=1 \
		--output-file build-cov/all.info
	lcov --quiet --extract build-cov/all.info '*/block/*' '*/lib/*' \
		--rc lcov_branch_coverage=1 --output-file build-cov/coverage.info
	genhtml --quiet --branch-coverage build-cov/coverage.info \
		--output-directory build-cov/html
	lcov --summary build-cov/coverage.info --rc lcov_branch_coverage=1

bench: all $(BENCHES)
	BUILD=$(BUILD) bench/run-all.sh

install: all
	install -d $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCLUDEDIR)/blkstack \
		$(DESTDIR)$(BINDIR)
	install -m 644 $(STATIC_LIB) $(DESTDIR)$(LIBDIR)/
	install -m 755 $(SHARED_LIB) $(DESTDIR)$(LIBDIR)/
	ln -sf $(notdir $(SHARED_LIB)) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(notdir $(SHARED_LIB)) $(DESTDIR)$(LIBDIR)/libblkstack.so
	install -m 644 include/blkstack/*.h $(DESTDIR)$(INCLUDEDIR)/blkstack/
	$(PC_SED) blkstack.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/blkstack.pc
	install -m 755 $(TOOLS) $(DAEMON) $(DESTDIR)$(BINDIR)/

uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/libblkstack.* $(DESTDIR)$(LIBDIR)/pkgconfig/blkstack.pc
	rm -rf $(DESTDIR)$(INCLUDEDIR)/blkstack
	rm -f $(addprefix $(DESTDIR)$(BINDIR)/,$(notdir $(TOOLS) $(DAEMON)))

style:
	clang-format --dry-run -Werror $(LIB_SRCS) $(TOOL_SRCS) $(DAEMON_SRCS) $(TEST_SRCS) \
		$(wildcard include/blkstack/*.h lib/*.h block/*.h)

clean:
	rm -rf build build-asan build-tsan build-cov

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
