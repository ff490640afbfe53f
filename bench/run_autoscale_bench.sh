#!/usr/bin/env bash
# Autoscaling figures: the first response of a python3 function scaled to zero (p50 target
# <= 200 ms), then the replica count over a load ramp of closed-loop clients (1, 2, 4, 8, 4, 2, 0
# clients on a 100 ms handler), printed as a table; the ramp is also written as CSV and, when
# gnuplot is installed, plotted as a PNG next to it.
# Usage: bench/run_autoscale_bench.sh [scale-from-zero runs (10)] [output dir (.run/bench)]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh >/dev/null
out=${2:-.run/bench}
mkdir -p "$out"
status=0
build/bench/autoscale_bench "${1:-10}" "$out/autoscale_ramp.csv" || status=$?
echo "ramp: $out/autoscale_ramp.csv"
if command -v gnuplot >/dev/null 2>&1; then
  gnuplot <<GNUPLOT
set terminal png size 900,450
set output "$out/autoscale_ramp.png"
set datafile separator ","
set key top left
set xlabel "seconds"
set ylabel "replicas / clients"
plot "$out/autoscale_ramp.csv" every ::1 using 1:2 with steps title "clients", \
     "" every ::1 using 1:4 with steps title "desired replicas", \
     "" every ::1 using 1:5 with steps title "ready replicas"
GNUPLOT
  echo "plot: $out/autoscale_ramp.png"
else
  echo "plot: skipped (gnuplot is not installed)"
fi
exit "$status"
