#!/usr/bin/env bash
# The "cli" test: runs the reskit command line as a user would and checks what it prints, and
# that bad input exits non-zero (not a crash) with a message on stderr naming the problem.
#   tests/e2e/test_cli.sh path/to/reskit
set -uo pipefail
reskit=${1:?usage: test_cli.sh path/to/reskit}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
source "$(dirname "${BASH_SOURCE[0]}")/cli_lib.sh"  # fail, expect_ok, expect_usage_error, expect_failure, finish

expect_ok "Total params: 23,600,006" "Trainable params: 23,546,886" "Non-trainable params: 53,120" \
  -- summary resnet50 --input 64,64,3 --classes 6
expect_ok 'Model: "resnet50"' "Total params: 23,610,822" "Trainable params: 23,557,734" \
  "Non-trainable params: 53,088" -- summary resnet50-code
expect_ok "Total params: 23,600,006" -- summary resnet50
# A short training-step benchmark runs and reports a rate.
expect_ok -- bench --model resnet50 --input 64,64,3 --batch 2 --steps 1 --warmup 0
grep -q "images/s" "$tmp/out" || fail "reskit bench: expected 'images/s' in its output"
# Mixed precision and batch-1 inference with the profile table.
expect_ok -- bench --model resnet20 --input 28,28,1 --classes 10 --batch 4 --steps 1 --dtype mixed_bfloat16 --profile
grep -q "Conv2D backward" "$tmp/out" || fail "reskit bench --dtype mixed_bfloat16 --profile: no Conv2D row"
# --profile-layers: one row per layer and pass, named.
expect_ok -- bench --model resnet20 --input 28,28,1 --classes 10 --batch 4 --steps 1 --profile-layers
grep -q "^Conv2D conv_3a2a backward " "$tmp/out" || fail "reskit bench --profile-layers: no row for conv_3a2a's backward"
expect_ok -- bench --model resnet50 --batch 1 --mode infer --steps 2
grep -q "resnet50 infer float32 batch=1" "$tmp/out" || fail "reskit bench --batch 1 --mode infer: no header line"
# --report: the CPU, oneDNN's ISA, a measured FMA peak, and ResNet-50 64x64's forward FLOPs (PERF.md's
# independent count: 0.616 GFLOP per image).
expect_ok -- bench --model resnet50 --batch 1 --mode infer --steps 1 --warmup 0 --report
grep -Eq "^onednn_isa: [a-z0-9_]+$" "$tmp/out" || fail "reskit bench --report: no onednn_isa line"
grep -Eq "^fma_peak_gflops: float32=[1-9][0-9.]* float64=[1-9]" "$tmp/out" || fail "reskit bench --report: no FMA peak"
grep -q "gflop_per_image=0.616" "$tmp/out" || fail "reskit bench --report: expected gflop_per_image=0.616 for ResNet-50 64x64"
# and, where two CPUs are allowed, the round trip of a cache line between them (none with one).
if [ "$(nproc)" -ge 2 ]; then
  grep -Eq "^core_to_core_round_trip_ns: [1-9][0-9]* " "$tmp/out" || fail "reskit bench --report: no core_to_core_round_trip_ns line"
fi
if command -v taskset >/dev/null; then
  taskset -c 0 "$reskit" bench --model resnet20 --input 28,28,1 --classes 10 --batch 1 --mode infer --steps 1 \
    --warmup 0 --threads 1 --report >"$tmp/one_cpu" 2>&1 || fail "reskit bench --report on one CPU failed"
  ! grep -q "core_to_core" "$tmp/one_cpu" || fail "reskit bench --report on one CPU: a core-to-core line"
fi

# --help on every sub-command: exit 0, its usage and options on stdout.
for cmd in summary bench train evaluate predict export plot; do
  "$reskit" "$cmd" --help >"$tmp/out" 2>"$tmp/err"
  rc=$?
  if ((rc != 0)); then
    fail "reskit $cmd --help: expected exit status 0, got $rc"
  elif ! grep -q "^Usage: .*$cmd" "$tmp/out" || ! grep -q -- "--help" "$tmp/out"; then
    fail "reskit $cmd --help: expected a usage line naming '$cmd' and the options"
  else
    echo "ok: reskit $cmd --help"
  fi
