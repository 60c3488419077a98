# Makefile: builds build/alexnet (the command line) and build/test_all (the tests).
#   make            release build            make test        run the tests
#   make test-asan  tests under AddressSanitizer + UndefinedBehaviorSanitizer (build-asan/)
CC      ?= gcc
BUILD   ?= build
OPT     ?= -O3
WARN    ?= -Wall -Wextra
CFLAGS  += -std=c11 $(WARN) $(OPT) -fno-math-errno -g -fopenmp -D_GNU_SOURCE -MMD -MP
LDLIBS  += -fopenmp -ljpeg -lpng -lz -lm

LIB_SRC  := $(sort $(wildcard src/*/*.c src/layers/*.c))
CLI_SRC  := $(sort $(wildcard src/cli/*.c))
LIB_SRC  := $(filter-out $(CLI_SRC),$(LIB_SRC))
TEST_SRC := $(sort $(wildcard tests/*.c))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_OBJ := $(TEST_SRC:%.c=$(BUILD)/%.o)

all: $(BUILD)/alexnet $(BUILD)/test_all

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

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
	        LDLIBS="-fsanitize=address,undefined -fopenmp -ljpeg -lpng -lz -lm" test

clean:
	rm -rf build build-asan

.PHONY: all test test-asan clean
-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TEST_OBJ:.o=.d)
