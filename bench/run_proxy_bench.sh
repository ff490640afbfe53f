#!/usr/bin/env bash
# eofaas-proxy (as it starts by default, and pipelining) next to nginx and haproxy: one run, one
# machine, the same replicas (K native echo replicas, bench/echo_replica.cc, that answer 200 "ok"
# at once), all driven by wrk with the same threads, connections and duration. Then each proxy's
# gRPC figures (bench/proxy_bench.cc): the Invoke rate, and R 1,000,000-cursor Maps (a 1 MB file,
# chunk_bytes 1) one after the other, the median cursors/s counted like the HTTP rows', with the
# proxy's memory sampled meanwhile.
#
# HTTP rows (requests/s, p50, p99 from wrk's latency histogram, via bench/template_bench.lua, and
# the server's CPU time per request: user and system time of all its processes, as the kernel
# counts it for them, over the requests answered; each the median of R rounds in which the rows
# take turns, every round's requests/s printed):
# - direct:      wrk POSTs a replica envelope to one replica's /invoke (wrk -t1 has one target);
#                the ceiling of what a single replica answers, not a proxy;
# - eofaas-proxy POST /v1/functions/echo:invoke {"cursor": {...}, "args": {}} on its HTTP ingress
#                (`--threads 1`), which checks the file:// cursor (its path against the data
#                roots once per --cursor_check_ttl, 1 s by default) and sends its own envelope to
#                a replica;
# - eofaas-proxy-p8: the same proxy with --pipeline_depth 8: the requests to a replica that
#                start in one turn of its loop share a connection and one write, up to 8, and
#                are answered in order. That suits functions whose calls take microseconds, as the
#                echo replica's do (a system call costs more than such a call); the default (1)
#                suits slower ones, which pipelining would make wait for each other;
# - nginx, haproxy: the same request on the same path, rewritten to /invoke and forwarded with
#                its body as it is to the replicas (round robin), over keep-alive HTTP/1.1
#                upstream connections; one worker process (nginx), one thread (haproxy).
#                They do less than the proxy (no cursor check, no envelope): the comparison is
#                the cost of the hop.
# Fairness on a 2-core machine: the server under test (the proxy, nginx, haproxy, each with all
# its threads or processes; the replica in the direct row) runs alone on CPU 1, wrk and the
# replicas share CPU 0; every row likewise. Each row gets a 2 s warm-up before its first round
# (connections opened, not counted). The gRPC figures keep that split: the proxy on CPU 1,
# proxy_bench and the replicas on CPU 0. With fewer than 2 CPUs nothing is pinned. Other load on
# the machine skews the figures: the rounds spread a slow spell over every row, and their spread
# shows how quiet the machine was. CPU 0 bounds the proxied rows: it carries wrk (CPU 0's time
# per request in the direct row, where wrk is alone there) and every request's replica work (the
# direct row's CPU per request). Each row prints how busy CPU 0 was, and the "CPU 0 ceiling" line
# the most any server that sends each request in a write of its own could get through, next to
# haproxy's rate. A server near that ceiling runs near CPU 0's limit, where a slow spell on CPU 0
# costs it more than it costs a slower server. Pipelining lifts the ceiling: a replica reads the
# requests of one write with one read and answers them with one write, which takes the replica
# less CPU per request than the direct row's.
#
# Targets: HTTP ingress ≥ 1.1× haproxy's requests/s with a p99 no worse than haproxy's; Map
# ≥ 100,000 cursors/s; proxy RSS ≤ 64 MiB during the 1M-cursor Maps (the highest peak of VmRSS
# sampled every 10 ms; VmHWM, the peak over the proxy's whole life, is printed too). They are
# checked on eofaas-proxy-p8, the proxy as a function like the echo replica is meant to be
# served; eofaas-proxy's figures are printed next to them.
#
# Usage: bench/run_proxy_bench.sh [--duration SECONDS (10)] [--rounds R (3)]
#                                 [--connections N (64)] [--replicas K (2)] [--no-build]
# EOFAAS_BUILD_DIR names the build directory the binaries come from (default build, the one
# scripts/build.sh builds; another one is expected to be built already: use --no-build).
# Exits non-zero when a row fails or a target is missed. Logs and configs are kept in the
# printed temporary directory when something failed.
set -euo pipefail
cd "$(dirname "$0")/.."

