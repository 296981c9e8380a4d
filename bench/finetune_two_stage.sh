#!/usr/bin/env bash
# Keras's two-stage fine-tuning, measured on data the base never saw: a ResNet50
# (resnet50-imagenet, include_top, random start) is pretrained on Fashion-MNIST classes 0-4, then
# its base (loaded by layer name, its "predictions" layer left out) is transferred to classes 5-9:
# stage 1 trains a new softmax head on the frozen base (--freeze base), stage 2 goes on from stage
# 1's file with conv5 onwards unfrozen and a small learning rate (--unfreeze-from conv5_block1; its
# BatchNormalization layers stay frozen unless UNFREEZE_BN=1). Pictures are zero-padded to 32x32x3
# (Keras Applications' smallest input) by bench/fmnist_split.py. A control run goes on with stage
# 1 (head only) for stage 2's epochs. Prints the table of test accuracies. Sizes are small enough for a few minutes of CPU (counts must differ between the
# train and test splits of a file). Usage, from the repository root:
#   bench/finetune_two_stage.sh [build/reskit [WORK_DIR]]
# Environment (defaults): PRETRAIN_N=1500 PRETRAIN_EPOCHS=2 PRETRAIN_BATCH=8 TRANSFER_N=600
#   TEST_N=500 STAGE1_EPOCHS=5 STAGE2_EPOCHS=4 STAGE1_LR=1e-3 STAGE2_LR=1e-4 THREADS=2 UNFREEZE_BN=0
# The pretraining's small batches give its BatchNormalization moving statistics (momentum 0.99)
# enough steps to settle: after 94 steps of 32 its test accuracy was 0.29 against 0.79 in training.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
reskit=$(realpath "${1:-build/reskit}")
work=${2:-$(mktemp -d)}
mkdir -p "$work"
cd "$work"
: "${PRETRAIN_N:=1500}" "${PRETRAIN_EPOCHS:=2}" "${PRETRAIN_BATCH:=8}" "${TRANSFER_N:=600}" "${TEST_N:=500}"
: "${STAGE1_EPOCHS:=5}" "${STAGE2_EPOCHS:=4}" "${STAGE1_LR:=1e-3}" "${STAGE2_LR:=1e-4}" "${THREADS:=2}"
: "${UNFREEZE_BN:=0}"
/usr/bin/python3 "$here/fmnist_split.py" pretrain-data.h5 0 4 "$PRETRAIN_N" "$TEST_N"
/usr/bin/python3 "$here/fmnist_split.py" transfer-data.h5 5 9 "$TRANSFER_N" "$TEST_N"
common=(--model resnet50-imagenet --threads "$THREADS" --lr-schedule constant --seed 1)
bn=()
[[ $UNFREEZE_BN == 1 ]] && bn=(--unfreeze-batch-norm)

# The accuracy of the last evaluation a command printed ("... - loss: L - accuracy: A").
accuracy() { grep -o 'accuracy: [0-9.]*$' "$1" | tail -1 | cut -d' ' -f2; }
run() {  # run LOG ARGS...: the command's output to LOG, timed
  local log=$1 start=$SECONDS
  shift
  "$reskit" "$@" >"$log" 2>&1 || { cat "$log"; exit 1; }
  echo "$log: $((SECONDS - start)) s" >&2
}

run pretrain.log train "${common[@]}" --batch-size "$PRETRAIN_BATCH" --data pretrain-data.h5 --epochs "$PRETRAIN_EPOCHS" --lr 1e-3 \
  -o pretrain.h5 --history pretrain.csv --curves pretrain.svg
run stage1.log train "${common[@]}" --batch-size 32 --weights pretrain.h5 --include-top false --pooling avg --freeze base \
  --data transfer-data.h5 --epochs "$STAGE1_EPOCHS" --lr "$STAGE1_LR" -o stage1.h5 --history stage1.csv \
  --curves stage1.svg
run stage2-start.log evaluate stage1.h5 --data transfer-data.h5 --batch-size 32 --threads "$THREADS"
run stage2.log train "${common[@]}" --batch-size 32 --weights stage1.h5 --include-top false --pooling avg \
  --unfreeze-from conv5_block1 "${bn[@]}" --data transfer-data.h5 --epochs "$STAGE2_EPOCHS" --lr "$STAGE2_LR" \
  -o stage2.h5 --history stage2.csv --curves stage2.svg
# The control: stage 1 going on for stage 2's epochs, the base still frozen (does stage 2 win by
# unfreezing, or only by training longer?).
run control.log train "${common[@]}" --batch-size 32 --weights stage1.h5 --include-top false --pooling avg \
  --freeze base --data transfer-data.h5 --epochs "$STAGE2_EPOCHS" --lr "$STAGE1_LR" -o control.h5 \
  --history control.csv --curves control.svg
grep -h "^Training layers" stage1.log stage2.log

printf '%-52s %s\n' "test accuracy" "" \
  "pretrain, classes 0-4 (${PRETRAIN_N} pictures, ${PRETRAIN_EPOCHS} epochs of batch ${PRETRAIN_BATCH})" "$(accuracy pretrain.log)" \
  "stage 1, classes 5-9, head only (${STAGE1_EPOCHS} epochs)" "$(accuracy stage1.log)" \
  "stage 2 start (stage 1's file, evaluated)" "$(accuracy stage2-start.log)" \
  "stage 2, conv5 onwards, lr ${STAGE2_LR} (${STAGE2_EPOCHS} epochs)" "$(accuracy stage2.log)" \
  "control: stage 1 on, head only (${STAGE2_EPOCHS} more epochs)" "$(accuracy control.log)"
echo "(test splits: ${TEST_N} pictures each; files in $work)"