done

if "$reskit" --help >"$tmp/out" 2>"$tmp/err" && grep -q "^Usage: reskit" "$tmp/out"; then
  echo "ok: reskit --help"
else
  fail "reskit --help: expected exit status 0 and the usage on stdout"
fi

# Every flag is checked before anything runs: the message names the flag, what it expected and
# what it got. A file that exists (not a model) stands in where a command needs one. A mistake in
# the command line exits with 2 (expect_usage_error), a missing or malformed file, or too little
# memory, with 1 (expect_failure).
echo "not a model" >"$tmp/fake.h5"
echo "not a picture" >"$tmp/fake.png"
int1() { echo "$1: expected an integer >= 1, got '$2'"; }
int0() { echo "$1: expected an integer >= 0, got '$2'"; }
missing_folder="$tmp/no-such-folder/out"

expect_usage_error "unknown model 'resnet49'" "resnet50" -- summary resnet49
expect_usage_error "--input" "64,x,3" -- summary resnet50 --input 64,x,3
expect_usage_error "--input: expected positive integers" "'0,64,3'" -- summary resnet50 --input 0,64,3
expect_usage_error "$(int1 --classes 0)" -- summary resnet50 --classes 0
expect_usage_error "$(int1 --classes -2)" -- summary resnet50 --classes -2
expect_usage_error "$(int1 --classes 2.5)" -- summary resnet50 --classes 2.5
expect_usage_error "model is required" -- summary

expect_usage_error "--mode: expected train or infer, got 'fly'" -- bench --mode fly
expect_usage_error "dtype" "float16" -- bench --dtype float16
expect_usage_error "unknown model 'nope'; expected one of" "resnet50" -- bench --model nope
# --batch-size is registered once for every command (tools/reskit/flags.cpp); --batch is its other name.
expect_usage_error "$(int1 --batch-size 0)" -- bench --batch 0
expect_usage_error "$(int1 --batch-size -4)" -- bench --batch-size -4
expect_ok -- bench --model resnet20 --input 28,28,1 --classes 10 --batch-size 2 --steps 1 --warmup 0
grep -q "batch=2 " "$tmp/out" || fail "bench --batch-size 2 did not run batches of 2"
expect_usage_error "$(int1 --classes 0)" -- bench --classes 0
expect_usage_error "$(int1 --steps 0)" -- bench --steps 0
expect_usage_error "$(int0 --warmup -1)" -- bench --warmup -1
expect_usage_error "$(int1 --threads 0)" -- bench --threads 0
expect_usage_error "$(int1 --threads -2)" -- bench --threads -2
expect_usage_error "--input" "'64,,3'" -- bench --input 64,,3
expect_failure "batch size 100000000 needs at least" "more than the" -- bench --batch 100000000 --mode infer

expect_usage_error "$(int1 --epochs 0)" -- train --epochs 0
expect_usage_error "$(int1 --epochs -3)" -- train --epochs -3
expect_usage_error "$(int1 --epochs three)" -- train --epochs three
expect_usage_error "$(int1 --batch-size 0)" -- train --batch-size 0
expect_usage_error "$(int1 --threads 0)" -- train --threads 0
expect_usage_error "$(int0 --limit -1)" -- train --limit -1
expect_usage_error "$(int0 --seed -1)" -- train --seed -1
expect_usage_error "--lr: expected a number > 0, got '0'" -- train --lr 0
expect_usage_error "--lr: expected a number > 0, got '-0.1'" -- train --lr -0.1
expect_usage_error "--lr: expected a number > 0, got 'fast'" -- train --lr fast
expect_usage_error "--weight-decay: expected a number >= 0, got '-1'" -- train --weight-decay -1
expect_usage_error "--l2: expected a number >= 0, got '-1e-4'" -- train --l2 -1e-4
expect_usage_error "--l1: expected a number >= 0, got 'x'" -- train --l1 x
expect_usage_error "--optimizer: expected adam, adamw or sgd, got 'rmsprop'" -- train --optimizer rmsprop
expect_usage_error "--lr-schedule: expected cosine, step or constant, got 'linear'" -- train --lr-schedule linear
expect_usage_error "--dtype: expected float32" "got 'float16'" -- train --dtype float16
expect_usage_error "unknown model 'resnet7'; expected one of" "resnet20" -- train --model resnet7
expect_failure "--output: expected a file in an existing folder, got '$missing_folder/m.h5'" \
  -- train -o "$missing_folder/m.h5"
