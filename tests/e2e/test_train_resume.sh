#!/usr/bin/env bash
# reskit train --checkpoint-dir / --resume: one epoch, then resumed to three, gives the same model
# (byte-identical predictions) as three epochs in one go; mismatched flags and missing or corrupt
# checkpoints are refused with a message.
# Usage: test_train_resume.sh path/to/reskit
set -euo pipefail
reskit=$(realpath "$1")
if [[ ! -d /usr/share/datasets/fashion-mnist ]]; then
  echo "FAIL: Debian's dataset-fashion-mnist is not installed (scripts/setup.sh installs it)"
  exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
tmp=$work
source "$(dirname "${BASH_SOURCE[0]}")/cli_lib.sh"  # fail, expect_error, finish
common=(--limit 512 --batch-size 64 --threads 2 --seed 3 --augment)

# A constant rate: --epochs may grow on resume.
"$reskit" train "${common[@]}" --lr-schedule constant --epochs 3 --checkpoint-dir A -o a.h5 --history a.csv > /dev/null
[[ -s A/checkpoint.json && -s A/epoch-003.h5 && -s A/epoch-002.h5 ]] || fail "A: $(ls A)"
[[ ! -e A/epoch-001.h5 ]] || fail "A/epoch-001.h5 was kept; only the last two epochs should be"
grep -q '"epochs_done": 3' A/checkpoint.json || fail "A/checkpoint.json: $(cat A/checkpoint.json)"
grep -q '"model_file": "epoch-003.h5"' A/checkpoint.json || fail "A/checkpoint.json names $(cat A/checkpoint.json)"

"$reskit" train "${common[@]}" --lr-schedule constant --epochs 1 --checkpoint-dir B -o b.h5 --history b.csv > /dev/null
grep -q '"epochs_done": 1' B/checkpoint.json || fail "B/checkpoint.json: $(cat B/checkpoint.json)"
out=$("$reskit" train "${common[@]}" --lr-schedule constant --epochs 3 --resume B -o b.h5 --history b.csv)
echo "$out" | grep -q "Resuming from B/epoch-001.h5 after epoch 1" || fail "no resume line: $out"
echo "$out" | grep -q "^Epoch 2/3" || fail "resume did not start at epoch 2: $out"
! echo "$out" | grep -q "^Epoch 1/3" || fail "resume ran epoch 1 again"
grep -q '"epochs_done": 3' B/checkpoint.json || fail "B/checkpoint.json after resume: $(cat B/checkpoint.json)"
# The history holds the three epochs once each, as the uninterrupted run's does.
[[ $(cut -d, -f1 b.csv | tr '\n' ' ') == "epoch 0 1 2 " ]] || fail "b.csv epochs: $(cut -d, -f1 b.csv)"
cmp a.csv b.csv || fail "histories differ: $(cat a.csv b.csv)"

"$reskit" predict a.h5 --data fashion-mnist:test --limit 64 --threads 2 --output pa.csv > /dev/null
"$reskit" predict b.h5 --data fashion-mnist:test --limit 64 --threads 2 --output pb.csv > /dev/null
cmp pa.csv pb.csv || fail "the resumed model's predictions differ from the uninterrupted one's"

# --checkpoint-every: 8 steps an epoch, checkpoints after steps 3 and 6 and at the epoch's end;
# the newest two model files stay.
"$reskit" train "${common[@]}" --epochs 1 --checkpoint-dir E --checkpoint-every 3 -o e.h5 --history e.csv > /dev/null
[[ $(ls E | tr '\n' ' ') == "checkpoint.json epoch-000-step-000006.h5 epoch-001.h5 " ]] || fail "E: $(ls E)"
grep -q '"steps_done": 0' E/checkpoint.json || fail "E/checkpoint.json: $(cat E/checkpoint.json)"

# A finished run resumed: nothing left to train; another thread count is warned about.
err=$("$reskit" train --limit 512 --batch-size 64 --threads 1 --seed 3 --augment --lr-schedule constant \
  --epochs 3 --resume A -o a2.h5 --history a.csv 2>&1 > /dev/null)
