#!/usr/bin/env bash
# Start a throw-away single-node SLURM cluster on this host, for testing the SLURM profile.
#
#   tests/slurm/start_cluster.sh STATE_DIR
#
# Needs root. Installs slurm-wlm and munge with apt-get when they are missing (Debian/Ubuntu),
# writes STATE_DIR/slurm.conf from slurm.conf.in for this host, starts a private munged, slurmctld
# and slurmd whose state, sockets and logs all live under STATE_DIR, and waits until the node is
# idle. Nothing under /etc is changed and no system service is started.
#
# Leaves behind:
#   STATE_DIR/pids   one "name pid" line per daemon started (stop_cluster.sh kills exactly these)
#   STATE_DIR/env    `export SLURM_CONF=...`: source it to talk to this cluster
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
state=${1:?usage: start_cluster.sh STATE_DIR}
mkdir -p "$state"
state=$(cd "$state" && pwd)

if [ "$(id -u)" -ne 0 ]; then
    echo "start_cluster.sh: needs root (it starts munged, slurmctld and slurmd)" >&2
    exit 2
fi

# --- install ---------------------------------------------------------------------------------
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null \
    || ! command -v munged >/dev/null || ! command -v sbatch >/dev/null; then
    if ! command -v apt-get >/dev/null; then
        echo "start_cluster.sh: slurm-wlm and munge are missing and there is no apt-get" >&2
        exit 2
    fi
    echo "installing slurm-wlm and munge"
    export DEBIAN_FRONTEND=noninteractive
    # The packages' scripts would start system-wide munge, slurmctld and slurmd services; a
    # policy-rc.d that refuses every start keeps the daemons of this cluster the only ones.
    policy=/usr/sbin/policy-rc.d made_policy=
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 0755 "$policy"
        made_policy=1
    fi
    installed=1
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends slurm-wlm munge; } \
        >"$state/apt.log" 2>&1 || installed=
    if [ -n "$made_policy" ]; then rm -f "$policy"; fi
    if [ -z "$installed" ]; then tail -n 30 "$state/apt.log" >&2; exit 1; fi
fi

# --- configuration ---------------------------------------------------------------------------
host=$(hostname -s)
mkdir -p "$state/munge" "$state/ctld" "$state/slurmd" "$state/log"
chmod 0700 "$state/munge"

# A port is taken when something answers on it.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
pick_port() {
    local port
    for port in $(seq "$1" "$(($1 + 200))"); do
        if port_free "$port" && [ "$port" != "${2:-}" ]; then echo "$port"; return 0; fi
    done
    echo "start_cluster.sh: no free port near $1" >&2
    return 1
}
ctld_port=$(pick_port 16817)
slurmd_port=$(pick_port 16818 "$ctld_port")

# `slurmd -C` reports this host's CPU layout and memory in slurm.conf syntax.
node_line=$(slurmd -C | head -n 1 | sed "s/^NodeName=[^ ]*/NodeName=$host/")
sed -e "s|@STATE@|$state|g" -e "s|@HOST@|$host|g" -e "s|@NODE@|$node_line|" \
    -e "s|@CTLD_PORT@|$ctld_port|" -e "s|@SLURMD_PORT@|$slurmd_port|" \
    "$here/slurm.conf.in" >"$state/slurm.conf"
export SLURM_CONF="$state/slurm.conf"
echo "export SLURM_CONF=$SLURM_CONF" >"$state/env"

# Commands inside a job do not all see SLURM_CONF: the Snakemake job-step executor strips every
# SLURM_* variable before its inner `srun`, which then only finds the default location. So the
# configuration is linked there too, but only when nothing (or a stale link of an earlier test
# cluster) is there: a real cluster's configuration is never replaced.
system_conf=/etc/slurm/slurm.conf
if [ -L "$system_conf" ] && [ -f "$(dirname "$(readlink "$system_conf")")/pids" ]; then
    other=$(dirname "$(readlink "$system_conf")")
    if [ "$other" != "$state" ] && awk '{print $2}' "$other/pids" | xargs -r ps -p >/dev/null 2>&1; then
        echo "start_cluster.sh: another test cluster is running (state in $other)" >&2
        exit 3
    fi
fi
if [ -e "$system_conf" ] && ! [ -L "$system_conf" ]; then
    echo "start_cluster.sh: $system_conf exists: this host already belongs to a SLURM cluster;" \
        "use that cluster instead of a test cluster" >&2
    exit 3
fi
mkdir -p "$(dirname "$system_conf")"
ln -sfn "$SLURM_CONF" "$system_conf"
echo "$system_conf" >"$state/linked"

# --- daemons ---------------------------------------------------------------------------------
: >"$state/pids"
# Each daemon runs in the foreground of its own session, so that $! is the daemon itself.
start() {
    local name=$1
    shift
    setsid "$@" >"$state/log/$name.out" 2>&1 </dev/null &
    echo "$name $!" >>"$state/pids"
}

if [ ! -s "$state/munge/munge.key" ]; then
    dd if=/dev/urandom of="$state/munge/munge.key" bs=1024 count=1 status=none
    chmod 0400 "$state/munge/munge.key"
fi
start munged munged --foreground --force \
    --socket="$state/munge/munge.socket" --key-file="$state/munge/munge.key" \
    --pid-file="$state/munge/munged.pid" --seed-file="$state/munge/munged.seed" \
    --log-file="$state/log/munged.log"

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
    local deadline=$((SECONDS + $1)) what=$2
    shift 2
    until "$@" >/dev/null 2>&1; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "start_cluster.sh: timed out waiting for $what; logs in $state/log" >&2
            tail -n 20 "$state"/log/* >&2 || true
            return 1
        fi
        sleep 0.5
    done
}
wait_for 20 "munged" test -S "$state/munge/munge.socket"

start slurmctld slurmctld -D -f "$SLURM_CONF"
wait_for 30 "slurmctld" scontrol ping
start slurmd slurmd -D -f "$SLURM_CONF" -N "$host"

node_idle() { sinfo -h -N -n "$host" -o %t | grep -qx idle; }
wait_for 60 "node $host to become idle" node_idle

echo "SLURM cluster up: node $host, controller port $ctld_port, state in $state"
echo "  source $state/env   # to use it"
