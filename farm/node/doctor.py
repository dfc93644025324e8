"""Checks of the node: what on this machine spoils measurements, and what to do about each.

Like pyperf's `system show`, but about the CPUs the farm's workers will be pinned to. Every check reads
plain files under `root` (default "/": /sys, /proc), so the tests can point it at a fake tree, and returns a
`Check`: ok, warn (it costs measurement quality; the advice says how to fix it) or unknown (the machine does
not tell, as on VMs without cpufreq). Nothing here changes the machine: the advice is for an administrator.
"""
from __future__ import annotations

import os
import pathlib
import re
from dataclasses import dataclass
from typing import Literal

from farm.campaign_file.config import CampaignConfig
from farm.experiment import instruction_counter, memory_wrapper
from farm.node import sandbox
from farm.node.cpusets import allocate_cpu_sets, available_cpus

State = Literal["ok", "warn", "unknown"]
CPU_SYSFS = "sys/devices/system/cpu"

# Above this share of all CPU time since boot taken by the hypervisor, the host is busy enough to matter.
STEAL_WARN_FRACTION = 0.01


@dataclass(frozen=True)
class Check:
    """One finding: `found` says what the machine looks like, `advice` what to do (empty when nothing)."""
    name: str
    state: State
    found: str
    advice: str = ""


# ---------------------------------------------------------------------------- helpers

def _read(root: str | os.PathLike, path: str) -> str | None:
    """The stripped text of `root/path`, or None when it is absent or unreadable (a VM, a container)."""
    try:
        return (pathlib.Path(root) / path).read_text().strip()
    except OSError:
        return None


def parse_cpu_list(text: str) -> list[int]:
    """The CPUs of a kernel CPU list ("1-3,5" -> [1, 2, 3, 5]; "" -> []), sorted.
    Raises ValueError for anything that is not a CPU list."""
    cpus: set[int] = set()
    for part in text.strip().split(","):
        part = part.strip()
        if not part:
            continue
        match = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not match:
            raise ValueError(f"not a CPU list: {text!r}")
        first, last = int(match[1]), int(match[2] or match[1])
        cpus.update(range(first, last + 1))
    return sorted(cpus)


def format_cpu_list(cpus) -> str:
    """The kernel's compact form: [1, 2, 3, 5] -> "1-3,5"."""
    runs: list[list[int]] = []  # [first, last] of each run of consecutive CPUs
    for cpu in sorted(set(cpus)):
        if runs and cpu == runs[-1][1] + 1:
            runs[-1][1] = cpu
        else:
            runs.append([cpu, cpu])
    return ",".join(str(first) if first == last else f"{first}-{last}" for first, last in runs)


def _worker_cpus(worker_sets: list[tuple[int, ...]]) -> list[int]:
    return sorted({cpu for cpus in worker_sets for cpu in cpus})


def _kernel_parameter(cmdline: str, name: str) -> str | None:
    """The value of `name=` on the kernel command line (the last one wins, as in the kernel), else None."""
    values = [word.split("=", 1)[1] for word in cmdline.split() if word.startswith(name + "=")]
    return values[-1] if values else None


def _cpus_of_isolcpus(value: str) -> list[int]:
    """isolcpus= may carry flags before the list ("domain,managed_irq,2-3"): keep only the CPU ranges."""
    return parse_cpu_list(",".join(part for part in value.split(",") if re.fullmatch(r"\d+(-\d+)?", part)))


# ---------------------------------------------------------------------------- worker CPU sets

def default_worker_sets(available: list[int] | None = None) -> list[tuple[int, ...]]:
    """One CPU per worker over the available CPUs: what `farm run` does with a config that says nothing."""
    return allocate_cpu_sets(available=available if available is not None else available_cpus())


