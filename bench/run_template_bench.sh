#!/usr/bin/env bash
# Template figures: per template, cold start (spawn → first /healthz 200, median and p90) and warm
# invoke requests/s and p99 through a single replica (wrk), next to the cold-start targets.
# Usage: bench/run_template_bench.sh [--runs N (20)] [--duration SECONDS (10)] [TEMPLATE...]
# Exits non-zero when a cold-start target is missed or an invocation fails.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
exec /usr/bin/python3 bench/template_bench.py "$@"
