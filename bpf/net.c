// linnix: connect, accept and listen, from the syscall tracepoints (docs/network.md).
//
// Compiled after linnix.c, whose ring buffer (`events`), `lost` counter and
// ev_head these programs share: a network record is batched, and counted when
// lost, like a process event.  The functions are not TRACEPOINT_PROBEs, so BCC
// attaches none of them by itself: user space attaches them only when asked
// (`linnix record`, or rules that read network names), and detaches them again.
//
//   sys_enter_connect  the address asked for, read from the caller, kept per thread
//   sys_exit_connect   sent with the result (0, -EINPROGRESS or another -errno)
//   sys_enter_bind     the address a socket is bound to, kept per thread ...
//   sys_exit_bind      ... and, when the bind succeeded, per (process, fd)
//   sys_enter_listen   the fd, kept per thread
//   sys_exit_listen    sent with the address bound to that fd, when this process bound it
//   sys_enter_accept(4) where the caller wants the peer's address, kept per thread
//   sys_exit_accept(4) sent with the peer's address (read from the caller's buffer) and
//                      the port the listening fd was bound to
//   sched_process_exit a thread ended: its entry in the per-thread table goes
//
// What it costs the caller (bench/RESULTS.md, issue 17): a thread's entry in
// the per-thread table is made at its first network call and then rewritten in
// place, call after call (a lookup, where inserting and deleting each call cost
// several times more), and removed when the thread exits; a record has room
// for an inet or inet6 address unless a longer one (a unix path) needs more.
//
// Every user pointer is read with bpf_probe_read_user and a bounded size.  Both
// tables are LRU hashes: an entry of a thread or socket we never saw go is
// evicted in time.

#define EV_CONNECT 5
#define EV_ACCEPT 6
#define EV_LISTEN 7
#define NET_SA_MAX 128       // room for a sockaddr: a sockaddr_un (110) fits
#define NET_SA_READ 127      // read at most this (a mask the verifier can follow)
#define NET_SA_SMALL 32      // a small record's room (31 used): sockaddr_in (16), _in6 (28)
#define NET_AF_UNIX 1
#define NET_AF_INET 2
#define NET_AF_INET6 10
#define NET_CALL_CONNECT 1   // which call's entry a thread's entry holds (0: none)
#define NET_CALL_BIND 2
#define NET_CALL_LISTEN 3
#define NET_CALL_ACCEPT 4

// A record: 48 bytes, then the sockaddr, in a record of NET_SA_SMALL bytes of room
// (most) or NET_SA_MAX; user space reads the room from the record's length.
struct ev_net {
    struct ev_head head;     // comm, ppid and uid are not filled (0): not network fields
    s32 ret;                 // the syscall's result: 0, an fd, or -errno
    u8 salen;                // bytes of sa read (0: no address)
    u8 lfamily;              // accept: the listening socket's family (0: unknown)
    u16 lport;               // accept: the port it was bound to, host order (0: unknown)
    u8 sa[NET_SA_MAX];       // the sockaddr as the caller gave it or got it
};

#define NET_RECORD_SMALL (__builtin_offsetof(struct ev_net, sa) + NET_SA_SMALL)

struct net_pending {
    u64 uaddr;               // accept: where the peer's address is written
    u64 ulen;                //         and its length
    s32 fd;
    u8 call;                 // NET_CALL_*: the call under way, 0 once its exit took it
    u8 salen;                // connect, bind: bytes of sa read
    u16 pad;
    u8 sa[NET_SA_MAX];
};

// thread -> its call under way; an entry per live thread that made a network call
BPF_TABLE("lru_hash", u32, struct net_pending, netpending, 16384);
BPF_TABLE("lru_hash", u64, struct net_pending, netbound, 4096);    // (process, fd) -> bind
BPF_PERCPU_ARRAY(netscratch, struct net_pending, 1);

static __always_inline u64 net_fd_key(s32 fd) {
    return (bpf_get_current_pid_tgid() & 0xffffffff00000000ULL) | (u32)fd;
}

// A length of at most `mask` (a power of two less one) that the verifier can see is one:
// the empty asm hides the clamp from the compiler, which would otherwise drop the mask.
static __always_inline u32 net_bounded(u64 len, u32 mask) {
    u32 n = len > mask ? mask : (u32)len;
    asm volatile("" : "+r"(n));
    return n & mask;
}

