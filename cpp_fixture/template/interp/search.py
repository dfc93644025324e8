"""Coarse-to-fine grid search of IDW parameters by leave-one-out error."""
import numpy as np

import interp


def loo_rmse(x, y, v, power, radius):
    """Root-mean-square leave-one-out error of IDW with these parameters."""
    predictions = interp.core.loocv2d(x, y, v, power, 2.0, radius)
    return float(np.sqrt(np.nanmean((predictions - v) ** 2)))


def grid_search(x, y, v, rounds=3, size=5):
    """Best (error, power, radius): a size x size grid, then `rounds - 1`
    refinements centred on the best point with half the step.

    Steps are binary fractions, so grid points revisited by a finer round are
    bit-identical to the coarse ones.
    """
    centre_power, power_step = 2.0, 0.5
    centre_radius, radius_step = 0.375, 0.125
    best = None
    offsets = np.arange(size) - size // 2
    for _ in range(rounds):
        for i in offsets:
            for j in offsets:
                power = centre_power + i * power_step
                radius = centre_radius + j * radius_step
                if power <= 0.0 or radius <= 0.0:
                    continue
                error = loo_rmse(x, y, v, power, radius)
                if best is None or error < best[0]:
                    best = (error, power, radius)
        _, centre_power, centre_radius = best
        power_step /= 2.0
        radius_step /= 2.0
    return best
