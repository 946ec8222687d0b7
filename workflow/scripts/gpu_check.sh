#!/usr/bin/env bash
# The GPU check of config/paper.yaml: one short script (at most about 8 minutes on one H200) whose CSVs give the
# cost model its GPU throughput and show that the CUDA path works at the paper's sizes.
#
#   bash workflow/scripts/gpu_check.sh DATA_DIR [OUT_DIR]
#
# DATA_DIR holds local copies in the official formats: imdb/ (aclImdb archives or folder), wikitext2/
# (wiki.*.tokens) and gpt2/ (encoder.json, vocab.bpe); workflow/scripts/stage_gpu_check.sh copies them (and the
# wheels below) into git-ignored folders of the checkout so that they travel with it. OUT_DIR defaults to
# results/reference/bench/<gpu name, as a slug>/. At most 8 files are written there, and copied to $OUT when it
# is set:
#
#   status.csv                 stage, status (ok, failed, timeout, skipped), exit code, seconds, time cap
#   environment.csv            GPU, library versions, the causal kernel each dtype gets
#   cuda_tests.csv             the CUDA tests (pytest -k cuda): test, outcome, seconds, message
#   throughput_<device>.csv    `astromorphic bench throughput` of every paper model, float32 and bfloat16
#   attention_causal_<device>.csv  the causal kernel benchmark (bench_causal_gpu.sh, reduced sizes)
#   paper_runs.csv             two short paper-scale runs (IMDB, WikiText-2 astro): metrics.csv rows per epoch
#   reference_<device>.csv     the project's training step against a plain PyTorch loop (bench throughput --reference)
#   gpu_check.log              the last lines of every stage's output
#
# Stages run in order of what the cost model needs most; each has its own time cap (`timeout`), all of them
# together at most TOTAL_S seconds (a stage gets what is left when less than its cap), and the script goes on
# after a failed stage. It exits 0 when every stage passed, else 1.
#
# Environment:
#   WHEELS   a folder of wheels installed with `pip install --no-index --no-deps --target $SITE` (the GPU
#            machine lacks pydantic and its dependencies); unset: use the packages of the current interpreter
#   SITE     where the wheels go (default /tmp/site)
#   PYTHON   the interpreter (default python3)
#   DEVICE   cuda (default) or cpu (with TINY=1: a dry run of the whole script on the CPU)
#   TINY     1: tiny sizes and TRITON_INTERPRET=1, for the tests
#   EPOCHS   epochs of the two paper-scale runs (default 2)
#   TOTAL_S  overall time cap in seconds (default 450)
#   WORK     scratch folder for prepared data and runs (default: a new folder under /tmp)
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DATA_DIR=${1:?usage: gpu_check.sh DATA_DIR [OUT_DIR]}
DATA_DIR=$(cd "$DATA_DIR" && pwd) || { echo "gpu_check.sh: DATA_DIR $1 does not exist" >&2; exit 2; }
for sub in imdb wikitext2 gpt2; do
    [ -d "$DATA_DIR/$sub" ] || { echo "gpu_check.sh: $DATA_DIR/$sub is missing (run stage_gpu_check.sh)" >&2; exit 2; }
done
PYTHON=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}
TINY=${TINY:-0}
EPOCHS=${EPOCHS:-2}
TOTAL_S=${TOTAL_S:-450}
SITE=${SITE:-/tmp/site}
WORK=${WORK:-$(mktemp -d "${TMPDIR:-/tmp}/astromorphic-gpu-check.XXXXXX")}
CONFIG="$ROOT/config/paper.yaml"
START=$(date +%s)
cd "$ROOT" || exit 2
mkdir -p "$WORK/logs"

