"""Gaussian kernel density estimation in 2-D."""
import numpy as np

import interp


def scott_bandwidth(sx, sy):
    """Scott's rule bandwidth for 2-D samples."""
    spread = np.sqrt((np.var(sx) + np.var(sy)) / 2.0)
    return float(spread * len(sx) ** (-1.0 / 6.0))


def density(sx, sy, qx, qy, bandwidth):
    """Density of the samples (sx, sy) at every query point (qx, qy)."""
    out = np.empty(len(qx))
    for i in range(len(qx)):
        out[i] = interp.core.kde_point(sx, sy, qx[i], qy[i], bandwidth)
    return out
