/* test_model_file.c: network description files (models/NAME.cfg): the built-ins are the files in
 * models/ (embedded unchanged), parse to the paper's networks (parameter counts, groups, LRN per
 * tower, starting values), round-trip through model_print, and bad descriptions are refused with
 * one line naming the file and line; `info --model FILE` and `--print-config` on the command line. */
#define _POSIX_C_SOURCE 200809L
#include "harness.h"
#include "../src/model/model.h"
#include "../src/util/common.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *BUILTINS[] = {"alexnet",       "alexnet-owt",   "convnet4",       "convnet4-tanh",
                                 "alexnet-nolrn", "alexnet-pool2", "alexnet-1tower", "alexnet-conv6",
                                 "convnet4-lrn",  "convnet4-pool2", "convnet4-2tower"};

static int same_spec(const ModelSpec *a, const ModelSpec *b, char *why, size_t n) {
    if (strcmp(a->name, b->name) || a->in_size != b->in_size || a->paper_input_scale != b->paper_input_scale ||
        a->nlayers != b->nlayers) {
        snprintf(why, n, "model fields differ");
        return 0;
    }
    for (int i = 0; i < a->nlayers; i++) {
        const LayerSpec *x = &a->layers[i], *y = &b->layers[i];
        if (x->kind != y->kind || x->out != y->out || x->k != y->k || x->stride != y->stride || x->pad != y->pad ||
            x->groups != y->groups || x->p != y->p || x->w_std != y->w_std || x->b_init != y->b_init ||
            x->lrn_alpha != y->lrn_alpha || x->lrn_beta != y->lrn_beta || x->lrn_k != y->lrn_k ||
            (!x->name != !y->name) || (x->name && strcmp(x->name, y->name))) {
            snprintf(why, n, "layer %d differs", i + 1);
            return 0;
        }
    }
    return 1;
}

TEST(model_files_builtins_are_the_files_and_round_trip) {
    for (size_t i = 0; i < sizeof BUILTINS / sizeof BUILTINS[0]; i++) {
        char path[128];
        snprintf(path, sizeof path, "models/%s.cfg", BUILTINS[i]);
        size_t n = 0;
        char *file = (char *)harness_read_file(path, &n);
        const char *text = model_builtin_text(BUILTINS[i]);
        CHECK(file && text && strlen(text) == n && !memcmp(file, text, n), "%s: the embedded text is not the file", path);
        free(file);
        const ModelSpec *spec = model_find(BUILTINS[i]);
        CHECK(spec && !strcmp(spec->name, BUILTINS[i]), "%s: %s", BUILTINS[i], an_last_error());
        if (!spec) continue;
        char *printed = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&printed, &len);
        model_print(spec, f);
        fclose(f);
        ModelSpec back;
        char why[64] = "";
        CHECK(model_parse(printed, "printed", &back) == 0 && same_spec(spec, &back, why, sizeof why),
              "%s does not round-trip: %s %s", BUILTINS[i], why, an_last_error());
        model_spec_free(&back);
        free(printed);
    }
}

TEST(model_files_give_the_papers_networks) {
    static const struct { const char *name; int size; double params; } want[] = {
        {"alexnet", 227, 60965224}, {"alexnet-owt", 224, 61100840}, {"alexnet-nolrn", 227, 60965224},
        {"alexnet-pool2", 227, 60965224}, {"alexnet-1tower", 227, 60965224 + 2 * (34944 - 34944) + 307200 + 663552 + 442368},
        {"alexnet-conv6", 227, 60965224 + 590080}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const ModelSpec *spec = model_find(want[i].name);
        Net net;
        CHECK(spec && net_create(&net, spec, 3, 1000, want[i].size, 1) == 0, "%s: %s", want[i].name, an_last_error());
        if (!spec) continue;
        CHECK((double)net.nparams == want[i].params, "%s: %zu parameters, not %.0f", want[i].name, net.nparams,
              want[i].params);
        net_free(&net);
    }
    const ModelSpec *a = model_find("alexnet");
    int lrn_towers = 0, grouped = 0;
    for (int i = 0; a && i < a->nlayers; i++) {
        lrn_towers += a->layers[i].kind == LAYER_LRN && a->layers[i].groups == 2;
        grouped += a->layers[i].kind == LAYER_CONV && a->layers[i].groups == 2;
        if (a->layers[i].name && !strcmp(a->layers[i].name, "fc6"))
            CHECK(a->layers[i].w_std == 0.01f && a->layers[i].b_init == 1.0f, "fc6 starts N(0, %g), bias %g",
                  a->layers[i].w_std, a->layers[i].b_init);
    }
    CHECK(lrn_towers == 2 && grouped == 3, "alexnet: %d LRN per tower, %d grouped convolutions", lrn_towers, grouped);
}

