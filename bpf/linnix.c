// linnix: process lifecycle events for user space.
//
// Tracepoints only, and no task_struct field is ever read: the headers this
// is compiled against may not match the running kernel.  Everything comes
// from tracepoint arguments and BPF helpers.
//
//   task:task_newtask           a new task; CLONE_THREAD set means a thread, skipped
//   syscalls:sys_enter_execve   the argv of an exec, kept per thread until it succeeds
//   syscalls:sys_enter_execveat (the same for execveat)
//   sched:sched_process_exec    the process replaced its image: sent with that argv
//   syscalls:sys_enter_exit_group  the exit code a process asks for
//   syscalls:sys_enter_exit     the same, by the main thread alone
//   signal:signal_generate      which signal a kill sent (the kernel delivers a
//                               fatal one as SIGKILL to every thread)
//   signal:signal_deliver       a signal taken with its default action: fatal
//   sched:sched_process_exit    a task ended; only group_dead (the whole process)
//                               counts, and it carries the fate recorded above
//   syscalls:sys_enter_prctl    PR_SET_NAME by a process's main thread: it renamed itself
//
// Events go through one BPF ring buffer.  A failed reservation (the buffer is
// full because user space fell behind) is counted in `lost`, which user space
// reads and reports; it is never silent.
//
// Compile-time settings (defined by the loader):
//   RINGBUF_PAGES   ring buffer size in pages (a power of two)
//   HAVE_GROUP_DEAD sched_process_exit has the group_dead argument
//   HAVE_PRCTL      the prctl syscall tracepoint exists (for renames)
//   HAVE_SYSCALLS   the execve and exit syscall tracepoints exist (for argv and exit codes)
//   HAVE_EXECVEAT   the execveat syscall tracepoint exists
//   HAVE_SIGNAL     the signal tracepoints exist (for fatal signals)

#include <linux/sched.h>

#define EV_FORK 1
#define EV_EXEC 2
#define EV_EXIT 3
#define EV_RENAME 4
#define PR_SET_NAME 15
#define FILENAME_LEN 256
#define ARGV_ARGS 64       // arguments kept at most
#define ARGV_BYTES 2048    // bytes of argv kept at most (arguments end with NUL)
#define ARGV_KNOWN 1       // exec flags: the argv was read at the syscall
#define ARGV_CUT 2         //             ... and cut at one of the bounds above
#define FATE_LEADER 1      // how a process ended: its main thread called exit()
#define FATE_GROUP 2       //                      exit_group() (a group exit)
#define FATE_SIGNAL 3      //                      a fatal signal (a group exit)
#define SIGKILL 9

struct ev_head {
    u64 ts;        // bpf_ktime_get_boot_ns()
    u32 kind;
    u32 pid;       // thread-group id: the process
    u32 ppid;      // fork: the parent's thread-group id
    u32 uid;
    char comm[16];
};

struct ev_exit {
    struct ev_head head;
    s32 code;      // exit code, -1 when unknown or a signal ended the process
    s32 signal;    // fatal signal, -1 when unknown or the process exited
};

// Sent with a length: the argv part is only as long as what was read.  The
// buffer is twice ARGV_BYTES so that the verifier can prove every read in bounds.
struct ev_exec {
    struct ev_head head;
    char filename[FILENAME_LEN];
    u16 argc;
    u16 flags;
    u32 len;       // bytes of argv used
    char argv[2 * ARGV_BYTES];
};

struct fate {
    u32 how;       // FATE_*
    s32 value;     // exit code or signal number
};

BPF_RINGBUF_OUTPUT(events, RINGBUF_PAGES);
BPF_PERCPU_ARRAY(lost, u64, 1);
BPF_PERCPU_ARRAY(scratch, struct ev_exec, 1);
// bounded, oldest first out: an exec that failed or a kill never followed by an
// exit leaves an entry behind, which must not fill the table for good
BPF_TABLE("lru_hash", u32, struct ev_exec, argvs, 512);     // thread id -> pending exec
BPF_TABLE("lru_hash", u32, struct fate, fates, 16384);      // process -> how it ends
BPF_TABLE("lru_hash", u32, s32, kills, 16384);              // process -> last fatal kill

static __always_inline void count_lost(void) {
    int zero = 0;
    u64 *n = lost.lookup(&zero);
    if (n)
        *n += 1;  // per-CPU slot: no atomic needed
}

