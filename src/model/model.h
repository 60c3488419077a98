/* model.h: architectures as data, and the network built from them.
 *
 * A ModelSpec is a list of LayerSpecs. net_create walks it once to compute every layer's input and
 * output shape, parameter offsets in one contiguous block, and buffers; the same walk serves the
 * forward and backward passes, the parameter and FLOP counts, the printed layer table and the
 * checkpoint tensor names ("<layer name>.weight", "<layer name>.bias", PyTorch layouts:
 * conv weights (out, in/groups, k, k), linear weights (out, in)). */
#ifndef ALEXNET_MODEL_H
#define ALEXNET_MODEL_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "../layers/layers.h"
#ifdef __cplusplus
extern "C" {
#endif

/* LAYER_GATHER exists only in a tower of the two-tower split (src/parallel/towers.c): the towers'
 * halves of the channels become the whole tensor (forward) and the gradient goes back summed. */
typedef enum { LAYER_CONV, LAYER_RELU, LAYER_TANH, LAYER_LRN, LAYER_MAXPOOL, LAYER_AVGPOOL,
               LAYER_DROPOUT, LAYER_LINEAR, LAYER_GATHER } LayerKind;

typedef struct LayerSpec {
    LayerKind kind;
    const char *name;     /* tensor name prefix for conv/linear ("conv1", "features.0"), else NULL */
    int out;              /* conv: output channels; linear: outputs (0 = the number of classes);
                             avgpool: output height = width */
    int k, stride, pad, groups; /* conv and maxpool; groups also LRN (windows within each group) */
    float p;              /* dropout probability */
    float w_std;          /* weights ~ N(0, w_std); 0 = He: sqrt(2 / fan_in) */
    float b_init;         /* biases start at this constant */
    float lrn_alpha, lrn_beta, lrn_k; /* LRN constants (size: k); 0 = the paper's (PAPER_LRN) */
    /* towers only (src/parallel/towers.c): gather: `out` = all channels; replicated: what follows
     * is computed alike on every tower (the loss), so its gradient is not summed; rng_layer: the
     * dropout masks are those of layer rng_layer - 1 of the whole network (0 = this index);
     * col0, row_stride: this tower's values start at column col0 of rows of row_stride values */
    int replicated, rng_layer;
    long col0, row_stride;
} LayerSpec;

#define MAX_LAYERS 32
typedef struct ModelSpec {
    const char *name;
    const char *about;
    int in_size;          /* input height = width; 0 = the dataset's own size */
    float paper_input_scale; /* with the paper's image input (pixels minus mean image, 0..255 units):
                                multiplier; 0 = 1 (raw units, as the paper, for N(0, 0.01) init) */
    int nlayers;
    LayerSpec layers[MAX_LAYERS];
    /* The SGD step of the biases (set by model_apply_recipe): learning rate x bias_lr_mult,
     * weight decay x bias_decay_mult. "paper": 1 and 1 (the paper's one update rule for every
     * parameter); "caffe": 2 and 0 (Caffe's bvlc_alexnet). Both 0 (a spec made by hand) = 1 and 1. */
    float bias_lr_mult, bias_decay_mult;
    int owns_names;       /* model_parse allocated name, about and the layer names: model_spec_free */
} ModelSpec;

/* The paper's LRN constants: size 5, alpha 1e-4 (divided by size), beta 0.75, k 2. */
extern const LrnParams PAPER_LRN;
/* The LRN of an LRN layer: its constants (the paper's where 0), windows within spec->groups groups. */
static inline LrnParams layer_lrn(const LayerSpec *s) {
    LrnParams p = PAPER_LRN;
    if (s->k > 0) p.size = s->k;
    if (s->lrn_alpha > 0.0f) p.alpha = s->lrn_alpha;
    if (s->lrn_beta > 0.0f) p.beta = s->lrn_beta;
    if (s->lrn_k > 0.0f) p.k = s->lrn_k;
    p.groups = s->groups;
    return p;
}

/* A built-in model by name (models/NAME.cfg, embedded), or a description file by path (a name with
 * a '/' or ending in .cfg), parsed once. NULL (an_error set) for an unknown name or a bad file. */
const ModelSpec *model_find(const char *name);
/* The embedded description text of a built-in model, or NULL. */
const char *model_builtin_text(const char *name);
/* Description files (model_file.c; the format: docs/FORMATS.md): text -> spec (errors name
 * origin:line), a file by path, and a spec written back in the same form. */
int model_parse(const char *text, const char *origin, ModelSpec *out);
/* Release the names of a spec model_parse filled (not of its copies); no-op for other specs. */
void model_spec_free(ModelSpec *spec);
int model_load_file(const char *path, ModelSpec *out);
void model_print(const ModelSpec *spec, FILE *f);
const char *model_names(void);                  /* "alexnet, alexnet-owt, ..." for help texts */
/* Copy of spec with a training recipe applied. Returns 0 or -1 for an unknown recipe.
 *   paper  as published: weights N(0, 0.01), biases 1 in conv2, conv4, conv5 and the hidden fully
 *          connected layers, 0 elsewhere; one learning rate and weight decay for every parameter.
 *   caffe  Caffe's bvlc_alexnet (models/bvlc_alexnet/train_val.prototxt): hidden fully connected
 *          weights N(0, 0.005), biases 0.1 where the paper has 1 (conv2, conv4, conv5, fc6, fc7),
 *          0 elsewhere; biases learn at twice the rate and have no weight decay. */
int model_apply_recipe(const ModelSpec *spec, const char *recipe, ModelSpec *out);

typedef struct Layer {
    const LayerSpec *spec;
    int in_c, in_h, in_w, out_c, out_h, out_w;
    size_t w_off, b_off, w_size, b_size; /* into the parameter block (sizes 0 without parameters) */
    int fan_in;
    double flops;                        /* forward multiply-adds x 2, per image */
    float *out;                          /* (n, out_c, out_h, out_w) */
    double fwd_seconds, bwd_seconds;     /* wall time spent in this layer, summed over calls */
    /* Fusions (net_create sets them): a ReLU right after a convolution is computed in the
     * convolution's output pass and shares its buffer (relu_in_conv on both; the ReLU's out is the
     * convolution's, not owned); a ReLU right before an LRN has its backward pass done by the LRN
     * (relu_in_lrn on both); so has a ReLU right before a max pooling (relu_in_pool on both; CPU only,
     * the GPU runs the ReLU's backward). */
    int relu_in_conv, relu_in_lrn, relu_in_pool;
    void *aux;                           /* LRN scale (float), pool argmax (int32), dropout mask (uint8) */
} Layer;

/* floats of one image's output of layer l */
static inline size_t layer_out_count(const Layer *l) { return (size_t)l->out_c * l->out_h * l->out_w; }

typedef struct Net {
    ModelSpec spec;
    int in_c, in_size, classes, max_batch;
    int nlayers;
    Layer layers[MAX_LAYERS];
    size_t nparams;
    float *params, *grads;    /* one block each, nparams floats */
    float *input;             /* (max_batch, in_c, in_size, in_size), filled by the caller */
    float *probs, *dlogits;   /* (max_batch, classes) */
    float *dbuf[2];           /* ping-pong activation gradients, max_batch x act_floats each */
    size_t act_floats;        /* the largest activation of one image (the input or a layer's output) */
    int batch;                /* batch of the last forward pass */
    int train;                /* whether it ran in training mode (dropout active) */
    struct GpuNet *gpu;       /* set by net_to_gpu: the passes run there (src/cuda/gpu_net.h) */
    /* Several processes (src/parallel/): row0 = this process's first image in the whole batch
     * (data parallel: the dropout masks are the whole batch's); gather/scatter carry LAYER_GATHER;
     * grads_ready (may be NULL) is told, during net_backward, each parameter range whose gradient
     * is final, so that its all-reduce can start while the layers below are still computed. */
    long row0;
    unsigned char frozen[MAX_LAYERS]; /* net_sgd leaves these layers' weights and biases as they are */
    void *comm;
    int (*gather)(void *comm, const Layer *l, int n, const float *x, float *y);
    int (*scatter)(void *comm, const Layer *l, int n, const float *dy, float *dx);
    void (*grads_ready)(void *comm, size_t off, size_t count);
    int gpu_input_sent;       /* net_set_input already sent the batch (else net_forward sends input) */
    uint16_t *frozen_bf16;    /* net_freeze_bf16: bfloat16 copies of the fully connected weights */
    int layerwise;            /* training steps keep the layer-by-layer passes (bench --layers) */
    float *chunk_grads;       /* net_train_chunked: each chunk's parameter gradients */
    size_t chunk_grads_floats;
    char **class_names;       /* (classes) the outputs' names (owned), NULL when unknown */
} Net;

/* Build the net for in_c channels, `classes` outputs, input in_size (spec->in_size if nonzero) and
 * batches up to max_batch. Returns 0, or -1 with an_error() (shape does not fit, out of memory). */
int net_create(Net *net, const ModelSpec *spec, int in_c, int classes, int in_size, int max_batch);
void net_free(Net *net);
/* Copies of the classes' names (classes strings; NULL clears them). 0, or -1 out of memory. */
int net_set_class_names(Net *net, char *const *names);
/* The layer whose output is a feature (`features`, alexnet_features): `name` (a layer with
 * weights; NULL: the last one before the classifier), then past the ReLU, tanh and dropout layers
 * right after it. Its index, or -1 with an_error() naming `who` and the layers there are. */
int net_feature_layer(const Net *net, const char *name, const char *who);
/* Paper initialisation from the spec: weights N(0, w_std), biases b_init, from (seed). */
void net_init(Net *net, uint64_t seed);
/* Forward on net->input[0 .. n). train: dropout active, masks from dropout_seed. Returns logits
 * (n, classes) or NULL with an_error() set. */
const float *net_forward(Net *net, int n, int train, uint64_t dropout_seed);
/* The next batch's n images (in_c x in_size x in_size each) into the network: copied into
 * net->input, or on the GPU sent straight to the card (overlapping the work still queued). The
 * next net_forward then reads them. 0, or -1 on a GPU error. */
int net_set_input(Net *net, const float *x, int n);
/* Softmax probabilities of the last forward pass into net->probs; with labels also the mean loss
 * into *loss and the logits' gradient (net->dlogits, or on the GPU). 0, or -1 on a GPU error. */
int net_loss(Net *net, const int *labels, float *loss);
/* For inference in bf16 mode (gemm_bf16) on the CPU: the weights will not change any more, so the
 * fully connected layers keep a bfloat16 copy of theirs (made again from net->params at each
 * call), and small batches (at most 4 images, the memory-bound case) read it instead of the
 * float32 weights: half the bytes, the same products as bf16 mode computes. No-op in float32
 * mode, on the GPU, or for a network built for larger batches. net_sgd and net_init drop the copy.
 * 0, or -1 with an_error() (out of memory). */
int net_freeze_bf16(Net *net);
/* Backward from net->dlogits: fills net->grads. Returns 0 or -1. */
int net_backward(Net *net);
/* A training step's forward pass, loss and backward pass for small networks, chunks of the batch
 * through all layers, one thread a chunk, no barrier between layers (net_chunked.c): where
 * net_chunked_ok(net, n), net_train_chunked(net, n, labels, &loss) does what net_forward(net, n, 1,
 * seed), net_loss and net_backward do (dropout is not among its layers), with the gradients summed
 * chunk by chunk: the same bits for any number of threads. 0, or -1 with an_error(). */
int net_chunked_ok(const Net *net, int n);
int net_train_chunked(Net *net, int n, const int *labels, float *loss);
/* Where net_chunked_ok(net, n): what net_forward(net, n, 0, 0) and net_loss(net, NULL, NULL) do
 * (net->probs, the same bits), chunk by chunk. 0, or -1 with an_error(). */
int net_infer_chunked(Net *net, int n);
/* The convolution layer l's shape for a batch of n */
ConvShape net_conv_shape(const Layer *l, int n);
/* One layer's passes on rows i0 .. i0+n of the batch (the whole batch: i0 0, as net_forward and
 * net_backward call them; a chunk of it: net_train_chunked). Forward: x is those rows of layer i's
 * input; its output and state (LRN scales, pooling's argmax, dropout's mask) go to those rows of its
 * buffers. 0, or -1 with an_error(). Backward: dy those rows of its output's gradient, dx of its
 * input's (NULL for the first layer), its parameters' gradients into g (nparams floats, at their
 * offsets). 0 done, 1 nothing to do here (a ReLU whose backward the layer above did: dy stays the
 * next layer's), 2 nothing to learn below (stop), or -1 with an_error(). */
int net_layer_forward(Net *net, int i, int i0, int n, const float *x, int train, uint64_t dropout_seed);
int net_layer_backward(Net *net, int i, int i0, int n, const float *dy, float *dx, float *g);

/* The paper's SGD step over the parameter block with the gradients of the last backward pass
 * (src/train/sgd.h; biases at the recipe's rates); momentum: nparams floats (on the GPU, the GPU's
 * own copy is used). 0, or -1 with an_error(): a GPU error, or (CPU) weights that became NaN or
 * infinite in this update. */
int net_sgd(Net *net, float *momentum, float lr, float momentum_coef, float weight_decay);
/* The same with the weights (not the biases) of layer i at lr x weight_lr_scale[i] (NULL: 1): LARS. */
int net_sgd_scaled(Net *net, float *momentum, float lr, float momentum_coef, float weight_decay,
                   const float *weight_lr_scale);
/* How many of net->params (the host copy) are NaN or infinite. */
long net_nonfinite_params(const Net *net);

/* Move the passes to the GPU (math: a GpuMath of src/cuda/gpu_net.h, 0 = fp32): forward, loss, backward and
 * net_sgd then run there, the input still read from net->input and the probabilities still
 * delivered to net->probs. momentum (may be NULL: zero) is copied there. 0 or -1 (no GPU, no
 * CUDA in this build, out of GPU memory). */
int net_to_gpu(Net *net, int math, const float *momentum);
/* Copy the GPU's parameters (and momentum, if not NULL) back into net->params: before saving. */
int net_from_gpu(Net *net, float *momentum);

/* The dropout placement of layer l for a batch of n rows (see DropoutAt in layers.h). */
DropoutAt net_dropout_at(const Net *net, const Layer *l);
/* The RNG stream of dropout layer i for a step's dropout_seed (the whole network's layer index). */
uint64_t net_dropout_seed(const Net *net, int i, uint64_t dropout_seed);

/* Named parameter tensors in order: index t = 2 * (param layer index) + (0 weight, 1 bias). */
int net_num_tensors(const Net *net);
/* name buffer >= 96 bytes; shape up to 4 dims. Returns pointer into params (or grads if grad). */
float *net_tensor(const Net *net, int t, int grad, char *name, int *ndim, int64_t shape[4], size_t *count);

/* Print the layer table (input -> output, parameters, FLOPs) and totals. */
void net_print_table(const Net *net, FILE *f);
double net_flops(const Net *net); /* forward FLOPs per image */
#ifdef __cplusplus
}
#endif
#endif
