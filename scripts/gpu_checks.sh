#!/usr/bin/env bash
# Every GPU check of the LM engine in one call on a lent GPU machine, results under $OUT:
#   1. the Triton kernel vs eager torch and torch.compile (bench_token_nll.py --device cuda)
#   2. the `gpu`-marked tests (kernel vs float64, bf16 autocast training, GPU scorer)
#   3. document scoring with a 150M model: scorer vs plain loop (bench_lm_scoring.py)
# The machine runs its own python3 (torch, triton); siftline's missing pure dependencies travel
# as wheels in .whl/, fetched beforehand for the machine's Python 3.12:
#   pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_17_x86_64 -d .whl pydantic pydantic_core annotated-types \
#     typing-inspection typing_extensions zstandard
# Each step has its own time limit so one slow step cannot take the others' results with it.
#
#   bash scripts/gpu_checks.sh            # with OUT set to a folder for the logs
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-out/gpu}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
if compgen -G ".whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || exit 1
fi
# siftline laid out as it installs (setup.py): pipeline/ is `siftline`, kernels/ is
# `siftline.kernels`. A copy needs no build tools on the machine; numba serves the C kernels.
rm -rf /tmp/site/siftline && mkdir -p /tmp/site \
    && cp -r pipeline /tmp/site/siftline && cp -r kernels /tmp/site/siftline/kernels || exit 1
export PYTHONPATH=/tmp/site

{
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm,temperature.gpu \
        --format=csv
    python3 -c "import sys, torch, triton; print(sys.version.split()[0], 'torch', torch.__version__,
'triton', triton.__version__, torch.cuda.get_device_name())"
} 2>&1 | tee "$OUT/env.txt"

step() {  # step NAME SECONDS COMMAND...: run with a limit, log to $OUT/NAME.log
    local name=$1 limit=$2
    shift 2
    echo "== $name (limit ${limit}s)"
    local start=$SECONDS
    timeout "$limit" "$@" >"$OUT/$name.log" 2>&1
    local rc=$?
    echo "== $name: rc=$rc in $((SECONDS - start))s"
    return 0
}

step kernel 330 python3 scripts/bench_token_nll.py --device cuda --json "$OUT/kernel.json"
step gpu_tests 150 python3 -m pytest -q -p no:cacheprovider -m gpu \
    tests/test_kernels.py tests/test_lm_train.py tests/test_lm_scorer.py
step scoring 110 python3 scripts/bench_lm_scoring.py --docs 1500 --preset 150m --device cuda \
    --batch-tokens 65536 --repeats 3

for name in kernel gpu_tests scoring; do
    echo "---------------- $name"
    tail -n 25 "$OUT/$name.log"
done
