/* A tight loopback connect loop for bench/netcost.py.
 *   connloop SECONDS
 * Listens on a loopback port; a second thread accepts and closes every
 * connection while the main thread connects, closes (with a reset, so that no
 * TIME_WAIT socket holds the port) and repeats for SECONDS.  Prints the
 * connects made and the CPU seconds (user and system, both threads) the loop
 * used: what the capture's handlers add inside its syscalls shows there. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int listener;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *serve(void *arg) {
    (void)arg;
    for (;;) {
        int fd = accept4(listener, NULL, NULL, 0);
        if (fd < 0)
            return NULL;  /* the listener was shut down: the loop is over */
        close(fd);
    }
}

int main(int argc, char **argv) {
    if (argc < 2)
        return 2;
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(addr);
    listener = socket(AF_INET, SOCK_STREAM, 0);
    if (listener < 0 || bind(listener, (struct sockaddr *)&addr, len) < 0 ||
            listen(listener, 4096) < 0 ||
            getsockname(listener, (struct sockaddr *)&addr, &len) < 0) {
        perror("listen");
        return 1;
    }
    pthread_t server;
    pthread_create(&server, NULL, serve, NULL);
    struct linger reset = {.l_onoff = 1, .l_linger = 0};
    double end = now() + atof(argv[1]);
    long n = 0;
    while (now() < end) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0)
            break;
        if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0)
            n++;
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
        close(fd);
    }
    shutdown(listener, SHUT_RDWR);
    pthread_join(server, NULL);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("%ld %.6f\n", n, ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
           ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6);
    return 0;
}
