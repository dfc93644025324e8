# Build knobs of the kernels (interp_kernels), read by CMakeLists.txt.
# One `set(NAME "value")` per line: a knob search rewrites one line per experiment.
# CMake re-configures by itself when this file changes and rebuilds what a new
# value affects. Two more knobs come from the environment of build.py:
# CXXFLAGS and INTERP_BLOCK_SIZE (see README.md).

# Optimisation flag of the kernels, after CMake's Release flags: -O1, -O2, -O3
set(INTERP_OPT_LEVEL "-O3")
# OpenMP schedule kind of loocv's parallel loop (over row blocks): static, dynamic, guided
set(INTERP_OMP_SCHEDULE "static")
# Its chunk size in row blocks: 0 (the kind's default, no chunk given) or a positive integer
set(INTERP_OMP_CHUNK "0")
