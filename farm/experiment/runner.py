"""The one way the farm starts a subprocess.

Every phase command (agent, build, guard, bench) runs through run_command:
pinned to the worker's CPU set with taskset, with OpenMP told the same, in its
own session so that a timeout kills the whole process group, with the farm's
Python first on PATH, its output logged, and a failure raised as an error
that shows the command, exit code and the tail of the output.

Nothing a command starts outlives it: given a sandbox (farm/node/sandbox.py), it
runs in a PID namespace of its own that dies with it, `env -i` and `setsid`
included. Each also carries a farm tag unique to the command (see
farm.node.processes), and whatever still carries it when the command ends, however
it ended, is killed, also children that left the process group: the fallback
where bubblewrap cannot run.
"""
from __future__ import annotations

import contextlib
import json
import os
import pathlib
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass

from farm.errors import PhaseError, PhaseTimeout
from farm.experiment.memory_wrapper import wrapper_argv
from farm.node.processes import KILL_GRACE_SECONDS, TAG_VARIABLE, kill_tagged
from farm.node.sandbox import Sandbox

TAIL_LINES = 12
DEFAULT_TAG = "farm:-"  # the "<campaign>:<worker>" of a command started outside a campaign


@dataclass(frozen=True)
class Pinning:
    """A CPU set and the environment that tells OpenMP about it."""

    cpus: tuple[int, ...]

    def cpu_list(self) -> str:
        return ",".join(map(str, self.cpus))

    def environment(self) -> dict[str, str]:
        return {
            "OMP_NUM_THREADS": str(len(self.cpus)),
            "OMP_PLACES": ",".join(f"{{{cpu}}}" for cpu in self.cpus),
            "OMP_PROC_BIND": "close",
        }


@dataclass(frozen=True)
class CommandResult:
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    pid: int
    peak_rss: int | None = None  # bytes: the run's peak resident memory (measure_memory), None if not measured


def _tail(text: str) -> str:
    return "\n".join(text.strip().splitlines()[-TAIL_LINES:])


def _telling_line(stderr: str, stdout: str) -> str:
    """The line that best says why a command failed: a Python traceback's
    exception line, else the first mentioning an error, else the last line of
    stderr, else the last line of stdout."""
    raw = (stderr + "\n" + stdout).splitlines()
    for number, line in enumerate(raw):
        if line.startswith("Traceback (most recent call last):"):
            exception = next((later for later in raw[number + 1:] if later.strip() and not later[0].isspace()), "")
            if exception:
                return exception.strip()[:300]
    lines = [line.strip() for line in raw if line.strip()]
    for line in lines:
        if re.search(r"\b(error|FAIL|Traceback)\b", line) and not line.startswith("+ "):
            return line[:300]
    for text in (stderr, stdout):
        if text.strip():
            return text.strip().splitlines()[-1][:300]
    return "no output"


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGTERM the whole process group, then SIGKILL whatever is left of it."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=KILL_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # children may outlive their leader
    except ProcessLookupError:
        pass


def _exits_within(pid: int, timeout: float) -> bool | None:
    """Whether process `pid` ends within `timeout` seconds, waited for on a pidfd (Linux 5.3), without polling;
    None where no pidfd can be had (an older kernel, or the process is gone and reaped already)."""
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None
    try:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        return bool(poller.poll(max(timeout, 0.0) * 1000))
    finally:
        os.close(pidfd)


def _ends_within(proc: subprocess.Popen, timeout: float) -> bool:
    """Whether the command ends within `timeout` seconds. On a pidfd: Popen.wait(timeout) sleeps in steps of up
    to 50 ms and noticed each command's end 15 ms late on average, and a timer thread per command cost about
    1 ms to start."""
    ended = _exits_within(proc.pid, timeout)
    if ended is not None:
        return ended
    try:  # an older kernel: Popen's own wait
        proc.wait(timeout)
        return True
    except subprocess.TimeoutExpired:
        return False


