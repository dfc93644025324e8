"""The benchmarks: deterministic inputs, the call that is timed, its checksum."""
import hashlib

import interp
import numpy as np


def _points(n, dims, seed):
    rng = np.random.default_rng(seed)
    coords = [rng.random(n) for _ in range(dims)]
    values = np.sin(6.0 * coords[0]) * np.cos(4.0 * coords[1]) + 0.1 * rng.standard_normal(n)
    return coords, values


def idw2d():
    (x, y), v = _points(1000, 2, seed=1)
    (qx, qy), _ = _points(1500, 2, seed=2)
    return lambda: interp.core.idw2d(x, y, v, qx, qy, 2.0, 2.0)


def idw3d():
    (x, y, z), v = _points(800, 3, seed=3)
    (qx, qy, qz), _ = _points(1400, 3, seed=4)
    return lambda: interp.core.idw3d(x, y, z, v, qx, qy, qz, 2.0, 2.0)


def loocv():
    (x, y), v = _points(1400, 2, seed=5)
    return lambda: interp.core.loocv2d(x, y, v, 2.0, 2.0, float("inf"))


def kde():
    (sx, sy), _ = _points(400, 2, seed=6)
    (qx, qy), _ = _points(10000, 2, seed=7)
    bandwidth = interp.scott_bandwidth(sx, sy)
    return lambda: interp.density(sx, sy, qx, qy, bandwidth)


def gridsearch():
    (x, y), v = _points(200, 2, seed=8)
    return lambda: np.array(interp.grid_search(x, y, v))


# name -> setup(); setup returns the zero-argument call that is timed.
WORKLOADS = {
    "idw2d": idw2d,
    "idw3d": idw3d,
    "loocv": loocv,
    "kde": kde,
    "gridsearch": gridsearch,
}


def checksum(output):
    """A short, stable fingerprint of a numerical output.

    Three aggregates (sum, sum of squares, a sum weighted by fixed cosines so
    that reorderings show) are printed to 9 significant digits and hashed.
    Correct rewrites of the kernels (x*x for pow(x, 2), sqrt for pow(s, 0.5),
    another summation order, more threads) move the aggregates by about 1e-13
    relative; the rounding unit is 1e-8 relative, so a correct change flips a
    digit with probability about 1e-5 per aggregate, while a wrong result moves
    them by far more than 1e-8.
    """
    values = np.asarray(output, dtype=np.float64).ravel()
    weights = np.cos(np.arange(values.size))
    aggregates = (values.sum(), (values * values).sum(), (values * weights).sum())
    text = ";".join(f"{a:.8e}" for a in aggregates)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