// Reads the caller's sockaddr into p->sa; false for a family not reported.
static __always_inline int net_read_sa(struct net_pending *p, const void *uaddr, u64 len) {
    if (!uaddr || len < 2)
        return 0;
    u32 n = net_bounded(len, NET_SA_READ);
    if (bpf_probe_read_user(p->sa, n, uaddr) < 0)
        return 0;
    u16 family = *(u16 *)p->sa;
    if (family != NET_AF_INET && family != NET_AF_INET6 && family != NET_AF_UNIX)
        return 0;
    p->salen = n;
    return 1;
}

// This thread's entry, made at its first network call (from a blank per-CPU value).
static __always_inline struct net_pending *net_entry(void) {
    u32 tid = (u32)bpf_get_current_pid_tgid();
    struct net_pending *p = netpending.lookup(&tid);
    if (p)
        return p;
    int zero = 0;
    struct net_pending *blank = netscratch.lookup(&zero);
    if (!blank)
        return 0;
    blank->call = 0;
    netpending.update(&tid, blank);
    return netpending.lookup(&tid);
}

// This thread's entry if it holds the entry of `call`, now taken: a call whose entry
// was not seen (under way when the programs were attached) sends nothing.
static __always_inline struct net_pending *net_take(u8 call) {
    u32 tid = (u32)bpf_get_current_pid_tgid();
    struct net_pending *p = netpending.lookup(&tid);
    if (!p || p->call != call)
        return 0;
    p->call = 0;
    return p;
}

// A record of `size` bytes (NET_RECORD_SMALL or the whole struct), all but sa filled.
// Each caller reserves and fills the record of one size on one branch, the other size
// on another: the verifier follows each branch and knows each record's size there.
static __always_inline struct ev_net *net_reserve(u32 size, u32 kind, s32 ret) {
    struct ev_net *e = events.ringbuf_reserve(size);
    if (!e) {
        count_lost();
        return 0;
    }
    e->head.ts = bpf_ktime_get_boot_ns();
    e->head.kind = kind;
    e->head.pid = bpf_get_current_pid_tgid() >> 32;
    e->head.ppid = 0;
    e->head.uid = 0;
    __builtin_memset(e->head.comm, 0, sizeof(e->head.comm));
    e->ret = ret;
    e->salen = 0;
    e->lfamily = 0;
    e->lport = 0;
    return e;
}

// Sends `kind` with the address kept in `p` (a connect's, a bind's), if any.
static __always_inline void net_send_kept(u32 kind, s32 ret, struct net_pending *p) {
    struct ev_net *e;
    if (!p || p->salen < NET_SA_SMALL) {
        e = net_reserve(NET_RECORD_SMALL, kind, ret);
        if (e && p) {
            __builtin_memcpy(e->sa, p->sa, NET_SA_SMALL);
            e->salen = p->salen;
        }
    } else {
        e = net_reserve(sizeof(*e), kind, ret);
        if (e) {
            __builtin_memcpy(e->sa, p->sa, NET_SA_MAX);
            e->salen = p->salen;
        }
    }
    if (e)
        events.ringbuf_submit(e, 0);
}

int net_enter_connect(struct tracepoint__syscalls__sys_enter_connect *args) {
    struct net_pending *p = net_entry();
    if (!p)
        return 0;
    p->fd = args->fd;
    p->call = net_read_sa(p, args->uservaddr, (u64)args->addrlen) ? NET_CALL_CONNECT : 0;
    return 0;
}

int net_exit_connect(struct tracepoint__syscalls__sys_exit_connect *args) {
    struct net_pending *p = net_take(NET_CALL_CONNECT);
    if (p)
        net_send_kept(EV_CONNECT, (s32)args->ret, p);
    return 0;
}

int net_enter_bind(struct tracepoint__syscalls__sys_enter_bind *args) {
    struct net_pending *p = net_entry();
    if (!p)
        return 0;
    p->fd = args->fd;
    p->call = net_read_sa(p, args->umyaddr, (u64)args->addrlen) ? NET_CALL_BIND : 0;
    return 0;
}

