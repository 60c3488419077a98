#!/usr/bin/env python3
"""gpu_floor.py RATES LAYERS [fp32|tf32|bf16]: each layer's time from `alexnet bench --device cuda
--layers` (LAYERS) beside its floor: its FLOPs over the card's measured matrix rate (RATES, from
gpu_rates.py: `name value` lines) or its bytes over the measured copy rate, whichever is larger.
Prints a Markdown table with, per pass, the time, GFLOP, MB, floor and time over floor.

LAYERS rows are `index [name] kind` then, per pass (forward, and backward when training), three
cells: ms, GFLOP/s (or -) and MB (the GPU build; the CPU build prints %peak there, so no bytes).
The GFLOP of a pass is GFLOP/s times ms, so rows measured at 0 ms (a ReLU fused into the layer
before it, whose time is that layer's) have no GFLOP, floor or ratio: "-". The bytes are the
bench's float32 count (layer_bytes in src/cli/bench_model.c), also under bf16."""
import re
import sys

KINDS = "conv|relu|tanh|lrn|maxpool|avgpool|dropout|linear"
ROW = re.compile(rf"^(\d+)\s+(\S*)\s+({KINDS})\s+(.*)$")


def read_rates(path, prec):
    """(matrix FLOP/s, copy bytes/s, device name); None for a rate the file lacks."""
    try:
        rates = dict(line.split(None, 1) for line in open(path) if len(line.split(None, 1)) == 2)
    except OSError as e:
        print(f"gpu_floor: no rates ({e}); floors left out\n")
        rates = {}

    def num(key, scale):
        try:
            return float(rates[key]) * scale
        except (KeyError, ValueError):
            return None

    return num(f"matrix_{prec}_tflops", 1e12), num("copy_gbs", 1e9), rates.get("device", "?").strip()


def cell(x, fmt):
    return "-" if x is None else format(x, fmt)


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    prec = sys.argv[3] if len(sys.argv) > 3 else "fp32"
    matrix, copy, device = read_rates(sys.argv[1], prec)
    try:
        lines = open(sys.argv[2]).read().splitlines()
    except OSError as e:
        print(f"gpu_floor: {e}\n")
        return
    rows = [m.groups() for m in map(ROW.match, lines) if m]
    if not rows:
        print(f"gpu_floor: no layer rows in {sys.argv[2]} (did the bench fail?): "
              f"{lines[-1] if lines else 'empty'}\n")
        return

    print(f"floors ({prec}, {device}): matrix products "
          f"{cell(matrix and matrix / 1e12, '.1f')} TFLOP/s, copies {cell(copy and copy / 1e9, '.0f')} GB/s")
    steps = [line for line in lines if line.startswith("bench:") and "ms per step" in line]
    if steps:
        print(steps[-1])
    print()
    passes = max(len(rest.split()) // 3 for _, _, _, rest in rows)
    head = ["layer", "kind"]
    for p in ("fwd", "bwd")[:passes]:
        head += [f"{p} ms", f"{p} GFLOP", f"{p} MB", f"{p} floor ms", f"{p} x floor"]
    print("| " + " | ".join(head) + " |")
    print("|" + " --- |" * len(head))

    total_ms, total_floor = [0.0] * passes, [0.0] * passes
    for idx, name, kind, rest in rows:
        f = rest.split()
        cells = [f"{idx} {name}".strip(), kind]
        for k in range(passes):
            if 3 * k + 2 >= len(f):
                cells += [""] * 5
                continue
            ms_s, gflops_s, mb_s = f[3 * k:3 * k + 3]
            ms = float(ms_s)
            mb = None if mb_s == "-" or mb_s.endswith("%") else float(mb_s)
            gflop = floor = None
            if ms > 0:  # a 0 ms row's time is counted in another layer
                gflop = 0.0 if gflops_s == "-" else float(gflops_s) * ms / 1e3
                parts = []
                if matrix:
                    parts.append(gflop * 1e9 / matrix)
                if copy and mb is not None:
                    parts.append(mb * 1e6 / copy)
                floor = max(parts) * 1e3 if parts and max(parts) > 0 else None
            total_ms[k] += ms
            if floor:
                total_floor[k] += floor
            ratio = ms / floor if floor else None
            cells += [f"{ms:.3f}", cell(gflop if gflop else None, ".2f"), cell(mb, ".1f"),
                      cell(floor, ".3f"), cell(ratio, ".1f")]
        print("| " + " | ".join(cells) + " |")
    cells = ["all layers", ""]
    for k in range(passes):
        floor = total_floor[k] or None
        cells += [f"{total_ms[k]:.3f}", "", "", cell(floor, ".3f"), cell(floor and total_ms[k] / floor, ".1f")]
    print("| " + " | ".join(cells) + " |")
    print()


if __name__ == "__main__":
    main()
