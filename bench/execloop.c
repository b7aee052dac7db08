/* A tight fork+exec+exit loop for bench/execcost.py.
 *   execloop SECONDS PROGRAM [ARG...]
 * Forks a child that execs PROGRAM with the given arguments, reaps it, and
 * repeats for SECONDS.  Prints the execs done and the wall time. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc < 3)
        return 2;
    double start = now(), end = start + atof(argv[1]);
    long n = 0;
    while (now() < end) {
        pid_t pid = fork();
        if (pid == 0) {
            execv(argv[2], &argv[2]);
            _exit(127);
        }
        if (pid < 0)
            break;
        waitpid(pid, NULL, 0);
        n++;
    }
    printf("%ld %.6f\n", n, now() - start);
    return 0;
}