duration=10
rounds=3
connections=64
replica_count=2
build=1
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) duration=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --connections) connections=$2; shift 2 ;;
    --replicas) replica_count=$2; shift 2 ;;
    --no-build) build=0; shift ;;
    *) echo "usage: $0 [--duration S] [--rounds R] [--connections N] [--replicas K] [--no-build]" >&2
       exit 2 ;;
  esac
done

build_dir=${EOFAAS_BUILD_DIR:-build}
if [ "$build" = 1 ] && ! build_log=$(scripts/build.sh 2>&1); then
  echo "$build_log" | tail -40 >&2
  echo "error: scripts/build.sh failed" >&2
  exit 1
fi
for tool in wrk /usr/sbin/nginx /usr/sbin/haproxy; do
  command -v "$tool" >/dev/null || { echo "$tool is missing: run scripts/setup.sh" >&2; exit 1; }
done

readonly map_bytes=1000000  # one cursor per byte
# Per replica. The Map's window is the replicas' capacity (the dispatcher keeps as many idle
# connections to a replica as its concurrency, so a full window reuses its connections).
readonly replica_concurrency=64
readonly map_max_in_flight=$((replica_concurrency * replica_count))
if [ "$(nproc)" -ge 2 ]; then
  sut=(taskset -c 1)
  load=(taskset -c 0)
else
  sut=()
  load=()
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/eofaas-proxy-bench.XXXXXX")
pids=()
failed=0
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ "$failed" = 0 ]; then rm -rf "$tmp"; else echo "logs and configs kept in $tmp"; fi
}
trap cleanup EXIT
trap 'failed=1; exit 130' INT TERM

die() {
  failed=1
  echo "error: $*" >&2
  exit 1
}

# Waits until something accepts TCP connections on 127.0.0.1:$1; $2 names it, $3 is its log.
wait_port() {
  for _ in $(seq 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  cat "$3" >&2
  die "$2 did not open port $1"
}

# Free loopback ports, held together while they are chosen so that they differ.
read -r grpc_port http_port metrics_port grpc_port_p8 http_port_p8 metrics_port_p8 nginx_port \
  haproxy_port < <(python3 -c '
import socket
sockets = [socket.socket() for _ in range(8)]
for s in sockets: s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in sockets))')

mkdir -p "$tmp/data" "$tmp/nginx"
data="$tmp/data/input.bin"
head -c "$map_bytes" /dev/zero >"$data"

# --- replicas -------------------------------------------------------------------------------
replica_pids=()
replica_addresses=()
for i in $(seq "$replica_count"); do
  "${load[@]}" "$build_dir"/bench/echo_replica --listen 127.0.0.1:0 >"$tmp/replica$i.log" 2>&1 &
  pids+=($!)
  replica_pids+=($!)
done
for i in $(seq "$replica_count"); do
  for _ in $(seq 200); do
    grep -q '^listening on ' "$tmp/replica$i.log" && break
    sleep 0.05
  done
  address=$(sed -n 's/^listening on //p' "$tmp/replica$i.log")
  [ -n "$address" ] || die "replica $i did not start: $(cat "$tmp/replica$i.log")"
  replica_addresses+=("$address")
done

