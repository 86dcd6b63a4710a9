#!/bin/bash
# End-to-end test of the SLURM workflow of fibrosim sweeps on this machine.
#
# Installs slurmctld, slurmd and munge from Debian's packages if they are missing (root only),
# writes a one-node slurm.conf for localhost (no cgroups, no accounting), starts munged,
# slurmctld and slurmd, submits a tiny sweep (2 needle lengths × 2 replicates on a 400 × 400 µm
# block, 10 days of follow-up) as a 2-task array plus a merge job with
# scenarios/sweeps/slurm-submit.sh, waits for them, and compares the merged summary.csv,
# aggregate.csv and charts byte for byte with a single-machine run of the same sweep.
#
#   bash scripts/slurm-test.sh
#
# Prints PASSED (exit 0), FAILED: <why> (exit 1), or SKIPPED: <why> (exit 0) when SLURM cannot
# be installed or its daemons do not start here. FIBROSIM may name the fibrosim binary; otherwise
# target/release/fibrosim is used (built with cargo, offline, if missing).
set -uo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TIMEOUT="${SLURM_TEST_TIMEOUT:-600}"
T="$(mktemp -d /tmp/fibrosim-slurm-test.XXXXXX)"
PIDS=()

skip() { echo "SKIPPED: $*"; exit 0; }
fail() {
    echo "FAILED: $*"
    for f in "$T"/slurmctld.log "$T"/slurmd.log "$T"/work/slurm-*.out; do
        [ -f "$f" ] && { echo "--- $f"; tail -n 20 "$f"; }
    done
    exit 1
}
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    for f in slurmd.pid slurmctld.pid; do
        [ -s "$T/$f" ] && kill "$(cat "$T/$f")" 2>/dev/null
    done
    # munged only if this script started it.
    [ -n "${STARTED_MUNGED:-}" ] && [ -s /run/munge/munged.pid ] && kill "$(cat /run/munge/munged.pid)" 2>/dev/null
    sleep 1
}
trap cleanup EXIT

# 1. Packages.
need=()
for cmd in slurmctld:slurmctld slurmd:slurmd munged:munge sbatch:slurm-client; do
    command -v "${cmd%%:*}" >/dev/null 2>&1 || need+=("${cmd#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
    [ "$(id -u)" = 0 ] || skip "SLURM packages missing (${need[*]}) and not root to install them"
    command -v apt-get >/dev/null || skip "SLURM packages missing and no apt-get"
    echo "installing ${need[*]} ..."
    export DEBIAN_FRONTEND=noninteractive
    { apt-get update -qq && apt-get install -y -qq "${need[@]}"; } >"$T/apt.log" 2>&1 ||
        skip "apt-get could not install ${need[*]} (see $T/apt.log)"
fi
[ "$(id -u)" = 0 ] || skip "the daemons of this test run as root; not root"

# 2. The fibrosim binary (FIBROSIM, or target/release/fibrosim, built if missing).
FIB="${FIBROSIM:-}"
if [ -z "$FIB" ]; then
    export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$REPO/target}"
    FIB="$CARGO_TARGET_DIR/release/fibrosim"
    if [ ! -x "$FIB" ]; then
        echo "building $FIB ..."
        (cd "$REPO" && cargo build --release --offline -q) >"$T/build.log" 2>&1 ||
            fail "building fibrosim failed (see $T/build.log)"
    fi
fi
"$FIB" sweep --help 2>&1 | grep -q -- --shard || fail "$FIB has no \`sweep --shard\`"
echo "binary: $FIB"

# 3. A one-node cluster on localhost.
mkdir -p "$T/state" "$T/spool" "$T/work"
CONF="$T/slurm.conf"
cat >"$CONF" <<EOF
ClusterName=fibrosimtest
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
SlurmctldPort=${SLURMCTLD_PORT:-6817}
SlurmdPort=${SLURMD_PORT:-6818}
StateSaveLocation=$T/state
SlurmdSpoolDir=$T/spool
SlurmctldPidFile=$T/slurmctld.pid
SlurmdPidFile=$T/slurmd.pid
SlurmctldLogFile=$T/slurmctld.log
SlurmdLogFile=$T/slurmd.log
NodeName=localhost CPUs=2 State=UNKNOWN
PartitionName=test Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF="$CONF"

