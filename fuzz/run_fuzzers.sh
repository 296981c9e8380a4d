#!/usr/bin/env bash
# Builds the libFuzzer targets (preset "fuzz", build-fuzz/, clang + ASan/UBSan) and runs each one
# over its seed corpus (fuzz/corpus/<target>/) for a short fixed number of inputs. Exits non-zero
# on any crash, leak, timeout or sanitizer report (libFuzzer then leaves crash-*/leak-*/timeout-*
# files in build-fuzz/fuzz-artifacts/ and prints the stack).
#   bash fuzz/run_fuzzers.sh                  every target, FUZZ_RUNS inputs each (default 2000)
#   bash fuzz/run_fuzzers.sh idx png          only those targets
#   FUZZ_RUNS=1000000 FUZZ_TIME=600 bash fuzz/run_fuzzers.sh h5_model   a longer session
# RESKIT_JOBS=N limits the build's parallel jobs. New inputs libFuzzer finds go to a scratch folder
# (build-fuzz/fuzz-corpus/<target>/, emptied at the start), never into the checked-in corpus.
# FUZZ_SEED=N changes libFuzzer's seed (default 1). FUZZ_FAST_UNWIND=1, for long sessions: fast
# malloc stacks (HDF5 targets run 4-8x faster), which stop at the first frame inside libhdf5, so
# leaks allocated inside libhdf5 are suppressed by module (fuzz/lsan-long.supp); the short runs
# keep full stacks and the narrower fuzz/lsan.supp.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

all=(h5_model model_json signs_hdf5 idx cifar10 png jpeg stream)
targets=("$@")
((${#targets[@]})) || targets=("${all[@]}")
runs="${FUZZ_RUNS:-2000}"
max_time="${FUZZ_TIME:-0}"

if ! command -v clang++ >/dev/null; then
  echo "run_fuzzers.sh: clang++ not found; run scripts/setup.sh (clang, libclang-rt-14-dev)" >&2
  exit 1
fi
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz --parallel "${RESKIT_JOBS:-$(nproc)}"

# -malloc_limit_mb: HDF5 mallocs what a corrupt header declares (12 GiB seen under H5Fopen) and
# only then finds the file too short; such a malloc is not a bug: ASan returns NULL above 1 GiB
# (max_allocation_size_mb, fast; HDF5 fails cleanly) and only memory really used counts.
# Largest input per target: the seeds with room to grow (a CIFAR record is 3073 bytes).
declare -A max_len=([h5_model]=65536 [model_json]=8192 [signs_hdf5]=16384 [idx]=2048 [cifar10]=8192
                    [png]=4096 [jpeg]=4096 [stream]=8192)
artifacts=build-fuzz/fuzz-artifacts
mkdir -p "$artifacts"
# allocator_may_return_null: HDF5 allocates what a corrupt file's header says and checks for
# NULL; without it ASan stops at any request over the limit (allocation-size-too-big). Leaks inside
# libhdf5 itself are suppressed (fuzz/lsan.supp), which needs slow, complete malloc stacks.
fast_unwind=0 supp=fuzz/lsan.supp
if [[ ${FUZZ_FAST_UNWIND:-0} == 1 ]]; then fast_unwind=1 supp=fuzz/lsan-long.supp; fi
export ASAN_OPTIONS="detect_leaks=1:strict_string_checks=1:check_initialization_order=1:allocator_may_return_null=1:max_allocation_size_mb=1024:fast_unwind_on_malloc=$fast_unwind"
export LSAN_OPTIONS="suppressions=$PWD/$supp"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export OMP_NUM_THREADS=1
status=0
for t in "${targets[@]}"; do
  [[ -n "${max_len[$t]:-}" ]] || { echo "run_fuzzers.sh: unknown target '$t' (known: ${all[*]})" >&2; exit 2; }
  scratch=build-fuzz/fuzz-corpus/$t
  rm -rf "$scratch"  # every run starts from the seeds alone, so a run is repeatable (-seed=1)
  mkdir -p "$scratch"
  start=$SECONDS
  log=build-fuzz/fuzz-$t.log
  if build-fuzz/fuzz/fuzz_$t "$scratch" fuzz/corpus/$t -runs="$runs" -max_total_time="$max_time" \
      -max_len="${max_len[$t]}" -timeout=25 -rss_limit_mb=2048 -malloc_limit_mb=1048576 -seed="${FUZZ_SEED:-1}" \
      -print_final_stats=1 -artifact_prefix="$artifacts/$t-" >"$log" 2>&1; then
    stats=$(grep -E '^stat::number_of_executed_units|^stat::average_exec_per_sec' "$log" | awk '{print $2}' | paste -sd' ')
    echo "fuzz_$t: ok ($((SECONDS - start)) s; executed, exec/s: $stats)"
  else
    echo "fuzz_$t: FAILED ($((SECONDS - start)) s); the end of $log:" >&2
    tail -n 60 "$log" >&2
    status=1
  fi
done
exit $status
