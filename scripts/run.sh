#!/usr/bin/env bash
# The main job, the README's first command:
#   bash scripts/run.sh
# From a fresh clone it installs the Debian packages it needs (scripts/setup.sh), builds the
# reskit command line in build/ (configured as scripts/test.sh does, so the two share objects)
# and prints the Keras summary of ResNet-50 for 64x64x3 inputs and 6 classes. Safe to run again.
# Until training lands this is the whole job; then it becomes `reskit train`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DRESKIT_WERROR=ON
cmake --build build --target reskit_cli --parallel "${RESKIT_JOBS:-$(nproc)}"
build/reskit summary resnet50 --input 64,64,3 --classes 6
