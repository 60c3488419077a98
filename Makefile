# Makefile: builds build/alexnet (the command line) and build/test_all (the tests).
#   make            release build            make test        run the tests
#   make test-asan  tests under AddressSanitizer + UndefinedBehaviorSanitizer (build-asan/)
#   make test-cuda  the GPU tests alone (they skip, saying why, where there is no GPU)
# The GPU path (src/cuda/*.cu) is built when nvcc is found (on PATH or in CUDA_HOME), for sm_80
# and sm_90 plus PTX for later chips (CUDA_ARCH); `make NVCC=` builds for the CPU alone, and then
# src/cuda/cuda_stub.c answers every GPU call with "this build has no CUDA support".
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
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o) $(CUDA_SRC:%.cu=$(BUILD)/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_OBJ := $(TEST_SRC:%.c=$(BUILD)/%.o)

all: $(BUILD)/alexnet $(BUILD)/test_all

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/%.o: %.cu
	@mkdir -p $(dir $@)
	$(NVCC) $(NVFLAGS) -c $< -o $@

$(BUILD)/libalexnet.a: $(LIB_OBJ)
	ar rcs $@ $^

$(BUILD)/alexnet: $(CLI_OBJ) $(BUILD)/libalexnet.a
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/test_all: $(TEST_OBJ) $(BUILD)/libalexnet.a
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS)

# Tests run from the repo root; they call build/alexnet for command-line checks.
test: all
	ALEXNET_BIN=$(BUILD)/alexnet OMP_NUM_THREADS=$${OMP_NUM_THREADS:-2} ./$(BUILD)/test_all $(T)

test-asan:
	$(MAKE) BUILD=build-asan OPT="-O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined" \
	        LDSAN="-fsanitize=address,undefined" test

test-cuda: all
	ALEXNET_BIN=$(BUILD)/alexnet ./$(BUILD)/test_all cuda_

clean:
	rm -rf build build-asan build-cpu

.PHONY: all test test-asan test-cuda clean
-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TEST_OBJ:.o=.d)
