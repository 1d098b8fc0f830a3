"""Vision tower forward alone: emu-eval's `EvaVisionTransformer::forward_features` against Emu's own
PyTorch `EVAVisionTransformer.forward_features` (benches/peers/emu/eva_vit_model.py, vendored from
baaivision/Emu 13c395e) on the same deterministic random weights and images, run alternately.

usage (from the repository root, after benches/peers/setup.sh and
`cargo build --release -p models --bench peer`):
    benches/peers/.venv/bin/python benches/peers/vision.py [--images 14] [--width 1024]
        [--layers 16] [--rounds 3] [--peer-bin PATH]

Each side is a fresh process that loads the weights and images, then times one
`forward_features` call (printed as `forward_s`); the medians of those times give the ratio
(PyTorch / emu-eval, above 1 means emu-eval is faster). Whole-process figures come from common.py.
The PyTorch model is built with the Emu-14B settings that apply on the CPU: `xattn=False`
(xformers' memory-efficient attention is CUDA-only; the plain softmax(q·kᵀ)·v path runs instead),
no RoPE, no sub-LN, qkv bias, LayerNorm eps 1e-6, no layer scale.
"""
import argparse
import os
import sys
import types

sys.path.insert(0, os.path.dirname(__file__))
from common import compare_forward, time_forwards, warm_env, newest_peer_bin  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PATCH, IMAGE, HEAD_WIDTH, MLP_RATIO = 14, 224, 64, 4.3637


def build(width, layers):
    """Emu's tower with its own initialisation under a fixed seed."""
    import torch
    from functools import partial

    try:
        import einops  # noqa: F401  (only rope.py's RoPE uses it; Emu-14B has no RoPE)
    except ImportError:
        sys.modules["einops"] = types.SimpleNamespace(rearrange=None, repeat=None)
    from emu.eva_vit_model import EVAVisionTransformer
    from emu.transformer import LayerNorm

    torch.manual_seed(21)
    model = EVAVisionTransformer(
        img_size=IMAGE, patch_size=PATCH, num_classes=1024, use_mean_pooling=False,
        init_values=None, patch_dropout=0.0, embed_dim=width, depth=layers,
        num_heads=width // HEAD_WIDTH, mlp_ratio=MLP_RATIO, qkv_bias=True, drop_path_rate=0.0,
        norm_layer=partial(LayerNorm, eps=1e-6), xattn=False, rope=False, postnorm=False,
        pt_hw_seq_len=16, intp_freq=False, naiveswiglu=False, subln=False,
    )
    # Emu's init leaves the biases at 0 and cls/pos embeddings small; random biases and q/v
    # biases make the check cover them too.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias") or name.endswith("_bias"):
                p.normal_(0.0, 0.02)
    return model.eval()


def prepare(out, images, width, layers):
    """Writes weights (emu-eval key names: `visual.` + the tower's own) and images once."""
    import torch
    from safetensors.torch import save_file

    tag = f"w{width}-l{layers}"
    weights = os.path.join(out, f"vision-{tag}.safetensors")
    inputs = os.path.join(out, f"vision-images-{images}.safetensors")
    if not os.path.exists(weights):
        model = build(width, layers)
        keep = ("cls_token", "pos_embed", "patch_embed.", "blocks.")
        sd = {f"visual.{k}": v.contiguous() for k, v in model.state_dict().items() if k.startswith(keep)}
        save_file(sd, weights)
    if not os.path.exists(inputs):
        g = torch.Generator().manual_seed(2026)
        pixels = torch.randn(images, 3, IMAGE, IMAGE, generator=g)
        save_file({"pixels": pixels}, inputs)
    return weights, inputs


def torch_side(weights, inputs, out, width, layers):
    import torch
    from safetensors.torch import load_file, save_file

    model = build(width, layers)
    sd = {k[len("visual."):]: v for k, v in load_file(weights).items()}
    missing, _ = model.load_state_dict(sd, strict=False)
    # Unused by forward_features: the final norm/head (not stored in the emu-eval layout).
    assert all(not k.startswith(("blocks.", "patch_embed.", "cls_token", "pos_embed")) for k in missing), missing
    pixels = load_file(inputs)["pixels"]
    with torch.inference_mode():
        feats = time_forwards(lambda: model.forward_features(pixels))
    save_file({"features": feats.contiguous()}, out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=14)
    ap.add_argument("--width", type=int, default=1024)
    ap.add_argument("--layers", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--warm", type=int, default=0,
                    help="forwards each process runs after the first; the last is reported as the warm forward")
    ap.add_argument("--peer-bin", default=None, help="the `peer` bench binary (default: newest in target/release/deps)")
    ap.add_argument("--label", default="emu-eval")
    ap.add_argument("--before-bin", default=None,
                    help="another `peer` binary (e.g. built at the commit before a change), run as a third side")
    ap.add_argument("--torch-side", nargs=3, metavar=("WEIGHTS", "INPUTS", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.torch_side:
        torch_side(*args.torch_side, args.width, args.layers)
        return

    out = os.path.join(ROOT, "target", "peers")
    os.makedirs(out, exist_ok=True)
    weights, inputs = prepare(out, args.images, args.width, args.layers)
    peer = args.peer_bin or newest_peer_bin(ROOT)
    ours_out, ref_out = os.path.join(out, "vision-ours.safetensors"), os.path.join(out, "vision-torch.safetensors")
    sides = [
        (args.label, [peer, "vision", weights, inputs, ours_out, str(args.width), str(args.layers),
                      str(HEAD_WIDTH), str(MLP_RATIO)], dict(os.environ)),
        ("emu-pytorch", [sys.executable, __file__, "--width", str(args.width), "--layers", str(args.layers),
                         "--torch-side", weights, inputs, ref_out], dict(os.environ)),
    ]
    print(f"vision tower width {args.width}, {args.layers} blocks, {args.images} images {IMAGE}x{IMAGE}; "
          f"{args.rounds} rounds; cores: {os.cpu_count()}; peer binary {peer}")
    warm_env(sides, args.warm)
    compare_forward(sides, args.rounds, "emu-pytorch", args.label, args.before_bin,
                    os.path.join(out, "vision-before.safetensors"), (ours_out, ref_out), "features")


if __name__ == "__main__":
    main()
