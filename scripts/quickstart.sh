#!/usr/bin/env bash
# The README's first command: bring up the lab, run the controller and the proxy against it,
# apply deploy/examples/, wait until the environment is Ready, and show it live.
# Processes it starts are recorded under $BERTH_LAB_DIR (default /var/lib/berth-lab)/quickstart/
# and stopped by `scripts/quickstart.sh stop` (or `berth lab down` for the whole lab).
set -euo pipefail
cd "$(dirname "$0")/.."
berth() { node bin/berth.js "$@"; }

[ -f dist/cli/main.js ] || npm run build --silent
state=${BERTH_LAB_DIR:-/var/lib/berth-lab}/quickstart

stop_started() {
  for pidfile in "$state"/*.pid; do
    [ -e "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    kill -TERM "$pid" 2>/dev/null || true
    rm -f "$pidfile"
  done
}

if [ "${1:-}" = stop ]; then stop_started; exit 0; fi

berth lab up
eval "$(berth lab env)"
mkdir -p "$state"
stop_started

start() { # name, then the command; logs to $state/name.log
  local name=$1; shift
  nohup "$@" >"$state/$name.log" 2>&1 &
  echo $! >"$state/$name.pid"
  echo "started $name (pid $!, log $state/$name.log)"
}
start controller node bin/berth.js controller --metrics-addr 127.0.0.1:9464
start proxy node bin/berth.js proxy --metrics-addr 127.0.0.1:9465

berth apply -f deploy/examples/

echo "waiting for environment qa-1 to become Ready (up to 120 s)…"
deadline=$((SECONDS + 120))
until berth get envs qa-1 -o json 2>/dev/null | grep -q '"phase": *"Ready"'; do
  if [ $SECONDS -ge $deadline ]; then
    echo "qa-1 is not Ready after 120 s; see $state/controller.log" >&2
    berth describe env qa-1 || true
    exit 1
  fi
  sleep 2
done

berth get envs -o wide
echo
echo "through nginx ($BERTH_LAB_NGINX_URL, Host: qa-1-api):"
deadline=$((SECONDS + 30))
until out=$(curl -fsS -H 'Host: qa-1-api' "$BERTH_LAB_NGINX_URL/" 2>/dev/null); do
  [ $SECONDS -lt $deadline ] || { echo "nginx does not serve qa-1-api yet; see $state/proxy.log" >&2; exit 1; }
  sleep 1
done
echo "$out"
cat <<MSG

The controller and proxy keep running. Try:
  eval "\$(node bin/berth.js lab env)"
  node bin/berth.js describe env qa-1
  sed 's/web:v1/web:v2/' deploy/examples/qa.yaml | node bin/berth.js apply -f -   # blue-green cutover
  curl -s localhost:9464/metrics | grep ^berth_
Stop: scripts/quickstart.sh stop && node bin/berth.js lab down
MSG
