#!/usr/bin/env bash
# The main job on the local runtime: builds eofaas, starts eofaas-control and eofaas-proxy,
# deploys the python3 linecount example and maps it over the example data set through the proxy,
# printing every result and the total next to wc -l. Exits non-zero when the function does not
# become READY, an item fails, or the total differs from wc -l.
#
# Usage: scripts/run-local.sh [--no-build] [--run-dir DIR (.run/local)]
#   --no-build  runs the binaries as they are (the test suite does, having built them)
# EOFAAS_BUILD_DIR names the build directory the binaries come from (default build, the one
# scripts/build.sh builds; another one is expected to be built already: use --no-build).
# The run directory keeps the control plane's state between runs: after a run cut short (say, by
# a kill -9), the next one adopts the replicas it left and deletes the function before starting.
set -euo pipefail
cd "$(dirname "$0")/.."

build=1
run=.run/local
while [ $# -gt 0 ]; do
  case "$1" in
    --no-build) build=0; shift ;;
    --run-dir)
      [ $# -ge 2 ] || { echo "usage: $0 [--no-build] [--run-dir DIR]" >&2; exit 2; }
      run=$2; shift 2 ;;
    *) echo "usage: $0 [--no-build] [--run-dir DIR]" >&2; exit 2 ;;
  esac
done
if [ "$build" = 1 ]; then
  echo "building eofaas-control and eofaas-proxy (the first time takes several minutes)"
  if ! log=$(scripts/build.sh eofaas-control eofaas-proxy 2>&1); then
    echo "$log" | tail -40 >&2
    exit 1
  fi
fi

mkdir -p "$run"
bin=${EOFAAS_BUILD_DIR:-build}
data_root=$PWD/examples/data
buf=tools/node_modules/.bin/buf
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null' EXIT

# Waits for "<name> serving grpc=ADDRESS" in the log of the process `pid`; prints ADDRESS.
serving_address() {
  local pid=$1 log=$2 address
  for _ in $(seq 300); do
    address=$(grep -o 'serving grpc=[^ ]*' "$log" | cut -d= -f2 || true)
    if [ -n "$address" ]; then echo "$address"; return 0; fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  cat "$log" >&2
  return 1
}

"$bin"/control/eofaas-control --listen=127.0.0.1:0 --metrics_listen=127.0.0.1:0 \
  --data_dir="$run/data" --templates_dir=templates --data_root="$data_root" \
  >"$run/control.log" 2>&1 &
addr=$(serving_address $! "$run/control.log")
echo "eofaas-control on $addr (log: $run/control.log)"
provision() {
  local method=$1
  shift
  "$buf" curl --protocol grpc --http2-prior-knowledge --timeout 30s --data "$1" \
    "http://$addr/eofaas.v1.Provision/$method"
}
# The function's state in one line ("PHASE, ready/desired replicas ready (deployment): why"), or
# GONE when there is no such function; fails on any other error.
state() {
  local reply
  if ! reply=$(provision GetFunction '{"name": "linecount"}' 2>&1); then
    case "$reply" in
      *'"not_found"'*) echo GONE; return 0 ;;
      *) echo "GetFunction: $reply" >&2; return 1 ;;
    esac
  fi
  /usr/bin/python3 -c '
import json, sys
status = json.loads(sys.argv[1])["function"].get("status", {})
line = "%s, %s/%s replicas ready (%s)" % (
    status.get("deployPhase", "?"), status.get("readyReplicas", 0),
    status.get("desiredReplicas", 0), status.get("deploymentName", "no deployment"))
print(line + (": " + status["message"] if status.get("message") else ""))' "$reply"
}

# A run cut short left its function: it goes first, its replicas drained.
current=$(state)
if [ "$current" != GONE ]; then
  provision DeleteFunction '{"name": "linecount"}' >/dev/null
  for _ in $(seq 600); do
    current=$(state)
    [ "$current" = GONE ] && break
    sleep 0.05
  done
  [ "$current" = GONE ] || { echo "linecount of an earlier run is not gone: $current" >&2; exit 1; }
fi

handler=$(base64 -w0 examples/python3-linecount/handler.py)
provision CreateFunction "{\"function\": {\"name\": \"linecount\", \"template\": \"python3\",
  \"files\": {\"handler.py\": \"$handler\"}, \"scaling\": {\"minReplicas\": 2}}}" >/dev/null
echo "created function linecount; waiting for READY"
for _ in $(seq 600); do
  current=$(state)
  case "$current" in
    DEPLOY_PHASE_READY*|DEPLOY_PHASE_FAILED*|DEPLOY_PHASE_DEGRADED*) break ;;
  esac
  sleep 0.05
done
echo "linecount: $current"
case "$current" in
  DEPLOY_PHASE_READY*) ;;
  *) echo "linecount did not become READY (log: $run/control.log)" >&2; exit 1 ;;
esac

# The proxy learns the replicas from the control plane and fans the data set out over them.
"$bin"/proxy/eofaas-proxy --listen=127.0.0.1:0 --http_listen=127.0.0.1:0 \
  --metrics_listen=127.0.0.1:0 --control="$addr" --data_root="$data_root" \
  >"$run/proxy.log" 2>&1 &
proxy=$(serving_address $! "$run/proxy.log")
echo "eofaas-proxy on $proxy (log: $run/proxy.log)"

echo "Map over $data_root/scenes in 1 KiB chunks, LINES framing:"
status=0
"$buf" curl --protocol grpc --http2-prior-knowledge --timeout 60s \
  --data "{\"function\": \"linecount\", \"inputs\": [\"file://$data_root/scenes\"],
           \"partitioning\": {\"chunkBytes\": \"1024\", \"framing\": \"FRAMING_LINES\"}}" \
  "http://$proxy/eofaas.v1.Invoker/Map" |
  /usr/bin/python3 scripts/print_map.py --expect-lines "$(cat "$data_root"/scenes/*.txt | wc -l)" ||
  status=1

provision DeleteFunction '{"name": "linecount"}' >/dev/null
echo "deleted function linecount"
exit $status
