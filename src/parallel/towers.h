/* towers.h: the paper's two-tower model parallel (section 3.2, Figure 2), one tower per rank.
 *
 * From a network whose layers are split in two (the grouped `alexnet`), tower t (rank t of 2)
 * holds output channels / units [O t / 2, O (t + 1) / 2) of every layer with parameters, which is
 * a contiguous block of rows of each weight tensor: conv1 48 kernels on the whole image, conv2 and
 * conv4/conv5 on the tower's own maps (the groups), conv3 and the fully connected layers on both
 * towers' maps. Where the whole tensor is needed (conv3's input, fc6's, fc7's, fc8's) a gather
 * layer all-gathers the towers' halves forward and reduce-scatters (sums) their gradient
 * backward; the logits are gathered at the end, and the loss is computed alike on both ranks.
 * Dropout masks are those of the whole network (each tower draws its own columns), and LRN runs
 * within each tower, as in the grouped network, so the two ranks compute the single-process
 * `alexnet` number for number (up to summation order). */
#ifndef ALEXNET_TOWERS_H
#define ALEXNET_TOWERS_H
#include "../model/model.h"

typedef struct Towers Towers;

/* The tower spec of rank `tower` (0 or 1) for `full` (a built whole network: its shapes) into
 * *out. 0, or -1 with an_error naming the layer that cannot be split (an LRN window across the
 * towers, a grouped layer on an unsplit input, an odd channel count). */
int towers_spec(const Net *full, int tower, ModelSpec *out);
/* Wire net (built from towers_spec of this rank) to exchange through MPI with the other tower.
 * *out is freed by towers_free. 0 or -1. */
int towers_attach(Net *net, const Net *full, int tower, Towers **out);
void towers_free(Towers *t);
/* This tower's weights (and momentum, if both not NULL) from the whole network's. */
void towers_from_full(const Net *net, const Net *full, int tower, float *momentum, const float *full_momentum);
/* The whole network's weights (and momentum) on rank 0, gathered from both towers (every rank
 * calls it). 0 or -1. */
int towers_to_full(const Net *net, Net *full, int tower, const float *momentum, float *full_momentum);
#endif