def config_worker_sets(config: CampaignConfig, available: list[int] | None = None) -> list[tuple[int, ...]]:
    """The worker CPU sets a campaign would use on this node.

    Explicit `workers.cpu_sets` are taken as written, so the `cpus` check can name a CPU that is not
    available here (allocate_cpu_sets would refuse them). Allocated sets raise ConfigError when they do
    not fit, as `farm run` would.
    """
    if config.workers.cpu_sets:
        return [tuple(sorted(cpus)) for cpus in config.workers.cpu_sets]
    return allocate_cpu_sets(config.workers.count, config.workers.cpus_per_worker,
                             available=available if available is not None else available_cpus())


# ---------------------------------------------------------------------------- checks

def check_governor(worker_sets, root="/") -> Check:
    """The frequency governor of the worker CPUs: anything but `performance` lets the clock move under a
    benchmark (powersave/ondemand/schedutil ramp up with load, so the first run of a block is slower)."""
    cpus = _worker_cpus(worker_sets)
    governors = {cpu: _read(root, f"{CPU_SYSFS}/cpu{cpu}/cpufreq/scaling_governor") for cpu in cpus}
    if all(governor is None for governor in governors.values()):
        return Check("governor", "unknown",
                     f"no cpufreq governor for CPU(s) {format_cpu_list(cpus)} (usual on a VM: the host sets "
                     f"the clock, and the guest can neither see nor change it)",
                     "nothing to do here; on bare metal, check that the cpufreq driver is loaded")
    found = ", ".join(f"cpu{cpu}: {governor or 'none'}" for cpu, governor in governors.items())
    slow = [cpu for cpu, governor in governors.items() if governor not in (None, "performance")]
    if not slow:
        return Check("governor", "ok", found)
    return Check("governor", "warn", found,
                 f"sudo cpupower frequency-set -g performance   (add -c {format_cpu_list(slow)} for only these "
                 f"CPUs; the clock then stays at its top instead of ramping with load)")


def check_turbo(worker_sets, root="/") -> Check:
    """Turbo/boost: the clock then depends on the temperature and on how many cores are busy, so the same
    code runs at different speeds block to block."""
    # (switch file under CPU_SYSFS, its value when off, what it is called in the finding and the advice)
    switches = (("intel_pstate/no_turbo", "1", "intel_pstate: turbo", "turbo"),
                ("cpufreq/boost", "0", "cpufreq boost", "boost"))
    for switch, off, what, noun in switches:
        value = _read(root, f"{CPU_SYSFS}/{switch}")
        if value is None:
            continue
        setting = f"({switch.rsplit('/', 1)[1]}={value})"
        if value == off:
            return Check("turbo", "ok", f"{what} off {setting}")
        return Check("turbo", "warn", f"{what} on {setting}",
                     f"echo {off} | sudo tee /sys/devices/system/cpu/{switch}   ({noun} off until reboot)")
    return Check("turbo", "unknown",
                 "neither intel_pstate/no_turbo nor cpufreq/boost (usual on a VM: the host decides)",
                 "nothing to do here; on bare metal, turn turbo off in the firmware if the driver shows no switch")


def check_smt(worker_sets, root="/") -> Check:
    """SMT (hyper-threading) siblings: two hardware threads of one core share its execution units and
    caches, so a sibling busy with another worker (or anything else) slows the worker's benchmark."""
    owner = {cpu: index for index, cpus in enumerate(worker_sets) for cpu in cpus}
    problems, unknown = [], []
    for index, cpus in enumerate(worker_sets):
        for cpu in cpus:
            text = _read(root, f"{CPU_SYSFS}/cpu{cpu}/topology/thread_siblings_list")
            if text is None:
                unknown.append(cpu)
                continue
            for sibling in parse_cpu_list(text):
                if sibling == cpu or owner.get(sibling) == index:
                    continue  # the worker's own CPUs: it shares the core with itself only
                if sibling in owner:
                    if owner[sibling] > index:  # name each shared pair once
                        problems.append(f"cpu{cpu} (w{index}) and cpu{sibling} (w{owner[sibling]}) are one "
                                        f"physical core: two workers share it")
                else:
                    problems.append(f"cpu{cpu} (w{index}) shares its core with cpu{sibling}, which is in no "
                                    f"worker set (the farm's own processes and other work run there)")
    if problems:
        return Check("smt", "warn", "; ".join(problems),
                     "give each worker whole cores (workers.cpu_sets with both siblings in one set, or only one "
                     "sibling of each core used), or turn SMT off: echo off | sudo tee "
                     "/sys/devices/system/cpu/smt/control (or boot with nosmt)")
    if unknown and len(unknown) == len(_worker_cpus(worker_sets)):
        return Check("smt", "unknown", f"no topology/thread_siblings_list for CPU(s) {format_cpu_list(unknown)}")
    found = "no worker CPU shares a physical core with a CPU outside its own set"
    if unknown:
        found += f" (CPU(s) {format_cpu_list(unknown)} do not say)"
    return Check("smt", "ok", found)