# --- eofaas-proxy ---------------------------------------------------------------------------
{
  echo "functions:"
  echo "  echo:"
  for address in "${replica_addresses[@]}"; do
    echo "    - address: $address"
    echo "      concurrency: $replica_concurrency"
  done
} >"$tmp/endpoints.yaml"
has_http_ingress=0
"$build_dir"/proxy/eofaas-proxy --help | grep -q -- '--http_listen' && has_http_ingress=1
declare -A proxy_pid proxy_grpc proxy_http
# start_proxy NAME GRPC_PORT HTTP_PORT METRICS_PORT [FLAG...]: eofaas-proxy as the server under
# test, its log in $tmp/NAME.log.
start_proxy() {
  local name=$1 grpc=$2 http=$3 metrics=$4
  shift 4
  local args=(--endpoints "$tmp/endpoints.yaml" --threads 1 --listen "127.0.0.1:$grpc"
    --metrics_listen "127.0.0.1:$metrics" --data_root "$tmp/data" "$@")
  [ "$has_http_ingress" = 0 ] || args+=(--http_listen "127.0.0.1:$http")
  "${sut[@]}" "$build_dir"/proxy/eofaas-proxy "${args[@]}" 2>"$tmp/$name.log" &
  proxy_pid[$name]=$!
  pids+=($!)
  proxy_grpc[$name]=$grpc
  proxy_http[$name]=$http
  wait_port "$grpc" "$name" "$tmp/$name.log"
  [ "$has_http_ingress" = 0 ] || wait_port "$http" "$name (HTTP)" "$tmp/$name.log"
}
proxies=(eofaas-proxy)
start_proxy eofaas-proxy "$grpc_port" "$http_port" "$metrics_port"
if "$build_dir"/proxy/eofaas-proxy --help | grep -q -- '--pipeline_depth'; then
  proxies+=(eofaas-proxy-p8)
  start_proxy eofaas-proxy-p8 "$grpc_port_p8" "$http_port_p8" "$metrics_port_p8" \
    --pipeline_depth 8
fi
# The proxy the targets are checked on.
target_proxy=${proxies[-1]}

