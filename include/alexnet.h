/* alexnet.h: the public C API of the alexnet library, one header. Installed (`make install`):
 *     cc prog.c $(pkg-config --cflags --libs alexnet)       (the shared library, libalexnet.so.0)
 * From the build tree: -Iinclude build/libalexnet.so, or the static build/<variant>/libalexnet.a
 * with what the Makefile links the program with (`pkg-config --static --libs alexnet` lists it:
 * -fopenmp -ljpeg -lpng -lz -lm, and in CUDA or MPI builds their libraries too).
 * examples/classify.c and examples/train_loop.c show both halves: inference and training.
 *
 * A network is an opaque handle (alexnet_net) made by alexnet_create (a built-in model or a
 * description file, freshly initialised) or alexnet_load (weights from a safetensors checkpoint
 * written by `alexnet train`, by alexnet_save, or converted from torchvision). With it:
 *   classify an image (RGB pixels in memory, or a JPEG/PNG file): the top-K classes, exactly as
 *     `alexnet classify` preprocesses and ranks them;
 *   extract a layer's features (the activations after its ReLU, as `alexnet features`);
 *   train on the caller's batches (one SGD step at a time) and evaluate on them.
 *
 * Tensors are float32, NCHW: a batch of n network inputs is (n, C, S, S) with C = alexnet_channels
 * and S = alexnet_input_size, already normalised (alexnet_preprocess_* makes one from an image).
 * Pixels given to the API are interleaved 8-bit RGB, row by row: (height, width, 3) bytes.
 *
 * Errors: functions that can fail return -1 (or NULL, or a negative count) and never print or
 * exit; alexnet_last_error() then says why, in one line, for the calling thread only. Every such
 * function clears the calling thread's message when it starts, so after a call that succeeded it
 * is "". Other threads' messages are never touched.
 *
 * Threads: every function that takes an alexnet_net touches only that network (and the calling
 * thread's error message), so different networks may be used from different threads at the same
 * time; one network must not be used by two threads at once (the caller serialises, e.g. with a
 * mutex per network), except by functions that only read it (the const ones; their notes say so). Functions without a network are safe from any thread, except the two
 * process-wide settings, alexnet_set_precision and alexnet_set_threads, whose notes say what they
 * affect. The computations inside one call run on OpenMP threads. On a machine shared with other
 * busy processes, run your program with GOMP_SPINCOUNT=1000 in its environment, and where it uses
 * one thread per CPU with OMP_PROC_BIND=true OMP_PLACES=threads (the `alexnet` program does both
 * itself): libgomp's default spinning at barriers costs about a quarter of the speed there, and
 * threads left free to share a core while the neighbour has the other another tenth
 * (docs/PERFORMANCE.md). Each thread that runs networks keeps scratch memory of its
 * own between calls, among it the transformed filters of the last six 3x3/5x5 convolutions it ran
 * (so that classifying one image after another does not transform them again; for alexnet-owt
 * about 40 MB), freed when the thread ends.
 *
 * Names: every function and type starts with alexnet_, every macro with ALEXNET_. */
#ifndef ALEXNET_H
#define ALEXNET_H
#include <stddef.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

/* The library's version, the same as `alexnet --version` prints. */
#define ALEXNET_VERSION_STRING "0.1.0"

/* A network: its layers, weights, buffers for batches of up to max_batch images, the input
 * normalisation that goes with the weights, its classes' names when known, and its SGD momentum.
 * Opaque: made by alexnet_create or alexnet_load, released by alexnet_free. */
typedef struct alexnet_net alexnet_net;

/* One entry of a classification: a class index (0 .. classes-1), its softmax probability, and its
 * name, or NULL when the network has none. The name points into the network (valid until
 * alexnet_free or alexnet_set_class_names) or to a static string. */
typedef struct alexnet_class {
    int index;
    float prob;
    const char *name;
} alexnet_class;

