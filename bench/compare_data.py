#!/usr/bin/python3
"""The input pipeline's speed, side by side in one run (issue 15, item 6).

  bench/compare_data.py [--reskit build/reskit] [--work /tmp/reskit-data-bench] [--repeats 3]
                        [--parts train,pipeline,dct] [--threads 2] [--workers 2] [--batch 32]
                        [--jpegs 2000] [--fmnist 1000]

train     ResNet-20 on Fashion-MNIST for one epoch (`reskit train --epochs 1`), in memory (the IDX
          files, --limit) against the same pictures written as PNG folders (bench/fmnist_to_png.py)
          and streamed (--input 28,28,1), same --threads, the default --data-workers. Images/s are
          (training + validation images) / the epoch's seconds, from the "Epoch 1/1" line to the
          end of its progress bar (each timed as it arrives; reskit flushes both), so loading,
          saving and the final evaluation are left out. Target: the folder at >= 95% of memory.
pipeline  `reskit bench --data JPEGS --input 224,224,3 --augment random-resized-crop,flip
          --data-workers W` against bench/torch_dataloader.py (DataLoader over ImageFolder,
          RandomResizedCrop(224) + RandomHorizontalFlip + ToTensor, W workers, same batch) over a
          folder of 500x375 JPEGs (bench/make_jpeg_folder.py). Target: >= 2x PyTorch's images/s
          with less peak memory.
dct       what JPEG DCT-domain scaling saves: reskit bench over the same JPEGs at 112x112 (no
          augmentation; 1/2 scale applies) with and without --no-dct-scaling, 1 worker: the
          workers' decode ms per image and images/s.

Every measurement is a fresh process, run once as a warm-up (page cache, lazy loading) and then
--repeats times, the tools alternating; the tables hold medians (the train row's ratio: the
median of the back-to-back pairs' ratios, each pair listed). Peak memory of a process tree
(PyTorch's workers are processes, reskit's are threads) is sampled by this script from /proc every
20 ms: the sum over the tree of Pss (smaps_rollup: pages shared between processes split among
them, so the sum is what the tree holds) and the sum of VmRSS (shared pages counted once per
process, as `top` adds them up).
Needs scripts/setup.sh --bench (python3-torchvision, python3-pil).
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
PY = "/usr/bin/python3"
sys.path.insert(0, HERE)
from torch_dataloader import tree_memory_kib  # noqa: E402  (the same /proc sampler for both tools)


def measured(cmd):
    """Runs cmd; returns (stdout, peak tree Pss MiB, peak tree RSS MiB, [(seconds, line)]): each
    stdout line with the time it arrived (reskit flushes each line it prints)."""
    err = tempfile.TemporaryFile(mode="w+")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True, bufsize=1)
    peak = [0, 0]
    done = threading.Event()

    def sample():
        while not done.is_set():
            rss, pss = tree_memory_kib(proc.pid)
            peak[0], peak[1] = max(peak[0], pss), max(peak[1], rss)
            done.wait(0.02)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    lines = [(time.perf_counter(), line) for line in proc.stdout]
    proc.wait()
    done.set()
    t.join()
    if proc.returncode != 0:
        err.seek(0)
        sys.exit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{''.join(l for _, l in lines)}\n{err.read()}")
    return "".join(l for _, l in lines), peak[0] / 1024, peak[1] / 1024, lines


def epoch_rate(lines, images):
    """Images/s of the epoch: from the moment "Epoch 1/1" is printed (before its first batch is
    asked for) to the moment its progress bar ends (after its validation)."""
    start = next(t for t, l in lines if l.startswith("Epoch 1/"))
    end = next(t for t, l in lines if t >= start and "/step - loss" in l)
    return images / (end - start)


def part_train(args, rows):
    n_val = min(args.fmnist, 10000)  # --limit N also cuts the test split to N
    folder = os.path.join(args.work, f"fmnist-png-{args.fmnist}")
    if not os.path.isdir(folder):
        subprocess.run([PY, os.path.join(HERE, "fmnist_to_png.py"), folder, "--train", str(args.fmnist),
                        "--test", str(n_val)], check=True)
    common = ["train", "--epochs", "1", "--threads", str(args.threads), "--batch-size", "128"]
    ours, theirs = [], []
    with tempfile.TemporaryDirectory() as d:
        files = ["-o", f"{d}/m.h5", "--history", f"{d}/h.csv", "--curves", f"{d}/c.svg"]
        memory = [args.reskit] + common + ["--data", "fashion-mnist", "--limit", str(args.fmnist)] + files
        streamed = [args.reskit] + common + ["--data", os.path.join(folder, "train"), "--validation",
                                             os.path.join(folder, "test"), "--input", "28,28,1"] + files
        for k in range(args.repeats + 1):
            a = epoch_rate(measured(memory)[3], args.fmnist + n_val)
            b = epoch_rate(measured(streamed)[3], args.fmnist + n_val)
            if k > 0:
                ours.append(b), theirs.append(a)
            print(f"# train{' (warm-up)' if k == 0 else ''}: in memory {a:.1f}, PNG folder {b:.1f} images/s",
                  file=sys.stderr, flush=True)
    r, t = statistics.median(ours), statistics.median(theirs)
    # The ratio is the median of each pair's (the two runs back to back): steadier than the ratio
    # of the medians when the machine's load drifts between pairs.
    pair = statistics.median(b / a for a, b in zip(theirs, ours))
    rows.append((f"ResNet-20 Fashion-MNIST epoch ({args.fmnist} + {n_val} validation), batch 128, "
                 f"{args.threads} threads, images/s", "PNG folder (streamed)", r, "in memory", t,
                 f"{pair:.3f}x (pairs: {', '.join(f'{b / a:.2f}' for a, b in zip(theirs, ours))})", ">= 0.95x"))


def part_pipeline(args, rows):
    folder = os.path.join(args.work, f"jpegs-{args.jpegs}")
    if not os.path.isdir(folder):
        subprocess.run([PY, os.path.join(HERE, "make_jpeg_folder.py"), folder, "--count", str(args.jpegs)],
                       check=True)
    ours_cmd = [args.reskit, "bench", "--data", folder, "--input", "224,224,3", "--augment",
                "random-resized-crop,flip", "--data-workers", str(args.workers), "--batch-size", str(args.batch)]
    theirs_cmd = [PY, os.path.join(HERE, "torch_dataloader.py"), folder, "--size", "224", "--workers",
                  str(args.workers), "--batch", str(args.batch)]
    res = {"ours": [], "theirs": []}
    for k in range(args.repeats + 1):
        out, pss, rss = measured(ours_cmd)
        o = (float(re.search(r"([0-9.]+) images/s", out).group(1)), pss, rss)
        out, pss, rss = measured(theirs_cmd)
        t = (float(re.search(r"images_per_s=([0-9.]+)", out).group(1)), pss, rss)
        print(f"# pipeline{' (warm-up)' if k == 0 else ''}: reskit {o}, PyTorch {t} (images/s, Pss MiB, RSS MiB)",
              file=sys.stderr, flush=True)
        if k > 0:
            res["ours"].append(o), res["theirs"].append(t)
    med = {w: [statistics.median(v[i] for v in res[w]) for i in range(3)] for w in res}
    o, t = med["ours"], med["theirs"]
    label = f"{args.jpegs} JPEGs 500x375 -> 224x224 random-resized-crop,flip, batch {args.batch}, {args.workers} workers"
    rows.append((label + ", images/s", "reskit bench --data", o[0], "torch DataLoader", t[0], f"{o[0] / t[0]:.2f}x",
                 ">= 2x"))
    rows.append((label + ", peak Pss of the process tree, MiB", "reskit bench --data", o[1], "torch DataLoader", t[1],
                 f"{o[1] / t[1]:.2f}x", "< 1x"))
    rows.append((label + ", peak RSS summed over the tree, MiB", "reskit bench --data", o[2], "torch DataLoader",
                 t[2], f"{o[2] / t[2]:.2f}x", "< 1x"))


def part_dct(args, rows):
    folder = os.path.join(args.work, f"jpegs-{args.jpegs}")
    if not os.path.isdir(folder):
        subprocess.run([PY, os.path.join(HERE, "make_jpeg_folder.py"), folder, "--count", str(args.jpegs)],
                       check=True)
    base = [args.reskit, "bench", "--data", folder, "--input", "112,112,3", "--data-workers", "1", "--batch-size",
            str(args.batch)]
    res = {"on": [], "off": []}
    for k in range(args.repeats + 1):
        for mode, cmd in (("on", base), ("off", base + ["--no-dct-scaling"])):
            out = measured(cmd)[0]
            decode = float(re.search(r"decode ([0-9.]+)", out).group(1))
            rate = float(re.search(r"([0-9.]+) images/s", out).group(1))
            if k > 0:
                res[mode].append((decode, rate))
            print(f"# dct {mode}: decode {decode} ms/image, {rate} images/s", file=sys.stderr, flush=True)
    on = [statistics.median(v[i] for v in res["on"]) for i in range(2)]
    off = [statistics.median(v[i] for v in res["off"]) for i in range(2)]
    label = f"{args.jpegs} JPEGs 500x375 -> 112x112, 1 worker"
    rows.append((label + ", decode ms per image", "DCT scaling on", on[0], "off", off[0], f"{on[0] / off[0]:.2f}x",
                 "(item 4)"))
    rows.append((label + ", images/s", "DCT scaling on", on[1], "off", off[1], f"{on[1] / off[1]:.2f}x", "(item 4)"))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reskit", default=os.path.join(REPO, "build", "reskit"))
    ap.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "reskit-data-bench"))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--parts", default="train,pipeline,dct")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--jpegs", type=int, default=2000)
    ap.add_argument("--fmnist", type=int, default=1000, help="training pictures (validation: as many, at most 10000)")
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    rows = []
    parts = {"train": part_train, "pipeline": part_pipeline, "dct": part_dct}
    for p in args.parts.split(","):
        if p not in parts:
            sys.exit(f"--parts: unknown part '{p}'; expected a list of {', '.join(parts)}")
        parts[p](args, rows)
    cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model = re.search(r"Model name:\s*(.*)", cpu)
    print(f"{model.group(1).strip() if model else '?'}, {os.cpu_count()} CPUs; threads={args.threads} "
          f"repeats={args.repeats} (medians after a warm-up)")
    print("| measurement | reskit | value | peer | value | ratio | target |")
    print("|---|---|---|---|---|---|---|")
    for label, a, va, b, vb, ratio, target in rows:
        print(f"| {label} | {a} | {va:.1f} | {b} | {vb:.1f} | {ratio} | {target} |")


if __name__ == "__main__":
    main()