static __always_inline void fill(struct ev_head *e, u32 kind) {
    e->ts = bpf_ktime_get_boot_ns();
    e->kind = kind;
    e->pid = bpf_get_current_pid_tgid() >> 32;
    e->ppid = 0;
    e->uid = (u32)bpf_get_current_uid_gid();
}

TRACEPOINT_PROBE(task, task_newtask) {
    if (args->clone_flags & CLONE_THREAD)
        return 0;  // a thread, not a process
    struct ev_head *e = events.ringbuf_reserve(sizeof(*e));
    if (!e) {
        count_lost();
        return 0;
    }
    fill(e, EV_FORK);
    e->ppid = e->pid;  // runs in the parent
    e->pid = args->pid;
    __builtin_memcpy(e->comm, args->comm, sizeof(e->comm));
    events.ringbuf_submit(e, 0);
    return 0;
}

#ifdef HAVE_SYSCALLS
// Copies the strings of a user argv array into e->argv, NUL after each, within bounds.
static __always_inline void read_argv(struct ev_exec *e, const char *const *argv) {
    u64 off = 0;  // 64 bits: a 32-bit copy would be checked apart from the one used
    e->argc = 0;
    e->flags = ARGV_KNOWN;
    for (int i = 0; i < ARGV_ARGS; i++) {
        const char *arg = 0;
        if (bpf_probe_read_user(&arg, sizeof(arg), &argv[i]) < 0) {
            e->flags |= ARGV_CUT;  // unreadable: what follows is not known
            break;
        }
        if (!arg)
            goto done;
        if (off >= ARGV_BYTES) {
            e->flags |= ARGV_CUT;
            break;
        }
        long n = bpf_probe_read_user_str(&e->argv[off], ARGV_BYTES - off, arg);
        if (n <= 0) {
            e->flags |= ARGV_CUT;
            break;
        }
        e->argc++;
        if ((u64)n == ARGV_BYTES - off) {  // filled the space left: cut short, unless
            char end = 0;                  // the string ended exactly there
            bpf_probe_read_user(&end, 1, arg + n - 1);
            off += n;
            if (end) {
                e->flags |= ARGV_CUT;
                break;
            }
            continue;
        }
        off += n;
    }
    if (e->argc == ARGV_ARGS) {  // room for no more: cut unless the array ends here
        const char *arg = 0;
        if (bpf_probe_read_user(&arg, sizeof(arg), &argv[ARGV_ARGS]) < 0 || arg)
            e->flags |= ARGV_CUT;
    }
done:
    e->len = off;
}

static __always_inline void keep_argv(const char *const *argv) {
    int zero = 0;
    struct ev_exec *e = scratch.lookup(&zero);
    if (!e)
        return;
    read_argv(e, argv);
    u32 tid = (u32)bpf_get_current_pid_tgid();
    argvs.update(&tid, e);
}

TRACEPOINT_PROBE(syscalls, sys_enter_execve) {
    keep_argv((const char *const *)args->argv);
    return 0;
}

#ifdef HAVE_EXECVEAT
TRACEPOINT_PROBE(syscalls, sys_enter_execveat) {
    keep_argv((const char *const *)args->argv);
    return 0;
}
#endif
#endif

TRACEPOINT_PROBE(sched, sched_process_exec) {
    u32 old = args->old_pid;  // the thread that called exec (it is the leader now)
    struct ev_exec *e = argvs.lookup(&old);
    if (!e) {  // exec'd by the kernel itself, or the argv entry was evicted
        int zero = 0;
        e = scratch.lookup(&zero);
        if (!e)
            return 0;
        e->argc = 0;
        e->flags = 0;
        e->len = 0;
    }
    fill(&e->head, EV_EXEC);
    bpf_get_current_comm(e->head.comm, sizeof(e->head.comm));
    unsigned short offset = args->data_loc_filename & 0xFFFF;
    bpf_probe_read_kernel_str(e->filename, sizeof(e->filename), (void *)args + offset);
    u32 len = e->len;
    if (len > ARGV_BYTES)
        len = ARGV_BYTES;
    if (events.ringbuf_output(e, __builtin_offsetof(struct ev_exec, argv) + len, 0) < 0)
        count_lost();
    argvs.delete(&old);
    // a new image: whatever an old thread's death said is not how this program ends
    u32 pid = e->head.pid;
    fates.delete(&pid);
    kills.delete(&pid);
    return 0;
}

