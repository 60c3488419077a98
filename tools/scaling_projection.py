#!/usr/bin/env python3
"""scaling_projection.py: an alpha-beta (latency-bandwidth) projection of distributed training
throughput for the paper's `alexnet` (60,965,224 parameters), data parallel on 8, 64 and 1,024
workers (CPU nodes and GPUs) and the paper's two-tower model parallel on 2 GPUs, beside two
published large-scale ImageNet runs. Standard library only; prints a Markdown table (or CSV).

    /usr/bin/python3 tools/scaling_projection.py [--cpu-step-s S] [--gpu-step-s S] [--overlap F] [--csv]

It is a model, not a measurement: every figure it prints follows from its inputs (the flags) and
the formulas below. Pass the measured single-worker step times (`alexnet bench --model alexnet
--mode train --batch 128`, seconds per step = 128 / images/s) to project from this program's own
speed.

The model
---------
A message of n bytes over a link costs alpha + n * beta (alpha: latency, beta: seconds per byte).

Data parallel (weak scaling): each of p workers runs a step of `--per-worker-batch` images (global
batch p x per-worker batch), then the float32 gradients, n = params x 4 bytes = 243.9 MB, are
summed over the workers:
  ring all-reduce      T(p, n) = 2 (p-1) alpha + 2 (p-1)/p n beta
  reduce-scatter and all-gather are each half of it: (p-1) alpha + (p-1)/p n beta.
  CPU nodes            one worker per node (its cores share one gradient buffer in memory, so the
                       shared-memory step inside a node costs nothing here), a flat ring of p nodes
                       over InfiniBand.
  GPUs, 8 per node     hierarchical: reduce-scatter over NVLink inside the node (each GPU keeps
                       n/8), a ring all-reduce of those n/8 bytes across the p/8 nodes over
                       InfiniBand (GPU k of every node with GPU k of the others, 8 rings at once),
                       all-gather over NVLink. The 8 rings share the node's InfiniBand adapters:
                       with `--nics-per-node 1` (the default) each ring gets 1/8 of the 100 Gb/s, so
                       the node pushes all n bytes through one adapter; `--nics-per-node 8` (one
                       adapter per GPU, as in DGX H100/H200 nodes) gives each ring its own. p <= 8:
                       one ring over NVLink.
  Links (flags)        InfiniBand 100 Gb/s: alpha 2 us, beta = 1 / 12.5 GB/s.
                       NVLink 4 (H100/H200, through NVSwitch): alpha 5 us, 450 GB/s per GPU per
                       direction (900 GB/s both ways together).
Compute time per step = the single-worker step time x per-worker batch / 128 (linear in the batch:
optimistic for GPUs at small batches). The per-layer all-reduces start as backward finishes each
layer (src/parallel: non-blocking, one per layer), so part of the all-reduce C hides behind the
rest of the backward pass B = `--backward-fraction` x compute (0.65: backward's share of the CPU
step in the per-layer table of docs/PERFORMANCE.md, 2,109 of 3,250 ms):
  hidden = min(overlap x C, B),  exposed = C - hidden,  step = compute + exposed.
`--overlap` (default 0.5) is used for the main columns; the images/s at overlap 0 (nothing hidden)
and overlap 1 (all hidden that B allows) are printed beside it. AlexNet favours overlap: 96% of the
gradient bytes are fc6-fc8's, which backward produces first, before the convolutions' backward,
about 90% of the backward time; whether MPI progresses the non-blocking sums during that time
(asynchronous progress) decides how much really hides.
  images/s = p x batch / step;  efficiency = images/s / (p x one worker's images/s without
  communication) = compute / step;  epoch = 1,281,167 ImageNet training images / images/s.

Two towers (section 3.2 of the paper, src/parallel/towers.c): two workers, each holding half of
every layer's kernels, run one batch of 128 together (strong scaling), each doing about half the
compute (taken as exactly half: the half-width layers may run less efficiently, mostly on GPUs).
Where the towers connect they exchange activations: forward all-gathers of each tower's half of
conv3's input (pool2, 128 x 13 x 13 per image per tower), fc6's (pool5, 128 x 6 x 6), fc7's
(fc6, 2048), fc8's (fc7, 2048) and the logits (fc8, 500); backward reduce-scatters of the gradient
of the first four (the loss is computed alike on both towers, so the logits' gradient is not
exchanged, as in towers.c). Per image each tower sends 30,836 floats forward and 30,336 backward:
  `--tower-bytes` default = 128 x (30,836 + 30,336) x 4 = 31,320,064 bytes sent by each tower
  per step (31,576,064 if the logits' gradient were exchanged as well), in 9 messages;
  exchange = 9 alpha + tower-bytes x beta (both towers send at once: full duplex), all exposed
  (each exchange is on the critical path); step = compute / 2 + exchange.

Inputs (defaults)
-----------------
  --cpu-step-s 128/40 = 3.2 s: about 40 images/s, `alexnet` training at batch 128 on a 2-core
      node in float32 (docs/PERFORMANCE.md: 38.8-39.6 img/s on 2 Zen 4 cores, 36.2 on 2 Xeon
      cores).
  --gpu-step-s 128/5300 s: PyTorch, the paper's layout, float32, one H200, 5,300 images/s;
  --gpu-bf16-step-s 128/8885 s: the same in bf16 autocast, 8,885 images/s (0 leaves the bf16
      rows out). These two are inputs given to this tool, not measurements of this program:
      docs/PERFORMANCE.md had no GPU figures when it was written; pass measured values.
  The gradients stay float32 in bf16 mode (this program keeps float32 weights and gradients), so
  the bf16 rows move the same 243.9 MB per step in less compute time.

Published figures (constants below; images/s and per-worker rates derived here as
epochs x 1,281,167 / time, so as rounded as the times they come from)
-----------------
You, Zhang, Hsieh, Demmel, Keutzer, "ImageNet Training in Minutes", arXiv:1709.05011 (2017) and
ICPP 2018 (doi:10.1145/3225058.3225069):
  - AlexNet, 100 epochs in 11 minutes: "on 1024 CPUs" (arXiv abstract), "using 2,048 Intel Xeon
    Platinum 8160 processors" (ICPP abstract); we read these as 1,024 two-socket nodes. Batch
    32K (32,768) with LARS (layer-wise adaptive rate scaling). Derived: about 194,000 images/s.
  - The first version (September 2017, arXiv v1 / Berkeley tech report UCB/EECS-2017-155, later
    withdrawn, "ImageNet Training in 24 Minutes"): AlexNet, 100 epochs in 24 minutes (abstract),
    on about 512 Intel Knights Landing (Xeon Phi) processors (the count commonly quoted for that
    version, not re-checked: its abstract names no hardware). Derived: about 89,000 images/s.
  - Top-1 accuracy of their large-batch AlexNet: about 58.6% (not re-checked against the paper's
    tables for this tool). Their AlexNet is not this repository's LRN network in every detail (the
    paper also trains a batch-normalised "AlexNet-BN").
Goyal, Dollár, Girshick, Noordhuis, Wesolowski, Kyrola, Tulloch, Jia, He, "Accurate, Large
Minibatch SGD: Training ImageNet in 1 Hour", arXiv:1706.02677 (2017):
  - ResNet-50 (not AlexNet: about 25.6 M parameters, 100 MB of gradients), minibatch 8,192
    on 256 GPUs (NVIDIA Tesla P100, 8 per server), 90 epochs in one hour; "~90% scaling
    efficiency when moving from 8 to 256 GPUs" (abstract). Derived: about 32,000 images/s,
    about 125 per GPU.
"""
import argparse
import csv
import sys

