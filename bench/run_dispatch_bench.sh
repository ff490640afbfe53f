#!/usr/bin/env bash
# The proxy dispatcher's rate against an in-process replica that answers at once.
# Usage: bench/run_dispatch_bench.sh [invocations (200000)] [in flight (64)]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh >/dev/null
build/bench/dispatch_bench "${1:-200000}" "${2:-64}"
