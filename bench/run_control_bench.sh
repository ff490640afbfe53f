#!/usr/bin/env bash
# Control-plane figures: CreateFunction → READY latency (p50/p99) for the python3 example, cold
# builds and cached artifacts, then 100 functions created at once (time to all READY, RSS).
# Usage: bench/run_control_bench.sh [sequential runs (30)] [concurrent functions (100)]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh >/dev/null
build/bench/control_bench "${1:-30}" "${2:-100}"
