#pragma once
// Weighting kernels shared by interpolation, cross-validation and density estimation.
#include <cmath>

namespace interp {

// Inverse-distance weight 1 / d^power. Callers never pass d == 0.
inline double idw_weight(double d, double power) {
    return 1.0 / std::pow(d, power);
}

// Unnormalised Gaussian kernel of a distance d at bandwidth h.
inline double gaussian_kernel(double d, double h) {
    return std::exp(-0.5 * std::pow(d / h, 2.0));
}

}  // namespace interp
