#!/usr/bin/env bash
# Sweep throughput: runs scenarios/sweeps/throughput.toml (8 small runs) with 1 thread and with
# every core, prints runs per hour and the parallel efficiency, and checks that both give the
# same summary.csv byte for byte.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=target/release/fibrosim
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
runs=8
cores=$(nproc)
declare -A secs
for t in 1 "$cores"; do
    start=$(date +%s.%N)
    RAYON_NUM_THREADS=$t "$bin" sweep scenarios/sweeps/throughput.toml --out "$out/t$t" --quiet --no-charts
    end=$(date +%s.%N)
    secs[$t]=$(awk "BEGIN { print $end - $start }")
    printf 'threads %2d: %6.2f s, %6.0f runs/hour\n' "$t" "${secs[$t]}" "$(awk "BEGIN { print $runs * 3600 / ${secs[$t]} }")"
done
printf 'speed-up %.2f on %d cores, parallel efficiency %.0f %%\n' \
    "$(awk "BEGIN { print ${secs[1]} / ${secs[$cores]} }")" "$cores" \
    "$(awk "BEGIN { print 100 * ${secs[1]} / ${secs[$cores]} / $cores }")"
cmp "$out/t1/summary.csv" "$out/t$cores/summary.csv" && echo "summary.csv identical at 1 and $cores threads"
