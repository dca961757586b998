/* The clock a reproducible Python build sees (weightlab-author, src/pinned.rs).
 *
 * componentize-py runs CPython in wasmtime and snapshots its memory; the times the interpreter
 * reads reach the snapshot. wasmtime reads them with the C library's clock_gettime (through the
 * vDSO, which a tracer cannot see), so this library, preloaded into the build tool, answers the
 * main thread — where the interpreter runs — from a clock that starts at a fixed instant and
 * advances one microsecond per reading. Other threads (the compiler's) read the real clocks:
 * their readings do not reach the snapshot, and a deadline they compute stays a real one. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* 2001-09-09, as the tracer's file times: after 1980, which ZIP cannot hold times before. */
#define EPOCH 1000000000LL

static long long readings;

static int (*real_clock_gettime)(clockid_t, struct timespec *);

static int pinned_thread(void) { return syscall(SYS_gettid) == getpid(); }

static int wall(clockid_t id) { return id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE || id == CLOCK_TAI; }

static int elapsed(clockid_t id) {
    return id == CLOCK_MONOTONIC || id == CLOCK_MONOTONIC_RAW || id == CLOCK_MONOTONIC_COARSE || id == CLOCK_BOOTTIME;
}

/* A monotonic clock starts at one second: below the real one, so a deadline computed from it
 * is in the past for the kernel rather than ever in its far future. */
static void pinned_now(clockid_t id, struct timespec *tp) {
    long long micros = ++readings;
    tp->tv_sec = (wall(id) ? EPOCH : 1) + micros / 1000000;
    tp->tv_nsec = (micros % 1000000) * 1000;
}

int clock_gettime(clockid_t id, struct timespec *tp) {
    if ((wall(id) || elapsed(id)) && pinned_thread()) {
        pinned_now(id, tp);
        return 0;
    }
    if (!real_clock_gettime) real_clock_gettime = dlsym(RTLD_NEXT, "clock_gettime");
    if (real_clock_gettime) return real_clock_gettime(id, tp);
    return syscall(SYS_clock_gettime, id, tp);
}

int gettimeofday(struct timeval *tv, void *tz) {
    struct timespec ts;
    (void)tz;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0) return -1;
    if (tv) {
        tv->tv_sec = ts.tv_sec;
        tv->tv_usec = ts.tv_nsec / 1000;
    }
    return 0;
}

time_t time(time_t *out) {
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0) return (time_t)-1;
    if (out) *out = ts.tv_sec;
    return ts.tv_sec;
}
