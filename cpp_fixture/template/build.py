"""Build the extension into ./build: configure once, then rebuild incrementally.

CMake tracks header dependencies, so an edit to include/interp/*.hpp rebuilds
everything that includes it. The build directory belongs to this checkout only.
"""
import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent
BUILD = ROOT / "build"


def run(cmd):
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], check=True)


def main():
    if not (BUILD / "CMakeCache.txt").exists():
        run(["cmake", "-S", ROOT, "-B", BUILD, "-DCMAKE_BUILD_TYPE=Release",
             f"-DPython_EXECUTABLE={sys.executable}"])
    jobs = len(os.sched_getaffinity(0))
    run(["cmake", "--build", BUILD, "--parallel", jobs])


if __name__ == "__main__":
    try:
        main()
    except subprocess.CalledProcessError as error:
        sys.exit(f"build failed: {' '.join(map(str, error.cmd))} exited {error.returncode}")
