#!/usr/bin/env python3
"""gpu_floor.py RATES LAYERS [fp32|tf32]: each layer's time from `alexnet bench --device cuda --layers`
(LAYERS) beside its floor: FLOPs over the measured matrix rate (RATES, from gpu_rates.py) or bytes
over the measured copy rate, whichever is larger. Prints a Markdown table."""
import re
import sys


def main():
    rates = dict(line.split(None, 1) for line in open(sys.argv[1]) if line.strip())
    prec = sys.argv[3] if len(sys.argv) > 3 else "fp32"
    matrix = float(rates[f"matrix_{prec}_tflops"]) * 1e12
    copy = float(rates["copy_gbs"]) * 1e9
    print(f"floors: {prec} matrix products {matrix / 1e12:.1f} TFLOP/s, copies {copy / 1e9:.0f} GB/s "
          f"({rates.get('device', '?').strip()})\n")
    print("| layer | kind | fwd ms | fwd floor ms | bwd ms | bwd floor ms |")
    print("| --- | --- | --- | --- | --- | --- |")
    row = re.compile(r"^(\d+)\s+(\S*)\s+(conv|relu|tanh|lrn|maxpool|avgpool|dropout|linear)\s+(.*)$")
    for line in open(sys.argv[2]):
        m = row.match(line.rstrip())
        if not m:
            continue
        idx, name, kind, rest = m.groups()
        f = rest.split()
        cells = []
        for k in range(0, len(f), 3):  # ms, GFLOP/s (or -), MB
            ms = float(f[k])
            gflops = 0.0 if f[k + 1] == "-" else float(f[k + 1])
            flops = gflops * 1e9 * ms / 1e3
            mb = 0.0 if f[k + 2].endswith("%") or f[k + 2] == "-" else float(f[k + 2])  # CPU tables: no bytes
            floor = max(flops / matrix, mb * 1e6 / copy) * 1e3
            cells += [f"{ms:.3f}", f"{floor:.3f}"]
        if len(cells) == 2:
            cells += ["", ""]
        print(f"| {idx} {name} | {kind} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
