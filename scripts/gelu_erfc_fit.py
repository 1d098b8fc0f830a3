"""Re-derives the polynomial of models/src/gelu.rs (`H`).

h(t) = ln(erfc(z) / t) + z², with t = 1 / (1 + z/2), fitted by least squares at 600 Chebyshev
nodes of t ∈ [0.07, 1] (z ≤ 26.6) against mpmath's erfc at 40 digits; prints the coefficients and
the fit's max |error| on a 1001-point grid. Needs numpy and mpmath (both in benches/peers/.venv):
    benches/peers/.venv/bin/python scripts/gelu_erfc_fit.py [DEGREE]
"""
import sys

import mpmath as mp
import numpy as np

mp.mp.dps = 40
T_LO, T_HI = 0.07, 1.0


def h(t):
    t = mp.mpf(t)
    z = (1 / t - 1) * 2
    return mp.log(mp.erfc(z) / t) + z * z


def main():
    deg = int(sys.argv[1]) if len(sys.argv) > 1 else 14
    n = 600
    s = np.cos(np.pi * (np.arange(n) + 0.5) / n)
    t = (s + 1) / 2 * (T_HI - T_LO) + T_LO
    c = np.polynomial.chebyshev.chebfit(s, np.array([float(h(v)) for v in t]), deg)
    tt = np.linspace(T_LO, T_HI, 1001)
    ss = (2 * tt - T_LO - T_HI) / (T_HI - T_LO)
    err = np.abs(np.polynomial.chebyshev.chebval(ss, c) - np.array([float(h(v)) for v in tt])).max()
    print(f"degree {deg}: max |fit error| {err:.3e}")
    print("Chebyshev coefficients:")
    for v in c:
        print(f"    {float(v)!r},")
    print("the same as monomials in s (models/src/gelu.rs `H`):")
    for v in np.polynomial.chebyshev.cheb2poly(c):
        print(f"    {float(v)!r},")


if __name__ == "__main__":
    main()
