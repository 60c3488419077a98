/* models_embedded.c: the description files in models/ built into the program (the assembler's
 * .incbin, each followed by a NUL), so `--model alexnet` needs no file at run time. The Makefile
 * rebuilds this object when a file changes; model_builtin (models.c) lists them. */
#define EMBED(sym, file)                                                                        \
    __asm__(".section .rodata\n.global " #sym "\n.type " #sym ", @object\n" #sym ":\n.incbin \"" \
            file "\"\n.byte 0\n.size " #sym ", .-" #sym "\n.previous\n");
EMBED(model_cfg_alexnet, "models/alexnet.cfg")
EMBED(model_cfg_alexnet_owt, "models/alexnet-owt.cfg")
EMBED(model_cfg_convnet4, "models/convnet4.cfg")
EMBED(model_cfg_convnet4_tanh, "models/convnet4-tanh.cfg")
EMBED(model_cfg_alexnet_nolrn, "models/alexnet-nolrn.cfg")
EMBED(model_cfg_alexnet_pool2, "models/alexnet-pool2.cfg")
EMBED(model_cfg_alexnet_1tower, "models/alexnet-1tower.cfg")
EMBED(model_cfg_alexnet_conv6, "models/alexnet-conv6.cfg")
EMBED(model_cfg_convnet4_lrn, "models/convnet4-lrn.cfg")
EMBED(model_cfg_convnet4_pool2, "models/convnet4-pool2.cfg")
EMBED(model_cfg_convnet4_2tower, "models/convnet4-2tower.cfg")
