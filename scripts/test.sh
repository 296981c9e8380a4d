#!/usr/bin/env bash
# Builds reskit and runs every test: the README's test command, and what CI runs (.ci/run).
#   bash scripts/test.sh
# From a fresh clone it installs the Debian packages it needs (scripts/setup.sh), configures
# build/ (Release, Ninja, warnings as errors), builds, and runs all of CTest. Safe to run again:
# setup.sh installs only what is missing and the build is incremental. Exits non-zero when a
# package, the build or any test fails. RESKIT_JOBS=N limits the build's parallel jobs.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DRESKIT_WERROR=ON
cmake --build build --parallel "${RESKIT_JOBS:-$(nproc)}"
cd build
ctest --output-on-failure
