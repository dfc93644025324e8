"""The phase board on real files, and the clock readings from a sysfs / cpuinfo laid out in a directory."""
import pytest

from farm.node.node_state import PhaseBoard, cpu_mhz, describe_others
from farm.storage.live import board_phases


def test_workers_see_each_others_phases_but_not_their_own_nor_other_campaigns(tmp_path):
    w0, w1 = PhaseBoard(tmp_path, "c", "w0"), PhaseBoard(tmp_path, "c", "w1")
    PhaseBoard(tmp_path, "old", "w2").set("measure")  # left behind by another campaign in the workdir
    w0.set("measure", "c-0001")
    w1.set("build", "c-0002")
    assert w0.others() == {"w1": "build"} and w1.others() == {"w0": "measure"}
    w1.set("idle")
    assert w0.others() == {"w1": "idle"}
    assert sorted(p.name for p in (tmp_path / "phases").iterdir()) == ["w0.json", "w1.json", "w2.json"]  # no temps


def test_an_unknown_phase_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown phase 'compile'"):
        PhaseBoard(tmp_path, "c", "w0").set("compile")


def test_others_over_a_block_name_changes_and_nobody():
    assert describe_others({"w1": "build", "w2": "idle"}, {"w1": "build", "w2": "agent"}) == "w1:build,w2:idle>agent"
    assert describe_others({}, {"w1": "wait"}) == "w1:wait"
    assert describe_others({}, {}) is None


def test_cpu_clock_from_cpufreq_else_cpuinfo_else_unknown(tmp_path):
    sysfs = tmp_path / "cpu"
    (sysfs / "cpu0" / "cpufreq").mkdir(parents=True)
    (sysfs / "cpu0" / "cpufreq" / "scaling_cur_freq").write_text("3000000\n")  # kHz
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\ncpu MHz\t\t: 999.0\n\nprocessor\t: 1\ncpu MHz\t\t: 2000.5\n\n"
                       "processor\t: 2\nmodel name\t: no clock here\n")
    assert cpu_mhz((0,), str(sysfs), str(cpuinfo)) == 3000.0  # cpufreq wins over cpuinfo
    assert cpu_mhz((0, 1), str(sysfs), str(cpuinfo)) == pytest.approx(2500.25)
    assert cpu_mhz((2,), str(sysfs), str(cpuinfo)) is None
    assert cpu_mhz((1,), str(sysfs), str(tmp_path / "missing")) is None


def test_every_phase_a_worker_leaves_is_reported_once_with_its_times(tmp_path):
    left = []
    board = PhaseBoard(tmp_path, "c", "w0", on_phase=lambda *phase: left.append(phase))
    board.set("agent", "c-0001")
    board.set("build", "c-0001")
    board.set("build", "c-0001")  # the same phase again: still one
    board.set("idle")
    assert [(phase, exp) for phase, exp, _, _ in left] == [("agent", "c-0001"), ("build", "c-0001")]
    assert all(start <= end for _, _, start, end in left) and left[0][3] == left[1][2]


def test_a_malformed_phase_file_is_skipped_not_an_error(tmp_path):
    # On main a phase file holding a JSON list made every block of every worker on the node an internal error.
    board = PhaseBoard(tmp_path, "c", "w0")
    PhaseBoard(tmp_path, "c", "w1").set("build", "e1")
    (tmp_path / "phases" / "w2.json").write_text("[1, 2, 3]\n")
    (tmp_path / "phases" / "w3.json").write_text('{"campaign": "c", "worker": "w3", "phase": {"x": 1}, "since": 1}')
    assert board.others() == {"w1": "build"}
    assert set(board_phases(tmp_path)) == {"w1"}
