/* A tight fork+exit loop for bench/live.py.
 *   forkloop SECONDS [RATE]
 * Forks a child that exits at once, reaps it, and repeats for SECONDS; with
 * RATE (forks a second), paces itself to that rate.  Prints the forks done. */
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
    double seconds = argc > 1 ? atof(argv[1]) : 5.0;
    double rate = argc > 2 ? atof(argv[2]) : 0.0;
    double start = now(), end = start + seconds;
    long n = 0;
    while (now() < end) {
        pid_t pid = fork();
        if (pid == 0)
            _exit(0);
        if (pid < 0)
            break;
        waitpid(pid, NULL, 0);
        n++;
        if (rate > 0) {
            double due = start + n / rate, t = now();
            if (due > t) {
                struct timespec d = {(time_t)(due - t), (long)((due - t - (time_t)(due - t)) * 1e9)};
                nanosleep(&d, NULL);
            }
        }
    }
    printf("%ld %.6f\n", n, now() - start);
    return 0;
}
