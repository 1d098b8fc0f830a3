"""Reference timing for tasks/benches/fid.rs: pytorch-fid 0.3.0's FID computation.

Usage: python3 fid_reference.py A.npy B.npy   -> one JSON line on stdout.
`calculate_frechet_distance` below is copied from pytorch-fid 0.3.0 (src/pytorch_fid/fid_score.py);
the statistics follow `calculate_activation_statistics` (float64 activations, np.mean, np.cov).
"""
import json
import sys
import time

import numpy as np
from scipy import linalg


def calculate_frechet_distance(mu1, sigma1, mu2, sigma2, eps=1e-6):
    mu1 = np.atleast_1d(mu1)
    mu2 = np.atleast_1d(mu2)
    sigma1 = np.atleast_2d(sigma1)
    sigma2 = np.atleast_2d(sigma2)
    assert mu1.shape == mu2.shape, "Training and test mean vectors have different lengths"
    assert sigma1.shape == sigma2.shape, "Training and test covariances have different dimensions"
    diff = mu1 - mu2
    # Product might be almost singular
    covmean, _ = linalg.sqrtm(sigma1.dot(sigma2), disp=False)
    if not np.isfinite(covmean).all():
        msg = ("fid calculation produces singular product; adding %s to diagonal of cov estimates") % eps
        print(msg, file=sys.stderr)
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
    # Numerical error might give slight imaginary component
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            m = np.max(np.abs(covmean.imag))
            raise ValueError("Imaginary component {}".format(m))
        covmean = covmean.real
    tr_covmean = np.trace(covmean)
    return diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * tr_covmean


def stats(act):
    return np.mean(act, axis=0), np.cov(act, rowvar=False)


def main():
    a = np.load(sys.argv[1]).astype(np.float64)
    b = np.load(sys.argv[2]).astype(np.float64)
    t0, c0 = time.perf_counter(), time.process_time()
    mu1, s1 = stats(a)
    mu2, s2 = stats(b)
    t1, c1 = time.perf_counter(), time.process_time()
    fid = calculate_frechet_distance(mu1, s1, mu2, s2)
    t2, c2 = time.perf_counter(), time.process_time()
    print(json.dumps({
        "fid": float(fid),
        "stats_seconds": t1 - t0,
        "distance_seconds": t2 - t1,
        "seconds": t2 - t0,
        "cpu_stats_seconds": c1 - c0,
        "cpu_distance_seconds": c2 - c1,
        "cpu_seconds": c2 - c0,
        "numpy": np.__version__,
        "scipy": __import__("scipy").__version__,
    }))


if __name__ == "__main__":
    main()
