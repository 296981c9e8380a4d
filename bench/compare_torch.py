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
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)

WORKLOADS = {
    # name: (mode, dtype, batch, steps)
    "train-float32": ("train", "float32", 32, 5),
    "train-float64": ("train", "float64", 32, 3),
    "infer-float32": ("infer", "float32", 32, 10),
    # one epoch of the default job (ResNet-20 on Fashion-MNIST: train + test evaluation)
    "fmnist-epoch": ("epoch", "float32", 128, 1),
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


def reskit_epoch_rate(args):
    """Images/s over one epoch of `reskit train` (60000 training + 10000 test images)."""
    with tempfile.TemporaryDirectory() as d:
        out = run([args.reskit, "train", "--epochs", "1", "--threads", str(args.threads), "-o", f"{d}/m.h5",
                   "--history", f"{d}/h.csv"])
    line = [l for l in out.splitlines() if "ms/step - loss" in l][0]
    steps, ms = int(re.search(r"(\d+)/\d+ \[", line).group(1)), float(re.search(r"(\d+)ms/step", line).group(1))
    return 70000 / (steps * ms / 1000)


def torch_epoch_rate(args):
    script = os.path.join(args.shared, "bench", "torch_fmnist.py")
    out = run(["/usr/bin/python3", script, "--epochs", "1"])
    m = re.search(r"train_s=([0-9.]+) .* eval_s=([0-9.]+)", out)
    return 70000 / (float(m.group(1)) + float(m.group(2)))


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
        for _ in range(args.repeats if mode != "epoch" else 1):
            if mode == "epoch":
                ours.append(reskit_epoch_rate(args))
                theirs.append(torch_epoch_rate(args))
            else:
                ours.append(reskit_rate(args, mode, dtype, batch, steps))
                theirs.append(torch_rate(args, mode, dtype, batch, steps))
        r, t = statistics.median(ours), statistics.median(theirs)
        label = (f"ResNet-20 Fashion-MNIST epoch (train + test), batch {batch}" if mode == "epoch" else
                 f"ResNet-50 64x64x3 {mode} {dtype} batch {batch}")
        rows.append((label, r, t))
        print(f"# {name}: reskit {ours} PyTorch {theirs}", file=sys.stderr, flush=True)
    print(f"threads={args.threads} repeats={args.repeats} (medians); images/s")
    print(f"| workload | reskit | PyTorch | ratio |")
    print(f"|---|---|---|---|")
    for name, r, t in rows:
        print(f"| {name} | {r:.1f} | {t:.1f} | {r / t:.2f}x |")


if __name__ == "__main__":
    main()