expect_failure "--history: expected a file name, got '$tmp', which is a folder" -- train --history "$tmp"
expect_failure "--curves: expected a file in an existing folder" -- train --curves "$missing_folder/c.svg"
expect_failure "--checkpoint-dir: expected a folder, got '$tmp/fake.h5/ckpt'" -- train --checkpoint-dir "$tmp/fake.h5/ckpt"
expect_failure "--resume: expected an existing folder, got '$tmp/no-run' (no such folder)" -- train --resume "$tmp/no-run"
expect_failure "$tmp/missing.h5" "no such file" -- train --data "$tmp/missing.h5"

expect_failure "model: expected an existing file, got '$tmp/missing.h5' (no such file)" \
  -- evaluate "$tmp/missing.h5" --data fashion-mnist
expect_usage_error "--data is required" -- evaluate "$tmp/fake.h5"
expect_usage_error "$(int1 --batch-size 0)" -- evaluate "$tmp/fake.h5" --data fashion-mnist --batch-size 0
expect_usage_error "$(int1 --threads -1)" -- evaluate "$tmp/fake.h5" --data fashion-mnist --threads -1
expect_usage_error "$(int0 --limit -5)" -- evaluate "$tmp/fake.h5" --data fashion-mnist --limit -5
expect_failure "$tmp/fake.h5" "not an HDF5 file" -- evaluate "$tmp/fake.h5" --data fashion-mnist

expect_usage_error "$(int1 --top 0)" -- predict "$tmp/fake.h5" "$tmp/fake.png" --top 0
expect_usage_error "$(int1 --top -3)" -- predict "$tmp/fake.h5" "$tmp/fake.png" --top -3
expect_failure "expected an existing file, got '$tmp/missing.png' (no such file)" \
  -- predict "$tmp/fake.h5" "$tmp/missing.png"
expect_failure "--output: expected a file in an existing folder" \
  -- predict "$tmp/fake.h5" --data fashion-mnist --output "$missing_folder/p.csv"
expect_usage_error "$(int1 --batch-size 0)" -- predict "$tmp/fake.h5" --data fashion-mnist --output p.csv --batch-size 0
expect_usage_error "predict: expected either pictures or --data (with --output), got neither" -- predict "$tmp/fake.h5"
expect_usage_error "predict: --data needs --output FILE.csv" -- predict "$tmp/fake.h5" --data fashion-mnist
# the unknown flag, not the file name after it taken for a picture
expect_usage_error "unknown flag '--ouptut' for reskit predict; did you mean '--output'?" \
  -- predict "$tmp/fake.h5" --data fashion-mnist --ouptut "$tmp/p.csv"
expect_failure "model: expected an existing file" -- predict "$tmp/missing.h5" "$tmp/fake.png"

expect_usage_error "--opset: expected an integer from 13 to 17, got '12'" -- export "$tmp/fake.h5" -o "$tmp/x.onnx" --opset 12
expect_usage_error "--opset: expected an integer from 13 to 17, got '18'" -- export "$tmp/fake.h5" -o "$tmp/x.onnx" --opset 18
expect_usage_error "$(int1 --batch-size 0)" -- export "$tmp/fake.h5" -o "$tmp/x.onnx" --batch 0
expect_failure "--output: expected a file in an existing folder" -- export "$tmp/fake.h5" -o "$missing_folder/x.onnx"
expect_failure "model: expected an existing file" -- export "$tmp/missing.h5" -o "$tmp/x.onnx"

