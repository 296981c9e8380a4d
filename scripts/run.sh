#!/usr/bin/env bash
# The main job, the README's first command:
#   bash scripts/run.sh
# From a fresh clone it installs the Debian packages it needs (scripts/setup.sh), builds the
# reskit command line in build/ (configured as scripts/test.sh does, so the two share objects)
# and runs `reskit train` with no arguments: ResNet-20 on Debian's Fashion-MNIST, ending with the
# test accuracy and leaving the model (.h5), the history (.csv) and the curves (.svg) in the
# current folder. Extra arguments go to `reskit train`. Safe to run again.
set -euo pipefail
here=$PWD
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

bash scripts/setup.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DRESKIT_WERROR=ON
cmake --build build --target reskit_cli --parallel "${RESKIT_JOBS:-$(nproc)}"
cd "$here"
"$root/build/reskit" train "$@"
