#!/usr/bin/env bash
# Installs every Debian package that building and testing reskit needs. Safe to run twice:
# it asks apt only for what is missing.
#   scripts/setup.sh           build + test dependencies
#   scripts/setup.sh --bench   also the PyTorch peers (python3-torch, python3-torchvision, python3-pil)
#                              for bench/ and golden fixtures
set -euo pipefail
pkgs=(build-essential cmake ninja-build pkg-config
      libdnnl-dev ocl-icd-opencl-dev libopenblas-openmp-dev
      nlohmann-json3-dev libcli11-dev libfmt-dev
      libgtest-dev libgmock-dev libbenchmark-dev
      python3-h5py jq
      libhdf5-dev zlib1g-dev libpng-dev libjpeg-dev dataset-fashion-mnist
      libonnx-dev libprotobuf-dev libgraphviz-dev graphviz
      python3-onnx python3-opencv
      libopenmpi-dev openmpi-bin  # data-parallel training (mpirun; docs/scaling.md)
      clang libclang-rt-14-dev libomp-dev)  # the libFuzzer targets (fuzz/run_fuzzers.sh)
if [[ "${1:-}" == "--bench" ]]; then pkgs+=(python3-torch python3-numpy python3-torchvision python3-pil); fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=""; [[ $(id -u) -ne 0 ]] && sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
