#!/usr/bin/env bash
# bench/mpi_scaling.sh — data parallelism's cost on one machine (issue 16, item 8), side by side in
# one run, medians over rounds that alternate the configurations:
#   one process, --threads 2                      (the baseline)
#   mpirun -np 2, --threads 1, 25 MB buckets       (overlapping backward, through shared memory; the default)
#   mpirun -np 2, --threads 1, --allreduce-shared-memory off   (the buckets through MPI's messages)
#   the same with Open MPI's vader single-copy mechanism off (--mca btl_vader_single_copy_mechanism none)
#   mpirun -np 2, --threads 1, --allreduce-bucket-mb 0   (one sum after backward)
#   mpirun -np 2, --threads 1, --allreduce-dtype bfloat16
# each `reskit bench --model resnet50 --input 64,64,3 --classes 6 --batch 32 --mode train` (global
# images/s as rank 0 prints them; compute, allreduce and exposed communication per step), the
# ratio to the baseline (target >= 0.95), then the allreduce bandwidth for ResNet-50's gradient
# (23.5 M float32 values, 94 MB) from reskit's sums next to a plain MPI_Allreduce loop.
#
#   bench/mpi_scaling.sh [BUILD_DIR]      (ROUNDS=3 STEPS=5 by default; CONFIGS="0 1 2" runs those rows only)
# Needs a build with MPI (reskit and reskit_bench_allreduce). Open MPI on one machine: the ranks
# are not bound to cores (--bind-to none) so that they share the machine as the 2-thread process
# does; as root Open MPI wants --allow-run-as-root.
set -euo pipefail

build=${1:-build}
rounds=${ROUNDS:-3}
steps=${STEPS:-5}
reskit=$build/reskit
allreduce=$build/bench/reskit_bench_allreduce
for f in "$reskit" "$allreduce"; do
  [[ -x $f ]] || { echo "mpi_scaling.sh: expected $f (build with MPI: cmake --build $build --target reskit_cli reskit_bench_allreduce)" >&2; exit 2; }
done
mpirun=(mpirun --bind-to none --oversubscribe -x OMP_NUM_THREADS=1)
[[ $(id -u) == 0 ]] && mpirun+=(--allow-run-as-root)
job=(bench --model resnet50 --input 64,64,3 --classes 6 --batch 32 --mode train --steps "$steps" --warmup 1)

names=("one process, --threads 2" "mpirun -np 2 --threads 1, 25 MB buckets, shared memory"
  "mpirun -np 2, buckets through MPI messages" "mpirun -np 2, MPI messages, vader single copy none"
  "mpirun -np 2, one sum after backward" "mpirun -np 2, bfloat16 exchange")
read -ra configs <<< "${CONFIGS:-0 1 2 3 4 5}"
run() {
  case $1 in
    0) OMP_NUM_THREADS=2 "$reskit" "${job[@]}" --threads 2 ;;
    1) "${mpirun[@]}" -np 2 "$reskit" "${job[@]}" --threads 1 ;;
    2) "${mpirun[@]}" -np 2 "$reskit" "${job[@]}" --threads 1 --allreduce-shared-memory off ;;
    3) "${mpirun[@]}" --mca btl_vader_single_copy_mechanism none -np 2 "$reskit" "${job[@]}" --threads 1 \
      --allreduce-shared-memory off ;;
    4) "${mpirun[@]}" -np 2 "$reskit" "${job[@]}" --threads 1 --allreduce-bucket-mb 0 ;;
    5) "${mpirun[@]}" -np 2 "$reskit" "${job[@]}" --threads 1 --allreduce-dtype bfloat16 ;;
  esac
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores," \
  "load average $(cut -d' ' -f1-3 /proc/loadavg); $rounds rounds of $steps steps after 1 warm-up"
for ((r = 0; r < rounds; r++)); do
  for c in "${configs[@]}"; do
    run "$c" > "$tmp/out" 2>&1 || { cat "$tmp/out" >&2; exit 1; }
    sed -n 's/^\([0-9.]*\) images\/s$/\1/p' "$tmp/out" >> "$tmp/ips$c"
    for k in compute allreduce exposed_communication; do
      sed -n "s/.* ${k}_ms_per_step=\([0-9.]*\).*/\1/p" "$tmp/out" >> "$tmp/$k$c"
    done
  done
done

median() { sort -g "$1" | awk '{v[NR] = $1} END {if (NR == 0) print "-"; else print v[int((NR + 1) / 2)]}'; }
base=$(median "$tmp/ips0")
printf '\n| run | images/s (median) | ratio | compute ms/step | allreduce ms/step | exposed ms/step |\n'
printf '|---|---|---|---|---|---|\n'
for c in "${configs[@]}"; do
  ips=$(median "$tmp/ips$c")
  ratio=$(awk -v a="$ips" -v b="$base" 'BEGIN {printf "%.2f", a / b}')
  cells=()
  for k in compute allreduce exposed_communication; do
    if [[ -s $tmp/$k$c ]]; then cells+=("$(median "$tmp/$k$c")"); else cells+=("–"); fi
  done
  printf '| %s | %s (%s) | %s | %s | %s | %s |\n' "${names[$c]}" "$ips" "$(sort -g "$tmp/ips$c" | paste -sd' ')" \
    "$ratio" "${cells[@]}"
done
echo
echo "Allreduce of ResNet-50's gradient (94 MB float32), 2 processes:"
"${mpirun[@]}" -np 2 "$allreduce" 23500000 5
