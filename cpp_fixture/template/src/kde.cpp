#include "interp/api.hpp"
#include "interp/distance.hpp"
#include "interp/kernels.hpp"

namespace interp {

double kde_point(const double* sx, const double* sy, std::size_t n,
                 double qx, double qy, double bandwidth) {
    const double norm = 1.0 / (2.0 * M_PI * bandwidth * bandwidth * static_cast<double>(n));
    double density = 0.0;
    for (std::size_t i = 0; i < n; ++i) {
        density += gaussian_kernel(distance2d(qx, qy, sx[i], sy[i], 2.0), bandwidth);
    }
    return density * norm;
}

}  // namespace interp
