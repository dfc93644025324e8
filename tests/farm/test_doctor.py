"""`farm doctor`: each check against a fake sysfs/proc tree laid out in tmp_path, and the real command here."""
import pytest
from click.testing import CliRunner

from farm.cli import main
from farm.node import doctor

CPU = "sys/devices/system/cpu"


def write(root, path, text):
    """Create root/path with `text`, as the kernel would show it."""
    file = root / path
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(text + "\n")


def test_governor_powersave_warns_and_names_the_command(tmp_path):
    write(tmp_path, f"{CPU}/cpu0/cpufreq/scaling_governor", "performance")
    write(tmp_path, f"{CPU}/cpu1/cpufreq/scaling_governor", "powersave")
    check = doctor.check_governor([(0,), (1,)], tmp_path)
    assert check.state == "warn"
    assert "cpu1: powersave" in check.found
    assert "sudo cpupower frequency-set -g performance" in check.advice and "-c 1 " in check.advice


def test_governor_performance_is_ok(tmp_path):
    for cpu in (0, 1):
        write(tmp_path, f"{CPU}/cpu{cpu}/cpufreq/scaling_governor", "performance")
    check = doctor.check_governor([(0,), (1,)], tmp_path)
    assert (check.state, check.advice) == ("ok", "")


def test_no_cpufreq_as_on_a_vm_is_unknown_with_a_reason(tmp_path):
    (tmp_path / CPU / "cpu0").mkdir(parents=True)  # the CPU exists, its cpufreq directory does not
    check = doctor.check_governor([(0,)], tmp_path)
    assert check.state == "unknown" and "VM" in check.found


def test_turbo_from_intel_pstate_or_cpufreq_boost(tmp_path):
    assert doctor.check_turbo([(0,)], tmp_path).state == "unknown"
    write(tmp_path, f"{CPU}/cpufreq/boost", "1")
    boost_on = doctor.check_turbo([(0,)], tmp_path)
    assert boost_on.state == "warn" and "cpufreq/boost" in boost_on.advice
    write(tmp_path, f"{CPU}/intel_pstate/no_turbo", "1")  # intel_pstate is asked first
    assert doctor.check_turbo([(0,)], tmp_path).state == "ok"


def test_smt_siblings_in_two_worker_sets_warn_naming_the_cpus(tmp_path):
    # Cores {0,2} and {1,3}: workers on 0 and 2 share a physical core.
    for cpu, siblings in {0: "0,2", 1: "1,3", 2: "0,2", 3: "1,3"}.items():
        write(tmp_path, f"{CPU}/cpu{cpu}/topology/thread_siblings_list", siblings)
    check = doctor.check_smt([(0,), (2,)], tmp_path)
    assert check.state == "warn"
    assert "cpu0 (w0) and cpu2 (w1) are one physical core" in check.found
    assert check.found.count("physical core") == 1  # the pair is named once
    assert doctor.check_smt([(0, 2), (1, 3)], tmp_path).state == "ok"  # whole cores per worker
    outside = doctor.check_smt([(1,)], tmp_path)  # cpu3 is in no set
    assert outside.state == "warn" and "cpu3, which is in no worker set" in outside.found


def test_cgroup_v2_quota_below_the_worker_cpus_warns(tmp_path):
    write(tmp_path, "proc/self/cgroup", "0::/farm.slice/run")
    write(tmp_path, "sys/fs/cgroup/farm.slice/run/cpu.max", "max 100000")
    write(tmp_path, "sys/fs/cgroup/farm.slice/cpu.max", "50000 100000")  # a parent's quota binds the child
    check = doctor.check_cgroup([(0,), (1,)], tmp_path)
    assert check.state == "warn" and "0.5 CPU(s) on cgroup /farm.slice" in check.found


def test_cgroup_v2_without_quota_is_ok(tmp_path):
    write(tmp_path, "proc/self/cgroup", "0::/")
    write(tmp_path, "sys/fs/cgroup/cpu.max", "max 100000")
    assert doctor.check_cgroup([(0,), (1,)], tmp_path).state == "ok"


def test_cgroup_v1_quota(tmp_path):
    write(tmp_path, "proc/self/cgroup", "4:memory:/x\n2:cpu,cpuacct:/job\n")
    write(tmp_path, "sys/fs/cgroup/cpu,cpuacct/job/cpu.cfs_quota_us", "150000")
    write(tmp_path, "sys/fs/cgroup/cpu,cpuacct/job/cpu.cfs_period_us", "100000")
    assert doctor.check_cgroup([(0,), (1,)], tmp_path).state == "warn"  # 1.5 CPUs for 2
    assert doctor.check_cgroup([(0,)], tmp_path).state == "ok"


