#!/usr/bin/env bash
# The make_signs example (examples/make_signs.cpp): it creates the folder it writes into, and where
# it cannot write it says so in one line (no HDF5 error stack) and exits with 1; a bad command line
# exits with 2.
#   tests/e2e/test_make_signs.sh path/to/make_signs
set -uo pipefail
make_signs=${1:?usage: test_make_signs.sh path/to/make_signs}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() {
  echo "FAIL: $*"
  echo "  stderr: $(head -c 2000 "$tmp/err")"
  failures=$((failures + 1))
}

# expect_exit STATUS "text stderr must contain" -- args: that status, one line on stderr, no HDF5 stack.
expect_exit() {
  local status=$1 want=$2
  shift 3
  "$make_signs" "$@" >"$tmp/out" 2>"$tmp/err"
  local rc=$?
  if ((rc != status)); then fail "make_signs $*: expected exit status $status, got $rc"; return; fi
  if [[ $(wc -l <"$tmp/err") != 1 ]]; then fail "make_signs $*: expected one line on stderr"; return; fi
  if grep -q "HDF5" "$tmp/err"; then fail "make_signs $*: HDF5's error stack printed"; return; fi
  grep -qF -- "$want" "$tmp/err" || { fail "make_signs $*: expected stderr to contain '$want'"; return; }
  echo "ok: make_signs $* -> $status: $(cat "$tmp/err")"
}

# A folder two levels below one that exists: created.
if "$make_signs" "$tmp/new/signs" 7 5 >"$tmp/out" 2>"$tmp/err"; then
  for f in train_signs.h5 test_signs.h5 sign.png; do
    [[ -s $tmp/new/signs/$f ]] || fail "make_signs $tmp/new/signs: no $f written"
  done
  [[ -s $tmp/err ]] && fail "make_signs $tmp/new/signs: expected nothing on stderr"
  echo "ok: make_signs $tmp/new/signs 7 5 -> $(cat "$tmp/out")"
else
  fail "make_signs $tmp/new/signs 7 5: expected exit status 0"
fi
# Into the folder again: the files are replaced.
"$make_signs" "$tmp/new/signs" 3 3 >"$tmp/out" 2>"$tmp/err" || fail "make_signs into an existing folder"

touch "$tmp/a-file"
expect_exit 1 "make_signs: cannot create folder '$tmp/a-file/signs'" -- "$tmp/a-file/signs"
mkdir -p "$tmp/blocked/train_signs.h5"  # a folder where the file goes: HDF5 cannot create it
expect_exit 1 "make_signs: cannot write '$tmp/blocked/train_signs.h5'" -- "$tmp/blocked"
expect_exit 2 "usage: make_signs DIR" --
expect_exit 2 "usage: make_signs DIR" -- "$tmp/x" 0
expect_exit 2 "usage: make_signs DIR" -- "$tmp/x" 10 many
[[ ! -e $tmp/x ]] || fail "make_signs with bad counts created its folder"

if ((failures)); then
  echo "$failures check(s) failed"
  exit 1
fi
echo "all make_signs checks passed"
