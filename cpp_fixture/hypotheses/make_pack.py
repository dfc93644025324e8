"""Regenerate the pack's .patch files from the edits below.

    python cpp_fixture/hypotheses/make_pack.py

Each hypothesis is a list of exact (path, old, new) replacements applied to the
naive template, or to its declared predecessor in manifest.yaml; the patch is
`git diff` of the result, so `git apply` takes it as it is. Run this after
changing the template, then check the pack with tests/cpp_fixture.
"""
import pathlib
import subprocess
import sys
import tempfile

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))
import cpp_fixture  # noqa: E402

DIST2 = "    return std::pow(std::pow(std::fabs(ax - bx), p) + std::pow(std::fabs(ay - by), p), 1.0 / p);\n"
DIST3 = ("    return std::pow(std::pow(std::fabs(ax - bx), p) + std::pow(std::fabs(ay - by), p)"
         " + std::pow(std::fabs(az - bz), p), 1.0 / p);\n")
WEIGHT = "    return 1.0 / std::pow(d, power);\n"
IDW_LOOP = ("    for (std::size_t q = 0; q < m; ++q) {\n        double weighted = 0.0;\n        double total = 0.0;\n"
            "        for (std::size_t i = 0; i < n; ++i) {\n            double d = ")
IDW2_LOOP = IDW_LOOP + "distance2d("
IDW3_LOOP = IDW_LOOP + "distance3d("
# kde_vectorise's density body, which kde_batch replaces.
KDE_NUMPY = ("    qx, qy = np.asarray(qx, dtype=float), np.asarray(qy, dtype=float)\n"
             "    norm = 1.0 / (2.0 * np.pi * bandwidth * bandwidth * len(sx))\n"
             "    out = np.empty(len(qx))\n"
             "    chunk = 512  # bounds the temporary matrix to chunk x len(sx)\n"
             "    for start in range(0, len(qx), chunk):\n"
             "        dx = qx[start:start + chunk, None] - sx[None, :]\n"
             "        dy = qy[start:start + chunk, None] - sy[None, :]\n"
             "        out[start:start + chunk] = np.exp((dx * dx + dy * dy) * (-0.5 / (bandwidth * bandwidth))).sum(axis=1)\n"
             "    return out * norm\n")