IMAGENET_TRAIN = 1281167
ALEXNET_PARAMS = 60965224
STEP_BATCH = 128  # the batch the --*-step-s inputs are for

# the paper's two towers: floats per image per tower at each exchange (src/parallel/towers.c)
TOWER_FORWARD = [("pool2 -> conv3", 128 * 13 * 13), ("pool5 -> fc6", 128 * 6 * 6),
                 ("fc6 -> fc7", 2048), ("fc7 -> fc8", 2048), ("fc8 logits", 500)]
TOWER_BACKWARD = TOWER_FORWARD[:4]  # the logits' gradient is computed alike on both towers

# published runs: (label, model, workers, global batch, epochs, minutes, efficiency or None, note)
PUBLISHED = [
    ("You et al. 2018: AlexNet, 1,024 CPUs (2,048 Xeon Platinum 8160), LARS", "AlexNet",
     1024, 32768, 100, 11.0, None, "arXiv:1709.05011 / ICPP 2018; top-1 about 58.6%"),
    ("You et al. 2017 (v1): AlexNet, about 512 KNL, LARS", "AlexNet",
     512, 32768, 100, 24.0, None, "arXiv:1709.05011 v1 (withdrawn tech report)"),
    ("Goyal et al. 2017: ResNet-50, 256 P100", "ResNet-50",
     256, 8192, 90, 60.0, 0.90, "arXiv:1706.02677; ~90% efficiency 8 -> 256 GPUs"),
]


