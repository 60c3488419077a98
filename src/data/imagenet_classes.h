/* imagenet_classes.h: the 1000 ILSVRC-2012 (ImageNet-1k) class names, index order (the sorted
 * WordNet ids: 0 = "tench, Tinca tinca", 999 = "toilet tissue, toilet paper, bathroom tissue"),
 * as torchvision's and Caffe's pretrained weights number them. Used by `alexnet classify`.
 * Generated from ../shared/data/demo-images/imagenet1k_classes.txt (opencv-doc's
 * classification_classes_ILSVRC2012.txt); do not edit, rerun: python3 tools/make_class_names.py */
#ifndef ALEXNET_IMAGENET_CLASSES_H
#define ALEXNET_IMAGENET_CLASSES_H

#define IMAGENET_NUM_CLASSES 1000
extern const char *const IMAGENET_CLASSES[IMAGENET_NUM_CLASSES];
#endif