EDITS = {
    "square_fast_path": [
        ("include/interp/distance.hpp", DIST2,
         "    return std::pow(p == 2.0 ? (ax - bx) * (ax - bx) + (ay - by) * (ay - by)"
         " : std::pow(std::fabs(ax - bx), p) + std::pow(std::fabs(ay - by), p), 1.0 / p);\n"),
        ("include/interp/distance.hpp", DIST3,
         "    return std::pow(p == 2.0 ? (ax - bx) * (ax - bx) + (ay - by) * (ay - by) + (az - bz) * (az - bz)"
         " : std::pow(std::fabs(ax - bx), p) + std::pow(std::fabs(ay - by), p) + std::pow(std::fabs(az - bz), p),"
         " 1.0 / p);\n"),
    ],
    "sqrt_root": [
        ("include/interp/distance.hpp", DIST2,
         "    double sum = std::pow(std::fabs(ax - bx), p) + std::pow(std::fabs(ay - by), p);\n"
         "    return p == 2.0 ? std::sqrt(sum) : std::pow(sum, 1.0 / p);\n"),
        ("include/interp/distance.hpp", DIST3,
         "    double sum = std::pow(std::fabs(ax - bx), p) + std::pow(std::fabs(ay - by), p)"
         " + std::pow(std::fabs(az - bz), p);\n"
         "    return p == 2.0 ? std::sqrt(sum) : std::pow(sum, 1.0 / p);\n"),
    ],
    "sqrt_root_rebased": [
        ("include/interp/distance.hpp",
         "    return std::pow(p == 2.0 ? (ax - bx) * (ax - bx) + (ay - by) * (ay - by)"
         " : std::pow(std::fabs(ax - bx), p) + std::pow(std::fabs(ay - by), p), 1.0 / p);\n",
         "    if (p == 2.0) {\n        return std::sqrt((ax - bx) * (ax - bx) + (ay - by) * (ay - by));\n    }\n"
         "    return std::pow(std::pow(std::fabs(ax - bx), p) + std::pow(std::fabs(ay - by), p), 1.0 / p);\n"),
        ("include/interp/distance.hpp",
         "    return std::pow(p == 2.0 ? (ax - bx) * (ax - bx) + (ay - by) * (ay - by) + (az - bz) * (az - bz)"
         " : std::pow(std::fabs(ax - bx), p) + std::pow(std::fabs(ay - by), p) + std::pow(std::fabs(az - bz), p),"
         " 1.0 / p);\n",
         "    if (p == 2.0) {\n        return std::sqrt((ax - bx) * (ax - bx) + (ay - by) * (ay - by) + (az - bz) * (az - bz));\n    }\n"
         "    return std::pow(std::pow(std::fabs(ax - bx), p) + std::pow(std::fabs(ay - by), p)"
         " + std::pow(std::fabs(az - bz), p), 1.0 / p);\n"),
    ],
    "weight_square": [
        ("include/interp/kernels.hpp", WEIGHT,
         "    return power == 2.0 ? 1.0 / (d * d) : 1.0 / std::pow(d, power);\n"),
    ],
    "gaussian_square": [
        ("include/interp/kernels.hpp", "    return std::exp(-0.5 * std::pow(d / h, 2.0));\n",
         "    const double u = d / h;\n    return std::exp(-0.5 * (u * u));\n"),
    ],
    "wrong_weight": [
        ("include/interp/kernels.hpp", WEIGHT, "    return 1.0 / (d * d);\n"),
    ],
    "wrong_weight_fix": [
        ("include/interp/kernels.hpp", "    return 1.0 / (d * d);\n",
         "    return power == 2.0 ? 1.0 / (d * d) : 1.0 / std::pow(d, power);\n"),
    ],
    "precompute_distances": [
        ("include/interp/api.hpp",
         "// Gaussian kernel density",
         "// The n x n matrix of distances between all points (row-major).\n"
         "void pairwise2d(const double* x, const double* y, std::size_t n, double metric_p, double* out);\n\n"
         "// loocv2d on a precomputed distance matrix.\n"
         "void loocv_from_distances(const double* dist, const double* v, std::size_t n,\n"
         "                          double power, double radius, double* out);\n\n"
         "// Gaussian kernel density"),
        ("src/loocv.cpp", "int omp_threads() {",
         "void pairwise2d(const double* x, const double* y, std::size_t n, double metric_p, double* out) {\n"
         "    #pragma omp parallel for schedule(static)\n"
         "    for (std::size_t i = 0; i < n; ++i) {\n"
         "        for (std::size_t j = 0; j < n; ++j) {\n"
         "            out[i * n + j] = distance2d(x[i], y[i], x[j], y[j], metric_p);\n"
         "        }\n"
         "    }\n"
         "}\n\n"
         "void loocv_from_distances(const double* dist, const double* v, std::size_t n,\n"
         "                          double power, double radius, double* out) {\n"
         "    #pragma omp parallel for schedule(static)\n"
         "    for (std::size_t i = 0; i < n; ++i) {\n"
         "        double weighted = 0.0;\n"
         "        double total = 0.0;\n"
         "        for (std::size_t j = 0; j < n; ++j) {\n"
         "            double d = dist[i * n + j];\n"
         "            if (j == i || d > radius) {\n"
         "                continue;\n"
         "            }\n"
         "            double w = idw_weight(d, power);\n"
         "            weighted += w * v[j];\n"
         "            total += w;\n"
         "        }\n"
         "        out[i] = total > 0.0 ? weighted / total : std::numeric_limits<double>::quiet_NaN();\n"
         "    }\n"
         "}\n\n"
         "int omp_threads() {"),
        ("src/module.cpp", "double kde_point(const Array& sx,",
         "Array pairwise2d(const Array& x, const Array& y, double metric_p) {\n"
         "    std::size_t n = same_length({&x, &y});\n"
         "    Array out({n, n});\n"
         "    interp::pairwise2d(x.data(), y.data(), n, metric_p, out.mutable_data());\n"
         "    return out;\n"
         "}\n\n"
         "Array loocv_from_distances(const Array& dist, const Array& v, double power, double radius) {\n"
         "    std::size_t n = same_length({&v});\n"
         "    if (dist.ndim() != 2 || static_cast<std::size_t>(dist.shape(0)) != n ||\n"
         "        static_cast<std::size_t>(dist.shape(1)) != n) {\n"
         "        throw std::invalid_argument(\"dist must be an n x n matrix\");\n"
         "    }\n"
         "    Array out(n);\n"
         "    interp::loocv_from_distances(dist.data(), v.data(), n, power, radius, out.mutable_data());\n"
         "    return out;\n"
         "}\n\n"
         "double kde_point(const Array& sx,"),
        ("src/module.cpp", "    m.def(\"kde_point\", &kde_point,",
         "    m.def(\"pairwise2d\", &pairwise2d, py::arg(\"x\"), py::arg(\"y\"), py::arg(\"metric_p\") = 2.0);\n"
         "    m.def(\"loocv_from_distances\", &loocv_from_distances, py::arg(\"dist\"), py::arg(\"v\"),\n"
         "          py::arg(\"power\") = 2.0, py::arg(\"radius\") = INFINITY);\n"
         "    m.def(\"kde_point\", &kde_point,"),
        ("interp/search.py",
         "def loo_rmse(x, y, v, power, radius):\n"
         "    \"\"\"Root-mean-square leave-one-out error of IDW with these parameters.\"\"\"\n"
         "    predictions = interp.core.loocv2d(x, y, v, power, 2.0, radius)\n",
         "def loo_rmse(dist, v, power, radius):\n"
         "    \"\"\"Root-mean-square leave-one-out error of IDW with these parameters.\"\"\"\n"
         "    predictions = interp.core.loocv_from_distances(dist, v, power, radius)\n"),
        ("interp/search.py", "    best = None\n",
         "    best = None\n    dist = interp.core.pairwise2d(x, y, 2.0)  # the same for every evaluation\n"),
        ("interp/search.py", "error = loo_rmse(x, y, v, power, radius)", "error = loo_rmse(dist, v, power, radius)"),
    ],
    "cache_evaluations": [
        ("interp/search.py", "    offsets = np.arange(size) - size // 2\n",
         "    offsets = np.arange(size) - size // 2\n"
         "    visited = set()  # finer rounds revisit coarse points; their error is already in `best`\n\n"
         "    def first_visit(point):\n"
         "        new = point not in visited\n"
         "        visited.add(point)\n"
         "        return new\n\n"),
        ("interp/search.py", "                if power <= 0.0 or radius <= 0.0:\n",
         "                if power <= 0.0 or radius <= 0.0 or not first_visit((power, radius)):\n"),
    ],
    "kde_vectorise": [
        ("interp/kde.py",
         "    out = np.empty(len(qx))\n"
         "    for i in range(len(qx)):\n"
         "        out[i] = interp.core.kde_point(sx, sy, qx[i], qy[i], bandwidth)\n"
         "    return out\n",
         KDE_NUMPY),
    ],
    "kde_batch": [
        ("include/interp/api.hpp",
         "                 double qx, double qy, double bandwidth);\n",
         "                 double qx, double qy, double bandwidth);\n\n"
         "// The same density at m query points in one call: out[q] at (qx[q], qy[q]).\n"
         "void kde_density(const double* sx, const double* sy, std::size_t n,\n"
         "                 const double* qx, const double* qy, std::size_t m,\n"
         "                 double bandwidth, double* out);\n"),
        ("src/kde.cpp", "    return density * norm;\n}\n",
         "    return density * norm;\n}\n\n"
         "void kde_density(const double* sx, const double* sy, std::size_t n,\n"
         "                 const double* qx, const double* qy, std::size_t m,\n"
         "                 double bandwidth, double* out) {\n"
         "    const double norm = 1.0 / (2.0 * M_PI * bandwidth * bandwidth * static_cast<double>(n));\n"
         "    // exp(-0.5 * (d / h)^2) as exp(scale * d^2): no pow, and no sqrt of the squared distance.\n"
         "    const double scale = -0.5 / (bandwidth * bandwidth);\n"
         "    for (std::size_t q = 0; q < m; ++q) {\n"
         "        const double x = qx[q];\n"
         "        const double y = qy[q];\n"
         "        // No branch, no call but exp: the compiler vectorises this loop when the flags let it\n"
         "        // reorder the sum and call a SIMD exp (-ffast-math). At the default flags it stays\n"
         "        // scalar and adds in kde_point's ascending order.\n"
         "        double density = 0.0;\n"
         "        for (std::size_t i = 0; i < n; ++i) {\n"
         "            const double dx = x - sx[i];\n"
         "            const double dy = y - sy[i];\n"
         "            density += std::exp(scale * (dx * dx + dy * dy));\n"
         "        }\n"
         "        out[q] = density * norm;\n"
         "    }\n"
         "}\n"),
        ("src/module.cpp",
         "    return interp::kde_point(sx.data(), sy.data(), n, qx, qy, bandwidth);\n}\n",
         "    return interp::kde_point(sx.data(), sy.data(), n, qx, qy, bandwidth);\n}\n\n"
         "Array kde_density(const Array& sx, const Array& sy, const Array& qx, const Array& qy, double bandwidth) {\n"
         "    std::size_t n = same_length({&sx, &sy});\n"
         "    std::size_t m = same_length({&qx, &qy});\n"
         "    Array out(m);\n"
         "    interp::kde_density(sx.data(), sy.data(), n, qx.data(), qy.data(), m, bandwidth, out.mutable_data());\n"
         "    return out;\n"
         "}\n"),
        ("src/module.cpp", "          py::arg(\"bandwidth\"));\n",
         "          py::arg(\"bandwidth\"));\n"
         "    m.def(\"kde_density\", &kde_density, py::arg(\"sx\"), py::arg(\"sy\"), py::arg(\"qx\"), py::arg(\"qy\"),\n"
         "          py::arg(\"bandwidth\"));\n"),
        ("interp/kde.py", KDE_NUMPY,
         "    return interp.core.kde_density(sx, sy, qx, qy, bandwidth)  # every point in one library call\n"),
    ],
    "omp_idw": [
        ("src/idw.cpp", IDW2_LOOP,
         "    #pragma omp parallel for schedule(static)\n" + IDW2_LOOP),
        ("src/idw.cpp", IDW3_LOOP, "    #pragma omp parallel for schedule(static)\n" + IDW3_LOOP),
    ],
    "noop_comment": [
        ("src/idw.cpp", "namespace interp {\n\nvoid idw2d(",
         "namespace interp {\n\n// Shepard's method: a weighted mean of the known values, with weights\n"
         "// falling off as a power of the distance to the query point.\nvoid idw2d("),
        ("src/idw.cpp", "            weighted += w * v[i];\n            total += w;\n        }\n        out[q] = weighted / total;\n    }\n}\n\nvoid idw3d(",
         "            weighted += w * v[i];\n            total += w;\n        }\n        out[q] = weighted / total;  // never 0/0: d > 0 for every query\n    }\n}\n\nvoid idw3d("),
    ],
    "tiny_cost": [
        ("src/idw.cpp", "        out[q] = weighted / total;\n    }\n}\n\nvoid idw3d(",
         "        out[q] = weighted / total;\n"
         "        if (!std::isfinite(out[q])) {\n"
         "            out[q] = 0.0;\n"
         "        }\n"
         "    }\n}\n\nvoid idw3d("),
    ],
    "tradeoff_2d_3d": [
        ("include/interp/distance.hpp", DIST2,
         "    if (p == 2.0) {\n        return std::sqrt((ax - bx) * (ax - bx) + (ay - by) * (ay - by));\n    }\n" + DIST2),
        ("include/interp/distance.hpp", DIST3,
         "    // Accumulate in long double for accuracy (x87: much slower than double).\n"
         "    long double lp = p;\n"
         "    long double sum = std::pow(std::fabs(static_cast<long double>(ax) - bx), lp)\n"
         "                    + std::pow(std::fabs(static_cast<long double>(ay) - by), lp)\n"
         "                    + std::pow(std::fabs(static_cast<long double>(az) - bz), lp);\n"
         "    return static_cast<double>(std::pow(sum, 1.0L / lp));\n"),
    ],
    "no_compile": [
        ("src/idw.cpp", "        out[q] = weighted / total;\n    }\n}\n\nvoid idw3d(",
         "        out[q] = weighted / total\n    }\n}\n\nvoid idw3d("),
    ],
    "hang_idw3d": [
        ("src/idw.cpp", IDW3_LOOP,
         "    for (std::size_t q = 0; q < m; q += (q == m / 2 ? 0 : 1)) {\n        double weighted = 0.0;\n        double total = 0.0;\n"
         "        for (std::size_t i = 0; i < n; ++i) {\n            double d = distance3d("),
    ],
    "tamper_harness": [
        ("bench.py", "        \"value\": statistics.median(times),\n",
         "        \"value\": statistics.median(times) * 0.8,\n"),
    ],
}


