// linnix: process lifecycle events for user space.
//
// Tracepoints only, and no task_struct field is ever read: the headers this
// is compiled against may not match the running kernel.  Everything comes
// from tracepoint arguments and BPF helpers.
//
//   task:task_newtask        a new task; CLONE_THREAD set means a thread, skipped
//   sched:sched_process_exec the process replaced its image
//   sched:sched_process_exit a task ended; only group_dead (the whole process) counts
//   syscalls:sys_enter_prctl PR_SET_NAME by a process's main thread: it renamed itself
//
// Events go through one BPF ring buffer.  A failed reservation (the buffer is
// full because user space fell behind) is counted in `lost`, which user space
// reads and reports; it is never silent.
//
// Compile-time settings (defined by the loader):
//   RINGBUF_PAGES   ring buffer size in pages (a power of two)
//   HAVE_GROUP_DEAD sched_process_exit has the group_dead argument
//   HAVE_PRCTL      syscall tracepoints exist (for renames)

#include <linux/sched.h>

#define EV_FORK 1
#define EV_EXEC 2
#define EV_EXIT 3
#define EV_RENAME 4
#define PR_SET_NAME 15
#define FILENAME_LEN 128

struct ev_head {
    u64 ts;        // bpf_ktime_get_boot_ns()
    u32 kind;
    u32 pid;       // thread-group id: the process
    u32 ppid;      // fork: the parent's thread-group id
    u32 uid;
    char comm[16];
};

struct ev_exec {
    struct ev_head head;
    char filename[FILENAME_LEN];
};

BPF_RINGBUF_OUTPUT(events, RINGBUF_PAGES);
BPF_PERCPU_ARRAY(lost, u64, 1);

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

TRACEPOINT_PROBE(sched, sched_process_exec) {
    struct ev_exec *e = events.ringbuf_reserve(sizeof(*e));
    if (!e) {
        count_lost();
        return 0;
    }
    fill(&e->head, EV_EXEC);
    bpf_get_current_comm(e->head.comm, sizeof(e->head.comm));
    unsigned short offset = args->data_loc_filename & 0xFFFF;
    bpf_probe_read_kernel_str(e->filename, sizeof(e->filename), (void *)args + offset);
    events.ringbuf_submit(e, 0);
    return 0;
}

TRACEPOINT_PROBE(sched, sched_process_exit) {
#ifdef HAVE_GROUP_DEAD
    if (!args->group_dead)
        return 0;  // a thread ended; the process lives on
#else
    u64 id = bpf_get_current_pid_tgid();
    if ((u32)id != (u32)(id >> 32))
        return 0;  // not the thread-group leader
#endif
    struct ev_head *e = events.ringbuf_reserve(sizeof(*e));
    if (!e) {
        count_lost();
        return 0;
    }
    fill(e, EV_EXIT);
    bpf_get_current_comm(e->comm, sizeof(e->comm));
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
