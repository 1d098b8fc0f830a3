#!/usr/bin/env bash
# The main job on bundled sample data (no weights needed): score sample outputs with the
# official-parity metrics, and validate the shared dataset fixtures when ../shared is present.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q -p harness --bin emu-eval
bin=target/debug/emu-eval
echo "== COCO caption metrics (examples/captions.json)"; $bin metric caption --input examples/captions.json --compact | head -c 400; echo
echo "== VQA accuracy, official and Emu variants (examples/vqa.json)"
for v in official emu; do $bin metric vqa --variant "$v" --input examples/vqa.json --compact | head -c 300; echo; done
if [ -d ../shared/fixtures/datasets ]; then
  echo "== data check on ../shared/fixtures/datasets"
  for t in coco_caption vqav2 okvqa vizwiz visdial msvd_qa msrvtt_qa nextqa coco_t2i; do
    $bin data check --task "$t" --data-root ../shared/fixtures/datasets || true
  done
fi
