# Makefile: builds build/alexnet (the command line) and build/test_all (the tests).
#   make            release build            make test        run the tests
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
CFLAGS  += -std=c11 $(WARN) $(OPT) -fno-math-errno -g -fopenmp -D_GNU_SOURCE -MMD -MP
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
NVFLAGS   ?= -O3 -std=c++17 -g $(CUDA_ARCH) $(NVWARN) -MMD -MP $(NVFLAGS_EXTRA)
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

all: $(BUILD)/alexnet $(BUILD)/test_all

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

.PHONY: all test test-asan test-cuda clean
-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TEST_OBJ:.o=.d)
