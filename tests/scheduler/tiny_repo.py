"""A tiny target repository for fast campaign tests: a Python loop that times itself."""
import pathlib
import subprocess
import textwrap

PROG = textwrap.dedent('''\
    import json
    import os
    import time

    N = 400000
    start = time.perf_counter()
    total = 0
    for i in range(N):
        total += i * i
    print(json.dumps({"name": "loop", "value": time.perf_counter() - start, "unit": "s",
                      "cpus": sorted(os.sched_getaffinity(0)), "pid": os.getpid()}))
''')


GUARD = "grep -q 'total += i \\* i' prog.py\n"


def make_repo(path: pathlib.Path, prog: str = PROG, guard: str = GUARD) -> pathlib.Path:
    """A repository on branch main with `prog` as prog.py and `guard` as guard.sh, in one commit."""
    path.mkdir(parents=True)
    (path / "prog.py").write_text(prog)
    (path / "guard.sh").write_text(guard)
    for args in (["init", "-q", "-b", "main"], ["add", "-A"],
                 ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "base"]):
        subprocess.run(["git", *args], cwd=path, check=True, capture_output=True)
    return path


def make_patch(repo: pathlib.Path, out: pathlib.Path, old: str, new: str) -> pathlib.Path:
    """A patch replacing `old` by `new` in prog.py (the repo is left unchanged)."""
    prog = repo / "prog.py"
    original = prog.read_text()
    prog.write_text(original.replace(old, new))
    diff = subprocess.run(["git", "diff"], cwd=repo, check=True, capture_output=True, text=True).stdout
    prog.write_text(original)
    out.write_text(diff)
    return out


def config_dict(repo: pathlib.Path, hypotheses: list[dict], **extra) -> dict:
    return {
        "campaign": "tiny",
        "target": {"repo": str(repo), "base_ref": "main"},
        "workers": {"count": 2},
        "phases": {"build": {"command": "true"}, "guard": {"command": "bash guard.sh", "timeout": 30},
                   "bench": {"command": "python prog.py", "timeout": 60}},
        "protected_paths": ["guard.sh"],
        "acceptance": {"aa_blocks": 3, "min_blocks": 3, "max_blocks": 4, "extension_looks": [], "min_effect": 0.05},
        "strategies": [{"name": "s", "hypotheses": hypotheses}],
        **extra,
    }
