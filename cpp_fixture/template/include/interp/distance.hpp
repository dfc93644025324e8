#pragma once
// Minkowski distances between two points. `p` is the metric exponent
// (p = 2 is the Euclidean distance, which every benchmark uses).
#include <cmath>

namespace interp {

inline double distance2d(double ax, double ay, double bx, double by, double p) {
    return std::pow(std::pow(std::fabs(ax - bx), p) + std::pow(std::fabs(ay - by), p), 1.0 / p);
}

inline double distance3d(double ax, double ay, double az, double bx, double by, double bz, double p) {
    return std::pow(std::pow(std::fabs(ax - bx), p) + std::pow(std::fabs(ay - by), p) + std::pow(std::fabs(az - bz), p), 1.0 / p);
}

}  // namespace interp