/* The result of alexnet_evaluate on n examples: how many there were (count = n), how many have
 * their true class ranked first (top1) and among the first five (top5; every example with five
 * classes or fewer), and the mean cross-entropy loss, -log p(true class) averaged (p floored at
 * 1e-30), as `alexnet eval` computes it. Errors are count - top1 and count - top5. A tie with
 * the true class, or a NaN probability, counts against it, as in `alexnet eval`. */
typedef struct alexnet_eval {
    int count;
    int top1, top5;
    double loss;
} alexnet_eval;

/* ---- library ---- */

/* The version string, ALEXNET_VERSION_STRING ("0.1.0"). Never fails; thread-safe. */
const char *alexnet_version(void);

/* Why the calling thread's last failing call of this API failed: one line, never NULL, "" when
 * the last call that could fail succeeded (or none was made). Thread-local: valid until this
 * thread's next call into the library; other threads see their own. Thread-safe. */
const char *alexnet_last_error(void);

/* The built-in models' names, comma separated ("alexnet, alexnet-owt, convnet4, ..."). A static
 * string; never fails; thread-safe. */
const char *alexnet_models(void);

/* ---- process-wide settings (not thread-safe) ---- */

/* The number of OpenMP threads that later computations started from the calling thread use
 * (omp_set_num_threads: OpenMP's per-thread setting; threads that never set it use
 * OMP_NUM_THREADS or the number of cores). threads >= 1.
 * Returns 0, or -1 (threads < 1). Call it before work, not while the calling thread computes. */
int alexnet_set_threads(int threads);

/* The arithmetic of every matrix product (convolutions and fully connected layers) of the whole
 * process: "fp32" (the default) or "bf16" (operands rounded to bfloat16, sums in float32, as
 * `--precision bf16`; weights, gradients, the optimizer, LRN, pooling and the loss stay float32,
 * and so do the Winograd convolutions' products where the CPU has no AMX tiles: fewer products
 * there beat bf16's faster ones). Returns 0, or -1 for another name. GLOBAL and NOT THREAD-SAFE: it changes the products of every
 * network in every thread; set it once before any network computes, never while one does. */
int alexnet_set_precision(const char *precision);

/* The current precision, "fp32" or "bf16" (a static string). Thread-safe to read. */
const char *alexnet_precision(void);

/* ---- networks ---- */

/* A new network of model `model` for `channels` input channels (1..4096), `classes` outputs
 * (2..16777216) and batches of up to max_batch images (1..65536). model: a built-in name (see
 * alexnet_models) or the path of a description file (a name with a '/' or ending in .cfg; the
 * format: docs/FORMATS.md). input_size: the side of the square input images; 0 = the model's own
 * (224 for alexnet-owt, 227 for alexnet); models without one (convnet4: the dataset's size) need it
 * given, and a model with one accepts only that size or 0.
 * The weights are initialised as the model describes (alexnet_init with seed 1: weights normal
 * with the model's standard deviation, or He's sqrt(2 / fan-in), biases the model's constants);
 * the input normalisation is ImageNet's per-channel mean and std (alexnet_set_normalization
 * changes it); no class names; momentum zero.
 * Returns the network, or NULL with alexnet_last_error set: unknown model (the message names it
 * and lists the built-ins), unreadable or bad description file, a size out of range, an input too
 * small for the model, out of memory. Thread-safe (different threads may create networks at once). */
alexnet_net *alexnet_create(const char *model, int channels, int classes, int input_size, int max_batch);

/* Initialise the weights again from `seed` as the model describes (the same seed gives the same
 * weights, whatever the thread count, as `alexnet train --seed`), set the momentum to zero and the
 * training-step counter (the dropout masks' stream) to zero, with dropout drawn from `seed`.
 * Returns 0, or -1 (net is NULL). Not for concurrent use of the same net. */
int alexnet_init(alexnet_net *net, uint64_t seed);

/* Release a network and everything it owns. NULL is allowed. */
void alexnet_free(alexnet_net *net);

