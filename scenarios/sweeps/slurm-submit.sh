#!/bin/bash
# Submits a fibrosim sweep to SLURM: an array of N shard tasks (slurm-array.sh), then a merge
# job that starts only if every task succeeded (--dependency=afterok) and writes summary.csv,
# aggregate.csv and charts/ exactly as a single-machine run would.
#
#   scenarios/sweeps/slurm-submit.sh SWEEP.toml N [OUT_DIR] [extra sbatch options]
#
#   SWEEP.toml  the sweep file
#   N           number of shards (array tasks); at most the number of runs is useful
#   OUT_DIR     the sweep directory, on a shared file system (default output/<sweep file stem>)
#
# FIBROSIM names the binary (default fibrosim); it is passed to the jobs. Prints the two job
# ids. Follow with `squeue -u $USER`; the merge job's log is slurm-merge-<jobid>.out.
set -euo pipefail
SWEEP="${1:?usage: slurm-submit.sh SWEEP.toml N [OUT_DIR] [sbatch options]}"
N="${2:?usage: slurm-submit.sh SWEEP.toml N [OUT_DIR] [sbatch options]}"
OUT="${3:-output/$(basename "${SWEEP%.toml}")}"
shift $(( $# < 3 ? $# : 3 ))
FIBROSIM="${FIBROSIM:-fibrosim}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if ! [[ "$N" =~ ^[1-9][0-9]*$ ]]; then
    echo "N must be a positive integer, got '$N'" >&2
    exit 2
fi
array=$(sbatch --parsable --export="ALL,FIBROSIM=$FIBROSIM" --array="0-$((N - 1))" "$@" \
    "$HERE/slurm-array.sh" "$SWEEP" --out "$OUT")
array="${array%%;*}"
merge=$(sbatch --parsable --export="ALL,FIBROSIM=$FIBROSIM" --dependency="afterok:$array" \
    --job-name=fibrosim-merge --output="slurm-merge-%j.out" "$@" \
    --wrap "\"$FIBROSIM\" sweep merge \"$OUT\"")
merge="${merge%%;*}"
echo "array job $array ($N tasks), merge job $merge -> $OUT"