# --- nginx: one worker, keep-alive upstream, the proxy's path rewritten to /invoke -----------
{
  cat <<EOF
daemon off;
worker_processes 1;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $tmp/nginx/client_body;
  proxy_temp_path $tmp/nginx/proxy;
  fastcgi_temp_path $tmp/nginx/fastcgi;
  uwsgi_temp_path $tmp/nginx/uwsgi;
  scgi_temp_path $tmp/nginx/scgi;
  keepalive_requests 1000000;
  upstream replicas {
EOF
  for address in "${replica_addresses[@]}"; do echo "    server $address;"; done
  cat <<EOF
    keepalive $connections;
    keepalive_requests 1000000;
  }
  server {
    listen 127.0.0.1:$nginx_port;
    location = /v1/functions/echo:invoke {
      proxy_pass http://replicas/invoke;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
EOF
} >"$tmp/nginx/nginx.conf"
"${sut[@]}" /usr/sbin/nginx -p "$tmp/nginx" -e "$tmp/nginx/error.log" -c "$tmp/nginx/nginx.conf" \
  >"$tmp/nginx/stdout.log" 2>&1 &
pids+=($!)
nginx_pid=$!
wait_port "$nginx_port" nginx "$tmp/nginx/error.log"

# --- haproxy: one thread, keep-alive to the replicas, the same rewrite -----------------------
{
  cat <<EOF
global
  nbthread 1
  maxconn 4096
defaults
  mode http
  option http-keep-alive
  http-reuse always
  timeout connect 5s
  timeout client 60s
  timeout server 60s
frontend ingress
  bind 127.0.0.1:$haproxy_port
  http-request set-path /invoke if { path /v1/functions/echo:invoke }
  default_backend replicas
backend replicas
  balance roundrobin
EOF
  i=0
  for address in "${replica_addresses[@]}"; do echo "  server replica$((i += 1)) $address"; done
} >"$tmp/haproxy.cfg"
"${sut[@]}" /usr/sbin/haproxy -db -f "$tmp/haproxy.cfg" >"$tmp/haproxy.log" 2>&1 &
pids+=($!)
haproxy_pid=$!
wait_port "$haproxy_port" haproxy "$tmp/haproxy.log"

# --- HTTP rows ------------------------------------------------------------------------------
cursor="{\"uri\": \"file://$data\", \"offset\": 0, \"length\": 100}"
ingress_body="{\"cursor\": $cursor, \"args\": {}}"
envelope="{\"id\": \"bench\", \"cursor\": $cursor, \"args\": {}, \"deadline_ms\": 60000, \"attempt\": 1}"
echo "HTTP: wrk -t1 -c$connections -d${duration}s, $replica_count echo replicas, $rounds interleaved rounds;" \
  "median requests/s, p50, p99, server CPU per request"
declare -A samples  # NAME -> "rps p50_us p99_us cpu_ns" lines, one per round
declare -A broken   # NAME -> 1 once a round of it failed
readonly clock_ticks=$(getconf CLK_TCK)
# cpu_ticks PID: user and system time of PID and its child processes (nginx's worker), in ticks.
cpu_ticks() {
  local pid
  for pid in "$1" $(pgrep -P "$1"); do cat "/proc/$pid/stat" 2>/dev/null || true; done |
    awk '{ ticks += $14 + $15 } END { print ticks + 0 }'
}
# load_ticks: the ticks CPU 0 (wrk and the replicas) was busy, and all its ticks; 0 0 when nothing
# is pinned.
load_ticks() {
  if [ "${#load[@]}" = 0 ]; then echo 0 0; return; fi
  awk '$1 == "cpu0" { busy = $2 + $3 + $4 + $7 + $8 + $9; print busy, busy + $5 + $6 }' /proc/stat
}
# measure NAME PID URL BODY: one wrk run (after a warm-up in the first round) against the server
# PID, added to samples[NAME] when every response was a 200; a failed row is reported and
# measured no more.
measure() {
  local name=$1 pid=$2 url=$3 body=$4 answer out requests micros errors non_2xx p50_us p99_us
  local ticks_before busy_before all_before busy_after all_after cpu_ns load_ns busy_percent
  [ "${broken[$name]:-0}" = 0 ] || return 0
  if [ -z "${samples[$name]:-}" ]; then
    answer=$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
      --data-binary "$body" "$url") || true
    if [ "$answer" != 200 ]; then
      printf '%-16s failed: HTTP %s: %s\n' "$name" "$answer" \
        "$(curl -s -H 'Content-Type: application/json' --data-binary "$body" "$url" | head -c 200)"
      broken[$name]=1
      failed=1
      return
    fi
    EOFAAS_BENCH_BODY=$body "${load[@]}" wrk -t1 -c"$connections" -d2s \
      -s bench/template_bench.lua "$url" >/dev/null
  fi
  ticks_before=$(cpu_ticks "$pid")
  read -r busy_before all_before < <(load_ticks)
  out=$(EOFAAS_BENCH_BODY=$body "${load[@]}" wrk -t1 -c"$connections" -d"${duration}s" \
    -s bench/template_bench.lua "$url" | grep '^TEMPLATE_BENCH ')
  read -r _ requests micros errors non_2xx p50_us p99_us _ <<<"$out"
  if [ "$errors" != 0 ] || [ "$non_2xx" != 0 ]; then
    printf '%-16s %s transport errors, %s non-2xx in a round: not counted\n' "$name" "$errors" \
      "$non_2xx"
    broken[$name]=1
    failed=1
    return
  fi
  cpu_ns=$((($(cpu_ticks "$pid") - ticks_before) * 1000000000 / clock_ticks / requests))
  read -r busy_after all_after < <(load_ticks)
  load_ns=$(((busy_after - busy_before) * 1000000000 / clock_ticks / requests))
  busy_percent=$(((busy_after - busy_before) * 100 /
    (all_after > all_before ? all_after - all_before : 1)))
  samples[$name]+="$((requests * 1000000 / micros)) $p50_us $p99_us $cpu_ns"
  samples[$name]+=" $load_ns $busy_percent"$'\n'
}
# middle: the median of the numbers on stdin, one per line.
middle() {
  sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
# median COLUMN NAME: the median of one column (1 rps, 2 p50, 3 p99, 4 CPU, 5 CPU 0's time per
# request, 6 CPU 0's busy percent) over NAME's rounds.
median() { printf '%s' "${samples[$2]}" | awk -v c="$1" '{ print $c }' | middle; }

names=(direct)
[ "$has_http_ingress" = 1 ] && names+=("${proxies[@]}")
names+=(nginx haproxy)
# Rows take turns, so that a slow spell of the machine falls on every row rather than on one.
for _ in $(seq "$rounds"); do
  [ "${#load[@]}" = 0 ] || taskset -pc 1 "${replica_pids[0]}" >/dev/null  # the server under test
  measure direct "${replica_pids[0]}" "http://${replica_addresses[0]}/invoke" "$envelope"
  [ "${#load[@]}" = 0 ] || taskset -pc 0 "${replica_pids[0]}" >/dev/null
  if [ "$has_http_ingress" = 1 ]; then
    for proxy in "${proxies[@]}"; do
      measure "$proxy" "${proxy_pid[$proxy]}" \
        "http://127.0.0.1:${proxy_http[$proxy]}/v1/functions/echo:invoke" "$ingress_body"
    done
  fi
  measure nginx "$nginx_pid" "http://127.0.0.1:$nginx_port/v1/functions/echo:invoke" "$ingress_body"
  measure haproxy "$haproxy_pid" "http://127.0.0.1:$haproxy_port/v1/functions/echo:invoke" \
    "$ingress_body"
done
[ "$has_http_ingress" = 1 ] || printf '%-16s skipped: proxy has no HTTP ingress\n' eofaas-proxy
declare -A rps p99 cpu load_cpu
for name in "${names[@]}"; do
  [ "${broken[$name]:-0}" = 0 ] && [ -n "${samples[$name]:-}" ] || continue
  rps[$name]=$(median 1 "$name")
  p99[$name]=$(median 3 "$name")
  cpu[$name]=$(median 4 "$name")
  load_cpu[$name]=$(median 5 "$name")
  awk -v n="$name" -v r="${rps[$name]}" -v a="$(median 2 "$name")" -v b="${p99[$name]}" \
    -v c="${cpu[$name]}" -v l="$(median 6 "$name")" \
    -v all="$(printf '%s' "${samples[$name]}" | awk '{ printf "%s%d", (NR > 1 ? " " : ""), $1 }')" \
    'BEGIN { printf "%-16s %10.0f req/s   p50 %5.2f ms   p99 %5.2f ms   CPU %5.2f us/req", n, r,
               a / 1e3, b / 1e3, c / 1e3
             if (l > 0) printf "   CPU 0 busy %3.0f%%", l
             printf "   (rounds: %s)\n", all }'
done
missed=0

# The proxied rows share CPU 0's work per request: wrk's (CPU 0's time in the direct row, where
# wrk is alone there) and a replica's (the direct row's server CPU). No server that sends each
# request in a write of its own, however cheap, gets more through than CPU 0 carries.
if [ "${load_cpu[direct]:-0}" -gt 0 ] && [ -n "${rps[haproxy]:-}" ]; then
  awk -v w="${load_cpu[direct]}" -v s="${cpu[direct]}" -v h="${rps[haproxy]}" 'BEGIN {
    ceiling = 1e9 / (w + s)
    printf "CPU 0 ceiling    %10.0f req/s unpipelined (wrk %.2f + replica %.2f us/req):",
      ceiling, w / 1e3, s / 1e3
    printf " %.2fx haproxy'"'"'s rate\n", ceiling / h }'
fi

# compare PROXY: PROXY's row next to haproxy's; fails when the target is missed.
compare() {
  awk -v n="$1" -v p="${rps[$1]}" -v h="${rps[haproxy]}" -v pl="${p99[$1]}" -v hl="${p99[haproxy]}" \
    -v pc="${cpu[$1]}" -v hc="${cpu[haproxy]}" 'BEGIN {
      printf "%s / haproxy: %.2fx requests/s, p99 %.2f ms vs %.2f ms, ", n, p / h, pl / 1e3,
        hl / 1e3
      printf "%.2fx the CPU per request\n", pc / hc
      exit !(p >= 1.1 * h && pl <= hl) }'
}
for proxy in "${proxies[@]}"; do
  [ "$proxy" = "$target_proxy" ] || [ -z "${rps[$proxy]:-}" ] || [ -z "${rps[haproxy]:-}" ] ||
    compare "$proxy" || true
