#!/usr/bin/env bash
# `reskit summary` of saved Keras files and of a built-in model with --weights (labels "fast;cli"):
# the Keras corpus's files (tests/io/keras_corpus, written by the keras_corpus fixture) print their
# tables; weights load by layer name; mistakes exit 2, bad files 1.
#   tests/e2e/test_summary_file.sh path/to/reskit CORPUS_DIR
set -uo pipefail
reskit=${1:?usage: test_summary_file.sh path/to/reskit CORPUS_DIR}
corpus=${2:?usage: test_summary_file.sh path/to/reskit CORPUS_DIR}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
source "$(dirname "${BASH_SOURCE[0]}")/cli_lib.sh"  # fail, expect_ok, expect_usage_error, expect_failure, finish

# A tf.keras 2.6 Sequential: the 3-column table without the InputLayer row, as Keras prints it;
# BatchNormalization's 4·C weights (2·C trainable).
expect_ok 'Model: "sequential"' \
  "conv2d (Conv2D)              (None, 6, 6, 4)           112       " \
  "Total params: 143" "Trainable params: 135" "Non-trainable params: 8" \
  -- summary "$corpus/tf2.6_sequential_input_layer.h5"
head -n 5 "$tmp/out" | tail -n 1 | grep -qx "conv2d (Conv2D)              (None, 6, 6, 4)           112       " ||
  fail "reskit summary of a Sequential: expected conv2d as the first row (no InputLayer row)"
# Keras 3 functional with a residual Add: the 4-column table with Connected to.
expect_ok 'Model: "functional"' \
  "add (Add)                       (None, 6, 6, 4)      0           batch_normalization_1[0][0]      " \
  "                                                                 activation[0][0]                 " \
  -- summary "$corpus/keras3_residual_functional.h5"
# Every corpus file prints a table that ends with the totals.
for f in "$corpus"/*.h5; do
  "$reskit" summary "$f" >"$tmp/out" 2>"$tmp/err" || fail "reskit summary $f: exit status $?"
  grep -q "^Total params: " "$tmp/out" || fail "reskit summary $f: no Total params line"
done

# A built-in model with weights loaded by layer name: fc10's from a save_weights-layout file.
/usr/bin/python3 - "$tmp" <<'EOF'
import sys, h5py, numpy as np
for name, rows in (("w.h5", 64), ("bad.h5", 32)):
    with h5py.File(f"{sys.argv[1]}/{name}", "w") as f:
        f.attrs["layer_names"] = np.array([b"fc10", b"not_in_the_model"])
        f.attrs["backend"], f.attrs["keras_version"] = b"tensorflow", b"2.6.0"
        g = f.create_group("fc10")
        g.attrs["weight_names"] = np.array([b"fc10/kernel:0", b"fc10/bias:0"])
        g.create_dataset("fc10/kernel:0", data=np.full((rows, 10), 0.5, np.float32))
        g.create_dataset("fc10/bias:0", data=np.zeros(10, np.float32))
        n = f.create_group("not_in_the_model")
        n.attrs["weight_names"] = np.zeros((0,))
EOF
expect_ok 'Model: "resnet20"' "Total params: 274,042" \
  -- summary resnet20 --input 32,32,3 --classes 10 --weights "$tmp/w.h5"
expect_failure "fc10/kernel:0" "(32, 10)" "(64, 10)" \
  -- summary resnet20 --input 32,32,3 --classes 10 --weights "$tmp/bad.h5"

# Mistakes.
h5="$corpus/keras2.2_sequential_first_layer.h5"
expect_usage_error "--input: applies to a model name" -- summary "$h5" --input 8,8,3
expect_usage_error "--classes: applies to a model name" -- summary "$h5" --classes 3
expect_usage_error "--weights: applies to a model name" -- summary "$h5" --weights "$tmp/w.h5"
expect_usage_error "unknown model 'resnet49'" "or a model file (.h5)" -- summary resnet49
expect_failure "no such file" -- summary "$tmp/missing.h5"
expect_failure "--weights" "no such file" -- summary resnet20 --weights "$tmp/missing.h5"
printf 'not hdf5' >"$tmp/junk.h5"
expect_failure "not an HDF5 file" -- summary "$tmp/junk.h5"

finish
