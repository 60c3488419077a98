# Makefile: builds build/alexnet (the command line), the library (build/libalexnet.so, with its
# soname, and build/<variant>/libalexnet.a) and build/test_all (the tests).
#   make            release build            make test        run the tests
#   make install    PREFIX=/usr/local DESTDIR=: the program, the libraries, include/alexnet.h,
#                   alexnet.pc (pkg-config) and the man page alexnet.1; make uninstall removes them
#   make test-asan  tests under AddressSanitizer + UndefinedBehaviorSanitizer (build-asan/)
#   make test-cuda  the GPU tests alone; fails where they cannot run (no GPU, or no CUDA build)
#   make fuzz       the libFuzzer harnesses (clang), see fuzz/README.md
# The GPU path (src/cuda/*.cu) is built when nvcc is found (on PATH or in CUDA_HOME), for sm_80
# and sm_90 plus PTX for later chips (CUDA_ARCH); `make NVCC=` builds for the CPU alone, and then
# src/cuda/cuda_stub.c answers every GPU call with "this build has no CUDA support".
# The two kinds of build never share objects or archives: objects live in $(BUILD)/cuda or
# $(BUILD)/cpu, and $(BUILD)/variant (rewritten only when the kind changes) makes the programs
# relink when the same BUILD folder switches kind.
CC      ?= gcc
BUILD   ?= build
OPT     ?= -O3
WARN    ?= -Wall -Wextra
# -fPIC: the same objects make the static and the shared library (the shared one exports only the
# public API, src/api/exports.map); -fno-semantic-interposition keeps calls inside it inlinable
CFLAGS  += -std=c11 $(WARN) $(OPT) -fno-math-errno -g -fopenmp -D_GNU_SOURCE -fPIC -fno-semantic-interposition -MMD -MP
LDLIBS  += $(LDSAN) -fopenmp -ljpeg -lpng -lz -lm

