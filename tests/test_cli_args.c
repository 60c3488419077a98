/* test_cli_args.c: the flag parser as a user meets it, through the real binary: --flag=value means
 * what --flag value means for every kind of flag, an empty "--flag=" and "--switch=value" are
 * refused naming the flag, `alexnet --version` prints one line, an unknown flag's error offers
 * the nearest flag of that command, and a value that does not parse is named with its flag. */
#include "harness.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Run `a` and `b` and check that both give the same status, output and error text. */
static void same_result(const char *a, const char *b) {
    static char out_a[sizeof harness_out], err_a[sizeof harness_err];
    int rc_a = harness_run(a);
    memcpy(out_a, harness_out, sizeof out_a);
    memcpy(err_a, harness_err, sizeof err_a);
    int rc_b = harness_run(b);
    CHECK(rc_a == rc_b, "`%s` exited %d, `%s` %d", a, rc_a, b, rc_b);
    CHECK(strcmp(out_a, harness_out) == 0, "output differs:\n`%s`:\n%s\n`%s`:\n%s", a, out_a, b, harness_out);
    CHECK(strcmp(err_a, harness_err) == 0, "errors differ:\n`%s`: %s`%s`: %s", a, err_a, b, harness_err);
}

TEST(cli_args_equals_form) {
    /* strings and ints: the same layer table */
    CHECK(harness_run("info --model=convnet4 --classes=10 --size=28 --channels=1") == 0, "%s", harness_err);
    CHECK(strstr(harness_out, "64x2x2") != NULL, "convnet4 on 28x28 with = flags:\n%s", harness_out);
    same_result("info --model convnet4 --classes 10 --size 28 --channels 1",
                "info --model=convnet4 --classes=10 --size=28 --channels=1");
    same_result("info --model convnet4 --size 28", "info --model=convnet4 --size 28"); /* mixed */
    /* floats (a negative one too), longs: the command's own range check quotes the value */
    same_result("train --lr -0.5", "train --lr=-0.5");
    CHECK(strstr(harness_err, "--lr must be a positive finite number, not -0.5") != NULL, "%s", harness_err);
    same_result("train --momentum 1.5", "train --momentum=1.5");
    CHECK(strstr(harness_err, "not 1.5") != NULL, "%s", harness_err);
    same_result("train --max-steps -3", "train --max-steps=-3");
    CHECK(strstr(harness_err, "--max-steps must be at least 0, not -3") != NULL, "%s", harness_err);
    /* u64 and int lists reach the same value checks */
    same_result("train --seed -1", "train --seed=-1");
    CHECK(strstr(harness_err, "bad value '-1' for --seed") != NULL, "%s", harness_err);
    same_result("train --lr-drops 3,x", "train --lr-drops=3,x");
    CHECK(strstr(harness_err, "bad value '3,x' for --lr-drops") != NULL, "%s", harness_err);
    /* string lists: each --model= and --weights= counts once */
    same_result("eval --model a --model b --model c --weights x --weights y --data d",
                "eval --model=a --model=b --model=c --weights=x --weights=y --data=d");
    CHECK(strstr(harness_err, "3 --model for 2 --weights") != NULL, "%s", harness_err);
    /* only the first '=' splits: the rest belongs to the value */
    harness_expect_error("train --optimizer=a=b", "--optimizer must be sgd or lars, not 'a=b'");
}

TEST(cli_args_refused_forms) {
    harness_expect_error("info --model=", "--model=");
    harness_expect_error("info --model=", "empty value");
    harness_expect_error("train --lr= --epochs 1", "--lr= has an empty value");
    harness_expect_error("train --quiet=1", "--quiet takes no value");
    harness_expect_error("info --model convnet4 --print-config=yes", "--print-config takes no value");
    harness_expect_error("info --help=1", "--help takes no value");
    /* a known flag where a value should be is not taken as the value */
    harness_expect_error("train --out --quiet", "--out needs a value (got the flag --quiet)");
    harness_expect_error("info --model", "--model needs a value");
}

TEST(cli_args_version) {
    CHECK(harness_run("--version") == 0, "--version: %s", harness_err);
    CHECK(strncmp(harness_out, "alexnet ", 8) == 0 && strchr(harness_out, '\n') == harness_out + strlen(harness_out) - 1 &&
              strlen(harness_out) > 9, "--version printed: '%s'", harness_out);
    static char first[sizeof harness_out];
    memcpy(first, harness_out, sizeof first);
    CHECK(harness_run("version") == 0 && strcmp(first, harness_out) == 0, "version printed: '%s'", harness_out);
    CHECK(harness_err[0] == 0, "stderr: %s", harness_err);
    harness_expect_error("--version extra", "takes no arguments");
}

TEST(cli_args_typo_suggestions) {
    harness_expect_error("eval --weigths x", "eval: unknown flag '--weigths' (did you mean --weights?)");
    harness_expect_error("eval --weigths=x", "unknown flag '--weigths' (did you mean --weights?)");
    harness_expect_error("train --epoch 3", "train: unknown flag '--epoch' (did you mean --epochs?)");
    harness_expect_error("train --weight_decay 1", "(did you mean --weight-decay?)");
    harness_expect_error("info --modle alexnet", "info: unknown flag '--modle' (did you mean --model?)");
    harness_expect_error("info --print", "(did you mean --print-config?)"); /* the beginning of a flag */
    harness_expect_error("train --lim 3", "(did you mean --limit-train or --limit-val?)");
    harness_expect_error("bench --stesp 3", "bench: unknown flag '--stesp' (did you mean --steps?)");
    harness_expect_error("info --hlep", "(did you mean --help?)");
    /* nothing close: the old wording, pointing at --help */
    harness_expect_error("info --model alexnet --frobnicate 3", "unknown flag '--frobnicate' (see alexnet info --help)");
    CHECK(strstr(harness_err, "did you mean") == NULL, "%s", harness_err);
    harness_expect_error("train --zz 3", "unknown flag '--zz' (see alexnet train --help)"); /* not --lr */
    harness_expect_error("train -- 3", "unknown flag '--' (see alexnet train --help)");
}

TEST(cli_args_bad_numbers) {
    harness_expect_error("train --lr abc", "train: bad value 'abc' for --lr (not a number)");
    harness_expect_error("train --lr=abc", "bad value 'abc' for --lr (not a number)");
    harness_expect_error("train --lr nan", "bad value 'nan' for --lr (not a finite number)");
    harness_expect_error("train --epochs 1.5", "bad value '1.5' for --epochs (not a whole number)");
    harness_expect_error("train --epochs x", "bad value 'x' for --epochs (not a number)");
    harness_expect_error("train --epochs 1e3", "bad value '1e3' for --epochs (whole numbers are written in digits only)");
    harness_expect_error("train --epochs 99999999999", "bad value '99999999999' for --epochs (out of range)");
    harness_expect_error("train --max-steps 2.5", "bad value '2.5' for --max-steps (not a whole number)");
    harness_expect_error("train --seed -3", "bad value '-3' for --seed (negative");
    harness_expect_error("train --seed 1.5", "bad value '1.5' for --seed (not a whole number)");
    harness_expect_error("train --lr-drops 10,x", "bad value '10,x' for --lr-drops (not a comma-separated list");
    harness_expect_error("train --lr-drops 10,-2", "bad value '10,-2' for --lr-drops (negative");
    harness_expect_error("classify --top=many x.png", "classify: bad value 'many' for --top (not a number)");
}
