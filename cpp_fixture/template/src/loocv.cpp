#include <limits>

#include <omp.h>

#include "interp/api.hpp"
#include "interp/distance.hpp"
#include "interp/kernels.hpp"

namespace interp {

void loocv2d(const double* x, const double* y, const double* v, std::size_t n,
             double power, double metric_p, double radius, double* out) {
    // Each prediction is independent and summed in a fixed order, so the
    // result is identical whatever the thread count.
    #pragma omp parallel for schedule(static)
    for (std::size_t i = 0; i < n; ++i) {
        double weighted = 0.0;
        double total = 0.0;
        for (std::size_t j = 0; j < n; ++j) {
            if (j == i) {
                continue;
            }
            double d = distance2d(x[i], y[i], x[j], y[j], metric_p);
            if (d > radius) {
                continue;
            }
            double w = idw_weight(d, power);
            weighted += w * v[j];
            total += w;
        }
        out[i] = total > 0.0 ? weighted / total : std::numeric_limits<double>::quiet_NaN();
    }
}

int omp_threads() {
    return omp_get_max_threads();
}

}  // namespace interp
