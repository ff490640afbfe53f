#!/usr/bin/env bash
# The whole test suite: set-up, build, then every CTest test (unit, integration, template,
# lint and format checks).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
ctest --test-dir build --output-on-failure --timeout 300 "$@"