# --- packages ------------------------------------------------------------------------------------------
if [ -n "${WHEELS:-}" ]; then
    mkdir -p "$SITE"
    "$PYTHON" -m pip install -q --no-index --no-deps --target "$SITE" "$WHEELS"/*.whl \
        || { echo "gpu_check.sh: could not install the wheels of $WHEELS" >&2; exit 2; }
    export PYTHONPATH="$SITE:$ROOT/src"
else
    export PYTHONPATH="$ROOT/src${PYTHONPATH:+:$PYTHONPATH}"
fi
if [ "$TINY" = 1 ]; then export TRITON_INTERPRET=1; fi
if [ "$DEVICE" = cuda ]; then
    "$PYTHON" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else "gpu_check.sh: no CUDA device (DEVICE=cpu TINY=1 for a dry run)")' || exit 2
fi

# --- where the CSVs go -----------------------------------------------------------------------------------
slug=$("$PYTHON" -c '
import re, torch
name = torch.cuda.get_device_name(0) if torch.cuda.is_available() and "'"$DEVICE"'" == "cuda" else "cpu"
print(re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-"))')
BENCH=${2:-"$ROOT/results/reference/bench/$slug"}
mkdir -p "$BENCH"
BENCH=$(cd "$BENCH" && pwd)
STATUS="$BENCH/status.csv"
LOG="$BENCH/gpu_check.log"
echo "stage,status,exit_code,seconds,cap_s" >"$STATUS"
: >"$LOG"
echo "gpu check: device $DEVICE ($slug), data $DATA_DIR, results $BENCH, scratch $WORK"

# stage NAME CAP_S COMMAND...: run under `timeout`, capped by what is left of TOTAL_S; one status row.
failures=0
stage() {
    local name=$1 cap=$2 left t0 rc status seconds
    shift 2
    left=$((TOTAL_S - ($(date +%s) - START)))
    if [ "$left" -lt "$cap" ]; then cap=$left; fi
    if [ "$cap" -lt 5 ]; then
        echo "$name,skipped,,0,$cap" >>"$STATUS"
        echo "== $name: skipped (the time budget of ${TOTAL_S} s is spent)" | tee -a "$LOG"
        failures=$((failures + 1))
        return 0
    fi
    echo "== $name (cap ${cap} s)"
    t0=$(date +%s.%N)
    timeout -k 10 "$cap" "$@" >"$WORK/logs/$name.log" 2>&1
    rc=$?
    seconds=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
    case $rc in
        0) status=ok ;;
        124 | 137) status=timeout ;;
        *) status=failed ;;
    esac
    [ "$status" = ok ] || failures=$((failures + 1))
    echo "$name,$status,$rc,$seconds,$cap" >>"$STATUS"
    { echo "== $name: $status (exit $rc, $seconds s of $cap s)"; tail -n 60 "$WORK/logs/$name.log"; } >>"$LOG"
    echo "   $status (exit $rc, $seconds s)"
}

# --- sizes ---------------------------------------------------------------------------------------------
TASKS=(imdb cifar10 wikitext2)
if [ "$TINY" = 1 ]; then
    NB=1
    THROUGHPUT_ARGS=(--task imdb,cifar10,wikitext2 --model vanilla,astro --batch-size 2 --vocab-size 100)
    SIZES=()
    for t in imdb wikitext2; do
        SIZES+=(--set "tasks.$t.model.d_model=16" --set "tasks.$t.model.n_heads=2" --set "tasks.$t.model.max_len=32"
            --set "tasks.$t.data.seq_len=32")
    done
    SIZES+=(--set tasks.cifar10.model.d_model=16 --set tasks.cifar10.model.n_heads=2 --set tasks.cifar10.model.n_layers=1
        --set tasks.cifar10.model.stem_channels=8 --set tasks.cifar10.model.patch=4 --set tasks.cifar10.model.max_len=64)
    RUN_CAPS=(--set tasks.imdb.train.max_train_batches=2 --set tasks.imdb.train.max_eval_samples=32
        --set tasks.imdb.train.batch_size=8 --set tasks.wikitext2.train.max_train_batches=2
        --set tasks.wikitext2.train.max_eval_tokens=256 --set tasks.wikitext2.train.batch_size=4)
    PREP_IMDB=(--n-train 200 --n-test 100 --seq-len 32)
    PREP_LM=(--seq-len 32)
    BENCH_ENV=(NS=8,16 DIMS=4 BATCH=1 HEADS=2 REPEATS=1 MAX_SECONDS=30)
    EPOCHS=1
else
    NB=10
    THROUGHPUT_ARGS=()
    SIZES=()
    RUN_CAPS=()
    PREP_IMDB=()
    PREP_LM=()
    # The paper LM's batch x heads (24 x 6) at head sizes 64 and 128, N from the LM's 512 up.
    BENCH_ENV=(NS=512,2048,8192 DIMS=64,128 BATCH=24 HEADS=6 REPEATS=3 MAX_SECONDS=20)
fi
DEVICE_SETS=()
for t in "${TASKS[@]}"; do DEVICE_SETS+=(--set "tasks.$t.train.device=$DEVICE"); done

# --- stages --------------------------------------------------------------------------------------------
stage environment 60 "$PYTHON" workflow/scripts/gpu_check_collect.py environment "$BENCH/environment.csv"

# The CUDA tests (their names say cuda; on the CPU they are skipped). A file that fails to import is reported
# and the others still run.
stage cuda_tests 90 "$PYTHON" -m pytest -p no:cacheprovider -q -o addopts="" --continue-on-collection-errors \
    -k cuda --junitxml "$WORK/junit.xml" tests/test_kernels.py tests/test_attention.py tests/test_models.py \
    tests/test_training.py
"$PYTHON" workflow/scripts/gpu_check_collect.py junit "$WORK/junit.xml" "$BENCH/cuda_tests.csv"

# Throughput of every model the paper configuration trains, bfloat16 then float32, into one CSV.
THROUGHPUT_CSV="$BENCH/throughput_$DEVICE.csv"
rm -f "$THROUGHPUT_CSV"
for dtype in bfloat16 float32; do
    sets=()
    for t in "${TASKS[@]}"; do sets+=(--set "tasks.$t.train.dtype=$dtype"); done
    stage "throughput_$dtype" 100 "$PYTHON" -m astromorphic bench throughput --config "$CONFIG" --device "$DEVICE" \
        --n-batches "$NB" --csv "$THROUGHPUT_CSV" "${THROUGHPUT_ARGS[@]}" "${SIZES[@]}" "${sets[@]}"
done

# Two short runs at the paper's sizes on real data prepared here (IMDB without GloVe: a learned embedding).
RUNS=()
for task in imdb wikitext2; do
    data="$WORK/data/$task" run="$WORK/runs/$task/astro/seed0"
    if [ "$task" = imdb ]; then
        prep=(--from-dir "$DATA_DIR/imdb" --set glove=null "${PREP_IMDB[@]}")
        extra=(--set tasks.imdb.data.glove=null)
        cap=120
    else
        prep=(--from-dir "$DATA_DIR/wikitext2" --gpt2-dir "$DATA_DIR/gpt2" "${PREP_LM[@]}")
        extra=()
        cap=100
    fi
    stage "prepare_$task" 60 "$PYTHON" -m astromorphic prepare "$task" --config "$CONFIG" --out "$data" "${prep[@]}"
    stage "train_$task" "$cap" "$PYTHON" -m astromorphic train --task "$task" --model astro --seed 0 --config "$CONFIG" \
        --data "$data" --out "$run" --force --set "tasks.$task.train.epochs=$EPOCHS" "${extra[@]}" "${SIZES[@]}" \
        "${RUN_CAPS[@]}" "${DEVICE_SETS[@]}"
    RUNS+=("$run")
done
"$PYTHON" workflow/scripts/gpu_check_collect.py runs "$BENCH/paper_runs.csv" "${RUNS[@]}"

# The project's training step against a plain loop of the identical model (IMDB and the LM, vanilla and astro).
if [ "$TINY" = 1 ]; then REF_ARGS=(--n-batches 2 --repeats 1 --batch-size 2 --vocab-size 100); else REF_ARGS=(--n-batches 20 --repeats 3); fi
stage reference 70 "$PYTHON" -m astromorphic bench throughput --reference --config "$CONFIG" --device "$DEVICE" \
    --task imdb,wikitext2 --model vanilla,astro --csv "$BENCH/reference_$DEVICE.csv" "${REF_ARGS[@]}" "${SIZES[@]}"

# The causal kernel benchmark at reduced sizes.
stage kernel_bench 75 env "${BENCH_ENV[@]}" DEVICE="$DEVICE" DTYPES=float32,bfloat16 PYTHON="$PYTHON" \
    OUT="$BENCH/attention_causal_$DEVICE.csv" bash workflow/scripts/bench_causal_gpu.sh

elapsed=$(($(date +%s) - START))
echo "total,$([ "$failures" = 0 ] && echo ok || echo failed),$failures,$elapsed,$TOTAL_S" >>"$STATUS"
if [ -n "${OUT:-}" ]; then mkdir -p "$OUT" && cp "$BENCH"/* "$OUT"/; fi
echo "gpu check: $failures stage(s) not ok, $elapsed s; results in $BENCH"
column -s, -t <"$STATUS" 2>/dev/null || cat "$STATUS"
[ "$failures" = 0 ]
