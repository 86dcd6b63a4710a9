#!/usr/bin/env bash
# Parallel scaling: the reference workload (`fibrosim bench`), a 32-run sweep
# (scenarios/sweeps/scaling.toml) and, with --default, the default scenario end to end, at
# 1, 2, 4, … threads up to the number of cores (or the counts given). Checks that the sweep's
# summary.csv is byte-identical at every thread count.
#   bash scripts/bench-scaling.sh [--default] [THREADS ...]
# FIBROSIM_BIN names a binary to use instead of building one.
set -euo pipefail
cd "$(dirname "$0")/.."
default=0
if [[ ${1:-} == --default ]]; then default=1; shift; fi
if [[ -z ${FIBROSIM_BIN:-} ]]; then
    cargo build --release --quiet
    FIBROSIM_BIN=target/release/fibrosim
fi
bin=$FIBROSIM_BIN
cores=$(nproc)
if (($# == 0)); then
    set -- 1
    t=2
    while ((t <= cores)); do set -- "$@" "$t"; t=$((t * 2)); done
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
field() { sed -n "s/.*\"$1\": \([0-9.e+-]*\).*/\1/p" "$2"; }
echo "cores: $cores ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1))"
printf '%7s | %12s | %13s | %14s | %12s | %12s\n' threads "ref s/day" "ref speed-up" \
    "agent-steps/s" "sweep runs/h" "default s"
first_ref=""
for t in "$@"; do
    "$bin" bench -j "$t" --json "$out/ref$t.json" >/dev/null
    ref=$(field seconds_per_simulated_day "$out/ref$t.json")
    ags=$(field agent_steps_per_second "$out/ref$t.json")
    [[ -z $first_ref ]] && first_ref=$ref
    start=$(date +%s.%N)
    RAYON_NUM_THREADS=$t "$bin" sweep scenarios/sweeps/scaling.toml --out "$out/s$t" --quiet \
        --no-charts
    end=$(date +%s.%N)
    runs_h=$(awk "BEGIN { printf \"%.0f\", 32 * 3600 / ($end - $start) }")
    def="-"
    if ((default)); then
        "$bin" bench -j "$t" --scenario scenarios/default.toml --json "$out/def$t.json" >/dev/null
        def=$(awk "BEGIN { printf \"%.1f\", $(field wall_seconds "$out/def$t.json") }")
    fi
    printf '%7d | %12.3f | %13.2f | %14.3g | %12s | %12s\n' "$t" "$ref" \
        "$(awk "BEGIN { print $first_ref / $ref }")" "$ags" "$runs_h" "$def"
    cmp -s "$out/s$1/summary.csv" "$out/s$t/summary.csv" ||
        { echo "sweep summary.csv differs between $1 and $t threads" >&2; exit 1; }
done
echo "sweep summary.csv identical at every thread count"
