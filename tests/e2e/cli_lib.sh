# Shared by the command-line tests (tests/e2e/test_cli.sh, tests/io/test_export_plot_cli.sh):
# sourced after they set $reskit (the binary), $tmp (a scratch folder) and failures=0.
# Failures are counted, not fatal: the script ends with `exit $((failures > 0))` or the like.

fail() {
  echo "FAIL: $*"
  echo "  stdout: $(head -c 2000 "$tmp/out")"
  echo "  stderr: $(head -c 2000 "$tmp/err")"
  failures=$((failures + 1))
}

# expect_error "text that stderr must contain"... -- args: any error exit status.
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

# expect_status STATUS "text that stderr must contain"... -- args: exactly that exit status.
expect_status() {
  local status=$1 want=()
  shift
  while [[ $1 != -- ]]; do want+=("$1"); shift; done
  shift
  "$reskit" "$@" >"$tmp/out" 2>"$tmp/err"
  local rc=$?
  if ((rc != status)); then fail "reskit $*: expected exit status $status, got $rc"; return; fi
  for text in "${want[@]}"; do
    grep -qF -- "$text" "$tmp/err" || { fail "reskit $*: expected stderr to contain '$text'"; return; }
  done
  echo "ok: reskit $* -> $status: $(head -n 1 "$tmp/err")"
}
# A mistake in the command line (an unknown command or flag, a missing or malformed argument): 2.
expect_usage_error() { expect_status 2 "$@"; }
# Something that goes wrong at run time (a file missing or malformed, too little memory): 1.
expect_failure() { expect_status 1 "$@"; }
