/* finetune.h: starting a run from another network's weights (the paper pre-trained on ImageNet
 * Fall 2011 and fine-tuned on ILSVRC-2012): train --init FILE, --reset LAYERS, --freeze LAYERS. */
#ifndef ALEXNET_FINETUNE_H
#define ALEXNET_FINETUNE_H
#include "../model/model.h"

/* "conv1,fc8" -> mask[i] = 1 for those layers with parameters (net's layer indices). NULL or ""
 * sets none. 0, or -1 with an_error naming `flag` and the unknown name (and the layers there are). */
int finetune_layers(const Net *net, const char *list, const char *flag, unsigned char *mask);
/* Every weight and bias of net from the checkpoint or weights file at path, by tensor name, except
 * the layers in reset (they keep the initialisation they have). A tensor missing from the file or
 * of another shape is an error naming it and suggesting --reset. 0 or -1. */
int finetune_init(Net *net, const char *path, const unsigned char *reset);
#endif