def ring_allreduce(p, n, alpha, beta):
    return 0.0 if p <= 1 else 2 * (p - 1) * alpha + 2 * (p - 1) / p * n * beta


def half_ring(p, n, alpha, beta):
    """reduce-scatter, or all-gather, over a ring of p"""
    return 0.0 if p <= 1 else (p - 1) * alpha + (p - 1) / p * n * beta


def gpu_allreduce(p, n, a):
    g = a.gpus_per_node
    nv = (a.nvlink_alpha_us * 1e-6, 1 / (a.nvlink_gbs * 1e9))
    if p <= g:
        return ring_allreduce(p, n, *nv)
    nodes = p // g
    ib_alpha, ib_beta = a.ib_alpha_us * 1e-6, 8 / (a.ib_gbps * 1e9)
    shared = g / a.nics_per_node  # rings sharing one adapter
    inside = 2 * half_ring(g, n, *nv)
    across = ring_allreduce(nodes, n / g, ib_alpha, ib_beta * shared)
    return inside + across


def cpu_allreduce(p, n, a):
    return ring_allreduce(p, n, a.ib_alpha_us * 1e-6, 8 / (a.ib_gbps * 1e9))


def exposed_comm(comm, compute, overlap, backward_fraction):
    return comm - min(overlap * comm, backward_fraction * compute)


def fmt_time(s):
    if s < 120:
        return "%.1f s" % s
    if s < 7200:
        return "%.1f min" % (s / 60)
    return "%.1f h" % (s / 3600)


def fmt_ms(s):
    ms = s * 1e3
    return "%.0f" % ms if ms >= 100 else "%.1f" % ms if ms >= 10 else "%.2f" % ms


def fmt_rate(r):
    return "{:,.0f}".format(r) if r >= 100 else "%.1f" % r


def data_parallel_rows(a):
    n = a.params * a.grad_bytes
    b = a.per_worker_batch
    kinds = [("CPU node", a.cpu_step_s, cpu_allreduce, "IB ring")]
    kinds.append(("GPU fp32", a.gpu_step_s, gpu_allreduce, "NVLink + IB"))
    if a.gpu_bf16_step_s > 0:
        kinds.append(("GPU bf16", a.gpu_bf16_step_s, gpu_allreduce, "NVLink + IB"))
    rows = []
    for name, step128, allreduce, link in kinds:
        compute = step128 * b / STEP_BATCH
        one = b / compute
        for p in a.workers:
            comm = allreduce(p, n, a)
            out = {}
            for ov in (a.overlap, 0.0, 1.0):
                step = compute + exposed_comm(comm, compute, ov, a.backward_fraction)
                out[ov] = (step, p * b / step)
            step, rate = out[a.overlap]
            epoch = a.images / rate
            rows.append(dict(table="data-parallel", case=name, link=link, workers=p, global_batch=p * b,
                             compute_ms=compute * 1e3, comm_ms=comm * 1e3, exposed_ms=(step - compute) * 1e3,
                             step_ms=step * 1e3, images_per_s=rate, efficiency=rate / (p * one),
                             epoch_s=epoch, run_epochs=a.epochs, run_min=epoch * a.epochs / 60,
                             images_per_s_overlap0=out[0.0][1], images_per_s_overlap1=out[1.0][1],
                             note="projection, overlap %g" % a.overlap))
    return rows


