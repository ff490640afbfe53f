#!/usr/bin/env bash
# The main job on the local runtime: builds eofaas, starts eofaas-control, deploys the python3
# linecount example, runs it over every file of the example data set and prints the results.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh >/dev/null

run=.run/local
rm -rf "$run"
mkdir -p "$run"
data_root=$PWD/examples/data
buf=tools/node_modules/.bin/buf
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null' EXIT

build/control/eofaas-control --listen=127.0.0.1:0 --metrics_listen=127.0.0.1:0 \
  --data_dir="$run/data" --templates_dir=templates --data_root="$data_root" \
  >"$run/control.log" 2>&1 &
for _ in $(seq 300); do
  addr=$(grep -o 'serving grpc=[^ ]*' "$run/control.log" | cut -d= -f2 || true)
  [ -n "$addr" ] && break
  sleep 0.05
done
[ -n "${addr:-}" ] || { cat "$run/control.log"; exit 1; }
echo "eofaas-control on $addr (log: $run/control.log)"
call() { "$buf" curl --protocol grpc --http2-prior-knowledge --timeout 30s "$@" "http://$addr/$method"; }

method=eofaas.v1.Provision/CreateFunction
handler=$(base64 -w0 examples/python3-linecount/handler.py)
call --data "{\"function\": {\"name\": \"linecount\", \"template\": \"python3\",
  \"files\": {\"handler.py\": \"$handler\"}, \"scaling\": {\"minReplicas\": 2}}}" >/dev/null
echo "created function linecount; waiting for READY"
method=eofaas.v1.Provision/GetFunction
for _ in $(seq 600); do
  phase=$(call --data '{"name": "linecount"}' | grep -o 'DEPLOY_PHASE_[A-Z]*' || true)
  [ "$phase" = DEPLOY_PHASE_READY ] && break
  sleep 0.05
done
call --data '{"name": "linecount"}' | grep -E '"(deploymentName|artifact|readyReplicas|deployPhase)"'

method=eofaas.v1.Endpoints/WatchEndpoints
mapfile -t replicas < <(call --timeout 2s --data '{}' 2>/dev/null | grep -o '"address": "[^"]*"' \
  | cut -d'"' -f4 || true)
echo "replicas: ${replicas[*]}"

total=0
i=0
for file in "$data_root"/scenes/*.txt; do
  replica=${replicas[$((i % ${#replicas[@]}))]}
  cursor="{\"uri\": \"file://$file\", \"offset\": \"0\", \"framing\": \"FRAMING_LINES\", \"part\": \"$i\"}"
  result=$(curl -sf -X POST "http://$replica/invoke" \
    -d "{\"id\": \"demo-$i\", \"cursor\": $cursor, \"args\": {}, \"deadline_ms\": 10000}")
  echo "$(basename "$file") via $replica -> $result"
  lines=$(grep -o '"lines": *[0-9]*' <<<"$result" | grep -o '[0-9]*$')
  total=$((total + lines))
  i=$((i + 1))
done
echo "total lines: $total (wc -l: $(cat "$data_root"/scenes/*.txt | wc -l))"

method=eofaas.v1.Provision/DeleteFunction
call --data '{"name": "linecount"}' >/dev/null
echo "deleted function linecount"