def _online_cpu_list(root) -> list[int] | None:
    """The online CPUs (sysfs `online`), or None when sysfs does not say."""
    try:
        return parse_cpu_list(_read(root, f"{CPU_SYSFS}/online") or "") or None
    except ValueError:
        return None


def _online_cpu_count(root) -> int:
    return len(_online_cpu_list(root) or []) or os.cpu_count() or 1


def check_load(worker_sets, root="/", available: list[int] | None = None) -> Check:
    """The load average against the CPUs: other work that does not fit on the CPUs no worker owns runs on
    the workers' CPUs, in the middle of a measurement."""
    text = _read(root, "proc/loadavg")
    if text is None:
        return Check("load", "unknown", "no /proc/loadavg")
    load1, load5, load15 = (float(value) for value in text.split()[:3])
    cpus = _online_cpu_count(root)
    available = available if available is not None else available_cpus()
    spare = len(set(available) - set(_worker_cpus(worker_sets)))
    found = (f"load average {load1:.2f} {load5:.2f} {load15:.2f} (1/5/15 min) on {cpus} CPU(s), "
             f"{spare} of them in no worker set")
    # One whole CPU of other work, more than the spare CPUs can take: some of it lands on a worker's CPU.
    if load1 >= 1.0 and load1 > spare:
        return Check("load", "warn", found,
                     "find what runs (top, or ps -eo pcpu,comm --sort=-pcpu | head) and stop it, or measure when "
                     "the machine is idle; the farm itself is not running now, so this is other work")
    return Check("load", "ok", found)


def _cgroup_quotas(root) -> list[tuple[str, float]]:
    """(cgroup path, CPUs) for every CPU quota from this process's cgroup up to the root (a parent's quota
    limits its children too), cgroup v2 `cpu.max` and v1 `cpu.cfs_quota_us`/`cpu.cfs_period_us`."""
    text = _read(root, "proc/self/cgroup") or ""
    quotas = []
    for line in text.splitlines():
        if line.count(":") < 2:
            continue  # not a cgroup line
        hierarchy, controllers, path = line.split(":", 2)
        if hierarchy == "0" and controllers == "":  # v2: one unified hierarchy
            directories = ["sys/fs/cgroup"]
            read_quota = _v2_quota
        elif "cpu" in controllers.split(","):  # v1: mounted as cpu or cpu,cpuacct
            directories = ["sys/fs/cgroup/cpu", "sys/fs/cgroup/cpu,cpuacct", "sys/fs/cgroup/cpuacct,cpu"]
            read_quota = _v1_quota
        else:
            continue
        parts = [part for part in path.split("/") if part]
        for depth in range(len(parts), -1, -1):
            relative = "/".join(parts[:depth])
            for directory in directories:
                cpus = read_quota(root, f"{directory}/{relative}".rstrip("/"))
                if cpus is not None:
                    quotas.append(("/" + relative, cpus))
    return quotas


