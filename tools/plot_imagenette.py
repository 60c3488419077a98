#!/usr/bin/env python3
"""plot_imagenette.py: the Imagenette curves of docs/RESULTS.md from the run logs in bench/results/
(log.csv of the C trainer, the CSV of bench/train_pytorch.py): training loss and validation top-1
error per epoch, centre crop (solid) and 10-crop (dashed, where measured), for both recipes in C
and in PyTorch. Needs matplotlib (Debian: python3-matplotlib).

    /usr/bin/python3 tools/plot_imagenette.py [--out docs/imagenette_curves.png]
    [--runs NAME:LABEL,...] [--title TEXT]

--runs picks other CSVs of bench/results (NAME.csv) with their legend labels, e.g. the caffe
recipe's C run, its replicate built with im2col convolutions and the PyTorch peer:
    --runs "c_caffe:C (Winograd build),c_caffe_im2col:C (im2col build),pytorch_caffe:PyTorch"
"""
import argparse
import csv
import os

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

RUNS = [("c_caffe", "C, caffe recipe", "tab:blue"), ("pytorch_caffe", "PyTorch, caffe recipe", "tab:orange"),
        ("c_paper", "C, paper recipe", "tab:green"), ("pytorch_paper", "PyTorch, paper recipe", "tab:red")]


def read(path):
    rows = []
    with open(path) as f:
        for r in csv.DictReader(f):
            rows.append(r)
    return rows


def col(rows, key):
    xs, ys = [], []
    for r in rows:
        v = r.get(key)
        if v not in (None, ""):
            xs.append(int(r["epoch"]))
            ys.append(float(v))
    return xs, ys


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--results", default=os.path.join(here, "..", "bench", "results"))
    ap.add_argument("--out", default=os.path.join(here, "..", "docs", "imagenette_curves.png"))
    ap.add_argument("--runs", default="", help="NAME:LABEL,... (default: the four runs of both recipes)")
    ap.add_argument("--title", default="AlexNet from scratch on Imagenette (2-core Xeon)")
    args = ap.parse_args()
    runs = RUNS
    if args.runs:
        colours = ["tab:blue", "tab:cyan", "tab:orange", "tab:green", "tab:red", "tab:purple"]
        runs = [(r.split(":", 1)[0], r.split(":", 1)[1], colours[i % len(colours)])
                for i, r in enumerate(args.runs.split(","))]
    fig, (ax_loss, ax_err) = plt.subplots(1, 2, figsize=(11, 4.2))
    for name, label, colour in runs:
        path = os.path.join(args.results, name + ".csv")
        if not os.path.exists(path):
            continue
        rows = read(path)
        x, y = col(rows, "train_loss")
        ax_loss.plot(x, y, "o-", color=colour, label=label)
        x, y = col(rows, "val_top1_err")
        ax_err.plot(x, [100 * v for v in y], "o-", color=colour, label=label + ", centre")
        x, y = col(rows, "val10_top1_err")
        if x:
            ax_err.plot(x, [100 * v for v in y], "s--", color=colour, label=label + ", 10 crops")
    ax_loss.set_title("training loss")
    ax_err.set_title("validation top-1 error (%)")
    for ax in (ax_loss, ax_err):
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    ax_err.axhline(90, color="grey", lw=0.8, ls=":")
    ax_err.text(1, 90.5, "chance (10 classes)", color="grey", fontsize=8)
    ax_err.legend(fontsize=7)
    ax_loss.legend(fontsize=7)
    fig.suptitle(args.title)
    fig.tight_layout()
    fig.savefig(args.out, dpi=100)
    print(args.out)


if __name__ == "__main__":
    main()
