#!/usr/bin/env bash
# Installs the Debian 12 packages emu-eval needs (run as root or with sudo).
# `bash scripts/setup.sh`         what building and running `emu-eval` needs:
#   libturbojpeg0-dev  libjpeg-turbo TurboJPEG API (Pillow-identical JPEG decoding)
#   ffmpeg  writes the built-in sample data (JPEG, AVI, MP4) in the official layouts
#   libav*-dev + libclang-dev + pkg-config  video decoding (ffmpeg-sys-next bindings at build time;
#                                           the libraries are loaded when a video is decoded)
#   wordnet-base  WordNet 3.0 database (/usr/share/wordnet) for NExT-QA WUPS
#   fonts-dejavu-core  DejaVu Sans for text in report plots (plotters draws text with it)
# `bash scripts/setup.sh --test`  adds what the test suite and CI use:
#   chromium  headless browser for the report page test (index.html self-check and screenshot)
#   cmake + libopenblas-dev  static faiss build for the `faiss` retrieval backend (cargo feature)
#   slurm-wlm + munge  a single-node Slurm cluster for the scheduler test (scripts/slurm-local.sh)
set -euo pipefail
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
PKGS="ffmpeg libturbojpeg0-dev libavformat-dev libavcodec-dev libswscale-dev libavutil-dev libclang-dev pkg-config wordnet-base fonts-dejavu-core"
if [ "${1:-}" = "--test" ]; then
  PKGS="$PKGS chromium cmake libopenblas-dev slurm-wlm munge"
fi
missing=""
for p in $PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
fi
