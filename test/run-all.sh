#!/usr/bin/env bash
# The one test entry point (`npm test`). Tiers:
#   unit         pure logic, in-memory fakes, no external process
#   integration  against the real lab (etcd, multi-node Swarm, registry, nginx), brought up once
#                here and torn down at the end even when tests fail
#   all          (default) both
# Environment:
#   BERTH_LAB_KEEP=1  leave the lab up afterwards (lab up is idempotent, so the next run reuses it)
#   BERTH_LAB_DIR     the lab's state dir (default /var/lib/berth-lab)
# A lab that was already up before this run is reused and left up; only a lab this run brought
# up is torn down, and then the run checks that nothing of it is left.
set -euo pipefail
cd "$(dirname "$0")/.."
tier=${1:-all}
case "$tier" in unit|integration|all) ;; *) echo "usage: $0 [unit|integration|all]" >&2; exit 2 ;; esac

run_tests() {
  local dir=$1; shift
  mapfile -t files < <(find "$dir" -name '*.test.ts' | sort)
  if [ ${#files[@]} -eq 0 ]; then echo "no tests in $dir" >&2; return 1; fi
  node --import tsx --test "$@" "${files[@]}"
}

# Integration files that use no part of the lab's Swarm, etcd or nginx (each starts its own etcd,
# nginx or simulator): they run beside the Swarm files instead of after them.
OFF_SWARM=(cli-apply-watch cli-apply cutover-load etcd-security proxy-cli proxy-nginx routes-store
  sim-docker-cli sim-dockerode store-raw-edits store-resources store-watch)
# Swarm files that mostly wait (grace periods, resyncs) and use no image of berth: they run first,
# while berth's test image is built in the background for the files that do.
WHILE_IMAGE_BUILDS=(ownership-lab controller-rollback)

# Prints the integration files of one group: off-swarm, first, or rest (the other Swarm files).
integration_files() {
  local group=$1 f name
  for f in $(find test/integration -name '*.test.ts' | sort); do
    name=$(basename "$f" .test.ts)
    if [[ " ${OFF_SWARM[*]} " == *" $name "* ]]; then [ "$group" = off-swarm ] && echo "$f"
    elif [[ " ${WHILE_IMAGE_BUILDS[*]} " == *" $name "* ]]; then [ "$group" = first ] && echo "$f"
    else [ "$group" = rest ] && echo "$f"; fi
  done
  return 0
}

status=0
unit_pid=
unit_log=
if [ "$tier" = unit ]; then
  t0=$SECONDS
  run_tests test/unit || status=1
  echo "== unit tier: $([ $status = 0 ] && echo ok || echo FAILED) in $((SECONDS - t0)) s" >&2
elif [ "$tier" = all ]; then
  # The unit tier runs while the lab comes up (mostly waiting on apt, dockerd and image builds);
  # its output follows once it is done, and the integration tests start only after it, so no
  # timing-sensitive lab test shares the CPU with it.
  unit_log=$(mktemp /tmp/berth-unit.XXXXXX)
  ( t0=$SECONDS; rc=0; run_tests test/unit >"$unit_log" 2>&1 || rc=1
    echo "== unit tier: $([ $rc = 0 ] && echo ok || echo FAILED) in $((SECONDS - t0)) s" >>"$unit_log"; exit $rc ) &
  unit_pid=$!
fi
# Prints the unit tier's output once; its exit status decides `status`.
finish_unit() {
  [ -n "$unit_pid" ] || return 0
  local rc=0
  wait "$unit_pid" || rc=1
  unit_pid=
  cat "$unit_log"; rm -f "$unit_log"
  [ $rc = 0 ] || status=1
}

if [ "$tier" = integration ] || [ "$tier" = all ]; then
  # The CLI runs from dist/: build it when missing or older than the sources.
  if [ ! -f dist/cli/main.js ] || [ -n "$(find src -name '*.ts' -newer dist/cli/main.js -print -quit)" ]; then
    echo "== building dist/" >&2
    npm run build --silent
  fi
  lab_dir=${BERTH_LAB_DIR:-/var/lib/berth-lab}
  owned=0
  snapshot=$(mktemp /tmp/berth-lab-state.XXXXXX)
  teardown() {
    local rc=$?
    # Interrupted: the image build and the off-swarm files must not outlive the lab.
    for pid in ${image_pid:-} ${off_pid:-}; do kill "$pid" 2>/dev/null || true; done
    finish_unit
    [ "$status" = 0 ] || rc=1
    if [ "$owned" = 1 ] && [ "${BERTH_LAB_KEEP:-0}" != 1 ]; then
      [ -f "$lab_dir/state.json" ] && cp "$lab_dir/state.json" "$snapshot"
      t1=$SECONDS
      node bin/berth.js lab down 9>&- || rc=1
      echo "== lab down in $((SECONDS - t1)) s" >&2
      if [ -s "$snapshot" ]; then
        node --import tsx test/support/verify-lab-clean.ts "$snapshot" 9>&- || rc=1
      fi
    else
      echo "== leaving the lab up ($([ "$owned" = 1 ] && echo BERTH_LAB_KEEP=1 || echo 'it was up before this run'))" >&2
    fi
    rm -f "$snapshot"
    exit $rc
  }
  trap teardown EXIT
  trap 'exit 130' INT TERM
  # One integration run at a time on this machine: the Swarm and etcd are shared. fd 9 holds the
  # lock; every child gets 9>&- so no daemon the lab or a test starts inherits (and keeps) it.
  tests_lock=${BERTH_LAB_TESTS_LOCK:-/tmp/berth-lab-tests.lock}
  exec 9>"$tests_lock"
  if ! flock -n 9; then
    echo "== waiting for $tests_lock (another integration run is using the lab)" >&2
    flock -w 1800 9 || { echo "could not get $tests_lock within 30 min" >&2; exit 1; }
  fi
  # Decided under the lock: a run that waited for another sees the lab as that run left it.
  [ -f "$lab_dir/state.json" ] || owned=1
  t0=$SECONDS
  node bin/berth.js lab up 9>&-
  echo "== lab up in $((SECONDS - t0)) s" >&2
  eval "$(node bin/berth.js lab env 9>&-)"
  finish_unit
  t0=$SECONDS
  # Three things at once, each waited for before what depends on it:
  #  - berth's test image is built (prebuild-image.ts) for the files that run it;
  #  - the off-swarm files run, their output kept until they end;
  #  - the Swarm files run one at a time (they share one Swarm), the waiting ones first.
  image_log=$(mktemp /tmp/berth-prebuild.XXXXXX)
  node --import tsx test/support/prebuild-image.ts >"$image_log" 2>&1 9>&- &
  image_pid=$!
  off_log=$(mktemp /tmp/berth-off-swarm.XXXXXX)
  mapfile -t off_files < <(integration_files off-swarm)
  node --import tsx --test --test-concurrency=1 "${off_files[@]}" >"$off_log" 2>&1 9>&- &
  off_pid=$!
  mapfile -t first_files < <(integration_files first)
  node --import tsx --test --test-concurrency=1 "${first_files[@]}" 9>&- || status=1
  off_rc=0; wait "$off_pid" || off_rc=1; off_pid=
  echo "== off-swarm files ($([ $off_rc = 0 ] && echo ok || echo FAILED)):" >&2
  cat "$off_log"; rm -f "$off_log"
  [ $off_rc = 0 ] || status=1
  wait "$image_pid" || true; image_pid=
  echo "== berth's test image:" >&2
  cat "$image_log"; rm -f "$image_log"
  mapfile -t rest_files < <(integration_files rest)
  node --import tsx --test --test-concurrency=1 "${rest_files[@]}" 9>&- || status=1
  echo "== integration tier: $([ $status = 0 ] && echo ok || echo FAILED) in $((SECONDS - t0)) s" >&2
fi
exit $status
