/* The compiled form of farm/experiment/peak_rss.py (same arguments, same report): about 1 ms to start instead of 10.

       peak_rss FD ARGV...

   Starts ARGV, waits for it with wait4 and writes its ru_maxrss (bytes) as one line to file descriptor FD,
   which ARGV does not inherit; exits as ARGV did. farm/experiment/memory_wrapper.py compiles it on first use and falls
   back to the Python form where no C compiler is found. Why a wrapper at all: see farm/experiment/peak_rss.py. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: peak_rss FD ARGV...\n");
        return 2;
    }
    int report = atoi(argv[1]);
    fcntl(report, F_SETFD, FD_CLOEXEC);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "peak_rss: fork: %s\n", strerror(errno));
        return 127;
    }
    if (pid == 0) {
        execvp(argv[2], argv + 2);
        fprintf(stderr, "peak_rss: cannot run '%s': %s\n", argv[2], strerror(errno));
        _exit(127);
    }
    int status;
    struct rusage usage;
    while (wait4(pid, &status, 0, &usage) < 0) {
        if (errno != EINTR) {
            fprintf(stderr, "peak_rss: wait4: %s\n", strerror(errno));
            return 127;
        }
    }
    dprintf(report, "%lld\n", (long long)usage.ru_maxrss * 1024); /* Linux counts kibibytes */
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    return 128 + WTERMSIG(status);
}
