#!/usr/bin/env bash
# `reskit export` and `reskit plot` as a user runs them (labels "cli;io"): files are written,
# and bad input exits non-zero with a message on stderr naming the problem.
#   tests/io/test_export_plot_cli.sh path/to/reskit MODEL.h5
set -uo pipefail
reskit=${1:?usage: test_export_plot_cli.sh path/to/reskit MODEL.h5}
model=${2:?usage: test_export_plot_cli.sh path/to/reskit MODEL.h5}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
source "$(dirname "${BASH_SOURCE[0]}")/../e2e/cli_lib.sh"  # fail, expect_ok, expect_file, expect_error, finish

expect_ok -- export "$model" -o "$tmp/m.onnx"
expect_file "$tmp/m.onnx"
grep -q "opset 13" "$tmp/out" || fail "reskit export: expected 'opset 13' in its output"
grep -qa "kernel:0" "$tmp/m.onnx" || fail "reskit export: expected Keras weight names in the ONNX file"
expect_ok -- export "$model" --output "$tmp/m17.onnx" --opset 17 --batch 4
expect_file "$tmp/m17.onnx"
/usr/bin/python3 -c "import onnx" || fail "Debian's python3-onnx is missing (scripts/setup.sh installs it)"
for f in m.onnx m17.onnx; do
  /usr/bin/python3 -c "import onnx, sys; onnx.checker.check_model(onnx.load(sys.argv[1]), full_check=True)" \
    "$tmp/$f" >"$tmp/out" 2>"$tmp/err" || fail "onnx.checker rejects $f"
done
expect_error "--opset: expected an integer from 13 to 17, got '12'" -- export "$model" -o "$tmp/x.onnx" --opset 12
expect_error "no such file" -- export "$tmp/missing.h5" -o "$tmp/x.onnx"
expect_error "--output" -- export "$model"
[[ -e $tmp/x.onnx ]] && fail "a failed export left $tmp/x.onnx"

expect_ok -- plot resnet50 --input 64,64,3 --classes 6 -o "$tmp/r.svg" --show-shapes
expect_file "$tmp/r.svg"
grep -q "<svg" "$tmp/r.svg" || fail "reskit plot: expected an SVG"
grep -qF "(None, 2, 2, 2048)" "$tmp/r.svg" || fail "reskit plot --show-shapes: expected shapes in the SVG"
[[ $(grep -c 'class="node"' "$tmp/r.svg") == 177 ]] || fail "reskit plot resnet50: expected 177 nodes"
expect_ok -- plot "$model" -o "$tmp/m.dot" --no-layer-names --rankdir LR
expect_file "$tmp/m.dot"
grep -qx "rankdir=LR;" "$tmp/m.dot" || fail "reskit plot --rankdir LR: expected rankdir=LR in the DOT"
grep -qF '[label="Conv2D"]' "$tmp/m.dot" || fail "reskit plot --no-layer-names: expected class-only labels"
expect_ok -- plot "$model" -o "$tmp/m.png"
expect_file "$tmp/m.png"
[[ $(head -c 4 "$tmp/m.png" | tail -c 3) == PNG ]] || fail "reskit plot: expected a PNG"
expect_error ".dot, .svg or .png" "'.pdf'" -- plot "$model" -o "$tmp/m.pdf"
expect_error "unknown model 'resnet49'" -- plot resnet49 -o "$tmp/m.svg"
expect_error "rankdir" "XY" -- plot resnet50 -o "$tmp/m.svg" --rankdir XY
expect_error "no such file" -- plot "$tmp/missing.h5" -o "$tmp/m.svg"

finish
