#!/usr/bin/env bash
# The "includes" test: docs/architecture.md's "what may call what", checked on every #include of
# the tree, so that the picture stays true. Prints each include that crosses a line and fails.
#   tests/check_includes.sh SOURCE_DIR
# Rules (a quoted include is a project header; <...> a standard or third-party one):
#   src/kernels/      project headers of kernels/ only, and reskit/error.h
#   src/layers/       never the graph (reskit/graph/, graph/)
#   src/io/           never training (reskit/training/, training/)
#   src/training/     never io's private headers (io/); io's public reskit/io/h5.h to save models
#   tools/            public headers (reskit/...) and the tool's own headers only
#   include/reskit/   public headers and the standard library only: no src/, no third-party
#   <mpi.h>           only in src/distributed/mpi.cpp (everything else sees distributed::Communicator)
#   src/layers/       of distributed/, only reskit/distributed/communicator.h
set -uo pipefail
root=${1:?usage: check_includes.sh SOURCE_DIR}
cd "$root" || exit 1
violations=0

# report FILE:LINE:TEXT WHY
report() {
  echo "$1: $2"
  violations=$((violations + 1))
}

# includes DIR KIND: "file:line:header" for every #include of KIND (quoted or angle) under DIR.
includes() {
  local pattern='^[[:space:]]*#[[:space:]]*include[[:space:]]*"([^"]+)"'
  [[ $2 == angle ]] && pattern='^[[:space:]]*#[[:space:]]*include[[:space:]]*<([^>]+)>'
  grep -rnE --include='*.h' --include='*.cpp' --include='*.hpp' "$pattern" "$1" |
    sed -E "s/^([^:]+:[0-9]+):.*${pattern#^}.*/\1:\2/"
}

while IFS= read -r hit; do
  header=${hit##*:}
  [[ $header == kernels/* || $header == reskit/error.h ]] ||
    report "$hit" "kernels include only kernels/ and reskit/error.h"
done < <(includes src/kernels quoted)

while IFS= read -r hit; do
  header=${hit##*:}
  [[ $header == reskit/graph/* || $header == graph/* ]] && report "$hit" "layers never include the graph"
  [[ ($header == reskit/distributed/* || $header == distributed/*) && $header != reskit/distributed/communicator.h ]] &&
    report "$hit" "layers include of distributed/ only reskit/distributed/communicator.h"
done < <(includes src/layers quoted)

for dir in src include tools tests; do
  while IFS= read -r hit; do
    header=${hit##*:}
    file=${hit%%:*}
    [[ $header == mpi.h && $file != src/distributed/mpi.cpp ]] &&
      report "$hit" "only src/distributed/mpi.cpp calls MPI"
  done < <(includes "$dir" angle)
done

while IFS= read -r hit; do
  header=${hit##*:}
  [[ $header == reskit/training/* || $header == training/* ]] && report "$hit" "io never includes training"
done < <(includes src/io quoted)

while IFS= read -r hit; do
  header=${hit##*:}
  [[ $header == io/* ]] && report "$hit" "training never includes io's private headers"
  [[ $header == reskit/io/* && $header != reskit/io/h5.h ]] &&
    report "$hit" "training includes of io only reskit/io/h5.h (to save and load models)"
done < <(includes src/training quoted)

while IFS= read -r hit; do
  header=${hit##*:}
  [[ $header == reskit/* || $header != */* ]] || report "$hit" "tools include only public headers"
done < <(includes tools quoted)

while IFS= read -r hit; do
  header=${hit##*:}
  [[ $header == reskit/* ]] || report "$hit" "public headers include only public headers"
done < <(includes include quoted)
while IFS= read -r hit; do
  header=${hit##*:}
  [[ $header == */* || $header == *.* ]] && report "$hit" "public headers include no third-party header"
done < <(includes include angle)

if ((violations)); then
  echo "$violations include(s) cross docs/architecture.md's lines"
  exit 1
fi
echo "every include keeps to docs/architecture.md's lines"
