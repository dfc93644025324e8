"""Runs a command and reports the peak resident memory of its process tree, from the kernel's accounting.

    python -I -S farm/experiment/peak_rss.py FD ARGV...

Starts ARGV, waits for it with wait4 and writes its ru_maxrss (in bytes) as one line to file descriptor FD; exits
as ARGV did. ru_maxrss covers ARGV and every descendant that was waited for: the largest of their peaks (Linux
does not add up processes that ran at the same time; the threads of one process, OpenMP's, are one process).

Why a wrapper and not wait4 in the farm:
- ru_maxrss keeps a process's peak across exec, including the memory it shared with its parent between fork and
  exec: every child of a Ray worker (hundreds of MB) would report at least the worker's size. Forked from this
  small process, the command starts from its size (about 10 MB).
- Inside bubblewrap's PID namespace the command is a child of the sandbox's own init, which the outer bwrap
  never waits for: the farm's wait4 sees only bwrap. This wrapper runs inside the sandbox, between its init and
  the command. FD is not inherited by the command: a
benchmark cannot write its own figure. Standard library only (run with -S: no site-packages to import).

farm/experiment/peak_rss.c is the same program compiled (about 1 ms to start against 10);
farm/experiment/memory_wrapper.py chooses.
"""
import os
import sys


def main(argv: list[str]) -> int:
    report = int(argv[1])
    os.set_inheritable(report, False)
    pid = os.fork()
    if pid == 0:
        try:
            os.execvp(argv[2], argv[2:])
        except OSError as error:
            print(f"peak_rss: cannot run {argv[2]!r}: {error.strerror}", file=sys.stderr)
            os._exit(127)
    while True:
        try:
            _, status, usage = os.wait4(pid, 0)
            break
        except InterruptedError:
            continue
    os.write(report, f"{usage.ru_maxrss * 1024}\n".encode())  # Linux counts kibibytes
    return os.waitstatus_to_exitcode(status) % 256 if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
