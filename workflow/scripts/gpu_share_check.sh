#!/usr/bin/env bash
# Runs sharing one GPU: K training processes of the same paper model at once, for K in KS, each timing its own
# training steps (`astromorphic bench throughput`). The sum of their throughputs against one process alone says
# how much `resources.runs_per_gpu` gains, measured, instead of the cost model's no-slow-down lower bound.
#
#   bash workflow/scripts/gpu_share_check.sh OUT_CSV
#
# Environment: TASKS (default imdb,cifar10), MODEL (astro), KS (1,4,8), NB (timed batches per process, 150),
# DEVICE (cuda), PYTHON (python3), EXTRA (more arguments for bench throughput, e.g. tiny sizes for a CPU test).
# Output: one row per process (task, model, concurrency, process, train_throughput, ...), from the processes'
# own CSVs.
set -uo pipefail
OUT_CSV=${1:?usage: gpu_share_check.sh OUT_CSV}
TASKS=${TASKS:-imdb,cifar10}
MODEL=${MODEL:-astro}
KS=${KS:-1,4,8}
NB=${NB:-150}
DEVICE=${DEVICE:-cuda}
PYTHON=${PYTHON:-python3}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/astromorphic-share.XXXXXX")
read -r -a EXTRA_ARGS <<<"${EXTRA:-}"

for task in ${TASKS//,/ }; do
    for k in ${KS//,/ }; do
        for i in $(seq 1 "$k"); do
            "$PYTHON" -m astromorphic bench throughput --config "$ROOT/config/paper.yaml" --device "$DEVICE" \
                --task "$task" --model "$MODEL" --n-batches "$NB" --csv "$WORK/$task-k$k-p$i.csv" "${EXTRA_ARGS[@]}" \
                >"$WORK/$task-k$k-p$i.log" 2>&1 &
        done
        wait
        echo "$task: $k at once done"
    done
done

"$PYTHON" - "$WORK" "$OUT_CSV" <<'EOF'
import csv, re, sys
from pathlib import Path

rows = []
for path in sorted(Path(sys.argv[1]).glob("*.csv")):
    task, k, p = re.match(r"(.+)-k(\d+)-p(\d+)\.csv", path.name).groups()
    for row in csv.DictReader(path.open()):
        rows.append({"task": task, "model": row["model"], "concurrency": int(k), "process": int(p),
                     "device": row["device"], "dtype": row["dtype"], "batch_size": row["batch_size"],
                     "n_batches": row["n_batches"], "train_step_s": row["train_step_s"],
                     "train_throughput": row["train_throughput"], "eval_throughput": row["eval_throughput"]})
if not rows:
    sys.exit(f"gpu_share_check.sh: no process wrote a result (logs in {sys.argv[1]})")
with open(sys.argv[2], "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(sorted(rows, key=lambda r: (r["task"], r["concurrency"], r["process"])))
for task in sorted({r["task"] for r in rows}):
    base = None
    for k in sorted({r["concurrency"] for r in rows if r["task"] == task}):
        total = sum(float(r["train_throughput"]) for r in rows if r["task"] == task and r["concurrency"] == k)
        base = base or total
        print(f"{task}: {k} at once: {total:.1f} per second in all, {total / base:.2f}x one alone")
EOF