LIB_SRC  := $(sort $(wildcard src/*/*.c src/layers/*.c))
CLI_SRC  := $(sort $(wildcard src/cli/*.c))
LIB_SRC  := $(filter-out $(CLI_SRC),$(LIB_SRC))
TEST_SRC := $(sort $(wildcard tests/*.c))

CUDA_HOME ?= /usr/local/cuda
NVCC      ?= $(shell command -v nvcc 2>/dev/null || { test -x $(CUDA_HOME)/bin/nvcc && echo $(CUDA_HOME)/bin/nvcc; })
CUDA_ARCH ?= -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 \
             -gencode arch=compute_90,code=compute_90
NVWARN    := -Xcompiler -Wall,-Wextra $(if $(findstring -Werror,$(WARN)),-Werror all-warnings -Xcompiler -Werror)
NVFLAGS   ?= -O3 -std=c++17 -g $(CUDA_ARCH) $(NVWARN) -Xcompiler -fPIC -MMD -MP $(NVFLAGS_EXTRA)
ifneq ($(strip $(NVCC)),)
CUDA_SRC := $(sort $(wildcard src/cuda/*.cu))
LIB_SRC  := $(filter-out src/cuda/cuda_stub.c,$(LIB_SRC))
LDLIBS   += -L$(dir $(NVCC))../lib64 -lcudart_static -ldl -lrt -lpthread -lstdc++
endif
# MPI (--parallel) when Open MPI's mpicc is found; `make MPICC=` builds without it, and then
# src/parallel/mpi_stub.c answers --parallel with "needs an MPI build".
MPICC     ?= $(shell command -v mpicc 2>/dev/null)
ifneq ($(strip $(MPICC)),)
MPI_CFLAGS := $(shell $(MPICC) --showme:compile)
LIB_SRC  := $(filter-out src/parallel/mpi_stub.c,$(LIB_SRC))
LDLIBS   += $(shell $(MPICC) --showme:link)
else
LIB_SRC  := $(filter-out src/parallel/mpi_comm.c,$(LIB_SRC))
endif
VARIANT  := $(if $(strip $(NVCC)),cuda,cpu)$(if $(strip $(MPICC)),-mpi)
OBJ      := $(BUILD)/$(VARIANT)
LIB_OBJ  := $(LIB_SRC:%.c=$(OBJ)/%.o) $(CUDA_SRC:%.cu=$(OBJ)/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(OBJ)/%.o)
TEST_OBJ := $(TEST_SRC:%.c=$(OBJ)/%.o)
# which kind the programs in $(BUILD) were last linked as (the file changes only when it changes)
VARIANT_LINE := $(VARIANT) $(NVCC) $(MPICC)
$(shell mkdir -p $(BUILD) && { test "$$(cat $(BUILD)/variant 2>/dev/null)" = "$(VARIANT_LINE)" || echo "$(VARIANT_LINE)" > $(BUILD)/variant; })
# objects compiled before -fPIC was in CFLAGS are rebuilt once (this stamp is newer than they are)
PIC_STAMP := $(OBJ)/.pic
$(shell mkdir -p $(OBJ) && { test -f $(PIC_STAMP) || touch $(PIC_STAMP); })

VERSION := $(shell sed -n 's/^\#define ALEXNET_VERSION_STRING "\(.*\)"/\1/p' include/alexnet.h)
SOMAJOR := $(firstword $(subst ., ,$(VERSION)))
SONAME  := libalexnet.so.$(SOMAJOR)
SOLIB   := $(BUILD)/libalexnet.so.$(VERSION)

all: $(BUILD)/alexnet $(BUILD)/test_all $(BUILD)/libalexnet.so $(BUILD)/alexnet.1 $(BUILD)/alexnet.pc

$(LIB_OBJ) $(CLI_OBJ) $(TEST_OBJ): $(PIC_STAMP)

$(OBJ)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(OBJ)/src/parallel/mpi_comm.o: CFLAGS += $(MPI_CFLAGS)
# the built-in model descriptions are assembled into this object (.incbin)
$(OBJ)/src/model/models_embedded.o: $(wildcard models/*.cfg)

$(OBJ)/%.o: %.cu
	@mkdir -p $(dir $@)
	$(NVCC) $(NVFLAGS) -c $< -o $@

# rebuilt whole (ar never removes members: an old object must not survive a change of sources)
$(OBJ)/libalexnet.a: $(LIB_OBJ)
	rm -f $@
	ar rcs $@ $^

$(BUILD)/alexnet: $(CLI_OBJ) $(OBJ)/libalexnet.a $(BUILD)/variant
	$(CC) $(CFLAGS) $(filter-out $(BUILD)/variant,$^) -o $@ $(LDLIBS)

$(BUILD)/test_all: $(TEST_OBJ) $(OBJ)/libalexnet.a $(BUILD)/variant
	$(CC) $(CFLAGS) $(filter-out $(BUILD)/variant,$^) -o $@ $(LDLIBS)

# the shared library: every library object, only alexnet_* exported (static libraries it links,
# such as cudart_static, stay inside it too)
$(SOLIB): $(LIB_OBJ) src/api/exports.map $(BUILD)/variant
	$(CC) -shared -Wl,-soname,$(SONAME) -Wl,--version-script=src/api/exports.map -Wl,--exclude-libs,ALL \
	    -Wl,--no-undefined $(CFLAGS) $(LIB_OBJ) -o $@ $(LDLIBS)

$(BUILD)/libalexnet.so: $(SOLIB)
	ln -sf $(notdir $(SOLIB)) $(BUILD)/$(SONAME)
	ln -sf $(SONAME) $@

# the man page, from the program's own --help texts
$(BUILD)/alexnet.1: $(BUILD)/alexnet tools/man_page.sh
	tools/man_page.sh $(BUILD)/alexnet > $@.tmp && mv $@.tmp $@

# pkg-config file for PREFIX (rewritten by install for the PREFIX given there)
PREFIX  ?= /usr/local
LIBDIR  ?= $(PREFIX)/lib
PC_SUBST = sed -e 's|@PREFIX@|$(PREFIX)|; s|@LIBDIR@|$(LIBDIR)|; s|@VERSION@|$(VERSION)|; s|@LIBS_PRIVATE@|$(strip $(LDLIBS))|'
$(BUILD)/alexnet.pc: alexnet.pc.in include/alexnet.h
	$(PC_SUBST) $< > $@

install: all
	$(PC_SUBST) alexnet.pc.in > $(BUILD)/alexnet.pc
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(PREFIX)/include \
	    $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 755 $(BUILD)/alexnet $(DESTDIR)$(PREFIX)/bin/alexnet
	install -m 755 $(SOLIB) $(DESTDIR)$(LIBDIR)/$(notdir $(SOLIB))
	ln -sf $(notdir $(SOLIB)) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libalexnet.so
	install -m 644 $(OBJ)/libalexnet.a $(DESTDIR)$(LIBDIR)/libalexnet.a
	install -m 644 include/alexnet.h $(DESTDIR)$(PREFIX)/include/alexnet.h
	install -m 644 $(BUILD)/alexnet.pc $(DESTDIR)$(LIBDIR)/pkgconfig/alexnet.pc
	install -m 644 $(BUILD)/alexnet.1 $(DESTDIR)$(PREFIX)/share/man/man1/alexnet.1

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/alexnet $(DESTDIR)$(LIBDIR)/$(notdir $(SOLIB)) $(DESTDIR)$(LIBDIR)/$(SONAME) \
	    $(DESTDIR)$(LIBDIR)/libalexnet.so $(DESTDIR)$(LIBDIR)/libalexnet.a $(DESTDIR)$(PREFIX)/include/alexnet.h \
	    $(DESTDIR)$(LIBDIR)/pkgconfig/alexnet.pc $(DESTDIR)$(PREFIX)/share/man/man1/alexnet.1

# Tests run from the repo root; they call build/alexnet for command-line checks.
test: all
	ALEXNET_BIN=$(BUILD)/alexnet OMP_NUM_THREADS=$${OMP_NUM_THREADS:-2} ./$(BUILD)/test_all $(T)

test-asan:
	$(MAKE) BUILD=build-asan OPT="-O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined" \
	        LDSAN="-fsanitize=address,undefined" test

test-cuda: all
	ALEXNET_BIN=$(BUILD)/alexnet ./$(BUILD)/test_all --no-skip cuda_

clean:
	rm -rf build build-asan build-cpu build-fuzz

-include fuzz/fuzz.mk

.PHONY: all test test-asan test-cuda clean install uninstall
-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TEST_OBJ:.o=.d)