TEST(model_files_refuse_bad_descriptions) {
    static const struct { const char *text, *what; } bad[] = {
        {"[conv]\nname = c\n", "t.cfg:1: the file must start with [model]"},
        {"[model]\nname = m\n[conv]\nname = c\nfilters = 8\nsize = 3\nwidth = 2\n", "t.cfg:7: unknown key 'width' in [conv]"},
        {"[model]\nname = m\n[pooling]\n", "t.cfg:3: unknown section [pooling]"},
        {"[model]\nname = m\n[conv]\nname = c\nfilters = 96\nsize = 3\ngroups = 5\n[linear]\nname = f\n",
         "t.cfg:3: [conv] c: 96 filters do not split into 5 groups"},
        {"[model]\nname = m\n[conv]\nname = c\nfilters = -3\n", "t.cfg:5: 'filters' must be a whole number"},
        {"[model]\nname = m\n[conv]\nname = c\nfilters = 8\nsize = 3\n", "the last layer must be the [linear] classifier"},
        {"[model]\nname = m\n[dropout]\np = 1.5\n", "t.cfg:4: 'p' must be a number in range"},
        {"[model]\nname = m\n[linear]\nname = f\n[linear]\nname = f\n", "two layers are named 'f'"},
        {"[model]\nname = m\n[conv]\nfilters = 8\nsize = 3\n[linear]\nname = f\n", "[conv] needs a name"},
        {"[model]\nname = m\n[lrn]\nsize = 4\n", "t.cfg:4: [lrn] size must be odd"},
        {"[model]\nname = m\n[lrn]\nbeta = -1\n", "t.cfg:4: 'beta' must be a number in range"},
        {"[model]\nname = m\n[lrn]\nk = 0\n", "t.cfg:4: 'k' must be a number in range"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ModelSpec s;
        int rc = model_parse(bad[i].text, "t.cfg", &s);
        CHECK(rc != 0 && strstr(an_last_error(), bad[i].what), "case %zu: %s (want '%s')", i, rc ? an_last_error() : "accepted",
              bad[i].what);
        if (!rc) model_spec_free(&s);
    }
}

/* the description files beside the built-ins (the Figure 1 conditions) read and build */
TEST(model_files_figure1_conditions_build) {
    static const char *files[] = {"models/figure1/convnet4-ccn.cfg", "models/figure1/convnet4-tanh-ccn.cfg"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        const ModelSpec *spec = model_find(files[i]);
        Net net;
        CHECK(spec && net_create(&net, spec, 3, 10, 32, 1) == 0, "%s: %s", files[i], an_last_error());
        if (!spec) continue;
        CHECK(net.nparams == 85098 && spec->layers[0].w_std == 0.0001f && spec->paper_input_scale == 0.0f,
              "%s: %zu parameters, conv1 std %g", files[i], net.nparams, spec->layers[0].w_std);
        net_free(&net);
    }
}

/* [lrn] size, alpha, beta, k: read, printed back, and used by the layer (the paper's when absent) */
TEST(model_files_lrn_constants) {
    const char *text = "[model]\nname = m\ninput = 0\n[conv]\nname = c\nfilters = 8\nsize = 1\n[lrn]\nsize = 3\n"
                       "alpha = 0.4096\nbeta = 0.5\nk = 1\n[lrn]\n[linear]\nname = f\n";
    ModelSpec s;
    CHECK(model_parse(text, "t.cfg", &s) == 0, "%s", an_last_error());
    LrnParams p = layer_lrn(&s.layers[1]), q = layer_lrn(&s.layers[2]);
    CHECK(p.size == 3 && p.alpha == 0.4096f && p.beta == 0.5f && p.k == 1.0f, "read: %d %g %g %g", p.size, p.alpha,
          p.beta, p.k);
    CHECK(q.size == PAPER_LRN.size && q.alpha == PAPER_LRN.alpha && q.beta == PAPER_LRN.beta && q.k == PAPER_LRN.k,
          "absent keys are not the paper's: %d %g %g %g", q.size, q.alpha, q.beta, q.k);
    char *printed = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&printed, &len);
    model_print(&s, f);
    fclose(f);
    ModelSpec back;
    char why[64] = "";
    CHECK(model_parse(printed, "printed", &back) == 0 && same_spec(&s, &back, why, sizeof why), "round trip: %s %s",
          why, an_last_error());
    model_spec_free(&back);
    free(printed);
    /* the layer uses them: one channel of value 2 among 8, the rest 0, window 3: y = 2 / (1 + 0.4096/3 * 4)^0.5 */
    Net net;
    CHECK(net_create(&net, &s, 1, 2, 1, 1) == 0, "%s", an_last_error());
    float x[8] = {0, 0, 0, 2, 0, 0, 0, 0}, y[8], scale[8];
    lrn_forward(1, 8, 1, p, x, y, scale);
    double want = 2.0 / sqrt(1.0 + 0.4096 / 3 * 4);
    CHECK(fabs(y[3] - want) < 1e-6 && y[2] == 0.0f, "lrn_forward with the file's constants: %g, want %g", y[3], want);
    net_free(&net);
    model_spec_free(&s);
}

