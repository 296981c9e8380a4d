# The one set of helpers of the command-line tests (tests/e2e/test_*.sh,
# tests/io/test_export_plot_cli.sh): sourced after they set $reskit (the binary) and $tmp (a
# scratch folder that holds the last command's out and err). Failures are counted, not fatal, so
# one run reports every broken check; each script ends with `finish`. Safe under `set -e`.
failures=0

fail() {
  echo "FAIL: $*"
  [[ -f $tmp/out ]] && echo "  stdout: $(head -c 2000 "$tmp/out")"
  [[ -f $tmp/err ]] && echo "  stderr: $(head -c 2000 "$tmp/err")"
  failures=$((failures + 1))
  return 0
}

# The script's last line: exits 1 when any check failed.
finish() {
  if ((failures)); then
    echo "$failures check(s) failed"
    exit 1
  fi
  echo "all checks passed"
  exit 0
}

# expect_ok "line that stdout must hold exactly"... -- args: exit status 0 and those lines.
expect_ok() {
  local want=()
  while [[ $1 != -- ]]; do want+=("$1"); shift; done
  shift
  local rc=0
  "$reskit" "$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
  if ((rc != 0)); then fail "reskit $*: expected exit status 0, got $rc"; return 0; fi
  for line in "${want[@]}"; do
    grep -qxF -- "$line" "$tmp/out" || { fail "reskit $*: expected a line '$line'"; return 0; }
  done
  echo "ok: reskit $*"
}

# expect_file FILE: the last command wrote FILE (not empty).
expect_file() {
  [[ -s $1 ]] || fail "expected $1 to be written"
}

# expect_error "text that stderr must contain"... -- args: any error exit status.
expect_error() {
  local want=()
  while [[ $1 != -- ]]; do want+=("$1"); shift; done
  shift
  local rc=0
  "$reskit" "$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
  # 1..125: an error exit; 0 is success, 126+ a shell failure or a signal (a crash).
  if ((rc == 0 || rc > 125)); then fail "reskit $*: expected an error exit status, got $rc"; return 0; fi
  for text in "${want[@]}"; do
    grep -qF -- "$text" "$tmp/err" || { fail "reskit $*: expected stderr to contain '$text'"; return 0; }
  done
  echo "ok: reskit $* -> $(head -n 1 "$tmp/err")"
}

# expect_status STATUS "text that stderr must contain"... -- args: exactly that exit status.
expect_status() {
  local status=$1 want=()
  shift
  while [[ $1 != -- ]]; do want+=("$1"); shift; done
  shift
  local rc=0
  "$reskit" "$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
  if ((rc != status)); then fail "reskit $*: expected exit status $status, got $rc"; return 0; fi
  for text in "${want[@]}"; do
    grep -qF -- "$text" "$tmp/err" || { fail "reskit $*: expected stderr to contain '$text'"; return 0; }
  done
  echo "ok: reskit $* -> $status: $(head -n 1 "$tmp/err")"
}
# A mistake in the command line (an unknown command or flag, a missing or malformed argument): 2.
expect_usage_error() { expect_status 2 "$@"; }
# Something that goes wrong at run time (a file missing or malformed, too little memory): 1.
expect_failure() { expect_status 1 "$@"; }
