#include "interp/api.hpp"
#include "interp/distance.hpp"
#include "interp/kernels.hpp"

namespace interp {

void idw2d(const double* x, const double* y, const double* v, std::size_t n,
           const double* qx, const double* qy, std::size_t m,
           double power, double metric_p, double* out) {
    for (std::size_t q = 0; q < m; ++q) {
        double weighted = 0.0;
        double total = 0.0;
        for (std::size_t i = 0; i < n; ++i) {
            double d = distance2d(qx[q], qy[q], x[i], y[i], metric_p);
            double w = idw_weight(d, power);
            weighted += w * v[i];
            total += w;
        }
        out[q] = weighted / total;
    }
}

void idw3d(const double* x, const double* y, const double* z, const double* v, std::size_t n,
           const double* qx, const double* qy, const double* qz, std::size_t m,
           double power, double metric_p, double* out) {
    for (std::size_t q = 0; q < m; ++q) {
        double weighted = 0.0;
        double total = 0.0;
        for (std::size_t i = 0; i < n; ++i) {
            double d = distance3d(qx[q], qy[q], qz[q], x[i], y[i], z[i], metric_p);
            double w = idw_weight(d, power);
            weighted += w * v[i];
            total += w;
        }
        out[q] = weighted / total;
    }
}

}  // namespace interp