if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    [ -s /etc/munge/munge.key ] || { mungekey -c >/dev/null 2>&1 || create-munge-key -f >/dev/null 2>&1; }
    mkdir -p /run/munge && chown munge:munge /run/munge 2>/dev/null
    if id munge >/dev/null 2>&1; then
        runuser -u munge -- /usr/sbin/munged >"$T/munged.out" 2>&1
    else
        /usr/sbin/munged --force >"$T/munged.out" 2>&1
    fi
    STARTED_MUNGED=1
    sleep 1
    munge -n 2>/dev/null | unmunge >/dev/null 2>&1 || skip "munged did not start ($(tail -n 1 "$T/munged.out"))"
fi
/usr/sbin/slurmctld -f "$CONF" -i >"$T/slurmctld.out" 2>&1 || skip "slurmctld did not start ($(tail -n 1 "$T/slurmctld.out"))"
/usr/sbin/slurmd -f "$CONF" -N localhost >"$T/slurmd.out" 2>&1 || skip "slurmd did not start ($(tail -n 1 "$T/slurmd.out"))"
up=""
for _ in $(seq 30); do
    state="$(sinfo -h -n localhost -o %T 2>/dev/null)"
    case "$state" in idle* | mixed* | allocated*) up=1; break ;; esac
    sleep 1
done
[ -n "$up" ] || skip "the node did not come up (sinfo: '${state:-no answer}'; see $T/slurmd.log)"
echo "cluster up: node localhost $state"

# 4. The tiny sweep, single-machine and on the cluster.
SW="$T/tiny.toml"
cat >"$SW" <<'EOF'
# Tiny sweep for the SLURM test: 2 needle lengths × 2 replicates.
name = "tiny"
replicates = 2
seed = 3
[[axis]]
key = "device.needle_length_mm"
values = [0.5, 1.5]
[base.tissue]
domain_um = [400, 400]
voxel_um = 40
[base.schedule]
sessions = 1
follow_up_days = 10
[base.output]
metric_days_after_last = [5, 10]
EOF
"$FIB" sweep "$SW" --quiet --out "$T/single" || fail "the single-machine run failed"
cd "$T/work" || fail "no work directory"
sub="$(FIBROSIM="$FIB" bash "$REPO/scenarios/sweeps/slurm-submit.sh" "$SW" 2 "$T/cluster")" ||
    fail "submitting failed: $sub"
echo "$sub"
merge_id="$(sed -n 's/.*merge job \([0-9]*\).*/\1/p' <<<"$sub")"
[ -n "$merge_id" ] || fail "no merge job id in: $sub"
t0=$SECONDS
while squeue -h 2>/dev/null | grep -q .; do
    ((SECONDS - t0 > TIMEOUT)) && fail "jobs still queued after ${TIMEOUT} s: $(squeue -h)"
    sleep 2
done
mstate="$(scontrol show job "$merge_id" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p')"
[ "$mstate" = COMPLETED ] || fail "merge job $merge_id ended ${mstate:-unknown}"
echo "array and merge finished in $((SECONDS - t0)) s"

# 5. Byte-identical results.
n=0
for f in summary.csv aggregate.csv charts/dose-device-needle_length_mm.svg charts/dose-device-needle_length_mm.png; do
    cmp "$T/single/$f" "$T/cluster/$f" || fail "$f differs between the cluster and the single-machine run"
    n=$((n + 1))
done
for i in 0 1; do
    [ -f "$T/cluster/shard-$i-of-2.json" ] || fail "shard-$i-of-2.json missing"
done
echo "PASSED: $n files identical between the SLURM array + merge and a single-machine run ($T)"