def _await_namespace_end(info_read: int) -> None:
    """Wait until the sandbox's PID namespace is gone (closes `info_read`). bwrap exits as soon as the command
    does, while its init is still killing what the command left running: without this wait a detached child
    could still be alive when the phase ends. The init's end comes after the last of them."""
    try:
        os.set_blocking(info_read, False)
        text = os.read(info_read, 65536).decode(errors="replace")
        init = int(json.loads(text)["child-pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return  # bwrap failed before it started anything
    finally:
        os.close(info_read)
    if _exits_within(init, KILL_GRACE_SECONDS) is False:  # None: gone already, or an older kernel
        with contextlib.suppress(OSError):
            os.kill(init, signal.SIGKILL)
        _exits_within(init, KILL_GRACE_SECONDS)


def _read_report(report) -> int | None:
    """What the memory wrapper (farm/experiment/memory_wrapper.py) wrote (bytes), or None if it wrote nothing (killed);
    closes the file."""
    with report:
        report.seek(0)
        text = report.read().decode(errors="replace").strip()
    return int(text) if text.isdigit() else None


@dataclass(frozen=True)
class Stall:
    """A command that prints nothing and changes no file under `watch` for `seconds` is stalled."""

    seconds: float
    watch: pathlib.Path


def _activity(outputs, watch: pathlib.Path) -> tuple:
    """What changes while a command works: its output's size, and the newest change under `watch`."""
    newest = 0
    for directory, _, files in os.walk(watch):
        for name in [*files, "."]:  # a directory's own time changes when a file in it is deleted
            try:
                newest = max(newest, os.lstat(os.path.join(directory, name)).st_mtime_ns)
            except OSError:
                pass
    return tuple(os.fstat(handle.fileno()).st_size for handle in outputs) + (newest,)


def _watch_for_stall(stall: Stall, outputs, done: threading.Event, stalled: threading.Event, expire) -> None:
    """Until the command ends (`done`): look every tenth of `stall.seconds` (1 to 30 s) for output or a changed
    file; none for `stall.seconds` stalls it."""
    interval = min(max(stall.seconds / 10, 1.0), 30.0)
    last, quiet_since = _activity(outputs, stall.watch), time.monotonic()
    while not done.wait(interval):
        now = _activity(outputs, stall.watch)
        if now != last:
            last, quiet_since = now, time.monotonic()
        elif time.monotonic() - quiet_since >= stall.seconds and not done.is_set():
            stalled.set()
            expire()
            return


def run_command(phase: str, command: str, cwd: str | os.PathLike, timeout: float, pinning: Pinning | None,
                log_path: str | os.PathLike | None = None, env: dict[str, str] | None = None,
                check: bool = True, tag: str | None = None, sandbox: Sandbox | None = None,
                stall: Stall | None = None, measure_memory: bool = False) -> CommandResult:
    """Run `command` with bash in `cwd`.

    Returns a CommandResult. Raises PhaseTimeout after `timeout` seconds (the
    process group is killed) and, if `check`, PhaseError on a non-zero exit.
    `tag` is the "<campaign>:<worker>" the command's farm tag starts with
    (DEFAULT_TAG if None); whatever carries the command's tag when it ends is killed. `sandbox`: bwrap's
    mounts and namespaces around the command (None: none). `stall`: also killed (PhaseTimeout, "stalled")
    once it printed nothing and changed no file under `stall.watch` for `stall.seconds`. `measure_memory`: the
    command runs under the memory wrapper (farm/experiment/memory_wrapper.py), and the result has its peak resident
    memory
    (None if it was killed).
    """
    if pinning is not None and shutil.which("taskset") is None:
        raise PhaseError(phase, "taskset not found: install util-linux to pin CPUs")
    report = tempfile.TemporaryFile("w+b") if measure_memory else None
    wrapper = wrapper_argv(report.fileno()) if report else []
    info_read, info_write = os.pipe() if sandbox is not None else (None, None)
    argv = [*(sandbox.argv(info_write) if sandbox is not None else []), *wrapper, "bash", "-c", command]
    if pinning is not None and os.sched_getaffinity(0) != set(pinning.cpus):  # else the child inherits it
        argv = ["taskset", "-c", pinning.cpu_list(), *argv]
    command_tag = f"{tag or DEFAULT_TAG}:{uuid.uuid4().hex}"
    full_env = dict(os.environ)
    full_env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + full_env.get("PATH", "")
    full_env["PYTHONDONTWRITEBYTECODE"] = "1"  # keep checkouts free of untracked files
    full_env.update(env or {})
    if pinning is not None:  # after `env`: a checkout's env file cannot unpin its phases
        full_env.update(pinning.environment())
    full_env[TAG_VARIABLE] = command_tag
    start = time.monotonic()
    # Output goes to files, not pipes: a background child holding a pipe open would keep the phase
    # waiting after its command ended; with files the phase ends when the command does.
    with tempfile.TemporaryFile("w+", errors="replace") as out, tempfile.TemporaryFile("w+", errors="replace") as err:
        inherited = tuple(fd for fd in (report.fileno() if report else None, info_write) if fd is not None)
        try:
            proc = subprocess.Popen(argv, cwd=cwd, env=full_env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                    start_new_session=True, pass_fds=inherited)
        finally:
            if info_write is not None:
                os.close(info_write)
        expired = threading.Event()
        stalled, done = threading.Event(), threading.Event()
        watcher = None

        def expire() -> None:
            expired.set()
            _kill_group(proc)

        if stall is not None:
            watcher = threading.Thread(target=_watch_for_stall, args=(stall, (out, err), done, stalled, expire),
                                       daemon=True)
            watcher.start()

        try:
            if not _ends_within(proc, timeout):
                expire()
            proc.wait()
        finally:
            done.set()
            if proc.poll() is None:  # this call was interrupted
                _kill_group(proc)
            if watcher is not None:
                watcher.join()  # before the output files it reads are closed
            # However the command ended (or this call was interrupted), nothing it started may outlive it: not a
            # background job, not a child that left the process group with setsid or a double fork. In a sandbox
            # its PID namespace died with it; without one, what carries its tag is found and killed.
            if sandbox is None:
                kill_tagged(command_tag)
            else:
                _await_namespace_end(info_read)
            proc.wait()
        timed_out = expired.is_set()
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    seconds = time.monotonic() - start
    peak_rss = _read_report(report) if report else None
    if log_path is not None:
        log_path = pathlib.Path(log_path)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("a") as log:
            log.write(f"$ {command}  (cwd={cwd}, cpus={pinning.cpu_list() if pinning else 'any'})\n")
            log.write(stdout + ("\n--- stderr ---\n" + stderr if stderr.strip() else ""))
            log.write(f"\n--- exit {proc.returncode} after {seconds:.2f}s{' (timeout)' if timed_out else ''}\n\n")
    result = CommandResult(proc.returncode, stdout, stderr, seconds, proc.pid, peak_rss)
    if stalled.is_set():
        raise PhaseTimeout(phase, f"{phase} stalled: no output and no file changed for {stall.seconds:g}s "
                                  f"(`{command}`); its process group was killed", command, None,
                           _tail(stderr or stdout), stdout)
    if timed_out:
        raise PhaseTimeout(phase, f"{phase} timed out after {timeout:g}s (`{command}`); its process group was killed",
                           command, None, _tail(stderr or stdout), stdout)
    if check and proc.returncode != 0:
        raise PhaseError(phase, f"exit {proc.returncode}: {_telling_line(stderr, stdout)}", command,
                         proc.returncode, _tail(stderr + "\n" + stdout), stdout)
    return result
