#!/usr/bin/env bash
# Make the benchmark venv for scripts/bench_heads.py: bert4torch needs torchvision, and PyPI's
# torchvision does not import beside the project's torch 2.13.0, so the comparison gets its own
# interpreter with torch 2.14.1 + torchvision 0.29.1 (served from the local wheel cache here).
# bert4torch 0.6.2 imports requests, tokenizers, httpx and regex without declaring them all.
# gplinker is not installed there: bench_heads.py puts the repo root on sys.path (heads + loss need only torch).
#
#   bash scripts/bench_env.sh [VENV]                 # default VENV=/tmp/venv-bench
#   /tmp/venv-bench/bin/python scripts/bench_heads.py
set -euo pipefail
VENV="${1:-/tmp/venv-bench}"
python -m venv "$VENV"
"$VENV/bin/pip" install torch==2.14.1 torchvision==0.29.1
"$VENV/bin/pip" install bert4torch requests tokenizers httpx regex
"$VENV/bin/python" -W ignore -c "import bert4torch.layers, bert4torch.losses, torch; print('bert4torch ok, torch', torch.__version__)"
