#!/usr/bin/env bash
# Installs the pinned Python side of the peer benchmarks into benches/peers/.venv (git-ignored).
# torch comes from PyTorch's CPU wheel index when that host is reachable, else from PyPI (the
# CUDA build: about 4 GB with its nvidia-* wheels; it runs on the CPU all the same).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="$here/.venv"
python3 -m venv "$venv"
pip=("$venv/bin/pip" install --no-cache-dir)
torch=(torch==2.5.1 torchvision==0.20.1)
"${pip[@]}" --index-url https://download.pytorch.org/whl/cpu "${torch[@]}" || "${pip[@]}" "${torch[@]}"
"${pip[@]}" -r "$here/requirements.txt"
"$venv/bin/python" -c 'import torch, pytorch_fid; print("torch", torch.__version__, "threads", torch.get_num_threads())'
