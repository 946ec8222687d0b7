#!/usr/bin/env bash
# Stage what workflow/scripts/gpu_check.sh needs on a machine without the shared data or the workflow's
# packages, in git-ignored folders of the checkout so that they travel with it (together under 64 MiB):
#
#   bash workflow/scripts/stage_gpu_check.sh [DATA_SRC] [DATA_DEST] [WHEEL_DEST]
#
#   DATA_SRC    local copies in the official formats (default ../shared/data): imdb/, wikitext2/ and gpt2/
#               are copied (CIFAR-10 is not: the check's runs are IMDB and WikiText-2)
#   DATA_DEST   default device-data/
#   WHEEL_DEST  default .whl/: CPython 3.12 manylinux x86_64 wheels of pydantic and its dependencies, at the
#               versions installed here (the GPU machine has torch, numpy, pandas, pyyaml, tokenizers, pytest
#               and Triton, not pydantic); wheels already there are kept
#
# Then, on the GPU machine: WHEELS=.whl bash workflow/scripts/gpu_check.sh device-data
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SRC=${1:-$ROOT/../shared/data}
DEST=${2:-$ROOT/device-data}
WHEELS=${3:-$ROOT/.whl}
PYTHON=${PYTHON:-python3}
# Pure-Python packages and the one compiled package (pydantic-core) the check needs beyond the GPU machine's.
PURE=(pydantic annotated-types typing-inspection typing-extensions)
COMPILED=(pydantic-core)

for sub in imdb wikitext2 gpt2; do
    [ -d "$SRC/$sub" ] || { echo "stage_gpu_check.sh: $SRC/$sub is missing" >&2; exit 2; }
    mkdir -p "$DEST/$sub"
    cp -r "$SRC/$sub/." "$DEST/$sub/"
    chmod -R u+w "$DEST/$sub"
done

version() { "$PYTHON" -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$1"; }
mkdir -p "$WHEELS"
for name in "${PURE[@]}"; do
    "$PYTHON" -m pip download -q --no-deps --only-binary=:all: -d "$WHEELS" "$name==$(version "$name")"
done
for name in "${COMPILED[@]}"; do
    "$PYTHON" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d "$WHEELS" "$name==$(version "$name")"
done
du -sh "$DEST" "$WHEELS"
