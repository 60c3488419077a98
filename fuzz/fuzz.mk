# fuzz/fuzz.mk: libFuzzer harnesses for every reader of untrusted bytes (included by the Makefile).
#   make fuzz          builds build-fuzz/fuzz_<name> for every fuzz/fuzz_<name>.c with clang
#   make fuzz-smoke    runs each for FUZZ_SECONDS (default 20) over a scratch copy of its seed
#                      corpus fuzz/corpus/<name>/; fails when any finds a crash, leak or timeout
# See fuzz/README.md. The library is compiled again with clang into build-fuzz/ with the fuzzer's
# coverage instrumentation, AddressSanitizer and UndefinedBehaviorSanitizer (any UB aborts), for
# the CPU only (src/cuda/cuda_stub.c, never the .cu files).
FUZZ_CC      ?= clang
FUZZ_BUILD   ?= build-fuzz
FUZZ_SECONDS ?= 20
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS  := -std=c11 -Wall -Wextra -Wno-pass-failed -Wno-unknown-pragmas -g -O1 -fno-omit-frame-pointer -fopenmp -D_GNU_SOURCE -MMD -MP
# Images up to 4 megapixels instead of 100 (src/data/image.h): a legitimate 20-megapixel JPEG takes
# over 10 s through the instrumented colour conversion, which libFuzzer reports as a timeout.
FUZZ_CFLAGS  += -DIMAGE_MAX_PIXELS=4000000L
FUZZ_LDLIBS  := -fopenmp -ljpeg -lpng -lz -lm

FUZZ_NAMES   := $(patsubst fuzz/fuzz_%.c,%,$(sort $(wildcard fuzz/fuzz_*.c)))
FUZZ_BINS    := $(FUZZ_NAMES:%=$(FUZZ_BUILD)/fuzz_%)
# (without MPI: src/parallel/mpi_stub.c, as without CUDA: cuda_stub.c)
FUZZ_LIB_SRC := $(filter-out src/cli/% src/parallel/mpi_comm.c,$(sort $(wildcard src/*/*.c src/layers/*.c)))
FUZZ_LIB_OBJ := $(FUZZ_LIB_SRC:%.c=$(FUZZ_BUILD)/obj/%.o)
# the command line, with its main() renamed so a harness can call it (fuzz_cli, fuzz_labels)
FUZZ_CLI_OBJ := $(sort $(wildcard src/cli/*.c))
FUZZ_CLI_OBJ := $(FUZZ_CLI_OBJ:%.c=$(FUZZ_BUILD)/obj/%.o)
# where fuzz_cli replaces a command's real work (ld --wrap; see fuzz/fuzz_cli.c)
FUZZ_CLI_WRAP := -Wl,--wrap=train_run,--wrap=checkpoint_load_net,--wrap=dataset_load,--wrap=shard_prep \
                 -Wl,--wrap=dataset_load_split,--wrap=shard_prep_split \
                 -Wl,--wrap=shard_open,--wrap=bench_model,--wrap=cpu_fma_peak_gflops,--wrap=cpu_bf16_dot_gflops \
                 -Wl,--wrap=net_create

fuzz: $(FUZZ_BINS)

$(FUZZ_BUILD)/obj/src/model/models_embedded.o: $(wildcard models/*.cfg)

$(FUZZ_BUILD)/obj/src/cli/%.o: src/cli/%.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_SAN) -fsanitize=fuzzer-no-link -Dmain=alexnet_main -c $< -o $@

$(FUZZ_BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_SAN) -fsanitize=fuzzer-no-link -c $< -o $@

$(FUZZ_BUILD)/libalexnet-fuzz.a: $(FUZZ_LIB_OBJ)
	rm -f $@
	ar rcs $@ $^

$(FUZZ_BUILD)/fuzz_%: fuzz/fuzz_%.c fuzz/fuzz_util.h $(FUZZ_BUILD)/libalexnet-fuzz.a $(FUZZ_CLI_OBJ)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_SAN) -fsanitize=fuzzer $< \
	    $(if $(filter cli labels,$*),$(FUZZ_CLI_OBJ)) $(if $(filter cli,$*),$(FUZZ_CLI_WRAP)) \
	    $(FUZZ_BUILD)/libalexnet-fuzz.a -o $@ $(FUZZ_LDLIBS)

# Sequential, FUZZ_SECONDS each (8 harnesses x 20 s: under 3 minutes plus the build).
fuzz-smoke: fuzz
	@fail=0; for n in $(FUZZ_NAMES); do \
	    fuzz/run_one.sh $$n $(FUZZ_SECONDS) $(FUZZ_BUILD)/smoke/$$n || fail=1; \
	done; \
	if [ $$fail = 0 ]; then echo "fuzz-smoke: no crash in $(words $(FUZZ_NAMES)) harnesses"; \
	else echo "fuzz-smoke: FAILED (inputs and logs under $(FUZZ_BUILD)/smoke/)"; fi; exit $$fail

.PHONY: fuzz fuzz-smoke
-include $(FUZZ_LIB_OBJ:.o=.d) $(FUZZ_CLI_OBJ:.o=.d) $(FUZZ_BINS:=.d)
