#!/usr/bin/env bash
# The "cli" test: runs the reskit command line as a user would and checks what it prints, and
# that bad input exits non-zero (not a crash) with a message on stderr naming the problem.
#   tests/e2e/test_cli.sh path/to/reskit
set -uo pipefail
reskit=${1:?usage: test_cli.sh path/to/reskit}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0

fail() {
  echo "FAIL: $*"
  echo "  stdout: $(head -c 2000 "$tmp/out")"
  echo "  stderr: $(head -c 2000 "$tmp/err")"
  failures=$((failures + 1))
}

# expect_ok "line that stdout must hold exactly"... -- args
expect_ok() {
  local want=()
  while [[ $1 != -- ]]; do want+=("$1"); shift; done
  shift
  "$reskit" "$@" >"$tmp/out" 2>"$tmp/err"
  local rc=$?
  if ((rc != 0)); then fail "reskit $*: expected exit status 0, got $rc"; return; fi
  for line in "${want[@]}"; do
    grep -qxF -- "$line" "$tmp/out" || { fail "reskit $*: expected a line '$line'"; return; }
  done
  echo "ok: reskit $*"
}

# expect_error "text that stderr must contain"... -- args
expect_error() {
  local want=()
  while [[ $1 != -- ]]; do want+=("$1"); shift; done
  shift
  "$reskit" "$@" >"$tmp/out" 2>"$tmp/err"
  local rc=$?
  # 1..125: an error exit; 0 is success, 126+ a shell failure or a signal (a crash).
  if ((rc == 0 || rc > 125)); then fail "reskit $*: expected an error exit status, got $rc"; return; fi
  for text in "${want[@]}"; do
    grep -qF -- "$text" "$tmp/err" || { fail "reskit $*: expected stderr to contain '$text'"; return; }
  done
  echo "ok: reskit $* -> $(head -n 1 "$tmp/err")"
}

expect_ok "Total params: 23,600,006" "Trainable params: 23,546,886" "Non-trainable params: 53,120" \
  -- summary resnet50 --input 64,64,3 --classes 6
expect_ok 'Model: "resnet50"' "Total params: 23,610,822" "Trainable params: 23,557,734" \
  "Non-trainable params: 53,088" -- summary resnet50-code
expect_ok "Total params: 23,600,006" -- summary resnet50
# A short training-step benchmark runs and reports a rate.
expect_ok -- bench --model resnet50 --input 64,64,3 --batch 2 --steps 1 --warmup 0
grep -q "images/s" "$tmp/out" || fail "reskit bench: expected 'images/s' in its output"

expect_error "unknown model 'resnet49'" "resnet50" -- summary resnet49
expect_error "--input" "64,x,3" -- summary resnet50 --input 64,x,3
expect_error "expected classes > 0, got 0" -- summary resnet50 --classes 0
expect_error "expected classes > 0, got -2" -- summary resnet50 --classes -2
expect_error "--mode" "fly" -- bench --mode fly
expect_error "dtype" "float16" -- bench --dtype float16
expect_error "unknown model 'nope'" -- bench --model nope
expect_error "--batch" -- bench --batch 0
expect_error "subcommand" -- frobnicate
expect_error "model is required" -- summary

if ((failures)); then
  echo "$failures check(s) failed"
  exit 1
fi
echo "all CLI checks passed"