def published_rows(a):
    rows = []
    for label, model, p, gb, epochs, minutes, eff, note in PUBLISHED:
        rate = epochs * a.images / (minutes * 60)
        rows.append(dict(table="published", case=label, link="", workers=p, global_batch=gb,
                         compute_ms=None, comm_ms=None, exposed_ms=None, step_ms=gb / rate * 1e3,
                         images_per_s=rate, efficiency=eff, epoch_s=a.images / rate, run_epochs=epochs,
                         run_min=minutes, images_per_s_overlap0=None, images_per_s_overlap1=None,
                         note=note + "; model " + model))
    return rows


def tower_rows(a):
    links = [("NVLink", a.nvlink_alpha_us * 1e-6, 1 / (a.nvlink_gbs * 1e9)),
             ("InfiniBand", a.ib_alpha_us * 1e-6, 8 / (a.ib_gbps * 1e9))]
    msgs = len(TOWER_FORWARD) + len(TOWER_BACKWARD)
    kinds = [("GPU fp32", a.gpu_step_s, links)]
    if a.gpu_bf16_step_s > 0:
        kinds.append(("GPU bf16", a.gpu_bf16_step_s, links))
    kinds.append(("CPU node", a.cpu_step_s, links[1:]))
    rows = []
    n = a.params * a.grad_bytes
    for name, step128, lks in kinds:
        for link, alpha, beta in lks:
            half = step128 / 2
            exch = msgs * alpha + a.tower_bytes * beta
            step = half + exch
            rate = STEP_BATCH / step
            # beside it: 2 workers data parallel on the same link, batch 128 each, same overlap
            dp_comm = ring_allreduce(2, n, alpha, beta)
            dp_step = step128 + exposed_comm(dp_comm, step128, a.overlap, a.backward_fraction)
            rows.append(dict(table="towers", case=name + ", 2 towers", link=link, workers=2,
                             global_batch=STEP_BATCH, compute_ms=half * 1e3, comm_ms=exch * 1e3,
                             exposed_ms=exch * 1e3, step_ms=step * 1e3, images_per_s=rate,
                             efficiency=step128 / step / 2, epoch_s=a.images / rate, run_epochs=a.epochs,
                             run_min=a.images / rate * a.epochs / 60, images_per_s_overlap0=None,
                             images_per_s_overlap1=None,
                             note="2-worker data parallel on this link: %.0f images/s" % (2 * STEP_BATCH / dp_step),
                             dp_rate=2 * STEP_BATCH / dp_step))
    return rows


FIELDS = ["table", "case", "link", "workers", "global_batch", "compute_ms", "comm_ms", "exposed_ms",
          "step_ms", "images_per_s", "efficiency", "epoch_s", "run_epochs", "run_min",
          "images_per_s_overlap0", "images_per_s_overlap1", "note"]


def write_csv(rows):
    w = csv.writer(sys.stdout, lineterminator="\n")
    w.writerow(FIELDS)
    for r in rows:
        w.writerow(["" if r.get(f) is None else ("%.6g" % r[f] if isinstance(r[f], float) else r[f])
                    for f in FIELDS])


