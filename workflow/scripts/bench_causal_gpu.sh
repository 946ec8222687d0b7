#!/usr/bin/env bash
# Causal attention on a GPU: the Triton astromorphic kernel against SDPA (flash) causal attention and the
# PyTorch path of the astromorphic read, forward + backward, N in 512..8192, d in 64 and 128, float32 and
# bfloat16. One `astromorphic bench attention` run; writes the CSV (default
# results/reference/bench/attention_causal_cuda.csv) and prints the summary.
#
#   bash workflow/scripts/bench_causal_gpu.sh
#
# Every setting can be overridden from the environment (the tests run it on the CPU with tiny sizes under
# TRITON_INTERPRET=1): DEVICE, DTYPES, NS, DIMS, BATCH, HEADS, REPEATS, OUT, PYTHON, MAX_SECONDS.
set -euo pipefail

DEVICE="${DEVICE:-cuda}"
DTYPES="${DTYPES:-float32,bfloat16}"
NS="${NS:-512,1024,2048,4096,8192}"
DIMS="${DIMS:-64,128}"
BATCH="${BATCH:-4}"
HEADS="${HEADS:-8}"
REPEATS="${REPEATS:-5}"
OUT="${OUT:-results/reference/bench/attention_causal_${DEVICE}.csv}"
PYTHON="${PYTHON:-python}"
MAX_SECONDS="${MAX_SECONDS:-60}"

if [ "$DEVICE" = cuda ]; then
    "$PYTHON" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else "bench_causal_gpu.sh: no CUDA device (set DEVICE=cpu and TRITON_INTERPRET=1 for a dry run)")'
    "$PYTHON" -c 'import torch; print("device:", torch.cuda.get_device_name(0), "| torch", torch.__version__)'
fi

"$PYTHON" -m astromorphic bench attention \
    --out "$OUT" \
    --device "$DEVICE" \
    --dtype "$DTYPES" \
    --n "$NS" \
    --dim "$DIMS" \
    --batch "$BATCH" \
    --heads "$HEADS" \
    --repeats "$REPEATS" \
    --kinds softmax,astromorphic_triton,astromorphic_torch \
    --causal true \
    --max-seconds "$MAX_SECONDS"
