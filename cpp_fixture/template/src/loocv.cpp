#include <algorithm>
#include <limits>

#include <omp.h>

#include "interp/api.hpp"
#include "interp/distance.hpp"
#include "interp/kernels.hpp"

namespace interp {

// Build knobs (CMakeLists.txt passes them from knobs.cmake and build.py's
// environment; these defaults are the knobs' defaults).
#ifndef INTERP_OMP_SCHEDULE
#define INTERP_OMP_SCHEDULE static  // static, dynamic or guided
#endif
#ifndef INTERP_OMP_CHUNK
#define INTERP_OMP_CHUNK 0  // 0: the schedule kind's default chunk
#endif
#ifndef INTERP_BLOCK_SIZE
#define INTERP_BLOCK_SIZE 64  // rows per block and columns per tile
#endif
static_assert(INTERP_BLOCK_SIZE >= 1 && INTERP_BLOCK_SIZE <= 4096, "INTERP_BLOCK_SIZE must be in 1..4096");

void loocv2d(const double* x, const double* y, const double* v, std::size_t n,
             double power, double metric_p, double radius, double* out) {
    // Tiled: a block of rows i meets the columns j one tile at a time, with one
    // accumulator pair per row of the block. Each row still adds its terms in
    // ascending j, and each block belongs to one thread, so the result is
    // bit-identical whatever the block size, schedule or thread count.
    constexpr std::size_t block = INTERP_BLOCK_SIZE;
    const std::size_t blocks = (n + block - 1) / block;
#if INTERP_OMP_CHUNK > 0
    #pragma omp parallel for schedule(INTERP_OMP_SCHEDULE, INTERP_OMP_CHUNK)
#else
    #pragma omp parallel for schedule(INTERP_OMP_SCHEDULE)
#endif
    for (std::size_t b = 0; b < blocks; ++b) {
        const std::size_t i0 = b * block;
        const std::size_t i1 = std::min(n, i0 + block);
        double weighted[block];
        double total[block];
        for (std::size_t i = i0; i < i1; ++i) {
            weighted[i - i0] = 0.0;
            total[i - i0] = 0.0;
        }
        for (std::size_t j0 = 0; j0 < n; j0 += block) {
            const std::size_t j1 = std::min(n, j0 + block);
            for (std::size_t i = i0; i < i1; ++i) {
                double row_weighted = weighted[i - i0];
                double row_total = total[i - i0];
                for (std::size_t j = j0; j < j1; ++j) {
                    if (j == i) {
                        continue;
                    }
                    double d = distance2d(x[i], y[i], x[j], y[j], metric_p);
                    if (d > radius) {
                        continue;
                    }
                    double w = idw_weight(d, power);
                    row_weighted += w * v[j];
                    row_total += w;
                }
                weighted[i - i0] = row_weighted;
                total[i - i0] = row_total;
            }
        }
        for (std::size_t i = i0; i < i1; ++i) {
            out[i] = total[i - i0] > 0.0 ? weighted[i - i0] / total[i - i0]
                                         : std::numeric_limits<double>::quiet_NaN();
        }
    }
}

int omp_threads() {
    return omp_get_max_threads();
}

}  // namespace interp
