"""Build the extension into ./build: configure once, then rebuild incrementally.

CMake tracks header dependencies, so an edit to include/interp/*.hpp rebuilds
everything that includes it, and an edit to knobs.cmake re-configures. The build
directory belongs to this checkout only.

Two knobs come from the environment (README.md, "Knobs"):
    CXXFLAGS            extra compiler flags of the kernels (default: none)
    INTERP_BLOCK_SIZE   tile size of loocv2d (default: 64)
The values a build directory was configured with are kept in build/knobs-env.json;
when the environment differs, this re-configures (CMake itself would keep the old
values in its cache and silently build with them).
"""
import json
import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent
BUILD = ROOT / "build"
STAMP = BUILD / "knobs-env.json"


def run(cmd, env=None):
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], check=True, env=env)


def env_knobs():
    """The environment's knobs, normalised (unset and empty mean the default)."""
    return {"CXXFLAGS": os.environ.get("CXXFLAGS", "").strip(),
            "INTERP_BLOCK_SIZE": os.environ.get("INTERP_BLOCK_SIZE", "").strip() or "64"}


def configured_knobs():
    try:
        return json.loads(STAMP.read_text())
    except (OSError, ValueError):
        return None


def main():
    knobs = env_knobs()
    if not (BUILD / "CMakeCache.txt").exists() or configured_knobs() != knobs:
        if (BUILD / "CMakeCache.txt").exists():
            print(f"build: the environment's knobs changed ({configured_knobs()} -> {knobs}); re-configuring",
                  flush=True)
        STAMP.unlink(missing_ok=True)  # a failed configure leaves no stamp: the next build retries
        # CMake would seed CMAKE_CXX_FLAGS from $CXXFLAGS on the first configure and keep it
        # ever after; the flags go to the kernels through INTERP_CXXFLAGS instead.
        env = {k: v for k, v in os.environ.items() if k != "CXXFLAGS"}
        run(["cmake", "-S", ROOT, "-B", BUILD, "-DCMAKE_BUILD_TYPE=Release",
             f"-DPython_EXECUTABLE={sys.executable}", "-DCMAKE_CXX_FLAGS=",
             f"-DINTERP_CXXFLAGS={knobs['CXXFLAGS']}", f"-DINTERP_BLOCK_SIZE={knobs['INTERP_BLOCK_SIZE']}"], env=env)
        STAMP.write_text(json.dumps(knobs, sort_keys=True) + "\n")
    jobs = len(os.sched_getaffinity(0))
    run(["cmake", "--build", BUILD, "--parallel", jobs])


if __name__ == "__main__":
    try:
        main()
    except subprocess.CalledProcessError as error:
        sys.exit(f"build failed: {' '.join(map(str, error.cmd))} exited {error.returncode}")
