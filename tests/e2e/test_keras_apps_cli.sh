#!/usr/bin/env bash
# The Keras Applications models on the command line (label "cli;io"): summary of the -imagenet
# names, predict with a built-in name and --weights (loaded by layer name, preprocess_input of the
# family, class ids and names from a class index), a weights file that does not fit, and the
# transfer-learning run: train --weights --include-top false --pooling avg, then predict with the
# saved model. The weight files are gen_keras_app_weights.py's (fixture keras_app_files).
# Usage: test_keras_apps_cli.sh path/to/reskit path/to/make_signs WEIGHTS_DIR
set -euo pipefail
reskit=$(realpath "$1")
make_signs=$(realpath "$2")
weights=$(realpath "$3")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
source "$(dirname "$0")/cli_lib.sh"
cd "$tmp"
v1=$weights/resnet50_weights_tf_dim_ordering_tf_kernels.h5
v2=$weights/resnet50v2_weights_tf_dim_ordering_tf_kernels_notop.h5

expect_ok "Total params: 25,636,712" "Non-trainable params: 53,120" -- summary resnet50-imagenet
expect_ok "Total params: 23,587,712" -- summary resnet50-imagenet --include-top false
expect_ok "Total params: 25,613,800" -- summary resnet50v2-imagenet
expect_ok "Total params: 44,707,176" -- summary resnet101-imagenet --input 32,32,3
expect_usage_error "--pooling: goes with --include-top false" -- summary resnet50-imagenet --pooling avg

# A class index in the form of Keras's imagenet_class_index.json, made up: class i is
# ("n<i padded to 8>", "class_<i>").
{
  printf '{'
  for i in $(seq 0 999); do printf '%s"%d": ["n%08d", "class_%d"]' "$([[ $i == 0 ]] || echo ,)" "$i" "$i" "$i"; done
  printf '}\n'
} >index.json
"$make_signs" . 16 8 >/dev/null

expect_ok "sign.png" -- predict resnet50-imagenet --weights "$v1" --input 64,64,3 sign.png --top 5 \
  --class-index index.json
[[ $(grep -cE '^ +[1-5]\. n[0-9]{8} class_[0-9]+ +0\.[0-9]{4}$' "$tmp/out") -eq 5 ]] ||
  fail "predict did not list 5 classes as 'n<id> class_<i> score': $(cat "$tmp/out")"
auto=$(cat "$tmp/out")
# auto is the caffe preprocessing of ResNet; without it the pixels are only scaled by 1/255.
expect_ok "sign.png" -- predict resnet50-imagenet --weights "$v1" --input 64,64,3 sign.png --top 5 \
  --class-index index.json --preprocess caffe
[[ $(cat "$tmp/out") == "$auto" ]] || fail "--preprocess caffe differs from auto for resnet50-imagenet"
expect_ok "sign.png" -- predict resnet50-imagenet --weights "$v1" --input 64,64,3 sign.png --top 5 \
  --class-index index.json --preprocess none
[[ $(cat "$tmp/out") != "$auto" ]] || fail "--preprocess none gives the same as caffe"
expect_failure "no weights for layer 'predictions' (Dense, first weight 'predictions/kernel:0', shape (2048, 1000))" \
  -- predict resnet50v2-imagenet --weights "$v2" --input 64,64,3 sign.png
expect_failure "no weights for layer 'conv2_block1_preact_bn'" -- predict resnet50v2-imagenet --weights "$v1" \
  --input 64,64,3 sign.png
expect_usage_error "--weights: goes with a built-in model name" -- predict "$v1" --weights "$v1" sign.png
echo '{"0": ["a", "b"], "1": ["c", "d"], "2": ["e", "f"]}' >three.json
expect_failure "names 3 classes, but the model has 1000" -- predict resnet50-imagenet --input 64,64,3 sign.png \
  --class-index three.json

# Transfer learning: ResNet50 without its top, avg pooling, a new softmax head for the 6 classes.
expect_usage_error "expected --pooling avg or max" -- train --model resnet50-imagenet --weights "$v1" \
  --include-top false --data train_signs.h5 --limit 8
# Stage 1: the base frozen, only the head trains. Stage 2: from stage 1's file (the head too),
# conv5 onwards trains with a small learning rate.
expect_ok "Preprocessing the pictures as keras.applications' preprocess_input(mode='caffe')" \
  "Training layers dense onwards (1 of 177 layers): 12294 of 23600006 parameters trainable" \
  -- train --model resnet50-imagenet --weights "$v1" --include-top false --pooling avg --freeze base \
  --data train_signs.h5 --validation test_signs.h5 --epochs 1 --batch-size 8 --limit 16 -o t.h5 --threads 2
expect_file t.h5
expect_ok "Training layers conv5_block1_1_conv onwards (34 of 177 layers; 10 BatchNormalization layers among them stay frozen (--unfreeze-batch-norm trains them)): 14965766 of 23600006 parameters trainable" \
  -- train --model resnet50-imagenet --weights t.h5 --include-top false --pooling avg \
  --unfreeze-from conv5_block1 --lr 1e-5 --data train_signs.h5 --validation test_signs.h5 --epochs 1 \
  --batch-size 8 --limit 16 -o t2.h5 --threads 2
expect_file t2.h5
expect_usage_error "give one of them, got both" -- train --model resnet50-imagenet --include-top false \
  --pooling avg --freeze base --unfreeze-from conv5_block1 --data train_signs.h5 --limit 8
expect_failure "--unfreeze-from: " "conv9" -- train --model resnet50-imagenet --include-top false \
  --pooling avg --unfreeze-from conv9 --data train_signs.h5 --limit 8
expect_ok "Total params: 23,600,006" -- summary resnet50 --input 64,64,3 --classes 6
expect_ok "sign.png" -- predict t.h5 sign.png --top 3
auto=$(cat "$tmp/out")
expect_ok "sign.png" -- predict t.h5 sign.png --top 3 --preprocess caffe
[[ $(cat "$tmp/out") == "$auto" ]] || fail "a saved Keras Applications ResNet is not recognised as caffe"
expect_ok -- evaluate t.h5 --data test_signs.h5
expect_error "include_top, pooling and new heads are for the -imagenet models" \
  -- train --model resnet20 --include-top false --pooling avg --data train_signs.h5 --limit 8
finish