def main() -> None:
    manifest = {entry["id"]: entry for entry in cpp_fixture.load_manifest()}
    missing = set(manifest) ^ set(EDITS)
    if missing:
        sys.exit(f"manifest and EDITS disagree on: {sorted(missing)}")
    for hypothesis_id, edits in EDITS.items():
        with tempfile.TemporaryDirectory() as tmp:
            repo = cpp_fixture.init_repo(pathlib.Path(tmp) / "repo")
            cpp_fixture.apply_patches(repo, cpp_fixture.lineage(hypothesis_id)[:-1])
            for path, old, new in edits:
                target = repo / path
                text = target.read_text()
                if text.count(old) != 1:
                    sys.exit(f"{hypothesis_id}: {path}: expected exactly one {old!r}, found {text.count(old)}")
                target.write_text(text.replace(old, new))
            # Not _git(): it strips the output, and a patch may end in a blank context line.
            # One line of context: patches that touch nearby lines (precompute_distances and
            # cache_evaluations) then apply in either order; same-line edits still conflict.
            diff = subprocess.run(["git", "diff", "--unified=1"], cwd=repo, check=True, capture_output=True, text=True).stdout
            (cpp_fixture.HYPOTHESES / f"{hypothesis_id}.patch").write_text(diff)
            print(f"wrote {hypothesis_id}.patch")


if __name__ == "__main__":
    main()
