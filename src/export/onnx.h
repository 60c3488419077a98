/* onnx.h: a network as an ONNX model file (`alexnet export`), written by our own protobuf encoder
 * (onnx.c): no protobuf library, no Python.
 *
 * The model: ir_version 8, opset 13 of the default domain (""), producer "alexnet". One graph
 * input "input", float (batch, C, S, S) with the batch dimension symbolic ("batch"): the network
 * input exactly as net_forward takes it, already normalised (no preprocessing in the graph); two
 * outputs, "logits" (batch, classes) and "probs" = Softmax(logits, axis 1). Every weight and bias
 * is an initializer named as in our checkpoints ("conv1.weight", ...), float32 little endian in
 * raw_data, conv weights (out, in/groups, k, k), linear weights (out, in). Layers: conv -> Conv
 * (group, pads, strides, kernel_shape), relu -> Relu, tanh -> Tanh, lrn -> LRN (our alpha: ONNX
 * divides it by size as we do; windows within groups: Reshape to (batch x groups, C/groups, H, W),
 * LRN, Reshape back), maxpool -> MaxPool (floor rounding, no padding), adaptive avgpool ->
 * AveragePool when the bins are equal, else a MatMul by a constant averaging matrix, linear ->
 * (Flatten) Gemm transB=1; dropout (training only) is left out. docs/FORMATS.md describes it. */
#ifndef ALEXNET_EXPORT_ONNX_H
#define ALEXNET_EXPORT_ONNX_H
#include "../model/model.h"

#define ONNX_IR_VERSION 8
#define ONNX_OPSET 13

/* What onnx_export wrote: graph nodes, parameters (weights and biases), the file's bytes. */
typedef struct OnnxSummary {
    int nodes, initializers, opset;
    size_t params;
    long long bytes;
} OnnxSummary;

/* Write net (its weights in net->params) to path as an ONNX model (through path.tmp and a
 * rename). preprocessing (may be NULL): one line saying how an image becomes the input, kept in
 * the model's metadata_props as "preprocessing" (with "model" and, when known, "class_names", one
 * a line). summary may be NULL. Returns 0, or -1 with an_error() naming the file: a layer kind
 * with no ONNX form (the towers' gather), cannot write, out of memory. */
int onnx_export(const Net *net, const char *preprocessing, const char *path, OnnxSummary *summary);
#endif
