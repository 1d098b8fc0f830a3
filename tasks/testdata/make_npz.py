"""Writes the .npz test files of tasks/src/metrics/npz.rs (run: python3 make_npz.py).

fid_stats_compressed.npz is what pytorch-fid's `--save-stats` writes
(`np.savez_compressed(path, mu=mu, sigma=sigma)`, float64); the float32 file and the one with an
extra entry cover other NumPy writers. Values are exact in binary so the test compares bit for bit.
"""
import numpy as np

d = 6
mu = np.arange(d, dtype=np.float64) * 0.25 - 1.0
sigma = np.fromfunction(lambda i, j: (i + 1) * 0.5 + j * 0.125, (d, d), dtype=np.float64)
np.savez_compressed("fid_stats_compressed.npz", mu=mu, sigma=sigma)
np.savez_compressed("fid_stats_compressed_f32.npz", mu=mu.astype(np.float32), sigma=sigma.astype(np.float32))
np.savez_compressed("fid_stats_extra_entry.npz", mu=mu, sigma=sigma, n=np.array([200]))
print(np.__version__)
