#pragma once
// Declarations of the library's kernels. Deliberately free of the kernel
// headers, so that editing distance.hpp or kernels.hpp does not recompile
// the pybind11 bindings.
#include <cstddef>

namespace interp {

// Inverse-distance-weighted interpolation of n known points at m query points.
void idw2d(const double* x, const double* y, const double* v, std::size_t n,
           const double* qx, const double* qy, std::size_t m,
           double power, double metric_p, double* out);

void idw3d(const double* x, const double* y, const double* z, const double* v, std::size_t n,
           const double* qx, const double* qy, const double* qz, std::size_t m,
           double power, double metric_p, double* out);

// Leave-one-out predictions: out[i] is the IDW estimate at point i from all
// other points within `radius` (NaN when there are none).
void loocv2d(const double* x, const double* y, const double* v, std::size_t n,
             double power, double metric_p, double radius, double* out);

// Gaussian kernel density of n samples at one query point.
double kde_point(const double* sx, const double* sy, std::size_t n,
                 double qx, double qy, double bandwidth);

// Number of OpenMP threads a parallel region would use.
int omp_threads();

}  // namespace interp
