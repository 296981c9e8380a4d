#!/usr/bin/python3
"""The PyTorch peer of `reskit bench --data` (issue 15): one pass of torch.utils.data.DataLoader over
torchvision's ImageFolder with RandomResizedCrop + RandomHorizontalFlip + ToTensor.

  bench/torch_dataloader.py FOLDER [--size 224] [--workers 2] [--batch 32] [--limit N]

Prints images_per_s (from the first batch asked for to the last received, as reskit bench times
start_epoch to the last next_batch) and the peak memory of the whole process tree, workers
included: a thread samples /proc every 20 ms and sums, over this process and all its descendants,
the resident set (VmRSS; pages shared between the forked workers and the parent counted once per
process) and the proportional set (Pss from smaps_rollup; shared pages split between the
processes that map them, so their sum is the memory the tree really holds).
Needs Debian's python3-torchvision (scripts/setup.sh --bench).
"""
import argparse
import os
import threading
import time

import torch
import torchvision
from torchvision import transforms


def children(pid):
    out = []
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            out = [int(c) for c in f.read().split()]
    except OSError:
        pass
    return out + [g for c in out for g in children(c)]


def field_kib(path, name):
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(name):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_memory_kib(root):
    pids = [root] + children(root)
    rss = sum(field_kib(f"/proc/{p}/status", "VmRSS:") for p in pids)
    pss = sum(field_kib(f"/proc/{p}/smaps_rollup", "Pss:") for p in pids)
    return rss, pss


class PeakSampler(threading.Thread):
    """The peak of tree_memory_kib(pid), sampled every `period` seconds until stop()."""

    def __init__(self, pid, period=0.02):
        super().__init__(daemon=True)
        self.pid, self.period, self.peak_rss, self.peak_pss = pid, period, 0, 0
        self.done = threading.Event()

    def run(self):
        while not self.done.is_set():
            rss, pss = tree_memory_kib(self.pid)
            self.peak_rss, self.peak_pss = max(self.peak_rss, rss), max(self.peak_pss, pss)
            self.done.wait(self.period)

    def stop(self):
        self.done.set()
        self.join()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--limit", type=int, default=0, help="only the first N files (as reskit bench --limit)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads of the main process")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    sampler = PeakSampler(os.getpid())
    sampler.start()
    tf = transforms.Compose([transforms.RandomResizedCrop(args.size), transforms.RandomHorizontalFlip(),
                             transforms.ToTensor()])
    data = torchvision.datasets.ImageFolder(args.folder, transform=tf)
    if args.limit > 0:
        data = torch.utils.data.Subset(data, range(min(args.limit, len(data))))
    torch.manual_seed(0)
    loader = torch.utils.data.DataLoader(data, batch_size=args.batch, shuffle=True, num_workers=args.workers)
    images = 0
    start = time.perf_counter()
    for x, y in loader:
        images += x.shape[0]
    seconds = time.perf_counter() - start
    sampler.stop()
    print(f"torch DataLoader: {images} images of {args.size}x{args.size}x3, batch {args.batch}, "
          f"{args.workers} workers, torch {torch.__version__}, torchvision {torchvision.__version__}")
    print(f"peak_tree_rss_mb={sampler.peak_rss / 1024:.1f} peak_tree_pss_mb={sampler.peak_pss / 1024:.1f}")
    print(f"images_per_s={images / seconds:.1f}")


if __name__ == "__main__":
    main()
