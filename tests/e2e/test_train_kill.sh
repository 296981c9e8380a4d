#!/usr/bin/env bash
# Crash safety of reskit train --checkpoint-dir --checkpoint-every 3: SIGKILL a training run at
# random moments, at least 20 times, resuming from the checkpoint folder each time (or starting
# afresh when no checkpoint was written yet); most checkpoints lie inside an epoch. After every kill, checkpoint.json (when present) must parse and name a model
# file that loads and evaluates. Finally the run is resumed to its end: its history and its
# predictions must be byte-identical to those of the same run left uninterrupted.
# Usage: test_train_kill.sh path/to/reskit [kills]
# RESKIT_KILL_TEST_KILLS sets the default count (the sanitizer suite, preset asan-ubsan, kills 6
# times: every run there is several times slower; the release suite kills 20 times).
set -euo pipefail
reskit=$(realpath "$1")
kills_wanted=${2:-${RESKIT_KILL_TEST_KILLS:-20}}
if [[ ! -d /usr/share/datasets/fashion-mnist ]]; then
  echo "FAIL: Debian's dataset-fashion-mnist is not installed (scripts/setup.sh installs it)"
  exit 1
fi
work=$(mktemp -d)
pid=
cleanup() {
  if [[ -n $pid ]]; then kill -KILL "$pid" 2> /dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
cd "$work"
tmp=$work
source "$(dirname "${BASH_SOURCE[0]}")/cli_lib.sh"  # fail, expect_error, finish
# Small enough that epochs end between kills (an epoch takes about half a second). One thread:
# with two OpenMP threads per run, a busy machine (or ctest running two tests at once) made the
# sanitizer run ten times slower (spinning barriers), past its timeout.
args=(--limit 256 --epochs 6 --batch-size 32 --threads 1 --seed 7 --augment --checkpoint-every 3)

t0=$(date +%s.%N)
"$reskit" train "${args[@]}" --checkpoint-dir R -o ref.h5 --history ref.csv > ref.log 2>&1 ||
  fail "the uninterrupted run failed: $(cat ref.log)"
# Kills fall between 5% and 60% of an uninterrupted run's time, so that a slower build (the
# sanitizers) or a busy machine still kills runs mid-training: a fixed 0.2 to 2.5 s killed every
# run under ASan before its first checkpoint.
ref_seconds=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')

# Checks C after a kill: the JSON, when there, is complete and names a model file that loads.
check_checkpoint() {
  [[ -e C/checkpoint.json ]] || return 0
  local file
  file=$(jq -er '.model_file' C/checkpoint.json) || fail "C/checkpoint.json does not parse: $(cat C/checkpoint.json)"
  jq -e '.format == 1 and (.epochs_done >= 1 or .steps_done >= 1) and (.generator | length) > 0' \
    C/checkpoint.json > /dev/null ||
    fail "C/checkpoint.json is incomplete: $(cat C/checkpoint.json)"
  "$reskit" evaluate "C/$file" --data fashion-mnist:test --limit 32 --threads 1 > eval.log 2>&1 ||
    fail "C/$file (named by checkpoint.json) does not load: $(cat eval.log)"
}

# Starts a run in the background: resumed from C when it holds a checkpoint, else afresh.
start() {
  if [[ -e C/checkpoint.json ]]; then
    "$reskit" train "${args[@]}" --resume C -o run.h5 --history run.csv > run.log 2>&1 &
  else
    rm -rf C run.h5 run.csv
    "$reskit" train "${args[@]}" --checkpoint-dir C -o run.h5 --history run.csv > run.log 2>&1 &
  fi
  pid=$!
}

kills=0 finished=0 resumes=0 inside=0
while ((kills < kills_wanted)); do
  if [[ -e C/checkpoint.json ]]; then
    resumes=$((resumes + 1))
    (($(jq -r '.steps_done' C/checkpoint.json) > 0)) && inside=$((inside + 1))
  fi
  start
  sleep "$(awk -v r=$RANDOM -v t="$ref_seconds" 'BEGIN { printf "%.2f", t * (0.05 + 0.55 * r / 32767) }')"
  if kill -KILL "$pid" 2> /dev/null; then
    wait "$pid" 2> /dev/null || true
    kills=$((kills + 1))
  else
    wait "$pid" || fail "a run failed on its own: $(cat run.log)"
    finished=$((finished + 1))
    rm -rf C  # it got to the end before the kill: start over
  fi
  pid=
  check_checkpoint
done
echo "$kills kills, $resumes resumed starts ($inside inside an epoch), $finished runs finished before their kill"
# With the full 20 kills most resumes start inside an epoch; the sanitizer run's few kills may all
# land before the first checkpoint, so it is not held to this.
((kills_wanted < 20 || inside > 0)) || fail "no run resumed from inside an epoch"

# Resume (or start) once more and let it finish: the same history and model as uninterrupted.
start
wait "$pid" || fail "the last run failed: $(cat run.log)"
pid=
cmp ref.csv run.csv || fail "the history differs: $(cat ref.csv run.csv)"
"$reskit" predict ref.h5 --data fashion-mnist:test --limit 64 --threads 1 --output pref.csv > /dev/null
"$reskit" predict run.h5 --data fashion-mnist:test --limit 64 --threads 1 --output prun.csv > /dev/null
cmp pref.csv prun.csv || fail "the predictions of the killed and resumed run differ from the uninterrupted run's"
finish
