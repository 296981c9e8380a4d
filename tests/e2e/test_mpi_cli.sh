#!/usr/bin/env bash
# reskit train under mpirun (Open MPI, one thread per rank): rank 0 alone prints and writes; the
# global batch must split over the ranks; a rank with bad data names itself and the file and the
# whole job stops; a rank killed with SIGKILL ends the job within 60 s, and the newest checkpoint
# resumes to the same model as an uninterrupted run, and with 1 and 4 processes too.
# Usage: test_mpi_cli.sh path/to/reskit path/to/mpirun
set -euo pipefail
reskit=$(realpath "$1")
mpirun=$2
if [[ ! -d /usr/share/datasets/fashion-mnist ]]; then
  echo "FAIL: Debian's dataset-fashion-mnist is not installed (scripts/setup.sh installs it)"
  exit 1
fi
work=$(mktemp -d)
job=""
cleanup() {
  [[ -n $job ]] && kill -9 "$job" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
cd "$work"
tmp=$work
source "$(dirname "${BASH_SOURCE[0]}")/cli_lib.sh"  # fail, finish
run=("$mpirun" --oversubscribe --allow-run-as-root -x OMP_NUM_THREADS=1)
flags=(--limit 192 --threads 1 --seed 3 --lr-schedule constant)
common=("${flags[@]}" --batch-size 32)

# Two ranks: one progress bar and one set of files, written by rank 0.
rc=0
"${run[@]}" -np 2 "$reskit" train "${common[@]}" --epochs 1 -o a.h5 --history a.csv >out 2>err || rc=$?
((rc == 0)) || fail "mpirun -np 2 reskit train: exit status $rc"
[[ $(grep -c "^Epoch 1/1" out) == 1 ]] || fail "expected one 'Epoch 1/1' line (rank 0's)"
[[ -s a.h5 && -s a.csv ]] || fail "rank 0 did not write a.h5 and a.csv"
echo "ok: two ranks train"

# The global batch must split evenly.
rc=0
"${run[@]}" -np 2 "$reskit" train "${flags[@]}" --batch-size 33 --epochs 1 >out 2>err || rc=$?
((rc == 2)) || fail "--batch-size 33 over 2 ranks: expected exit status 2, got $rc"
grep -q "rank [01] of 2: --batch-size: the global batch 33 does not split evenly over 2 processes" err ||
  fail "no split error"
echo "ok: an uneven global batch is refused"

# The gradient exchange's flags: bfloat16 on the wire trains; it refuses float64 weights (usage).
"${run[@]}" -np 2 "$reskit" train "${common[@]}" --epochs 1 --allreduce-dtype bfloat16 --allreduce-bucket-mb 0.01 \
  >out 2>err || fail "--allreduce-dtype bfloat16: the run failed: $(tail -3 err)"
grep -q "^Epoch 1/1" out || fail "--allreduce-dtype bfloat16: no epoch line"
rc=0
"$reskit" train "${flags[@]}" --batch-size 32 --epochs 1 --dtype float64 --allreduce-dtype bfloat16 >out 2>err || rc=$?
((rc == 2)) || fail "--allreduce-dtype bfloat16 --dtype float64: expected exit status 2, got $rc"
grep -q "allreduce-dtype: bfloat16 expects float32 weights, got --dtype float64" err || fail "no dtype error"
echo "ok: the bfloat16 exchange trains; float64 weights refuse it"

# Bad data on rank 1 only: an error naming the rank and the file, and every rank stops.
echo "<html>not a dataset</html>" >bad.h5
start=$SECONDS
rc=0
timeout 60 "${run[@]}" -np 1 "$reskit" train "${common[@]}" --epochs 1 -o b.h5 --history b.csv : \
  -np 1 "$reskit" train "${common[@]}" --data "$work/bad.h5" --epochs 1 >out 2>err || rc=$?
((rc != 0 && rc != 124)) || fail "bad data on rank 1: expected a failing job, got exit status $rc"
grep -q "reskit: error: rank 1 of 2: .*bad.h5" err || fail "the error does not name rank 1 and bad.h5"
echo "ok: bad data on rank 1 stops the job in $((SECONDS - start)) s"

# An uninterrupted run, then one whose rank 1 is killed after a checkpoint, resumed.
"${run[@]}" -np 2 "$reskit" train "${common[@]}" --epochs 2 -o full.h5 --history full.csv >/dev/null 2>&1 ||
  fail "the uninterrupted run failed"
"${run[@]}" -np 2 "$reskit" train "${common[@]}" --epochs 2 --checkpoint-dir C --checkpoint-every 2 \
  -o k.h5 --history k.csv >out 2>err &
job=$!
for _ in $(seq 600); do
  [[ -s C/checkpoint.json ]] && break
  sleep 0.1
done
[[ -s C/checkpoint.json ]] || fail "no checkpoint appeared"
victim=""
for pid in $(pgrep -P "$job" || true); do
  tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=1" && victim=$pid
done
if [[ -n $victim ]]; then
  start=$SECONDS
  kill -9 "$victim"
  rc=0
  for _ in $(seq 600); do kill -0 "$job" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$job" 2>/dev/null; then
    fail "the job still runs 60 s after rank 1 was killed"
  else
    wait "$job" || rc=$?
    ((rc != 0)) || fail "the job exited with status 0 after rank 1 was killed"
    echo "ok: killing rank 1 ended the job in $((SECONDS - start)) s (status $rc)"
  fi
  job=""
  cp -r C C1 && cp -r C C4
  "${run[@]}" -np 2 "$reskit" train "${common[@]}" --epochs 2 --resume C -o k.h5 --history k.csv >out 2>err ||
    fail "the resumed run failed"
  grep -q "^Resuming from C/epoch-" out || fail "no resume line"
  "$reskit" predict full.h5 --data fashion-mnist:test --limit 32 --threads 1 --output pf.csv >/dev/null
  "$reskit" predict k.h5 --data fashion-mnist:test --limit 32 --threads 1 --output pk.csv >/dev/null
  cmp -s pf.csv pk.csv || fail "the resumed model's predictions differ from the uninterrupted run's"
  echo "ok: the newest checkpoint resumed to the uninterrupted run's model"
  # The checkpoint of 2 ranks resumed by 1 and by 4 (the same global batches, split otherwise;
  # tests/distributed's ResumeWithAnotherNumberOfProcesses compares the weights).
  for np in 1 4; do
    "${run[@]}" -np $np "$reskit" train "${common[@]}" --epochs 2 --resume C$np -o k$np.h5 --history k$np.csv \
      >out 2>err || fail "resuming the 2-rank checkpoint with $np processes failed: $(tail -3 err)"
    grep -q "^Resuming from C$np/epoch-" out || fail "no resume line with $np processes"
    [[ $(grep -c "^1," k$np.csv) == 1 && -s k$np.h5 ]] || fail "resumed with $np processes: no epoch 2 (row 1) in k$np.csv"
  done
  echo "ok: the 2-rank checkpoint resumed with 1 and with 4 processes"
else
  wait "$job" || true
  job=""
  fail "could not find rank 1 among mpirun's children (it may have finished first)"
fi
finish