def _v2_quota(root, directory) -> float | None:
    text = _read(root, f"{directory}/cpu.max")  # "QUOTA PERIOD" in microseconds, QUOTA "max" for none
    if not text or text.split()[0] == "max":
        return None
    quota, period = text.split()[:2]
    return int(quota) / int(period)


def _v1_quota(root, directory) -> float | None:
    quota, period = _read(root, f"{directory}/cpu.cfs_quota_us"), _read(root, f"{directory}/cpu.cfs_period_us")
    if quota is None or period is None or int(quota) < 0:  # -1: no quota
        return None
    return int(quota) / int(period)


def check_cgroup(worker_sets, root="/") -> Check:
    """A cgroup CPU quota below the CPUs the workers use throttles them: the kernel stops the whole group
    for the rest of each period once the quota is spent, which shows up as sudden slow runs."""
    if _read(root, "proc/self/cgroup") is None:
        return Check("cgroup", "unknown", "no /proc/self/cgroup")
    used = len(_worker_cpus(worker_sets))
    try:
        quotas = _cgroup_quotas(root)
    except ValueError as error:  # a quota file that is not numbers
        return Check("cgroup", "unknown", f"unreadable CPU quota: {error}")
    if not quotas:
        return Check("cgroup", "ok", f"no CPU quota on this process's cgroup or its parents (workers use {used} "
                                     f"CPU(s))")
    path, cpus = min(quotas, key=lambda quota: quota[1])
    found = f"CPU quota {cpus:g} CPU(s) on cgroup {path}; the workers use {used} CPU(s)"
    if cpus < used:
        return Check("cgroup", "warn", found,
                     f"raise the quota to at least {used} CPU(s) plus one for the farm itself (cgroup v2: "
                     f"cpu.max 'max 100000'; docker run --cpus; systemd CPUQuota=), or use fewer workers")
    return Check("cgroup", "ok", found)


def check_isolation(worker_sets, root="/") -> Check:
    """Isolated CPUs: the scheduler puts no other task on them and (with nohz_full) stops the timer tick.
    Advice, not a failure: most machines do not isolate, and exclusive measurement copes without it."""
    cpus = _worker_cpus(worker_sets)
    cmdline = _read(root, "proc/cmdline") or ""
    isolated_text = _read(root, f"{CPU_SYSFS}/isolated")
    try:
        if isolated_text is not None:
            isolated = parse_cpu_list(isolated_text)
        else:  # an older kernel: only the command line says
            isolated = _cpus_of_isolcpus(_kernel_parameter(cmdline, "isolcpus") or "")
        nohz_full = parse_cpu_list(_kernel_parameter(cmdline, "nohz_full") or "")
    except ValueError as error:
        return Check("isolation", "unknown", str(error))
    found = (f"isolated CPUs: {format_cpu_list(isolated) or 'none'}; nohz_full: {format_cpu_list(nohz_full) or 'none'}"
             f"; worker CPUs {format_cpu_list(cpus)}")
    not_isolated = sorted(set(cpus) - set(isolated))
    if not not_isolated:
        return Check("isolation", "ok", found)
    listed = format_cpu_list(cpus)
    advice = (f"optional: boot with isolcpus={listed} nohz_full={listed} rcu_nocbs={listed} (e.g. in "
              f"GRUB_CMDLINE_LINUX, then update-grub and reboot) so nothing else is scheduled on the worker CPUs")
    online = _online_cpu_list(root)
    if online and set(online) <= set(cpus):
        # Isolating every CPU leaves the system (and the farm) nowhere to run.
        advice += "; first leave a CPU outside the worker sets (fewer workers): it takes everything else"
    return Check("isolation", "warn", found, advice)


