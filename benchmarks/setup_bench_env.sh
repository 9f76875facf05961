#!/usr/bin/env bash
# Separate environment for the speed benchmark: deepinv needs torchvision, and the only torchvision that imports
# here comes with torch 2.14.1 (a CUDA build, ~5.5 GB, run on the CPU). It never touches .venv (default/test).
# On aarch64 use TORCH_PAIR="torch==2.9.1 torchvision==0.24.1".
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${BENCH_VENV:-.venv-bench}
TORCH_PAIR=${TORCH_PAIR:-"torch==2.14.1 torchvision==0.29.1"}
if [ ! -f "$VENV/.installed" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  # shellcheck disable=SC2086
  "$VENV/bin/pip" install -q $TORCH_PAIR -e ".[bench]"
  touch "$VENV/.installed"
fi
"$VENV/bin/python" -c "import torch, torchvision, deepinv, pytomography; print('bench env:', torch.__version__, 'deepinv', deepinv.__version__, 'pytomography', pytomography.__version__ if hasattr(pytomography, '__version__') else '?')"
