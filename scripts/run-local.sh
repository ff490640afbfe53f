#!/usr/bin/env bash
# The main job on the local runtime: builds eofaas, starts eofaas-control and eofaas-proxy,
# deploys the python3 linecount example and maps it over the example data set through the proxy,
# printing every result and the total next to wc -l.
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

# The proxy learns the replicas from the control plane and fans the data set out over them.
build/proxy/eofaas-proxy --listen=127.0.0.1:0 --metrics_listen=127.0.0.1:0 --control="$addr" \
  --data_root="$data_root" >"$run/proxy.log" 2>&1 &
for _ in $(seq 300); do
  proxy=$(grep -o 'serving grpc=[^ ]*' "$run/proxy.log" | cut -d= -f2 || true)
  [ -n "$proxy" ] && break
  sleep 0.05
done
[ -n "${proxy:-}" ] || { cat "$run/proxy.log"; exit 1; }
echo "eofaas-proxy on $proxy (log: $run/proxy.log)"

echo "Map over $data_root/scenes in 1 KiB chunks, LINES framing:"
"$buf" curl --protocol grpc --http2-prior-knowledge --timeout 60s \
  --data "{\"function\": \"linecount\", \"inputs\": [\"file://$data_root/scenes\"],
           \"partitioning\": {\"chunkBytes\": \"1024\", \"framing\": \"FRAMING_LINES\"}}" \
  "http://$proxy/eofaas.v1.Invoker/Map" | /usr/bin/python3 scripts/print_map.py
echo "wc -l: $(cat "$data_root"/scenes/*.txt | wc -l)"

method=eofaas.v1.Provision/DeleteFunction
call --data '{"name": "linecount"}' >/dev/null
echo "deleted function linecount"