// Records how the process ends.  A group exit (exit_group or a fatal signal)
// is final: the first one wins, and the SIGKILL every other thread then takes
// does not overwrite it.  The main thread's exit() yields to a later group exit.
static __always_inline void record_fate(u32 how, s32 value) {
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    struct fate *old = fates.lookup(&pid);
    if (old && old->how != FATE_LEADER)
        return;
    if (old && how == FATE_LEADER)
        return;
    struct fate f = {.how = how, .value = value};
    fates.update(&pid, &f);
}

#ifdef HAVE_SYSCALLS
TRACEPOINT_PROBE(syscalls, sys_enter_exit_group) {
    record_fate(FATE_GROUP, (s32)(args->error_code & 0xff));
    return 0;
}

TRACEPOINT_PROBE(syscalls, sys_enter_exit) {
    u64 id = bpf_get_current_pid_tgid();
    if ((u32)id != (u32)(id >> 32))
        return 0;  // another thread: the process's code is its main thread's
    record_fate(FATE_LEADER, (s32)(args->error_code & 0xff));
    return 0;
}
#endif

#ifdef HAVE_SIGNAL
// Terminate or dump core, as opposed to ignore or stop, when the handler is the default.
static __always_inline int fatal_by_default(int sig) {
    if (sig <= 0 || sig > 64)
        return 0;
    return !(sig == 17 || sig == 18 || sig == 19 || sig == 20 || sig == 21 || sig == 22 ||
             sig == 23 || sig == 28);  // CHLD CONT STOP TSTP TTIN TTOU URG WINCH
}

TRACEPOINT_PROBE(signal, signal_generate) {
    // A fatal signal that dumps no core is turned into SIGKILL for every thread
    // when it is queued; remember which it was.  result 0: the signal was queued.
    int sig = args->sig;
    if (args->result != 0 || !fatal_by_default(sig))
        return 0;
    u32 pid = args->pid;
    s32 value = sig;
    kills.update(&pid, &value);
    return 0;
}

TRACEPOINT_PROBE(signal, signal_deliver) {
    int sig = args->sig;
    if (args->sa_handler != 0 || !fatal_by_default(sig))
        return 0;  // a handler, SIG_IGN, or a default that does not kill
    s32 value = sig;
    if (sig == SIGKILL) {  // a group exit already under way: what started it?
        u32 pid = bpf_get_current_pid_tgid() >> 32;
        s32 *sent = kills.lookup(&pid);
        if (sent)
            value = *sent;
    }
    record_fate(FATE_SIGNAL, value);
    return 0;
}
#endif

TRACEPOINT_PROBE(sched, sched_process_exit) {
    u64 id = bpf_get_current_pid_tgid();
    u32 tid = (u32)id;
    argvs.delete(&tid);  // an exec this thread began and never finished
#ifdef HAVE_GROUP_DEAD
    if (!args->group_dead)
        return 0;  // a thread ended; the process lives on
#else
    if (tid != (u32)(id >> 32))
        return 0;  // not the thread-group leader
#endif
    struct ev_exit *e = events.ringbuf_reserve(sizeof(*e));
    if (!e) {
        count_lost();
        return 0;
    }
    fill(&e->head, EV_EXIT);
    bpf_get_current_comm(e->head.comm, sizeof(e->head.comm));
    e->code = -1;
    e->signal = -1;
    u32 pid = e->head.pid;
    struct fate *f = fates.lookup(&pid);
    if (f) {
        if (f->how == FATE_SIGNAL)
            e->signal = f->value;
        else
            e->code = f->value;
        fates.delete(&pid);
    }
    kills.delete(&pid);
    events.ringbuf_submit(e, 0);
    return 0;
}

#ifdef HAVE_PRCTL
TRACEPOINT_PROBE(syscalls, sys_enter_prctl) {
    if (args->option != PR_SET_NAME)
        return 0;
    u64 id = bpf_get_current_pid_tgid();
    if ((u32)id != (u32)(id >> 32))
        return 0;  // another thread renamed itself; the process keeps its name
    struct ev_head *e = events.ringbuf_reserve(sizeof(*e));
    if (!e) {
        count_lost();
        return 0;
    }
    fill(e, EV_RENAME);
    bpf_probe_read_user_str(e->comm, sizeof(e->comm), (void *)args->arg2);
    events.ringbuf_submit(e, 0);
    return 0;
}
#endif