[[ $err == *"the checkpointed run used 2 threads, this one 1"* ]] || fail "no threads warning: $err"
[[ $(cut -d, -f1 a.csv | tr '\n' ' ') == "epoch 0 1 2 " ]] || fail "a.csv epochs after a no-op resume: $(cat a.csv)"
[[ -s a2.h5 ]] || fail "a no-op resume did not save the model"

# Flags that differ from the checkpointed run's, named with both values.
expect_error "--batch-size differs from the checkpointed run: expected 64, got 32" \
  -- train --limit 512 --batch-size 32 --threads 2 --seed 3 --augment --lr-schedule constant --epochs 4 --resume B
expect_error "--seed differs from the checkpointed run: expected 3, got 4" \
  -- train --limit 512 --batch-size 64 --threads 2 --seed 4 --augment --lr-schedule constant --epochs 4 --resume B
expect_error "--augment differs from the checkpointed run: expected true, got false" \
  -- train --limit 512 --batch-size 64 --threads 2 --seed 3 --lr-schedule constant --epochs 4 --resume B
expect_error "--lr-schedule differs from the checkpointed run: expected \"constant\", got \"cosine\"" \
  -- train "${common[@]}" --epochs 4 --resume B
# Other weights to train (a fine-tuning stage) is not a resume: the trainable flags must match too.
expect_error "--freeze differs from the checkpointed run: expected none, got \"base\"" \
  -- train "${common[@]}" --lr-schedule constant --epochs 4 --freeze base --resume B
"$reskit" train "${common[@]}" --lr-schedule constant --epochs 1 --freeze base --checkpoint-dir G -o g.h5 \
  --history g.csv > /dev/null
expect_error "--freeze differs from the checkpointed run: expected \"base\", got none" \
  -- train "${common[@]}" --lr-schedule constant --epochs 2 --resume G
# bfloat16 gradient sums (under mpirun) are other gradients: --allreduce-dtype must match too.
expect_error "--allreduce-dtype differs from the checkpointed run: expected none, got \"bfloat16\"" \
  -- train "${common[@]}" --lr-schedule constant --epochs 4 --allreduce-dtype bfloat16 --resume B
"$reskit" train "${common[@]}" --lr-schedule constant --epochs 1 --allreduce-dtype bfloat16 --checkpoint-dir H \
  -o h.h5 --history h.csv > /dev/null
expect_error "--allreduce-dtype differs from the checkpointed run: expected \"bfloat16\", got none" \
  -- train "${common[@]}" --lr-schedule constant --epochs 2 --resume H
"$reskit" train "${common[@]}" --lr-schedule constant --epochs 2 --allreduce-dtype bfloat16 --resume H -o h.h5 \
  --history h.csv > /dev/null || fail "resuming with the same --allreduce-dtype bfloat16 failed"
# A cosine schedule spans all epochs: --epochs must match.
"$reskit" train "${common[@]}" --epochs 1 --checkpoint-dir C -o c.h5 --history c.csv > /dev/null
expect_error "--epochs differs from the checkpointed run: expected 1, got 3" \
  -- train "${common[@]}" --epochs 3 --resume C -o c.h5 --history c.csv
expect_error "--checkpoint-every: expected --checkpoint-dir" -- train "${common[@]}" --checkpoint-every 5
expect_error "--checkpoint-every: expected an integer >= 1, got '0'" \
  -- train "${common[@]}" --checkpoint-dir F --checkpoint-every 0
# Missing, corrupt or dangling checkpoints.
expect_error "--resume: expected an existing folder, got 'nowhere' (no such folder)" \
  -- train "${common[@]}" --epochs 3 --resume nowhere
mkdir -p empty-run
expect_error "checkpoint.json: no such file" -- train "${common[@]}" --epochs 3 --resume empty-run
mkdir D && echo '{"format": 1, "epochs_done": ' > D/checkpoint.json
expect_error "not a valid checkpoint" -- train "${common[@]}" --epochs 3 --resume D
cp C/checkpoint.json D/checkpoint.json
expect_error "D/epoch-001.h5: no such file" -- train "${common[@]}" --epochs 1 --resume D
echo "<html>not a model</html>" > D/epoch-001.h5
expect_error "epoch-001.h5" -- train "${common[@]}" --epochs 1 --resume D
finish