def check_aslr(worker_sets, root="/") -> Check:
    """Address space layout randomisation: every run gets a different memory layout, so the alignment of
    the stack, heap and code (and with it cache and branch-predictor behaviour) varies run to run."""
    value = _read(root, "proc/sys/kernel/randomize_va_space")
    if value is None:
        return Check("aslr", "unknown", "no /proc/sys/kernel/randomize_va_space")
    if value == "0":
        return Check("aslr", "ok", "ASLR off (randomize_va_space=0)")
    return Check("aslr", "warn",
                 f"ASLR on (randomize_va_space={value}): the memory layout varies run to run, and with it the "
                 f"speed of layout-sensitive code",
                 "for benchmarking: sudo sysctl kernel.randomize_va_space=0 (until reboot; set it back to 2 "
                 "afterwards: ASLR makes memory-corruption exploits harder, so this weakens the whole machine); "
                 "or run only the benchmark without it: setarch -R COMMAND")


def check_cpus(worker_sets, root="/", available: list[int] | None = None) -> Check:
    """The CPUs this process may use against those the worker sets take: a worker CPU outside the affinity
    cannot be pinned to, and with no CPU spare the farm's own processes run on the workers' CPUs."""
    available = available if available is not None else available_cpus()
    cpus = _worker_cpus(worker_sets)
    online = _online_cpu_count(root)
    spare = sorted(set(available) - set(cpus))
    sets = " ".join(f"w{index}:[{format_cpu_list(s)}]" for index, s in enumerate(worker_sets))
    found = (f"{len(available)} of {online} CPU(s) available to this process ({format_cpu_list(available)}); "
             f"worker sets {sets}; spare: {format_cpu_list(spare) or 'none'}")
    missing = sorted(set(cpus) - set(available))
    if missing:
        return Check("cpus", "warn", found + f"; CPU(s) {format_cpu_list(missing)} are not available here",
                     "use only available CPUs in workers.cpu_sets (or run outside the taskset/container that "
                     "narrows the affinity)")
    if not spare:
        return Check("cpus", "warn", found + "; the farm's own processes (Ray, the driver) share the workers' CPUs",
                     "leave one CPU spare (fewer workers, workers.count) so the farm runs beside the benchmarks; "
                     "measurement mode auto already measures one worker at a time here")
    return Check("cpus", "ok", found)


def check_irqbalance(worker_sets, root="/") -> Check:
    """irqbalance moves interrupt handling between CPUs every few seconds, onto the workers' CPUs too."""
    proc = pathlib.Path(root) / "proc"
    try:
        pids = [entry.name for entry in proc.iterdir() if entry.name.isdigit()]
    except OSError:
        return Check("irqbalance", "unknown", "no /proc")
    running = [pid for pid in pids if _read(root, f"proc/{pid}/comm") == "irqbalance"]
    if running:
        return Check("irqbalance", "warn", f"irqbalance is running (pid {', '.join(running)})",
                     "sudo systemctl stop irqbalance, then keep interrupts off the worker CPUs: write a mask "
                     "without them to /proc/irq/default_smp_affinity and /proc/irq/*/smp_affinity")
    return Check("irqbalance", "ok", "irqbalance is not running")


def check_virtualisation(worker_sets, root="/") -> Check:
    """A hypervisor under the machine: its vCPUs are threads on a host that runs other guests too."""
    cpuinfo = _read(root, "proc/cpuinfo")
    if cpuinfo is None:
        return Check("virtualisation", "unknown", "no /proc/cpuinfo")
    flags = next((line.split(":", 1)[1].split() for line in cpuinfo.splitlines() if line.startswith("flags")), [])
    if "hypervisor" in flags:
        return Check("virtualisation", "warn",
                     "a virtual machine (cpuinfo flag 'hypervisor'): steal time and noisy neighbours on the host "
                     "apply, and a vCPU may move between physical cores",
                     "prefer bare metal or dedicated (pinned) vCPUs for final numbers; the farm's interleaved "
                     "blocks and robust statistics absorb some of it, and the steal check shows how much")
    return Check("virtualisation", "ok", "no hypervisor flag in /proc/cpuinfo")


