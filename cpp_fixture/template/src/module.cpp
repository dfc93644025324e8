// Python bindings. Arrays arrive as contiguous float64 (pybind11 converts
// anything else); results are returned as new NumPy arrays.
#include <cmath>
#include <stdexcept>

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "interp/api.hpp"

namespace py = pybind11;
using Array = py::array_t<double, py::array::c_style | py::array::forcecast>;

namespace {

std::size_t same_length(std::initializer_list<const Array*> arrays) {
    std::size_t n = (*arrays.begin())->size();
    for (const Array* a : arrays) {
        if (a->ndim() != 1 || static_cast<std::size_t>(a->size()) != n) {
            throw std::invalid_argument("coordinate and value arrays must be 1-D and of equal length");
        }
    }
    return n;
}

Array idw2d(const Array& x, const Array& y, const Array& v, const Array& qx, const Array& qy,
            double power, double metric_p) {
    std::size_t n = same_length({&x, &y, &v});
    std::size_t m = same_length({&qx, &qy});
    Array out(m);
    interp::idw2d(x.data(), y.data(), v.data(), n, qx.data(), qy.data(), m, power, metric_p,
                  out.mutable_data());
    return out;
}

Array idw3d(const Array& x, const Array& y, const Array& z, const Array& v, const Array& qx,
            const Array& qy, const Array& qz, double power, double metric_p) {
    std::size_t n = same_length({&x, &y, &z, &v});
    std::size_t m = same_length({&qx, &qy, &qz});
    Array out(m);
    interp::idw3d(x.data(), y.data(), z.data(), v.data(), n, qx.data(), qy.data(), qz.data(), m,
                  power, metric_p, out.mutable_data());
    return out;
}

Array loocv2d(const Array& x, const Array& y, const Array& v, double power, double metric_p,
              double radius) {
    std::size_t n = same_length({&x, &y, &v});
    Array out(n);
    interp::loocv2d(x.data(), y.data(), v.data(), n, power, metric_p, radius, out.mutable_data());
    return out;
}

double kde_point(const Array& sx, const Array& sy, double qx, double qy, double bandwidth) {
    std::size_t n = same_length({&sx, &sy});
    return interp::kde_point(sx.data(), sy.data(), n, qx, qy, bandwidth);
}

}  // namespace

PYBIND11_MODULE(_interp_core, m) {
    m.doc() = "Naive spatial interpolation kernels (the farm's optimisation target)";
    m.def("idw2d", &idw2d, py::arg("x"), py::arg("y"), py::arg("v"), py::arg("qx"), py::arg("qy"),
          py::arg("power") = 2.0, py::arg("metric_p") = 2.0);
    m.def("idw3d", &idw3d, py::arg("x"), py::arg("y"), py::arg("z"), py::arg("v"), py::arg("qx"),
          py::arg("qy"), py::arg("qz"), py::arg("power") = 2.0, py::arg("metric_p") = 2.0);
    m.def("loocv2d", &loocv2d, py::arg("x"), py::arg("y"), py::arg("v"), py::arg("power") = 2.0,
          py::arg("metric_p") = 2.0, py::arg("radius") = INFINITY);
    m.def("kde_point", &kde_point, py::arg("sx"), py::arg("sy"), py::arg("qx"), py::arg("qy"),
          py::arg("bandwidth"));
    m.def("omp_threads", &interp::omp_threads);
}
