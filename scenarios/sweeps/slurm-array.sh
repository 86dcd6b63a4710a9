#!/bin/bash
# SLURM array job: one task per shard of a fibrosim sweep.
#
# Task i of an array of n runs `fibrosim sweep FILE --shard i/n`: the runs whose index % n == i,
# written to the shared sweep directory (runs/<id>/ and shard-i-of-n.json). Seeds depend on the
# run, not on the shard, so any n gives the same results. Submit it with slurm-submit.sh (which
# also queues the merge), or by hand:
#
#   sbatch --array=0-3 scenarios/sweeps/slurm-array.sh scenarios/sweeps/needle-depth.toml --out /shared/output/needle-depth
#   sbatch --dependency=afterok:<jobid> --wrap "fibrosim sweep merge /shared/output/needle-depth"
#
# The --array on the command line overrides the default below; use 0-(N-1) for N shards.
# The sweep directory must be on a file system every node sees. FIBROSIM names the binary
# (default: fibrosim on the PATH); extra arguments go to `fibrosim sweep`.
#SBATCH --job-name=fibrosim-sweep
#SBATCH --array=0-3
#SBATCH --cpus-per-task=2
#SBATCH --output=slurm-%A_%a.out
set -euo pipefail
SWEEP="${1:?usage: sbatch --array=0-<N-1> slurm-array.sh <sweep.toml> [fibrosim sweep options]}"
shift
: "${SLURM_ARRAY_TASK_ID:?not running as a SLURM array task}"
: "${SLURM_ARRAY_TASK_COUNT:?not running as a SLURM array task}"
# One rayon thread per allocated CPU.
export RAYON_NUM_THREADS="${SLURM_CPUS_PER_TASK:-1}"
exec "${FIBROSIM:-fibrosim}" sweep "$SWEEP" --quiet \
    --shard "$SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT" "$@"
