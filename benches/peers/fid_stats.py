"""FID statistics of a folder of JPEGs: `emu-eval fid-stats` against pytorch-fid's `--save-stats`
on the same images and weights, run alternately.

usage (from the repository root, after benches/peers/setup.sh and a release build):
    benches/peers/.venv/bin/python benches/peers/fid_stats.py [--images N] [--rounds R]
        [--emu-eval target/release/emu-eval] [--env-ours K=V ...]

Generates N deterministic 640x480 JPEGs under target/peers/fid-images-N (once), then runs each
side R times in turn and prints medians, the ratio and the agreement of the two statistics.
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from common import alternate, summary  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
WEIGHTS = os.path.join(ROOT, "..", "shared", "fixtures", "fid-inception", "inception_weights.safetensors")


def make_images(folder, n):
    from PIL import Image

    if os.path.isdir(folder) and len(os.listdir(folder)) == n:
        return
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(2026)
    yy, xx = np.mgrid[0:480, 0:640].astype(np.float32)
    for i in range(n):
        # Smooth colour fields, a few discs and noise: JPEG-compressible like photos, not flat.
        img = np.zeros((480, 640, 3), np.float32)
        for c in range(3):
            fx, fy, ph = rng.uniform(0.002, 0.03, 2).tolist() + [rng.uniform(0, 6.3)]
            img[..., c] = 128 + 100 * np.sin(xx * fx + yy * fy + ph)
        for _ in range(6):
            cx, cy, r = rng.uniform(0, 640), rng.uniform(0, 480), rng.uniform(20, 120)
            img[(xx - cx) ** 2 + (yy - cy) ** 2 < r * r] = rng.uniform(0, 255, 3)
        img += rng.normal(0, 12, img.shape)
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(
            os.path.join(folder, f"img{i:04d}.jpg"), quality=90
        )


def fid(mu1, s1, mu2, s2):
    from scipy import linalg

    covmean, _ = linalg.sqrtm(s1.dot(s2), disp=False)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean.real))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--emu-eval", default=os.path.join(ROOT, "target", "release", "emu-eval"))
    ap.add_argument("--env-ours", nargs="*", default=[], help="extra K=V for emu-eval's side")
    ap.add_argument("--label", default="emu-eval")
    ap.add_argument("--with-candle-conv", action="store_true",
                    help="also run emu-eval with EMU_EVAL_CONV=candle (the convolution before issue 21)")
    args = ap.parse_args()

    folder = os.path.join(ROOT, "target", "peers", f"fid-images-{args.images}")
    make_images(folder, args.images)
    out = os.path.join(ROOT, "target", "peers")
    ours_env = dict(os.environ, **dict(kv.split("=", 1) for kv in args.env_ours))
    ours_npz, ref_npz = os.path.join(out, "ours.npz"), os.path.join(out, "pytorch-fid.npz")
    sides = [
        (args.label, [args.emu_eval, "fid-stats", "--images", folder, "--out", ours_npz,
                      "--inception", WEIGHTS], ours_env),
        ("pytorch-fid", [sys.executable, os.path.join(os.path.dirname(__file__), "pytorch_fid_stats.py"),
                         WEIGHTS, folder, ref_npz], dict(os.environ)),
    ]
    if args.with_candle_conv:
        env = dict(ours_env, EMU_EVAL_CONV="candle")
        sides.insert(1, (f"{args.label} (candle conv2d)", [*sides[0][1][:5], os.path.join(out, "before.npz"), *sides[0][1][6:]], env))
    print(f"{args.images} JPEGs 640x480 in {folder}; {args.rounds} rounds; cores: {os.cpu_count()}")
    results = alternate(sides, args.rounds)
    summary(results, "pytorch-fid", args.label)
    a, b = np.load(ours_npz), np.load(ref_npz)
    print(
        f"agreement: max |mu diff| {np.abs(a['mu'] - b['mu']).max():.3e}, "
        f"max |sigma diff| {np.abs(a['sigma'] - b['sigma']).max():.3e}, "
        f"FID(ours, pytorch-fid) {fid(a['mu'], a['sigma'], b['mu'], b['sigma']):.3e}"
    )


if __name__ == "__main__":
    main()
