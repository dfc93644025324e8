"""The commands that do not run a campaign start without Ray (and validate and doctor without numpy): each runs
in a fresh interpreter here and reports what it imported. The import contracts themselves are checked by
`lint-imports` in .ci/run."""
import json
import pathlib
import subprocess
import sys

import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
PROBE = """
import json, sys
from click.testing import CliRunner
from farm.cli import main
result = CliRunner().invoke(main, sys.argv[1:])
print(json.dumps({"exit": result.exit_code, "output": result.output,
                  "loaded": sorted({name.split(".")[0] for name in sys.modules})}))
"""


def _run(args: list[str], cwd: pathlib.Path) -> dict:
    done = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=cwd, capture_output=True, text=True,
                          check=True, timeout=120)
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.parametrize("args, heavy", [
    (["validate", str(REPO_ROOT / "configs" / "demo.yaml")], {"ray", "scipy", "numpy", "git"}),
    (["doctor"], {"ray", "scipy", "numpy", "git"}),
    (["schema"], {"ray", "scipy", "numpy", "git"}),
    (["status"], {"ray"}),
    (["query", "--recipes"], {"ray"}),
])
def test_a_command_that_runs_no_campaign_starts_without_ray(tmp_path, args, heavy):
    probe = _run([*args, *(["--workdir", str(tmp_path / "w")] if args[0] == "validate" else [])], tmp_path)
    assert probe["exit"] in (0, 1), probe["output"]
    assert heavy.isdisjoint(probe["loaded"]), heavy & set(probe["loaded"])