TEST(model_files_on_the_command_line) {
    const char *good = harness_path("tiny.cfg");
    const char *text = "# a tiny network\n[model]\nname = tiny\ninput = 0\n\n[conv]\nname = c1\nfilters = 4\nsize = 3\n"
                       "pad = 1\n[relu]\n[maxpool]\nsize = 2\nstride = 2\n\n[linear]\nname = out\nunits = classes\n";
    CHECK(harness_write(good, text, strlen(text)) == 0, "write");
    char args[800];
    snprintf(args, sizeof args, "info --model %s --channels 1 --classes 10 --size 8", good);
    CHECK(harness_run(args) == 0 && strstr(harness_out, "model tiny") && strstr(harness_out, "total parameters: 690"),
          "%s %s", harness_out, harness_err); /* c1: 4 x 9 + 4 = 40; out: 10 x 64 + 10 = 650 */
    snprintf(args, sizeof args, "info --model %s --print-config --channels 1 --size 8", good);
    CHECK(harness_run(args) == 0, "%s", harness_err);
    ModelSpec back;
    CHECK(model_parse(harness_out, "printed", &back) == 0 && back.nlayers == 4 && !strcmp(back.name, "tiny"),
          "--print-config does not read back: %s", an_last_error());
    model_spec_free(&back);
    /* a shape that cannot be: 2x2 pooling of 1x1 maps */
    snprintf(args, sizeof args, "info --model %s --channels 1 --size 1", good);
    harness_expect_error(args, "too small");
    const char *broken = harness_path("broken.cfg");
    const char *btext = "[model]\nname = b\n[conv]\nname = c\nsize = 3\nfilters = 8\nkernels = 3\n";
    CHECK(harness_write(broken, btext, strlen(btext)) == 0, "write");
    snprintf(args, sizeof args, "info --model %s", broken);
    harness_expect_error(args, "broken.cfg:7: unknown key 'kernels' in [conv]");
    harness_expect_error("info --model nosuch", "unknown model 'nosuch'");
    snprintf(args, sizeof args, "info --model %s/none.cfg", harness_tmpdir());
    harness_expect_error(args, "cannot open the model description");
}
