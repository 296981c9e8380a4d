#!/usr/bin/env bash
# The fresh-machine test: do the README's two commands still do all the set-up on a new Debian 12?
#   bash scripts/fresh-check.sh          (as root; .ci/run runs it after the suite)
# It builds a minimal Debian 12 root with Debian's mmdebstrap (variant minbase: apt, dpkg and the
# essential packages, nothing else), copies this working tree into it (the files git tracks plus
# untracked ones it does not ignore, so no build folder comes along) and, inside it (chroot, with a
# private /proc, /dev and /sys), runs the README's own commands, kept short:
#   1. bash scripts/run.sh --epochs 1 --limit 2048   (the main job: one short epoch), from a job
#      folder; it must exit 0, print the test-set line ("... - loss: L - accuracy: A") and leave the
#      model, the history CSV and the curves SVG there;
#   2. bash scripts/test.sh --fast                   (the release build and the "fast" tests).
# A package that only a long-used machine has (a recommends of another, a tool on PATH, a Python
# module, a data file) is missing there, so the step that needs it fails here instead of hiding.
# The root's environment is empty but for PATH, HOME and OpenBLAS's CPU override where the machine
# sets one (OPENBLAS_CORETYPE, OPENBLAS_L2_SIZE: OpenBLAS needs them on some CPUs).
# Needs Debian's archive (deb.debian.org) and root; when either is missing it fails, saying so.
# About 9 minutes on 2 cores (40 s for the root, 2-3 minutes of packages, the build, the tests).
# RESKIT_FRESH_DIR=DIR builds the root under DIR (default: a new folder under /var/tmp); the root
# is removed at the end unless RESKIT_FRESH_KEEP=1.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
say() { echo "fresh-check: $*" >&2; }
fail() {
  say "FAILED: $*"
  exit 1
}
start=$SECONDS
phase() { say "$1 ($((SECONDS - start)) s so far)"; }

[[ $(id -u) -eq 0 ]] || fail "must run as root (mmdebstrap's root mode and chroot); got uid $(id -u)"
command -v git >/dev/null || fail "git not found: the working tree is copied from git's list of files"

if ! command -v mmdebstrap >/dev/null; then
  phase "installing mmdebstrap (Debian's package)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || fail "apt-get update failed: Debian's archive cannot be reached from this machine"
  apt-get install -y -qq --no-install-recommends mmdebstrap >/dev/null ||
    fail "could not install mmdebstrap from Debian's archive"
fi

parent=${RESKIT_FRESH_DIR:-/var/tmp}
mkdir -p "$parent"
work=$(mktemp -d "$parent/reskit-fresh.XXXXXX")
root=$work/root
cleanup() {
  # The mounts live in a private mount namespace that ended with its process; check anyway
  # before removing anything, so that a mount that outlived it is never deleted through.
  if findmnt -rn -o TARGET | grep -q "^$root/"; then
    say "mounts under $root are still there; leaving $work in place"
  elif [[ "${RESKIT_FRESH_KEEP:-0}" == 1 ]]; then
    say "RESKIT_FRESH_KEEP=1: the root stays in $root"
  else
    rm -rf --one-file-system "$work"
  fi
}
trap cleanup EXIT

# Debian's own archive and nothing else: the main suite, its updates and security updates.
phase "building a Debian 12 (bookworm) minbase root in $root"
if ! mmdebstrap --quiet --variant=minbase bookworm "$root" \
  "deb http://deb.debian.org/debian bookworm main" \
  "deb http://deb.debian.org/debian bookworm-updates main" \
  "deb http://deb.debian.org/debian-security bookworm-security main" >"$work/mmdebstrap.log" 2>&1; then
  tail -n 20 "$work/mmdebstrap.log" >&2
  fail "mmdebstrap could not build a Debian 12 root (log above): Debian's archive (deb.debian.org) may be unreachable from this machine"
fi

phase "copying the working tree into the root"
mkdir -p "$root/root/reskit" "$root/root/job"
(cd "$repo" && git ls-files -z --cached --others --exclude-standard |
  tar -cf - --null --no-recursion -T -) | tar -xf - -C "$root/root/reskit"

# Runs a command as root inside the new root, in a mount namespace of its own, so that /proc,
# /dev and /sys vanish with it.
in_root() {
  local envs=(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root)
  local v
  for v in OPENBLAS_CORETYPE OPENBLAS_L2_SIZE; do
    [[ -n "${!v:-}" ]] && envs+=("$v=${!v}")
  done
  unshare --mount --propagation private /bin/bash -c '
    set -e
    r=$1; shift
    mount -t proc proc "$r/proc"
    mount --rbind /dev "$r/dev"
    mount -t sysfs -o ro sysfs "$r/sys"
    exec chroot "$r" "$@"' fresh "$root" env -i "${envs[@]}" /bin/bash -c "$1"
}

phase "the main job: bash scripts/run.sh --epochs 1 --limit 2048"
in_root 'cd /root/job && bash /root/reskit/scripts/run.sh --epochs 1 --limit 2048' >"$work/run.log" 2>&1 || {
  tail -n 40 "$work/run.log" >&2
  fail "the main job (scripts/run.sh) exited non-zero in the fresh root (last lines above)"
}
last=$(tail -n 1 "$work/run.log" | tr '\r' '\n' | tail -n 1)
grep -Eq -- '- loss: [0-9.]+ - accuracy: [0-9.]+$' <<<"$last" ||
  fail "the main job did not end with its test-set line ('- loss: L - accuracy: A'); its last line: $last"
say "the main job ended with: $last"
for f in resnet20-fashion-mnist.h5 resnet20-fashion-mnist-history.csv resnet20-fashion-mnist-history.svg; do
  [[ -s "$root/root/job/$f" ]] || fail "the main job left no $f in its working folder"
done

phase "the tests: bash scripts/test.sh --fast"
in_root 'cd /root/reskit && bash scripts/test.sh --fast' >"$work/test.log" 2>&1 || {
  tail -n 40 "$work/test.log" >&2
  fail "the test command (scripts/test.sh --fast) exited non-zero in the fresh root (last lines above)"
}
grep -E 'tests passed|tests failed' "$work/test.log" >&2 || true

phase "passed: both README commands ran from nothing but Debian's archive"
