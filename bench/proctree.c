/* A tree of sleeping processes for bench/live.py's reference load.
 *   proctree FANOUT...
 * The first process forks FANOUT[0] children, each of them FANOUT[1], and so on:
 * "10 10 10" makes 1,110 processes under it, 3 levels deep.  Every process then
 * sleeps until killed; the tree shares the first one's process group, so
 * kill(-PGID, SIGKILL) ends it.  Prints "ready" once the whole tree is up. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* Forks this level's children one at a time, each once its own subtree is up;
 * then this process sleeps for good (the first one says "ready" first). */
static void grow(int level, int levels, char **fanout) {
    int n = level < levels ? atoi(fanout[level]) : 0;
    for (int i = 0; i < n; i++) {
        int up[2];
        if (pipe(up) < 0)
            _exit(1);
        pid_t pid = fork();
        if (pid < 0)
            _exit(1);
        if (pid == 0) {
            close(up[0]);
            grow(level + 1, levels, fanout);
            if (write(up[1], "x", 1) != 1)  /* this subtree is complete */
                _exit(1);
            close(up[1]);
            for (;;)
                pause();
        }
        close(up[1]);
        char byte;
        if (read(up[0], &byte, 1) != 1)
            _exit(1);
        close(up[0]);
    }
}

int main(int argc, char **argv) {
    setpgid(0, 0);
    grow(0, argc - 1, argv + 1);
    printf("ready\n");
    fflush(stdout);
    for (;;)
        pause();
}
