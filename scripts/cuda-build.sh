#!/usr/bin/env bash
# Builds the `cuda` emu-eval binary on a machine without a GPU (build-notes.md, "A CUDA build
# without a local GPU"): the CUDA 13.0 toolkit wheels from PyPI into one target folder,
# unversioned library symlinks, a link-time stub for libcuda.so.1 (the real driver is used at run
# time), CUDA_COMPUTE_CAP=90 (H100/H200), then a release build with `--features cuda`.
# Not part of .ci/run. Output: target/release/emu-eval and target/emu-eval-cuda.xz (to carry).
#   usage: bash scripts/cuda-build.sh [TOOLKIT_DIR]   (default: target/cuda-toolkit)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
TK=${1:-$ROOT/target/cuda-toolkit}
CU=$TK/nvidia/cu13

if [ ! -x "$CU/bin/nvcc" ]; then
  # One pip call: a second call into the same --target silently skips the existing nvidia/ folder.
  python3 -m pip install --quiet --no-deps --target "$TK" \
    nvidia-cuda-nvcc==13.0.88 nvidia-cuda-crt==13.0.88 nvidia-nvvm==13.0.88 \
    nvidia-cuda-runtime==13.0.96 nvidia-cuda-cccl==13.0.85 nvidia-cublas==13.0.0.19 \
    nvidia-curand==10.4.0.35 nvidia-cuda-nvrtc==13.0.88
fi

# Unversioned names for the linker.
for lib in cudart cublas cublasLt curand nvrtc; do
  real=$(ls "$CU/lib/lib$lib.so."* 2>/dev/null | sort | head -1 || true)
  if [ -z "$real" ]; then echo "cuda-build: lib$lib.so.* not found under $CU/lib" >&2; exit 1; fi
  ln -sf "$(basename "$real")" "$CU/lib/lib$lib.so"
done

# libcuda.so stub (soname libcuda.so.1): every driver function cudarc declares, as empty symbols.
STUB=$TK/stub
mkdir -p "$STUB"
CUDARC=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/cudarc-0.19.* 2>/dev/null | sort | tail -1)
if [ -z "$CUDARC" ]; then cargo fetch --quiet; CUDARC=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/cudarc-0.19.* | sort | tail -1); fi
grep -ho '^ *fn cu[A-Za-z0-9_]*(' "$CUDARC/src/driver/sys/mod.rs" | sed 's/^ *fn \(.*\)(/\1/' | sort -u \
  | awk '{print "void " $1 "(void) {}"}' > "$STUB/libcuda_stub.c"
cc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$STUB/libcuda.so" "$STUB/libcuda_stub.c"
ln -sf libcuda.so "$STUB/libcuda.so.1"

export CUDA_HOME=$CU CUDA_PATH=$CU PATH=$CU/bin:$PATH
export CUDA_COMPUTE_CAP=90 CUDAFORGE_THREADS=${CUDAFORGE_THREADS:-2}
export LIBRARY_PATH=$STUB:$CU/lib${LIBRARY_PATH:+:$LIBRARY_PATH}
export RUSTFLAGS="${RUSTFLAGS:-} -L native=$STUB -L native=$CU/lib"
start=$(date +%s)
cargo build --release -p harness --features cuda
echo "cuda-build: release build took $(( $(date +%s) - start )) s"
strip -o target/emu-eval-cuda target/release/emu-eval
xz -T2 -6 -f -k target/emu-eval-cuda
ls -l target/emu-eval-cuda target/emu-eval-cuda.xz
