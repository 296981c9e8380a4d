#!/usr/bin/env python3
"""Per-primitive times of oneDNN inside a `reskit bench` run: the minimum and the median over steps.

On a shared machine a step's time moves with the load (other processes on the same core or its
sibling), while the fastest of a dozen executions of one primitive in the same position of the
step stays close to what the kernel itself costs there, with the step's real operands and caches.
This script runs `reskit bench` with ONEDNN_VERBOSE=1, finds the repeating sequence of primitive
executions that one step makes, and prints for each kind of primitive (implementation, pass,
shape) how many run per step, the sum of their per-position minima and medians, and the FLOP/s
of the minima (convolutions and matmuls; 2 FLOPs per multiply-add) beside the float32 FMA peak
that `reskit bench --report` measured. Reorders are summed in one row.

  bench/onednn_step_times.py [--reskit build/reskit] -- --model resnet20 --input 28,28,1 \\
      --classes 10 --batch-size 128 --threads 1 --steps 12

Everything after `--` goes to `reskit bench` (give --steps 8 or more: the minimum needs samples).
"""
import argparse
import os
import re
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def executions(reskit, bench_args):
    """(key, ms) for every primitive execution, in order, and the float32 peak in GFLOP/s."""
    env = dict(os.environ, ONEDNN_VERBOSE="1")
    out = subprocess.run([reskit, "bench", "--report"] + bench_args, env=env, check=True,
                         capture_output=True, text=True).stdout
    runs = []
    for line in out.splitlines():
        if not line.startswith("onednn_verbose,exec,"):
            continue
        f = line.split(",")
        # onednn_verbose,exec,cpu,KIND,IMPL,PROP,FORMATS,ATTRS,AUX,SHAPE,MS
        runs.append(((f[3], f[4], f[5], f[9]), float(f[-1])))
    peak = re.search(r"fma_peak_gflops: float32=([0-9.]+)", out)
    return runs, float(peak.group(1)) if peak else None


def period(keys):
    """The shortest p with which the tail of the sequence repeats (one step's executions)."""
    n = len(keys)
    for p in range(1, n // 3 + 1):
        if all(keys[i] == keys[i + p] for i in range(n - 3 * p, n - p)):
            return p
    sys.exit("no repeating step found: run more --steps")


def gflop(kind, shape):
    """Nominal GFLOP of one execution (2 per multiply-add), or None."""
    if kind == "convolution":
        d = {k: int(v) for k, v in re.findall(r"([a-z]+)(\d+)", shape)}
        return 2e-9 * d["mb"] * d["ic"] * d["oc"] * d["oh"] * d["ow"] * d["kh"] * d["kw"]
    if kind == "matmul":
        m = re.match(r"(\d+)x(\d+):(\d+)x(\d+):", shape)
        return 2e-9 * int(m.group(1)) * int(m.group(2)) * int(m.group(4)) if m else None
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reskit", default=os.path.join(REPO, "build", "reskit"))
    ap.add_argument("bench_args", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    bench_args = a.bench_args[1:] if a.bench_args[:1] == ["--"] else a.bench_args
    runs, peak = executions(a.reskit, bench_args)
    keys = [k for k, _ in runs]
    p = period(keys)
    steps = len(runs) // p
    tail = runs[len(runs) - steps * p:]
    rows = {}
    for i in range(p):
        times = [tail[s * p + i][1] for s in range(1 if steps > 2 else 0, steps)]  # the first: warm-up
        key = tail[i][0]
        if key[0] == "reorder":
            key = ("reorder", "(all)", "", "")
        r = rows.setdefault(key, [0, 0.0, 0.0])
        r[0] += 1
        r[1] += min(times)
        r[2] += statistics.median(times)
    print(f"{steps} steps of {p} executions; minima and medians per position over steps 2..{steps}")
    print(f"float32 FMA peak (bench --report): {peak} GFLOP/s")
    print("| per step | primitive | implementation | pass | shape | min ms | median ms | GFLOP/s at min | of peak |")
    print("|---|---|---|---|---|---|---|---|---|")
    tot_min = tot_med = 0.0
    for (kind, impl, prop, shape), (count, mn, med) in rows.items():
        g = gflop(kind, shape)
        rate = f"{count * g / (mn / 1e3):.0f}" if g and mn > 0 else ""
        share = f"{count * g / (mn / 1e3) / peak:.0%}" if g and mn > 0 and peak else ""
        print(f"| {count} | {kind} | {impl} | {prop} | {shape} | {mn:.2f} | {med:.2f} | {rate} | {share} |")
        tot_min += mn
        tot_med += med
    print(f"| | all | | | | {tot_min:.1f} | {tot_med:.1f} | | |")


if __name__ == "__main__":
    main()