def write_markdown(a, dp, pub, tw):
    n = a.params * a.grad_bytes
    print("Inputs: %s parameters, %d-byte gradients (%.1f MB per all-reduce); per-worker batch %d; "
          "one worker's step at batch 128: CPU node %.3f s (%.1f img/s), GPU fp32 %.2f ms (%s img/s)%s; "
          "InfiniBand %g Gb/s, alpha %g us, %d adapter(s) per GPU node; NVLink %g GB/s per GPU, alpha %g us, "
          "%d GPUs per node; overlap %g of the all-reduce hidden, at most the backward pass (%g of the step)."
          % ("{:,}".format(a.params), a.grad_bytes, n / 1e6, a.per_worker_batch, a.cpu_step_s,
             STEP_BATCH / a.cpu_step_s, a.gpu_step_s * 1e3, fmt_rate(STEP_BATCH / a.gpu_step_s),
             (", GPU bf16 %.2f ms (%s img/s)" % (a.gpu_bf16_step_s * 1e3, fmt_rate(STEP_BATCH / a.gpu_bf16_step_s))
              if a.gpu_bf16_step_s > 0 else ""),
             a.ib_gbps, a.ib_alpha_us, a.nics_per_node, a.nvlink_gbs, a.nvlink_alpha_us, a.gpus_per_node,
             a.overlap, a.backward_fraction))
    print()
    print("| worker | workers | global batch | compute ms | all-reduce ms | exposed ms | step ms | images/s "
          "| efficiency | epoch | %d epochs | images/s at overlap 0 / 1 |" % a.epochs)
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in dp:
        print("| %s | %d | %s | %s | %s | %s | %s | %s | %.1f%% | %s | %s | %s / %s |"
              % (r["case"], r["workers"], "{:,}".format(r["global_batch"]), fmt_ms(r["compute_ms"] / 1e3),
                 fmt_ms(r["comm_ms"] / 1e3), fmt_ms(r["exposed_ms"] / 1e3), fmt_ms(r["step_ms"] / 1e3),
                 fmt_rate(r["images_per_s"]), 100 * r["efficiency"], fmt_time(r["epoch_s"]),
                 fmt_time(r["run_min"] * 60), fmt_rate(r["images_per_s_overlap0"]),
                 fmt_rate(r["images_per_s_overlap1"])))
    for r in pub:
        eff = "~%.0f%% (8 -> 256)" % (100 * r["efficiency"]) if r["efficiency"] else "not given"
        print("| published: %s | %d | %s | | | | %s (derived) | %s (derived) | %s | %s (derived) | %s (%d epochs) | |"
              % (r["case"], r["workers"], "{:,}".format(r["global_batch"]), fmt_ms(r["step_ms"] / 1e3),
                 fmt_rate(r["images_per_s"]), eff, fmt_time(r["epoch_s"]), fmt_time(r["run_min"] * 60),
                 r["run_epochs"]))
    print()
    print("Two towers (the paper's model parallel), one batch of %d on 2 workers, %.1f MB sent by each "
          "tower per step in %d messages:" % (STEP_BATCH, a.tower_bytes / 1e6,
                                               len(TOWER_FORWARD) + len(TOWER_BACKWARD)))
    print()
    print("| worker | link | compute ms (half) | exchange ms | step ms | images/s | speed-up over 1 worker "
          "| efficiency | 2 workers data parallel, images/s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in tw:
        print("| %s | %s | %s | %s | %s | %s | %.2fx | %.1f%% | %s |"
              % (r["case"], r["link"], fmt_ms(r["compute_ms"] / 1e3), fmt_ms(r["comm_ms"] / 1e3),
                 fmt_ms(r["step_ms"] / 1e3), fmt_rate(r["images_per_s"]), 2 * r["efficiency"],
                 100 * r["efficiency"], fmt_rate(r["dp_rate"])))


def workers_list(s):
    try:
        v = [int(x) for x in s.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError("a comma-separated list of worker counts")
    if not v or min(v) < 1:
        raise argparse.ArgumentTypeError("worker counts are at least 1")
    return v


def main():
    ap = argparse.ArgumentParser(description="Alpha-beta projection of distributed AlexNet training "
                                 "(see the docstring at the top of this file for the model).")
    ap.add_argument("--cpu-step-s", type=float, default=STEP_BATCH / 40,
                    help="seconds of one training step at batch 128 on one CPU worker (node) (default 128/40)")
    ap.add_argument("--gpu-step-s", type=float, default=STEP_BATCH / 5300,
                    help="the same on one H100/H200 GPU, float32 (default 128/5300)")
    ap.add_argument("--gpu-bf16-step-s", type=float, default=STEP_BATCH / 8885,
                    help="the same in bf16 (default 128/8885; 0 leaves the bf16 rows out)")
    ap.add_argument("--params", type=int, default=ALEXNET_PARAMS, help="parameters (default 60965224)")
    ap.add_argument("--grad-bytes", type=int, default=4, help="bytes per gradient (default 4: float32)")
    ap.add_argument("--per-worker-batch", type=int, default=STEP_BATCH,
                    help="images per worker per step (weak scaling; compute scales linearly) (default 128)")
    ap.add_argument("--overlap", type=float, default=0.5,
                    help="fraction of the all-reduce hidden behind backward (default 0.5; 0 and 1 printed beside)")
    ap.add_argument("--backward-fraction", type=float, default=0.65,
                    help="backward's share of the step: the most that can hide behind it (default 0.65)")
    ap.add_argument("--workers", type=workers_list, default=[8, 64, 1024], help="default 8,64,1024")
    ap.add_argument("--ib-gbps", type=float, default=100.0, help="InfiniBand Gb/s per adapter (default 100)")
    ap.add_argument("--ib-alpha-us", type=float, default=2.0, help="InfiniBand latency, us (default 2)")
    ap.add_argument("--nics-per-node", type=int, default=1,
                    help="InfiniBand adapters per GPU node (default 1; 8 = one per GPU)")
    ap.add_argument("--nvlink-gbs", type=float, default=450.0,
                    help="NVLink GB/s per GPU per direction (default 450: NVLink 4)")
    ap.add_argument("--nvlink-alpha-us", type=float, default=5.0, help="NVLink latency, us (default 5)")
    ap.add_argument("--gpus-per-node", type=int, default=8, help="default 8")
    default_tower = STEP_BATCH * (sum(f for _, f in TOWER_FORWARD) + sum(f for _, f in TOWER_BACKWARD)) * 4
    ap.add_argument("--tower-bytes", type=float, default=default_tower,
                    help="bytes each tower sends per step at batch 128 (default %d)" % default_tower)
    ap.add_argument("--images", type=int, default=IMAGENET_TRAIN, help="images per epoch (default 1281167)")
    ap.add_argument("--epochs", type=int, default=100, help="epochs for the run-time column (default 100)")
    fmt = ap.add_mutually_exclusive_group()
    fmt.add_argument("--markdown", action="store_true", help="Markdown tables (the default)")
    fmt.add_argument("--csv", action="store_true", help="one CSV table instead")
    a = ap.parse_args()

    if not 0 <= a.overlap <= 1 or not 0 <= a.backward_fraction <= 1:
        ap.error("--overlap and --backward-fraction are fractions in [0, 1]")
    for name in ("cpu_step_s", "gpu_step_s", "ib_gbps", "nvlink_gbs", "tower_bytes"):
        if getattr(a, name) <= 0:
            ap.error("--%s must be positive" % name.replace("_", "-"))
    if a.gpu_bf16_step_s < 0 or a.params < 1 or a.grad_bytes < 1 or a.per_worker_batch < 1 \
            or a.images < 1 or a.epochs < 1:
        ap.error("step times, sizes and counts cannot be negative")
    if a.gpus_per_node < 1 or not 1 <= a.nics_per_node <= a.gpus_per_node:
        ap.error("--nics-per-node is between 1 and --gpus-per-node")
    bad = [p for p in a.workers if p > a.gpus_per_node and p % a.gpus_per_node]
    if bad:
        ap.error("GPU worker counts above one node must fill whole nodes of %d: %s" % (a.gpus_per_node, bad))

    dp, pub, tw = data_parallel_rows(a), published_rows(a), tower_rows(a)
    if a.csv:
        write_csv(dp + pub + tw)
    else:
        write_markdown(a, dp, pub, tw)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # piped into head
        sys.stderr.close()
        sys.exit(1)
