#!/usr/bin/env python3
"""gpu_rates.py: the card's measured ceilings for the per-layer floors of bench/gpu_check.sh:
matrix products (8192^3, the mean of 10 after 3 warm-ups) in fp32 without tensor cores, TF32 and
bf16, and device-to-device copies (bytes read plus written per second). One `name value` per line."""
import time

import torch


def timed(fn, reps=10):
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - t0) / reps


def main():
    n = 8192
    for name, dtype, tf32 in (("fp32", torch.float32, False), ("tf32", torch.float32, True), ("bf16", torch.bfloat16, False)):
        torch.backends.cuda.matmul.allow_tf32 = tf32
        a = torch.randn(n, n, device="cuda", dtype=dtype)
        b = torch.randn(n, n, device="cuda", dtype=dtype)
        dt = timed(lambda: a @ b)
        print(f"matrix_{name}_tflops {2 * n ** 3 / dt / 1e12:.1f}")
    src = torch.empty(2 ** 30, dtype=torch.uint8, device="cuda")
    dst = torch.empty_like(src)
    dt = timed(lambda: dst.copy_(src))
    print(f"copy_gbs {2 * src.numel() / dt / 1e9:.0f}")
    print(f"device {torch.cuda.get_device_name()}")


if __name__ == "__main__":
    main()
