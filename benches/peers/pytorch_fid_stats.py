"""pytorch-fid 0.3.0's `python -m pytorch_fid --save-stats IMAGES OUT` with the weights taken from
a safetensors file instead of the download (same network, same data loader, same defaults:
batch 50, dims 2048, min(cores, 8) loader workers). Run with the peers' venv.

usage: pytorch_fid_stats.py WEIGHTS.safetensors IMAGES_DIR OUT.npz
"""
import os
import sys

import torch
from safetensors.torch import load_file
from pytorch_fid import fid_score, inception


def fixture_state_dict(path):
    sd = load_file(path)
    # The classifier and BatchNorm counters are not used for pool3; fill what the file lacks.
    net = inception._inception_v3(num_classes=1008, aux_logits=False, weights=None)
    for k, v in net.state_dict().items():
        if k not in sd and (k.startswith("fc.") or k.endswith("num_batches_tracked")):
            sd[k] = torch.zeros_like(v)
    return sd


def main():
    weights, images, out = sys.argv[1:4]
    if os.path.exists(out):  # save_fid_stats refuses to overwrite
        os.remove(out)
    sd = fixture_state_dict(weights)
    inception.load_state_dict_from_url = lambda *a, **k: sd
    workers = min(len(os.sched_getaffinity(0)), 8)
    fid_score.save_fid_stats([images, out], 50, "cpu", 2048, workers)


if __name__ == "__main__":
    main()
