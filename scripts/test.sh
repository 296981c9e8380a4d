#!/usr/bin/env bash
# Builds reskit and runs every test: the README's test command, and what CI runs (.ci/run).
#   bash scripts/test.sh
# From a fresh clone it installs the Debian packages it needs (scripts/setup.sh), configures
# build/ (Release, Ninja, warnings as errors), builds, and runs all of CTest. Safe to run again:
# setup.sh installs only what is missing and the build is incremental. Exits non-zero when a
# package, the build or any test fails. RESKIT_JOBS=N limits the build's parallel jobs.
# Then it builds build-asan/ (preset asan-ubsan) and runs all of CTest again under AddressSanitizer
# and UndefinedBehaviorSanitizer; RESKIT_SKIP_ASAN=1 skips that step, saying so.
# After CTest it builds the libFuzzer targets (clang, build-fuzz/) and runs each parser's target
# for a short fixed number of inputs (fuzz/run_fuzzers.sh); a missing clang fails the run (setup.sh
# installs it). RESKIT_SKIP_FUZZ=1 skips that step, saying so.
#   bash scripts/test.sh --fast
# builds the same release build/ and runs only the tests labelled "fast" (no sanitizer suite, no
# fuzzing): the quick check that scripts/fresh-check.sh runs in a new Debian 12 root.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
fast=0
case "${1:-}" in
  "") ;;
  --fast) fast=1 ;;
  *) echo "scripts/test.sh: unknown argument '$1'; expected nothing or --fast" >&2; exit 2 ;;
esac

bash scripts/setup.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DRESKIT_WERROR=ON
cmake --build build --parallel "${RESKIT_JOBS:-$(nproc)}"
if ((fast)); then
  (cd build && ctest --output-on-failure -L fast --no-tests=error)
  exit 0
fi
(cd build && ctest --output-on-failure)

# The same suite under AddressSanitizer + UndefinedBehaviorSanitizer (preset asan-ubsan:
# build-asan/, -O1, leaks checked), one test per core at a time, one OpenMP thread each (tests that
# name --threads keep theirs). RESKIT_SKIP_ASAN=1 skips it, saying so.
if [[ "${RESKIT_SKIP_ASAN:-0}" == 1 ]]; then
  echo "scripts/test.sh: RESKIT_SKIP_ASAN=1: the sanitizer suite (build-asan/, preset asan-ubsan) was NOT run" >&2
else
  cmake --preset asan-ubsan >/dev/null
  cmake --build --preset asan-ubsan --parallel "${RESKIT_JOBS:-$(nproc)}"
  ctest --preset asan-ubsan --parallel "$(nproc)"
fi

if [[ "${RESKIT_SKIP_FUZZ:-0}" == 1 ]]; then
  echo "scripts/test.sh: RESKIT_SKIP_FUZZ=1: the fuzz step (fuzz/run_fuzzers.sh) was NOT run" >&2
  exit 0
fi
if ! command -v clang++ >/dev/null; then
  echo "scripts/test.sh: error: clang++ not found, so the fuzz step cannot run; scripts/setup.sh installs" \
    "clang and libclang-rt-14-dev (or set RESKIT_SKIP_FUZZ=1 to skip the step)" >&2
  exit 1
fi
bash fuzz/run_fuzzers.sh