done
if [ -n "${rps[$target_proxy]:-}" ] && [ -n "${rps[haproxy]:-}" ]; then
  if compare "$target_proxy"; then
    echo "target met:    HTTP ingress >= 1.1x haproxy's requests/s with a p99 no worse" \
      "($target_proxy)"
  else
    echo "target missed: HTTP ingress >= 1.1x haproxy's requests/s with a p99 no worse" \
      "($target_proxy)"
    missed=1
  fi
else
  echo "target not measured: HTTP ingress vs haproxy (a row is missing)"
fi

# --- gRPC -----------------------------------------------------------------------------------
echo
echo "gRPC: Invoke with $connections calls outstanding for ${duration}s; then $rounds Maps of" \
  "$map_bytes cursors one after the other (max_in_flight $map_max_in_flight); median cursors/s"
# field PROXY LINE KEY: the value of KEY=... on each of proxy_bench's lines LINE, one per line.
field() { sed -n "s/^$2 .*\b$3=\([^ ]*\).*/\1/p" "$tmp/$1.bench"; }
declare -A map_rate map_rss
for proxy in "${proxies[@]}"; do
  "${load[@]}" "$build_dir"/bench/proxy_bench --target "127.0.0.1:${proxy_grpc[$proxy]}" \
    --pid "${proxy_pid[$proxy]}" --invoke_uri "file://$data" --invoke_concurrency "$connections" \
    --invoke_duration "${duration}s" --map_input "file://$data" --map_chunk_bytes 1 \
    --map_max_in_flight "$map_max_in_flight" --map_rounds "$rounds" >"$tmp/$proxy.bench" ||
    failed=1
  echo "$proxy:"
  if [ -n "$(field "$proxy" grpc_invoke rate)" ]; then
    printf '  %-14s %10s calls/s p50 %7s ms   p99 %7s ms   (%s errors; proxy CPU %s us/call)\n' \
      Invoke "$(field "$proxy" grpc_invoke rate)" "$(field "$proxy" grpc_invoke p50_ms)" \
      "$(field "$proxy" grpc_invoke p99_ms)" "$(field "$proxy" grpc_invoke errors)" \
      "$(field "$proxy" grpc_invoke proxy_cpu_us)"
  fi
  if [ "$(field "$proxy" grpc_map rate | wc -l)" = "$rounds" ]; then
    map_rate[$proxy]=$(field "$proxy" grpc_map rate | middle)
    map_rss[$proxy]=$(field "$proxy" grpc_map peak_rss_mib | sort -n | tail -1)
    printf '  %-14s %10s cursors/s   (rounds: %s; %s failed in all; proxy CPU %s us/cursor)\n' \
      Map "${map_rate[$proxy]}" "$(field "$proxy" grpc_map rate | paste -sd ' ')" \
      "$(field "$proxy" grpc_map failed | awk '{ n += $1 } END { print n }')" \
      "$(field "$proxy" grpc_map proxy_cpu_us | middle)"
    printf '  %-14s %10s MiB peak VmRSS during the Maps (%s MiB before the first; VmHWM %s MiB)\n' \
      "memory" "${map_rss[$proxy]}" "$(field "$proxy" grpc_map rss_before_mib | head -1)" \
      "$(field "$proxy" grpc_map hwm_mib | tail -1)"
  fi
  grep -v '^grpc_\(invoke\|map\) ' "$tmp/$proxy.bench" || true  # errors, if any
done

rate=${map_rate[$target_proxy]:-}
rss=${map_rss[$target_proxy]:-}
if [ -z "$rate" ]; then
  echo "target not measured: Map (a round has no result)"
  failed=1
else
  if [ "$rate" -ge 100000 ]; then
    echo "target met:    Map $rate cursors/s >= 100,000 ($target_proxy)"
  else
    echo "target missed: Map $rate cursors/s < 100,000 ($target_proxy)"
    missed=1
  fi
  if awk -v r="$rss" 'BEGIN { exit !(r <= 64) }'; then
    echo "target met:    proxy peak RSS during the Maps $rss MiB <= 64 MiB ($target_proxy)"
  else
    echo "target missed: proxy peak RSS during the Maps $rss MiB > 64 MiB ($target_proxy)"
    missed=1
  fi
fi

[ "$failed" = 0 ] && [ "$missed" = 0 ]
