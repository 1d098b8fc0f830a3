#!/usr/bin/env bash
# Installs the system packages emu-eval needs on Debian 12 (run as root or with sudo).
#   wordnet-base  WordNet 3.0 database (/usr/share/wordnet) for NExT-QA WUPS
#   libturbojpeg0-dev  libjpeg-turbo TurboJPEG API (Pillow-identical JPEG decoding)
#   ffmpeg + libav*-dev + libclang-dev + pkg-config  video decoding (ffmpeg-sys-next bindings at build time;
#                                                    the libraries are loaded when a video is decoded)
#   fonts-dejavu-core  DejaVu Sans for text in report plots (plotters draws text with it)
#   chromium  headless browser for the report page test (index.html self-check and screenshot)
#   cmake + libopenblas-dev  static faiss build for the `faiss` retrieval backend (cargo feature)
#   slurm-wlm + munge  a single-node Slurm cluster for the scheduler test (scripts/slurm-local.sh)
set -euo pipefail
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
PKGS="wordnet-base libturbojpeg0-dev ffmpeg libavformat-dev libavcodec-dev libswscale-dev libavutil-dev libclang-dev pkg-config fonts-dejavu-core chromium cmake libopenblas-dev slurm-wlm munge"
missing=""
for p in $PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
fi