int net_exit_bind(struct tracepoint__syscalls__sys_exit_bind *args) {
    struct net_pending *p = net_take(NET_CALL_BIND);
    if (p && args->ret == 0) {
        u64 key = net_fd_key(p->fd);
        netbound.update(&key, p);
    }
    return 0;
}

int net_enter_listen(struct tracepoint__syscalls__sys_enter_listen *args) {
    struct net_pending *p = net_entry();
    if (!p)
        return 0;
    p->fd = args->fd;
    p->call = NET_CALL_LISTEN;
    return 0;
}

int net_exit_listen(struct tracepoint__syscalls__sys_exit_listen *args) {
    struct net_pending *p = net_take(NET_CALL_LISTEN);
    if (p && args->ret == 0) {
        u64 key = net_fd_key(p->fd);
        net_send_kept(EV_LISTEN, 0, netbound.lookup(&key));
    }
    return 0;
}

static __always_inline int net_enter_accept(s32 fd, const void *uaddr, const void *ulen) {
    struct net_pending *p = net_entry();
    if (!p)
        return 0;
    p->fd = fd;
    p->uaddr = (u64)uaddr;
    p->ulen = (u64)ulen;
    p->call = NET_CALL_ACCEPT;
    return 0;
}

// The length of the peer's address the kernel wrote for the caller (0: none asked for).
static __always_inline u32 net_peer_len(struct net_pending *p) {
    s32 len = 0;
    if (!p->uaddr || !p->ulen ||
            bpf_probe_read_user(&len, sizeof(len), (const void *)p->ulen) < 0 || len < 2)
        return 0;
    return (u32)len;
}

// The family and port the listening fd was bound to, when this process bound it.
static __always_inline void net_listener(struct ev_net *e, s32 fd) {
    u64 key = net_fd_key(fd);
    struct net_pending *b = netbound.lookup(&key);
    if (b && b->salen >= 4) {
        e->lfamily = (u8)*(u16 *)b->sa;  // a family kept (inet, inet6, unix) is below 256
        if (e->lfamily != NET_AF_UNIX)
            e->lport = ((u16)b->sa[2] << 8) | b->sa[3];
    }
}

static __always_inline int net_exit_accept(long ret) {
    struct net_pending *p = net_take(NET_CALL_ACCEPT);
    if (!p || ret < 0)
        return 0;
    u64 fresh = net_fd_key((s32)ret);
    if (netbound.lookup(&fresh))
        netbound.delete(&fresh);  // a new socket: whatever was bound at that fd is gone
    u32 len = net_peer_len(p);
    struct ev_net *e;
    u32 n;
    if (len < NET_SA_SMALL) {
        e = net_reserve(NET_RECORD_SMALL, EV_ACCEPT, (s32)ret);
        n = net_bounded(len, NET_SA_SMALL - 1);
    } else {
        e = net_reserve(sizeof(*e), EV_ACCEPT, (s32)ret);
        n = net_bounded(len, NET_SA_READ);
    }
    if (!e)
        return 0;
    if (n && bpf_probe_read_user(e->sa, n, (const void *)p->uaddr) == 0)
        e->salen = n;
    net_listener(e, p->fd);
    events.ringbuf_submit(e, 0);
    return 0;
}

int net_enter_accept4(struct tracepoint__syscalls__sys_enter_accept4 *args) {
    return net_enter_accept(args->fd, args->upeer_sockaddr, args->upeer_addrlen);
}

int net_exit_accept4(struct tracepoint__syscalls__sys_exit_accept4 *args) {
    return net_exit_accept(args->ret);
}

#ifdef HAVE_ACCEPT
int net_enter_accept_(struct tracepoint__syscalls__sys_enter_accept *args) {
    return net_enter_accept(args->fd, args->upeer_sockaddr, args->upeer_addrlen);
}

int net_exit_accept_(struct tracepoint__syscalls__sys_exit_accept *args) {
    return net_exit_accept(args->ret);
}
#endif

// A thread ended: its entry goes with it (a thread that made one connect and exited
// would otherwise hold an entry until evicted, and push out those of calls under way).
int net_thread_exit(void *ctx) {
    u32 tid = (u32)bpf_get_current_pid_tgid();
    if (netpending.lookup(&tid))
        netpending.delete(&tid);
    return 0;
}
