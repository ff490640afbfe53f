#!/usr/bin/env bash
# Operates eofaas-control the way an operator with grpcurl would: buf curl finds the services
# through server reflection, creates a function from JSON and watches it become READY.
# Usage: buf_curl_test.sh <eofaas-control binary> <source dir>
set -euo pipefail
control=$1
src=$2
buf="$src/tools/node_modules/.bin/buf"
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT

fail() { echo "FAIL: $*"; echo "--- control log"; cat "$work/control.log"; exit 1; }

"$control" --listen=127.0.0.1:0 --metrics_listen=127.0.0.1:0 --data_dir="$work/data" \
  --templates_dir="$src/templates" >"$work/control.log" 2>&1 &
for _ in $(seq 300); do
  addr=$(grep -o 'serving grpc=[^ ]*' "$work/control.log" | cut -d= -f2 || true)
  [ -n "$addr" ] && break
  sleep 0.05
done
[ -n "$addr" ] || fail "eofaas-control did not start"
call() { "$buf" curl --protocol grpc --http2-prior-knowledge --timeout 20s "$@"; }

services=$(call --list-services "http://$addr")
echo "$services"
grep -qx 'eofaas.v1.Provision' <<<"$services" || fail "Provision not listed"
grep -qx 'eofaas.v1.Endpoints' <<<"$services" || fail "Endpoints not listed"
methods=$(call --list-methods "http://$addr")
grep -qx 'eofaas.v1.Provision/WatchFunction' <<<"$methods" || fail "WatchFunction not listed"
grep -qx 'grpc.health.v1.Health/Check' <<<"$methods" || fail "health not described"

handler=$(base64 -w0 "$src/examples/python3-linecount/handler.py")
created=$(call --data "{\"function\": {\"name\": \"buf-demo\", \"template\": \"python3\",
  \"files\": {\"handler.py\": \"$handler\"}, \"scaling\": {\"minReplicas\": 1}}}" \
  "http://$addr/eofaas.v1.Provision/CreateFunction")
echo "$created"
grep -q '"generation": "1"' <<<"$created" || fail "CreateFunction did not answer generation 1"

call --timeout 60s --data '{"name": "buf-demo"}' \
  "http://$addr/eofaas.v1.Provision/WatchFunction" >"$work/watch.json" 2>&1 &
watcher=$!
for _ in $(seq 600); do
  grep -q 'DEPLOY_PHASE_READY' "$work/watch.json" && break
  sleep 0.05
done
grep -q 'DEPLOY_PHASE_READY' "$work/watch.json" || fail "watch never showed READY: $(cat "$work/watch.json")"

bad=$(call --data '{"function": {"name": "Bad_Name", "template": "python3"}}' \
  "http://$addr/eofaas.v1.Provision/CreateFunction" 2>&1 || true)
grep -q 'invalid_argument' <<<"$bad" || fail "bad name not rejected: $bad"
grep -q 'function.name' <<<"$bad" || fail "error does not name the field: $bad"

call --data '{"name": "buf-demo"}' "http://$addr/eofaas.v1.Provision/DeleteFunction" >/dev/null
wait "$watcher" || fail "WatchFunction did not end cleanly after delete"
grep -q 'DEPLOY_PHASE_DELETING' "$work/watch.json" || fail "watch missed DELETING"
echo "buf curl: 1 passed, 0 failed"
