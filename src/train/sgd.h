/* sgd.h: the paper's update over the whole parameter block (section 5):
 *   v <- momentum v - weight_decay lr w - lr grad ;  w <- w + v
 * net_sgd calls it per parameter group: the recipe sets the biases' rates (model.h: "paper" one rule
 * for all parameters, biases included, as the formula is written; "caffe" biases at 2 lr, no decay). */
#ifndef ALEXNET_SGD_H
#define ALEXNET_SGD_H
#include <stddef.h>
/* Returns how many of the updated w are NaN or infinite (0 on a healthy step), counted in the
 * same pass, so a diverging run is caught at the step it diverges. */
long sgd_update(size_t n, float *w, const float *grad, float *v, float lr, float momentum, float weight_decay);
/* LARS (You, Gitman, Ginsburg 2017, "Large Batch Training of Convolutional Networks"): a layer's
 * learning-rate multiplier eta ||w|| / (||grad|| + weight_decay ||w||) from its weights' and
 * gradient's 2-norms; 1 where either norm is 0 (a layer at zero, or without gradient). */
float sgd_lars_ratio(double w_norm, double grad_norm, float eta, float weight_decay);
#endif
