#!/usr/bin/env bash
# Stop the daemons that start_cluster.sh started, by the process ids it recorded, and only those.
#
#   tests/slurm/stop_cluster.sh STATE_DIR
#
# Daemons are stopped in reverse start order (slurmd, slurmctld, munged): SIGTERM, then SIGKILL
# for any still alive after 10 s. A pid is only signalled while its command name is still the
# daemon's, so a recycled pid is never hit.
set -uo pipefail

state=${1:?usage: stop_cluster.sh STATE_DIR}
pids_file="$state/pids"
[ -f "$pids_file" ] || { echo "stop_cluster.sh: no $pids_file, nothing to stop"; exit 0; }

ours() {  # ours NAME PID: is PID alive and still running NAME?
    [ "$(cat "/proc/$2/comm" 2>/dev/null)" = "$1" ]
}

# Jobs first, through the controller, so that no slurmstepd or job process outlives the cluster.
if [ -f "$state/slurm.conf" ] && grep -q '^slurmctld ' "$pids_file"; then
    export SLURM_CONF="$state/slurm.conf"
    jobs=$(squeue -h -o %i 2>/dev/null | tr '\n' ' ')
    if [ -n "${jobs// /}" ]; then
        # shellcheck disable=SC2086
        scancel $jobs 2>/dev/null || true
        for _ in $(seq 1 20); do
            [ -z "$(squeue -h -t RUNNING,COMPLETING -o %i 2>/dev/null)" ] && break
            sleep 0.5
        done
    fi
fi

mapfile -t entries < <(tac "$pids_file")
for entry in "${entries[@]}"; do
    read -r name pid <<<"$entry"
    if ours "$name" "$pid"; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 20); do
            ours "$name" "$pid" || break
            sleep 0.5
        done
        if ours "$name" "$pid"; then
            echo "stop_cluster.sh: $name ($pid) ignored SIGTERM, sending SIGKILL" >&2
            kill -KILL "$pid" 2>/dev/null || true
        fi
        echo "stopped $name ($pid)"
    fi
done
rm -f "$pids_file"

# The link start_cluster.sh made at the default configuration path, if it still points here.
if [ -f "$state/linked" ]; then
    link=$(cat "$state/linked")
    if [ -L "$link" ] && [ "$(readlink "$link")" = "$state/slurm.conf" ]; then
        rm -f "$link"
    fi
    rm -f "$state/linked"
fi