def check_steal(worker_sets, root="/") -> Check:
    """Steal time: the share of time the hypervisor ran something else while this guest wanted the CPU."""
    text = _read(root, "proc/stat")
    line = next((line for line in (text or "").splitlines() if line.startswith("cpu ")), None)
    if line is None:
        return Check("steal", "unknown", "no cpu line in /proc/stat")
    values = [int(value) for value in line.split()[1:]]
    if len(values) < 8:
        return Check("steal", "unknown", "/proc/stat has no steal column (kernel too old)")
    # user nice system idle iowait irq softirq steal [guest guest_nice]: guest time is already in user/nice
    total = sum(values[:8])
    fraction = values[7] / total if total else 0.0
    found = f"steal {fraction:.2%} of all CPU time since boot"
    if fraction > STEAL_WARN_FRACTION:
        return Check("steal", "warn", found,
                     "the host is oversubscribed: move to a quieter host or dedicated vCPUs; watch the st column "
                     "of vmstat 1 while measuring")
    return Check("steal", "ok", found)


def check_sandbox(worker_sets, root="/") -> Check:
    """Whether bubblewrap runs here: agents run only inside it (or with `sandbox: none`, unsafe), and every
    phase runs in a PID namespace of its own with it (else the farm's tag sweep, which `env -i` escapes)."""
    problem = sandbox.bwrap_problem()
    if problem is None:
        return Check("sandbox", "ok", "bubblewrap runs: agents sandboxed, every phase in its own PID namespace")
    return Check("sandbox", "warn", problem,
                 "campaigns with agents refuse to run until bubblewrap runs here; without it a phase's "
                 "processes are found by their tag only (a process started with `env -i` escapes the kill)")


def check_memory_wrapper(worker_sets, root="/") -> Check:
    """Which program measures each benchmark run's peak memory (farm/experiment/memory_wrapper.py): compiled C, about
    1 ms
    a run, or the Python form, about 10 ms."""
    found = memory_wrapper.describe()
    if memory_wrapper.compiled() is not None:
        return Check("memory-wrapper", "ok", found)
    return Check("memory-wrapper", "warn", found, "install a C compiler (apt-get install gcc)")


def check_instruction_counter(worker_sets, root="/") -> Check:
    """Which counter measures instructions for measurement.channels [time, instructions]
    (farm/experiment/instruction_counter.py): perf at native speed, else cachegrind, 20-50x slower."""
    counter, found = instruction_counter.find_counter()
    if counter == "perf":
        return Check("instruction-counter", "ok", found)
    if counter == "cachegrind":
        return Check("instruction-counter", "ok", found, "a machine whose kernel exposes the CPU's counters "
                                                        "counts at native speed with perf")
    return Check("instruction-counter", "warn", found, "campaigns with measurement.channels [time, instructions] "
                                                       "crash at their first block here: apt-get install valgrind")


def run_checks(worker_sets: list[tuple[int, ...]], root: str | os.PathLike = "/",
               available: list[int] | None = None) -> list[Check]:
    """Every check of the node for these worker CPU sets, in a fixed order (the most common spoilers first).
    `available` defaults to this process's affinity (not from `root`: the kernel tells it per process)."""
    available = available if available is not None else available_cpus()
    return [
        check_cpus(worker_sets, root, available),
        check_governor(worker_sets, root),
        check_turbo(worker_sets, root),
        check_smt(worker_sets, root),
        check_load(worker_sets, root, available),
        check_cgroup(worker_sets, root),
        check_isolation(worker_sets, root),
        check_aslr(worker_sets, root),
        check_irqbalance(worker_sets, root),
        check_virtualisation(worker_sets, root),
        check_steal(worker_sets, root),
        check_sandbox(worker_sets, root),
        check_memory_wrapper(worker_sets, root),
        check_instruction_counter(worker_sets, root),
    ]


def summary_line(checks: list[Check]) -> str:
    counts = {state: sum(check.state == state for check in checks) for state in ("ok", "warn", "unknown")}
    return f"{len(checks)} checks: {counts['ok']} ok, {counts['warn']} warn, {counts['unknown']} unknown"
