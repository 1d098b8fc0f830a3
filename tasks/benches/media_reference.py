"""Media benchmark helper: makes the test JPEGs/MP4 and times the Pillow + NumPy reference.

usage: media_reference.py make DIR N        -> N deterministic 640x480 photo-like JPEGs + clip.mp4
       media_reference.py time DIR PROCS    -> JSON {images, seconds, images_per_second, procs,
                                               pillow_only_images_per_second (PROCS == 1)}
The reference is Emu's process_img: Image.open().convert("RGB").resize((224,224), BICUBIC),
/255, CLIP mean/std in float64, CHW float32. `pillow_only` times the Pillow part alone (no NumPy
normalisation), a lower bound on the reference's cost.
"""
import json, os, subprocess, sys, time
from multiprocessing import Pool

import numpy as np
from PIL import Image

MEAN = np.array([0.48145466, 0.4578275, 0.40821073])
STD = np.array([0.26862954, 0.26130258, 0.27577711])


def make(d, n):
    os.makedirs(d, exist_ok=True)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:480, 0:640].astype(np.float64)
    for i in range(n):
        a, b, c = rng.uniform(0.005, 0.03, 3)
        base = np.stack([np.sin(xx * a + i) , np.cos(yy * b + 2 * i), np.sin((xx + yy) * c)], -1)
        img = (127 + 90 * base + rng.normal(0, 12, base.shape)).clip(0, 255).astype(np.uint8)
        Image.fromarray(img).save(os.path.join(d, f"img_{i:04d}.jpg"), quality=90)
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=640x360:rate=30:duration=10",
                    "-c:v", "libx264", "-pix_fmt", "yuv420p", os.path.join(d, "clip.mp4")], check=True)


def process(path):
    img = Image.open(path).convert("RGB").resize((224, 224), Image.BICUBIC)
    x = (np.asarray(img, dtype=np.float64) / 255.0 - MEAN) / STD
    return x.transpose(2, 0, 1).astype(np.float32).sum()


def pillow_only(path):
    return Image.open(path).convert("RGB").resize((224, 224), Image.BICUBIC).size


def time_ref(d, procs):
    files = sorted(os.path.join(d, f) for f in os.listdir(d) if f.endswith(".jpg"))
    extra = {}
    if procs == 1:
        t = time.perf_counter()
        for f in files:
            pillow_only(f)
        extra["pillow_only_images_per_second"] = len(files) / (time.perf_counter() - t)
    t = time.perf_counter()
    if procs == 1:
        for f in files:
            process(f)
    else:
        with Pool(procs) as p:
            p.map(process, files, chunksize=8)
    s = time.perf_counter() - t
    print(json.dumps({"images": len(files), "seconds": s, "images_per_second": len(files) / s, "procs": procs, **extra}))


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(sys.argv[2], int(sys.argv[3]))
    else:
        time_ref(sys.argv[2], int(sys.argv[3]))
