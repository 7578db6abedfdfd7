#!/usr/bin/env bash
# Everything Megalith checks on a CUDA machine, in one pass that fits a short lease (about
# 8 minutes on one H200): the GPU-marked tests, an end-to-end CLI train + generate on the GPU
# (bf16, torch.compile), the auto batch-size probe through the CLI, and benchmarks/gpu_throughput.py.
# Each step has its own time limit, so one that fails or hangs does not cost the others; the
# JSON lines and logs go to $OUT (default ./gpu-out). A step writes to a file, never into a pipe:
# torch.compile's worker processes outlive a timed-out step and would hold a pipe open forever.
# The whole test suite on the GPU (device auto means CUDA there) is the optional last step:
#     GPU_SUITE=1 bash benchmarks/gpu_session.sh    # about 4 more minutes on 16 cores
#
#     bash benchmarks/gpu_session.sh
set -u
OUT=${OUT:-gpu-out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
PY=${PYTHON:-python3}
step() {  # step NAME SECONDS COMMAND...: run with a limit, log to $OUT/NAME.log, report its status
    local name=$1 limit=$2
    shift 2
    local start=$SECONDS
    timeout -k 5 "$limit" "$@" >"$OUT/$name.log" 2>&1 </dev/null
    local rc=$?
    echo "== $name: rc=$rc in $((SECONDS - start)) s"
    tail -n 15 "$OUT/$name.log"
}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
$PY -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"

step gpu_tests 90 $PY -m pytest -q -p no:cacheprovider -m gpu tests/unit/training/test_batch_size.py

RUN=$(mktemp -d)/gpt
step train_gpt_cuda 150 $PY -m megalith train examples/python_gpt.yaml --output-dir "$RUN" \
    --set train.device=cuda --set train.precision=bf16 --set train.compile=true \
    --set train.max_steps=200 --set train.batch_size=auto
step generate_gpt_cuda 45 $PY -m megalith generate "$RUN" --prompt "def " --max-new-tokens 60
grep -h "batch_size" "$RUN/config.yaml" || true

step throughput_gpt2 150 $PY benchmarks/gpu_throughput.py --workloads gpt2 --steps 50 --warmup 10
step throughput_resnet50 150 $PY benchmarks/gpu_throughput.py --workloads resnet50 --steps 30 \
    --warmup 10
grep -h '^{' "$OUT"/throughput_*.log >"$OUT/throughput.jsonl" || true
if [ "${GPU_SUITE:-0}" = 1 ]; then
    step suite 300 $PY -m pytest -q -n 14 -p no:cacheprovider -p no:benchmark --timeout 120 \
        -rfE tests
    grep -E "^(FAILED|ERROR)" "$OUT/suite.log" || true
fi
