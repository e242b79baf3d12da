#!/usr/bin/env bash
# One call on a bare GPU machine (issue 17): install gplinker over the machine's own torch and
# transformers, run the CUDA tests and the three GPU benchmarks, and write every table into one
# results file. Sized to finish in under 8 minutes on one GPU (each step has its own time limit).
#
#   bash scripts/gpu_check.sh [RESULTS]            # default RESULTS: gpu_results.md
#   bash scripts/gpu_check.sh --dry-run [RESULTS]  # the same steps on the CPU with tiny shapes (CI runs it)
#
# Installing: `pip install --no-deps -e .` keeps the preinstalled torch/transformers. Wheels the
# machine lacks (it may have no network) go in gpu_wheels/ beside this repository's root, made on a
# networked machine with `pip download --only-binary=:all: -d gpu_wheels seqeval ...`; they are
# installed with --no-index --no-deps first. Every missing import is named before anything runs.
set -uo pipefail

dry=0
if [ "${1:-}" = "--dry-run" ]; then dry=1; shift; fi
root="$(cd "$(dirname "$0")/.." && pwd)"
results="$(realpath -m "${1:-gpu_results.md}")"
cd "$root"
python=${PYTHON:-python}
failed=()

section() { printf '\n## %s\n\n' "$1" >> "$results"; echo "== $1" >&2; }

# step NAME SECONDS COMMAND...: run it under a time limit (x slack: a CPU dry run gets 5x, a busy CPU is
# slow); its output goes into the results file
slack=$([ $dry = 1 ] && echo 5 || echo 1)
step() {
    local name=$1 limit=$(($2 * slack)); shift 2
    section "$name"
    { echo '```'; echo "\$ $*"; } >> "$results"
    local start=$SECONDS
    timeout --kill-after=10 "$limit" "$@" >> "$results" 2>&1
    local rc=$?
    { echo '```'; echo "exit $rc after $((SECONDS - start)) s"; } >> "$results"
    [ "$rc" -eq 0 ] || failed+=("$name (exit $rc)")
}

: > "$results"
{
    echo "# gpu_check $(date -u '+%Y-%m-%d %H:%M UTC')$([ $dry = 1 ] && echo ' (dry run: CPU, tiny shapes)')"
    echo
    echo '```'
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || echo "nvidia-smi: none"
    "$python" -c 'import sys, torch; print("python", sys.version.split()[0], "| torch", torch.__version__,
        "| CUDA", torch.version.cuda, "| available:", torch.cuda.is_available())'
    echo '```'
} >> "$results"

if [ $dry = 0 ]; then
    if compgen -G "gpu_wheels/*.whl" > /dev/null; then
        step "install: gpu_wheels" 120 "$python" -m pip install --no-index --no-deps gpu_wheels/*.whl
    fi
    step "install: gplinker --no-deps" 120 "$python" -m pip install --no-deps --no-build-isolation -e .
fi
missing=$("$python" - <<'EOF'
import importlib
names = ["torch", "transformers", "typer", "rich", "datasets", "seqeval", "safetensors", "yaml", "numpy", "gplinker"]
print(" ".join(n for n in names if importlib.util.find_spec(n) is None))
EOF
)
if [ -n "$missing" ]; then
    section "missing imports"
    echo "not importable: $missing (put their wheels in gpu_wheels/, see the top of this script)" | tee -a "$results" >&2
    exit 1
fi

if [ $dry = 1 ]; then
    device=cpu
    heads=(--smoke --device cpu)
    train=(--smoke --device cpu --amp bf16)
    predict=(--smoke --device cpu --no-onnx --rss-sizes none)
else
    device=cuda
    heads=(--device cuda --rounds 2 --warmup 3 --repeats 10)
    train=(--device cuda --amp bf16 --batch 32 --length 128 --steps 10 --warmup 3)
    predict=(--device cuda --no-onnx --rss-sizes none --hidden 768 --layers 12 --attention-heads 12 --lines 2000
             --max-length 128 --repeats 3)
fi

step "pytest -m cuda (heads, loss, AMP training, predict on $device)" 240 \
    "$python" -m pytest -m cuda -q -rs -p no:cacheprovider tests/test_cuda.py
step "bench_heads: gplinker vs bert4torch (float32 and bf16, DuIE and CLUENER shapes)" 150 \
    "$python" scripts/bench_heads.py "${heads[@]}"
step "bench_train: full step / encoder-only step (BERT-base, L 128, bf16)" 90 \
    "$python" scripts/bench_train.py "${train[@]}"
step "bench_predict: windows/s, predict vs the encoder alone" 120 \
    "$python" scripts/bench_predict.py "${predict[@]}"

section "summary"
if [ ${#failed[@]} -eq 0 ]; then
    echo "every step passed" | tee -a "$results" >&2
else
    printf 'failed: %s\n' "${failed[@]}" | tee -a "$results" >&2
    exit 1
fi
