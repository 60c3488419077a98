/* sgd.h: the paper's update over the whole parameter block (section 5):
 *   v <- momentum v - weight_decay lr w - lr grad ;  w <- w + v
 * Weight decay applies to every parameter, biases included, as the formula is written. */
#ifndef ALEXNET_SGD_H
#define ALEXNET_SGD_H
#include <stddef.h>
void sgd_update(size_t n, float *w, const float *grad, float *v, float lr, float momentum, float weight_decay);
#endif