expect_usage_error "--rankdir: expected TB, LR, BT or RL, got 'XY'" -- plot resnet20 -o "$tmp/m.svg" --rankdir XY
expect_usage_error "$(int1 --dpi 0)" -- plot resnet20 -o "$tmp/m.png" --dpi 0
expect_usage_error "$(int1 --classes 0)" -- plot resnet20 -o "$tmp/m.svg" --classes 0
expect_failure "--output: expected a file in an existing folder" -- plot resnet20 -o "$missing_folder/m.svg"
expect_usage_error "model: unknown model 'resnet49'; expected one of" "or a model file (.h5)" -- plot resnet49 -o "$tmp/m.svg"
expect_usage_error "--output: expected a file name ending in .dot, .svg or .png, got '.pdf'" -- plot resnet20 -o "$tmp/m.pdf"

# An unknown command or flag is named; the commands are listed, and the nearest name is suggested
# where it looks like a typo.
commands="Commands: summary, bench, train, evaluate, predict, export, plot"
expect_usage_error "reskit: error: unknown command 'trian'; did you mean 'train'?" "$commands" -- trian
expect_usage_error "unknown command 'eval'; did you mean 'evaluate'?" -- eval
expect_usage_error "reskit: error: unknown command 'frobnicate'" "$commands" -- frobnicate
grep -q "did you mean" "$tmp/err" && fail "reskit frobnicate: expected no suggestion"
expect_usage_error "reskit: error: a command is required" "$commands" --
expect_usage_error "reskit: error: unknown flag '--epoch' for reskit train; did you mean '--epochs'?" \
  "reskit train --help" -- train --epoch 3
expect_usage_error "unknown flag '--epoch' for reskit train; did you mean '--epochs'?" -- train --epoch=3
expect_usage_error "unknown flag '--bach' for reskit bench; did you mean '--batch'?" -- bench --bach 2
expect_usage_error "unknown flag '--inptu' for reskit summary; did you mean '--input'?" -- summary resnet50 --inptu 8,8,3
expect_usage_error "unknown flag '-i' for reskit summary" -- summary resnet50 -i 3
grep -q "did you mean" "$tmp/err" && fail "reskit summary -i: expected no suggestion for a one-letter flag"

# Memory: summary builds the weights only, so a huge input still prints; weights or a training
# run larger than the memory there is fail before they are allocated, naming what and how much.
expect_ok "Total params: 58,383,238" -- summary resnet152 --input 4096,4096,3
expect_failure "Dense 'fc1000000000': weight 'fc1000000000/kernel:0' of shape (2048, 1000000000)" "of memory available" \
  -- summary resnet50 --classes 1000000000
# stage 5's 3x3 convolutions (2.3M weights, 18 MiB with their gradients) are the first over 10 MiB
RESKIT_MEMORY_LIMIT=10M expect_failure "Conv2D 'conv_5a2b': weight 'conv_5a2b/kernel:0' of shape (3, 3, 512, 512)" \
  "needs 18.0 MiB, more than the 10.0 MiB of memory available" -- summary resnet50
RESKIT_MEMORY_LIMIT=lots expect_failure "RESKIT_MEMORY_LIMIT: expected a positive size such as 512M or 2G, got 'lots'" \
  -- summary resnet50 --classes 100000
# Two 1024x1024 grayscale images as IDX files (2 MiB): ResNet-20's layer outputs for one of them
# take about 2.7 GiB, more than a 1 GiB limit.
printf '\x00\x00\x08\x03\x00\x00\x00\x02\x00\x00\x04\x00\x00\x00\x04\x00' >"$tmp/big-images-idx3-ubyte"
head -c $((2 * 1024 * 1024)) /dev/zero >>"$tmp/big-images-idx3-ubyte"
printf '\x00\x00\x08\x01\x00\x00\x00\x02\x00\x01' >"$tmp/big-labels-idx1-ubyte"
RESKIT_MEMORY_LIMIT=1G expect_failure "model 'resnet20': training at batch size 1 needs at least" \
  "more than the 1.0 GiB of memory available" -- train --data "$tmp/big-images-idx3-ubyte" -o "$tmp/big.h5" \
  --history "$tmp/big.csv"
[[ ! -e $tmp/big.h5 && ! -e $tmp/big.csv ]] || fail "a refused training run left files behind"

finish