/* A new network with the weights of a safetensors checkpoint: a weights file (best.safetensors,
 * alexnet_save's) or a training checkpoint (its momentum and state are not read). model: a
 * built-in name or description file, or NULL for the model the file names (a built-in, or the
 * description stored in the file). Channels, classes and input size come from the file; the input
 * normalisation (per-channel mean and std, or the paper's mean image) and the class names too,
 * when the file holds them (ImageNet's normalisation otherwise, as for converted torchvision
 * weights). max_batch: 1..65536. Momentum zero; dropout seed 1.
 * Returns the network, or NULL with alexnet_last_error naming the file: unreadable, not
 * safetensors, for another model, a missing tensor or one of the wrong shape or dtype, no model
 * named and none given. Thread-safe. */
alexnet_net *alexnet_load(const char *path, const char *model, int max_batch);

/* Write the weights to a safetensors file at path (written to a temporary file, then renamed),
 * as `alexnet train` writes best.safetensors: every weight and bias tensor, the model's name and
 * description, input size, channels, classes, the input normalisation and the class names when
 * set. `alexnet classify`, `eval`, `features` and alexnet_load read it back, bit for bit.
 * Returns 0, or -1 naming the file (cannot write, out of memory). Reads the network only (another
 * thread may classify with it meanwhile, none may change it); two saves to the same path at once
 * share one temporary file (path + ".tmp") and must not happen. */
int alexnet_save(const alexnet_net *net, const char *path);

/* ---- what a network is ---- */

/* The model's name ("convnet4", or the name a description file gives); points into the library,
 * valid for the process's life. NULL for a NULL net. */
const char *alexnet_model_name(const alexnet_net *net);
/* Input channels, classes, input side S (inputs are C x S x S), the largest batch; 0 for NULL. */
int alexnet_channels(const alexnet_net *net);
int alexnet_classes(const alexnet_net *net);
int alexnet_input_size(const alexnet_net *net);
int alexnet_max_batch(const alexnet_net *net);
/* How many learnable parameters (weights and biases) it has; 0 for NULL. */
size_t alexnet_num_params(const alexnet_net *net);

/* The name of class `index`: the network's own (from the checkpoint, or alexnet_set_class_names),
 * else, for a network of 1000 classes, ILSVRC-2012's (as `alexnet classify` names them), else
 * NULL. NULL too for an index out of range. Valid until alexnet_free or alexnet_set_class_names. */
const char *alexnet_class_name(const alexnet_net *net, int index);

/* Give the classes names (names: alexnet_classes(net) strings, copied; NULL removes them): saved
 * with the weights, returned by classification. Returns 0, or -1 (NULL net, out of memory). */
int alexnet_set_class_names(alexnet_net *net, const char *const *names);

/* The per-channel input normalisation used by alexnet_preprocess_* and the classify functions,
 * and saved with the weights: input = (pixel / 255 - mean[c]) / std[c], for the network's
 * channels (1 or 3 values each). Replaces any normalisation the weights came with (the paper's
 * mean image included). Returns 0, or -1: NULL argument, a std not above 0, a network of more
 * than 3 channels. */
int alexnet_set_normalization(alexnet_net *net, const float *mean, const float *std);

/* ---- images to network input ---- */

/* One image as network input, as `alexnet classify` makes it: the shorter side resized to 256
 * (for inputs of 224 and 227; 8/7 of the input size otherwise) with an antialiased bilinear filter,
 * the centre S x S crop, grey (0.299 R + 0.587 G + 0.114 B) for a one-channel network, then the
 * network's normalisation; or, for weights trained with the paper's input, the 256 x 256 base
 * image's centre crop minus the mean image.
 * rgb: (height, width, 3) interleaved bytes, width and height >= 1. out: (C, S, S) floats, where
 * C = alexnet_channels and S = alexnet_input_size (one image of a batch).
 * Returns 0, or -1: bad arguments, a network of neither 1 nor 3 channels, out of memory.
 * Reads the network only: several threads may preprocess for the same network at once, as long
 * as none changes it. */
int alexnet_preprocess_rgb(const alexnet_net *net, const uint8_t *rgb, int width, int height, float *out);

/* The same for a JPEG or PNG file (any kind: grey, palette, 16-bit, alpha and CMYK become RGB).
 * Returns 0, or -1 naming the file (cannot read, not a JPEG or PNG, corrupt, too large). */
