"""One classifier-free-guidance UNet step: emu-eval's `UNet2DConditionModel::forward` against
diffusers 0.27.2 `UNet2DConditionModel` on the same deterministic random weights and inputs
(batch 2 = conditional + unconditional, latents 4×S×S, text states 77×768), run alternately.

usage (from the repository root, after benches/peers/setup.sh and
`cargo build --release -p models --bench peer`):
    benches/peers/.venv/bin/python benches/peers/unet.py [--preset sd15] [--latent 64] [--rounds 3]

`--preset sd15` is Stable Diffusion 1.5's UNet (block_out_channels 320/640/1280/1280, 2 layers
per block, 8 heads, cross-attention width 768; 860 M parameters); `--preset small` halves the
widths (for a quick check). Each side is a fresh process that loads the weights and inputs, then
times one forward (printed as `forward_s`); the medians give the ratio (diffusers / emu-eval).
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from common import compare_forward, time_forwards, warm_env, newest_peer_bin  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TIMESTEP = 981  # the first step of a 50-step PNDM schedule

PRESETS = {
    "sd15": {"block_out_channels": [320, 640, 1280, 1280], "attention_head_dim": 8, "cross_attention_dim": 768},
    "small": {"block_out_channels": [160, 320, 640, 640], "attention_head_dim": 8, "cross_attention_dim": 768},
}


def config(preset, latent):
    """The diffusers config, in the field names both diffusers 0.27 and emu-eval (0.15's) read."""
    return {
        "_class_name": "UNet2DConditionModel",
        "sample_size": latent,
        "in_channels": 4,
        "out_channels": 4,
        "center_input_sample": False,
        "flip_sin_to_cos": True,
        "freq_shift": 0,
        "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
        "mid_block_type": "UNetMidBlock2DCrossAttn",
        "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
        "only_cross_attention": False,
        "layers_per_block": 2,
        "downsample_padding": 1,
        "mid_block_scale_factor": 1,
        "act_fn": "silu",
        "norm_num_groups": 32,
        "norm_eps": 1e-05,
        "use_linear_projection": False,
        "upcast_attention": False,
        **PRESETS[preset],
    }


def build(cfg):
    import torch
    from diffusers import UNet2DConditionModel

    torch.manual_seed(21)
    model = UNet2DConditionModel(**{k: v for k, v in cfg.items() if not k.startswith("_")})
    return model.eval()


def prepare(out, preset, latent):
    import torch
    from safetensors.torch import save_file

    folder = os.path.join(out, f"unet-{preset}-{latent}")
    weights, inputs = os.path.join(folder, "unet.safetensors"), os.path.join(folder, "inputs.safetensors")
    if not os.path.exists(weights):
        os.makedirs(folder, exist_ok=True)
        cfg = config(preset, latent)
        model = build(cfg)
        # diffusers zero-initialises nothing here, but make every bias non-zero so the check covers it.
        with torch.no_grad():
            for name, p in model.named_parameters():
                if name.endswith("bias"):
                    p.normal_(0.0, 0.02)
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, weights + ".tmp")
        with open(os.path.join(folder, "config.json"), "w") as f:
            json.dump(cfg, f, indent=1)
        os.replace(weights + ".tmp", weights)
    if not os.path.exists(inputs):
        g = torch.Generator().manual_seed(2026)
        lat = torch.randn(1, 4, latent, latent, generator=g)
        ctx = torch.randn(2, 77, PRESETS[preset]["cross_attention_dim"], generator=g)
        save_file({"latents": torch.cat([lat, lat]), "context": ctx,
                   "timestep": torch.tensor([float(TIMESTEP)])}, inputs)
    return folder, inputs


def torch_side(folder, inputs, out):
    import torch
    from safetensors.torch import load_file, save_file

    with open(os.path.join(folder, "config.json")) as f:
        cfg = json.load(f)
    model = build(cfg)
    model.load_state_dict(load_file(os.path.join(folder, "unet.safetensors")), strict=True)
    x = load_file(inputs)
    t = int(x["timestep"][0])
    with torch.inference_mode():
        noise = time_forwards(lambda: model(x["latents"], t, encoder_hidden_states=x["context"]).sample)
    save_file({"noise": noise.contiguous()}, out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", choices=sorted(PRESETS), default="sd15")
    ap.add_argument("--latent", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--warm", type=int, default=0,
                    help="forwards each process runs after the first; the last is reported as the warm forward")
    ap.add_argument("--peer-bin", default=None)
    ap.add_argument("--label", default="emu-eval")
    ap.add_argument("--before-bin", default=None,
                    help="another `peer` binary (e.g. built at the commit before a change), run as a third side")
    ap.add_argument("--torch-side", nargs=3, metavar=("FOLDER", "INPUTS", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.torch_side:
        torch_side(*args.torch_side)
        return

    out = os.path.join(ROOT, "target", "peers")
    folder, inputs = prepare(out, args.preset, args.latent)
    peer = args.peer_bin or newest_peer_bin(ROOT)
    ours_out, ref_out = os.path.join(out, "unet-ours.safetensors"), os.path.join(out, "unet-diffusers.safetensors")
    sides = [
        (args.label, [peer, "unet", folder, inputs, ours_out], dict(os.environ)),
        ("diffusers", [sys.executable, __file__, "--torch-side", folder, inputs, ref_out], dict(os.environ)),
    ]
    print(f"UNet preset {args.preset}, latents 2x4x{args.latent}x{args.latent}, context 2x77, t={TIMESTEP}; "
          f"{args.rounds} rounds; cores: {os.cpu_count()}; peer binary {peer}")
    warm_env(sides, args.warm)
    compare_forward(sides, args.rounds, "diffusers", args.label, args.before_bin,
                    os.path.join(out, "unet-before.safetensors"), (ours_out, ref_out), "noise")


if __name__ == "__main__":
    main()
