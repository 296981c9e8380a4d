#!/usr/bin/env python3
"""Side-by-side speed of reskit and the PyTorch peer on this machine, in one run.

Runs `reskit bench` and ../shared/bench/torch_resnet50.py (Debian's python3-torch) for each
workload, alternating the two, and prints images/s of each and the ratio reskit / PyTorch
(medians of per-step times after a warm-up, as both tools report them).

  bench/compare_torch.py [--reskit build/reskit] [--shared ../shared] [--threads 2] [--repeats 3]
                         [--workloads train-float32,train-float64,infer-float32]

Needs: scripts/setup.sh --bench (python3-torch).
"""
import argparse
import os
import re
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)

WORKLOADS = {
    # name: (mode, dtype, batch, steps)
    "train-float32": ("train", "float32", 32, 5),
    "train-float64": ("train", "float64", 32, 3),
    "infer-float32": ("infer", "float32", 32, 10),
}


def run(cmd):
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{out.stdout}\n{out.stderr}")
    return out.stdout


def reskit_rate(args, mode, dtype, batch, steps):
    out = run([args.reskit, "bench", "--model", "resnet50", "--input", "64,64,3", "--classes", "6",
               "--batch", str(batch), "--mode", mode, "--dtype", dtype, "--threads", str(args.threads),
               "--steps", str(steps), "--warmup", "1"])
    return float(re.search(r"([0-9.]+) images/s", out).group(1))


def torch_rate(args, mode, dtype, batch, steps):
    script = os.path.join(args.shared, "bench", "torch_resnet50.py")
    out = run(["/usr/bin/python3", script, "--batch", str(batch), "--mode", mode, "--dtype", dtype,
               "--threads", str(args.threads), "--steps", str(steps)])
    return float(re.search(r"images_per_s=([0-9.]+)", out).group(1))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reskit", default=os.path.join(REPO, "build", "reskit"))
    ap.add_argument("--shared", default=os.path.join(REPO, "..", "shared"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workloads", default=",".join(WORKLOADS))
    args = ap.parse_args()
    rows = []
    for name in args.workloads.split(","):
        if name not in WORKLOADS:
            sys.exit(f"--workloads: unknown workload '{name}'; expected one of {', '.join(WORKLOADS)}")
        mode, dtype, batch, steps = WORKLOADS[name]
        ours, theirs = [], []
        for _ in range(args.repeats):
            ours.append(reskit_rate(args, mode, dtype, batch, steps))
            theirs.append(torch_rate(args, mode, dtype, batch, steps))
        r, t = statistics.median(ours), statistics.median(theirs)
        rows.append((f"ResNet-50 64x64x3 {mode} {dtype} batch {batch}", r, t))
        print(f"# {name}: reskit {ours} PyTorch {theirs}", file=sys.stderr, flush=True)
    print(f"threads={args.threads} repeats={args.repeats} (medians); images/s")
    print(f"| workload | reskit | PyTorch | ratio |")
    print(f"|---|---|---|---|")
    for name, r, t in rows:
        print(f"| {name} | {r:.1f} | {t:.1f} | {r / t:.2f}x |")


if __name__ == "__main__":
    main()