int alexnet_preprocess_file(const alexnet_net *net, const char *path, float *out);

/* ---- inference ---- */

/* The top k classes of an RGB image (preprocessed as alexnet_preprocess_rgb): out[0 .. r) get the
 * r = min(k, classes) most probable classes, most probable first (ties: the lower index first),
 * with their softmax probabilities and names (alexnet_class_name). Test mode (no dropout).
 * The same numbers as `alexnet classify` prints for the same image and weights.
 * Returns r, or -1: bad arguments (k < 1, NULL), see alexnet_preprocess_rgb, out of memory. */
int alexnet_classify_rgb(alexnet_net *net, const uint8_t *rgb, int width, int height, int k, alexnet_class *out);

/* The same for a JPEG or PNG file. Returns r, or -1 (as alexnet_preprocess_file, or as above). */
int alexnet_classify_file(alexnet_net *net, const char *path, int k, alexnet_class *out);

/* Softmax probabilities of a batch in test mode (no dropout): input (n, C, S, S) normalised,
 * probs (n, classes). n >= 1, any size (split into batches of max_batch).
 * Returns 0, or -1 (bad arguments). */
int alexnet_predict(alexnet_net *net, const float *input, int n, float *probs);

/* How many features alexnet_features gives per image for `layer`: the layer's output channels x
 * height x width, taken after its activation and before any pooling (4096 for fc7 of alexnet;
 * 64 x 7 x 7 = 3136 for conv3 of convnet4 at 32 x 32, 32 x 32 x 32 for its conv1).
 * layer: the name of a layer with weights ("conv1" .. "conv5", "fc6", "fc7", "fc8" for alexnet;
 * alexnet-owt's are torchvision's "features.0" .. "classifier.6"), or NULL for the last hidden
 * layer with weights (the one before the classifier: fc7 for alexnet), as `alexnet features`.
 * Returns the count (> 0), or -1 (NULL net, no such layer: the message names it). */
long alexnet_feature_size(const alexnet_net *net, const char *layer);

/* The features of `layer` (as alexnet_feature_size) for a batch in test mode: the layer's output
 * after the ReLU (or tanh) that follows it, as `alexnet features` writes them.
 * input (n, C, S, S) normalised; out (n, alexnet_feature_size(net, layer)); n >= 1, any size
 * (split into batches of max_batch). Returns 0, or -1 (bad arguments, no such layer). */
int alexnet_features(alexnet_net *net, const char *layer, const float *input, int n, float *out);

/* ---- training ---- */

/* One step of SGD on the caller's batch, as `alexnet train` makes it: forward in training mode
 * (dropout active, masks from the seed and the step counter), softmax cross-entropy, backward,
 * then the paper's update for every parameter, biases included (section 5):
 *   v <- momentum v - weight_decay lr w - lr grad;   w <- w + v
 * with the network's own momentum buffer v (zero after alexnet_create, _load and _init).
 * input (n, C, S, S) normalised; labels (n) class indices in 0 .. classes-1; 1 <= n <= max_batch;
 * lr > 0, 0 <= momentum < 1, weight_decay >= 0 (the paper: 0.01, 0.9, 0.0005).
 * *loss (may be NULL) gets the batch's mean loss before the update.
 * Returns 0, or -1: bad arguments (a label out of range is named), a loss that is NaN or infinite
 * (then the weights are left as they were), weights that became NaN or infinite in the update. */
int alexnet_train_step(alexnet_net *net, const float *input, const int *labels, int n, float lr, float momentum,
                       float weight_decay, float *loss);

/* Evaluate the network on the caller's batch in test mode (no dropout): input (n, C, S, S)
 * normalised, labels (n) in 0 .. classes-1, n >= 1, any size (split into batches of max_batch).
 * *result gets the counts and the mean loss (alexnet_eval). Returns 0, or -1 (bad arguments). */
int alexnet_evaluate(alexnet_net *net, const float *input, const int *labels, int n, alexnet_eval *result);

#ifdef __cplusplus
}
#endif
#endif
