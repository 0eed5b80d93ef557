#!/usr/bin/env bash
# The one test entry point (`npm test`). Tiers:
#   unit         pure logic, in-memory fakes, no external process
#   integration  against the real lab (etcd, multi-node Swarm, registry, nginx), brought up once
#                here and torn down at the end even when tests fail
set -euo pipefail
cd "$(dirname "$0")/.."
tier=${1:-all}

run_tests() {
  local dir=$1; shift
  mapfile -t files < <(find "$dir" -name '*.test.ts' | sort)
  if [ ${#files[@]} -eq 0 ]; then echo "no tests in $dir" >&2; return 1; fi
  node --import tsx --test "$@" "${files[@]}"
}

if [ "$tier" = unit ] || [ "$tier" = all ]; then
  run_tests test/unit
fi
