#!/usr/bin/env bash
# End to end on the command line: train a ResNet-20 on a slice of Fashion-MNIST, then evaluate
# and predict with the saved model; and bad input exits non-zero with a message.
# Usage: test_train_cli.sh path/to/reskit path/to/make_signs
set -euo pipefail
reskit=$(realpath "$1")
make_signs=$(realpath "$2")
if [[ ! -d /usr/share/datasets/fashion-mnist ]]; then
  echo "FAIL: Debian's dataset-fashion-mnist is not installed (scripts/setup.sh installs it)"
  exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
tmp=$work
source "$(dirname "${BASH_SOURCE[0]}")/cli_lib.sh"  # fail, expect_error, finish

out=$("$reskit" train --limit 256 --epochs 1 --batch-size 64 --threads 2 -o m.h5 --history h.csv 2>&1)
echo "$out"
[[ -s m.h5 && -s h.csv && -s h.svg ]] || fail "train did not leave m.h5, h.csv and h.svg"
[[ $(head -1 h.csv) == "epoch,accuracy,loss,val_accuracy,val_loss" ]] || fail "history header: $(head -1 h.csv)"
grep -q "<svg" h.svg || fail "h.svg is not an SVG"
last=$(echo "$out" | tail -1)
[[ $last =~ "- loss: "[0-9.]+" - accuracy: "[0-9.]+$ ]] || fail "train does not end with the evaluate line: $last"

ev=$("$reskit" evaluate m.h5 --data fashion-mnist:test --limit 256 --threads 2 | tail -1)
[[ $ev =~ "- loss: "[0-9.]+" - accuracy: "[0-9.]+$ ]] || fail "evaluate line: $ev"
# train validated on the same first 256 test images: the same line
[[ ${ev##*- loss: } == "${last##*- loss: }" ]] || fail "evaluate '$ev' differs from train's final '$last'"

# mixed precision trains too, and its model (float32 weights) evaluates like any other
mixed=$("$reskit" train --dtype mixed_bfloat16 --limit 256 --epochs 1 --batch-size 64 --threads 2 -o m16.h5 2>&1)
[[ $(echo "$mixed" | tail -1) =~ "- loss: "[0-9.]+" - accuracy: "[0-9.]+$ ]] || fail "mixed_bfloat16 train: $mixed"
ev16=$("$reskit" evaluate m16.h5 --data fashion-mnist:test --limit 256 --threads 2 | tail -1)
[[ $ev16 =~ "- loss: "[0-9.]+" - accuracy: "[0-9.]+$ ]] || fail "evaluate of the mixed_bfloat16 model: $ev16"

# --l2 X: Keras's kernel_regularizer=l2(X) on every Conv2D and Dense kernel, saved in the model's
# config; evaluate of the saved model reports the same loss (penalty included) as train's last line
"$reskit" train --l2 1e-3 --limit 256 --epochs 1 --batch-size 64 --threads 2 -o ml2.h5 --history hl2.csv > l2.txt 2>&1 ||
  fail "train --l2: $(cat l2.txt)"
n=$(grep -a -o '"kernel_regularizer":{"class_name":"L2","config":{"l2":0.001}}' ml2.h5 | wc -l)
[[ $n -eq 22 ]] || fail "ml2.h5 holds $n L2(0.001) kernel regularizers, expected 22 (21 Conv2D, 1 Dense)"
last_l2=$(tail -1 l2.txt)
ev_l2=$("$reskit" evaluate ml2.h5 --data fashion-mnist:test --limit 256 --threads 2 | tail -1)
[[ ${ev_l2##*- loss: } == "${last_l2##*- loss: }" ]] || fail "evaluate '$ev_l2' differs from train --l2's '$last_l2'"

# The large-batch recipe (Goyal et al. 2017): --lr 0.05 for a batch of 16, trained on batches of 32:
# 0.1, warmed up from 0 over one epoch (2 steps of 32 in 64 samples); the per-step values are
# tests/unit/test_training.cpp's Schedules tests.
lrs=$("$reskit" train --limit 64 --epochs 1 --batch-size 32 --threads 1 --optimizer sgd --lr 0.05 \
  --lr-reference-batch 16 --lr-warmup-epochs 1 --lr-schedule constant -o mlr.h5 --history hlr.csv 2>&1) ||
  fail "train --lr-reference-batch: $lrs"
grep -qx "Learning rate 0.1 (for the global batch 32; reference batch 16), warmed up linearly from 0 over 2 steps" \
  <<<"$lrs" || fail "no scaled learning rate line: $lrs"

"$reskit" predict m.h5 --data fashion-mnist:test --limit 7 --output p.csv > /dev/null
[[ $(wc -l < p.csv) -eq 8 ]] || fail "predict wrote $(wc -l < p.csv) lines, expected a header and 7 rows"
[[ $(head -1 p.csv) == "T-shirt/top,Trouser,Pullover,Dress,Coat,Sandal,Shirt,Sneaker,Bag,Ankle boot" ]] ||
  fail "predict header: $(head -1 p.csv)"
awk -F, 'NR > 1 { s = 0; for (i = 1; i <= NF; i++) s += $i; if (s < 0.999 || s > 1.001) exit 1 }' p.csv ||
  fail "predicted rows do not sum to 1"

# a picture (64x64 RGB, resized to 28x28 and made grayscale as load_img would)
"$make_signs" . 6 6
pred=$("$reskit" predict m.h5 sign.png --top 3)
echo "$pred"
[[ $(echo "$pred" | head -1) == "sign.png" ]] || fail "predict does not name the picture first"
[[ $(echo "$pred" | grep -cE '^ +[123]\. .+ 0\.[0-9]{4}$') -eq 3 ]] || fail "predict did not list 3 classes with probabilities"

expect_error "--epochs: expected an integer >= 1, got '-3'" -- train --epochs -3
expect_error "unknown model 'resnet7'" -- train --model resnet7 --limit 8
expect_error "--dtype: expected float32" -- train --dtype float16 --limit 8
expect_error "got 'float16'" -- train --dtype float16 --limit 8
expect_error "no such file" -- train --data "$work/missing.h5"
expect_error "--optimizer: expected adam, adamw or sgd" -- train --optimizer rmsprop --limit 8
expect_error "no such file" -- evaluate "$work/missing.h5" --data fashion-mnist:test
echo "<html>not a model</html>" > fake.h5
expect_error "fake.h5" -- evaluate fake.h5 --data fashion-mnist:test
expect_error "expected either pictures or --data" -- predict m.h5
expect_error "--top: expected an integer >= 1, got '0'" -- predict m.h5 --top 0 sign.png
expect_error "missing.png" -- predict m.h5 missing.png
echo "not a picture" > fake.png
expect_error "fake.png" -- predict m.h5 fake.png
finish