def test_aslr_on_warns_with_the_sysctl_and_its_trade_off(tmp_path):
    write(tmp_path, "proc/sys/kernel/randomize_va_space", "2")
    check = doctor.check_aslr([(0,)], tmp_path)
    assert check.state == "warn"
    assert "sysctl kernel.randomize_va_space=0" in check.advice and "exploit" in check.advice
    write(tmp_path, "proc/sys/kernel/randomize_va_space", "1")  # stack and libraries only: still varies
    assert doctor.check_aslr([(0,)], tmp_path).state == "warn"
    write(tmp_path, "proc/sys/kernel/randomize_va_space", "0")
    assert doctor.check_aslr([(0,)], tmp_path).state == "ok"


def test_cpu_lists_parse_and_format():
    assert doctor.parse_cpu_list("1-3,5") == [1, 2, 3, 5]
    assert doctor.parse_cpu_list("") == []
    assert doctor.format_cpu_list([5, 1, 2, 3]) == "1-3,5"
    with pytest.raises(ValueError):
        doctor.parse_cpu_list("1-3,x")


def test_isolation_from_sysfs_or_the_kernel_command_line(tmp_path):
    write(tmp_path, f"{CPU}/isolated", "1-3,5")
    write(tmp_path, "proc/cmdline", "quiet nohz_full=1-3,5")
    assert doctor.check_isolation([(1,), (2, 3)], tmp_path).state == "ok"
    not_isolated = doctor.check_isolation([(4,)], tmp_path)
    assert not_isolated.state == "warn" and "isolcpus=4 nohz_full=4" in not_isolated.advice
    (tmp_path / CPU / "isolated").unlink()  # an older kernel: isolcpus with its flags on the command line
    write(tmp_path, "proc/cmdline", "isolcpus=domain,managed_irq,1-3,5 quiet")
    assert doctor.check_isolation([(5,)], tmp_path).state == "ok"


def test_load_beyond_the_spare_cpus_warns(tmp_path):
    write(tmp_path, "proc/loadavg", "1.50 1.20 0.90 2/300 4242")
    assert doctor.check_load([(0,), (1,)], tmp_path, available=[0, 1]).state == "warn"
    assert doctor.check_load([(0,)], tmp_path, available=[0, 1, 2, 3]).state == "ok"  # 3 spare CPUs take it


def test_cpus_outside_the_affinity_or_none_spare_warn(tmp_path):
    assert "not available" in doctor.check_cpus([(0,), (5,)], tmp_path, available=[0, 1, 2]).found
    assert doctor.check_cpus([(0,), (1,)], tmp_path, available=[0, 1]).state == "warn"  # no spare CPU
    assert doctor.check_cpus([(0,), (1,)], tmp_path, available=[0, 1, 2]).state == "ok"


def test_irqbalance_virtualisation_and_steal(tmp_path):
    write(tmp_path, "proc/1/comm", "init")
    write(tmp_path, "proc/77/comm", "irqbalance")
    write(tmp_path, "proc/cpuinfo", "processor\t: 0\nflags\t\t: fpu sse2 hypervisor avx2\n")
    write(tmp_path, "proc/stat", "cpu  100 0 100 700 0 0 0 100 0 0\ncpu0 1 2 3\n")  # steal 10 %
    assert "77" in doctor.check_irqbalance([(0,)], tmp_path).found
    assert doctor.check_virtualisation([(0,)], tmp_path).state == "warn"
    assert doctor.check_steal([(0,)], tmp_path).found.startswith("steal 10.00%")


def test_an_empty_tree_gives_unknowns_not_errors(tmp_path):
    checks = doctor.run_checks([(0,)], tmp_path, available=[0, 1])
    assert [check.name for check in checks] == ["cpus", "governor", "turbo", "smt", "load", "cgroup", "isolation",
                                                "aslr", "irqbalance", "virtualisation", "steal", "sandbox",
                                                "memory-wrapper", "instruction-counter"]
    states = {check.name: check.state for check in checks}
    assert states["governor"] == states["aslr"] == states["cgroup"] == "unknown"


def test_farm_doctor_on_this_machine_exits_0_with_a_line_per_check():
    result = CliRunner().invoke(main, ["doctor"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    check_lines = [line.split() for line in lines if line.split()[:1] in (["ok"], ["warn"], ["unknown"])]
    names = [check.name for check in doctor.run_checks(doctor.default_worker_sets())]
    assert [words[1] for words in check_lines] == names  # one line per check, in order
    assert all(len(words) > 2 for words in check_lines)  # each with its finding
    assert lines[-1].startswith(f"{len(names)} checks: ")
