// linnix: connect, accept and listen, from the syscall tracepoints (docs/network.md).
//
// Compiled after linnix.c, whose ring buffer (`events`), `lost` counter and
// fill() these programs share: a network record is batched, and counted when
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
//
// Every user pointer is read with bpf_probe_read_user and a bounded size.  Both
// tables are LRU hashes: a thread that never returns (killed in connect) or a
// socket closed without our knowing leaves an entry that is evicted in time.

#define EV_CONNECT 5
#define EV_ACCEPT 6
#define EV_LISTEN 7
#define NET_SA_MAX 128       // room for a sockaddr: a sockaddr_un (110) fits
#define NET_SA_READ 127      // read at most this (a mask the verifier can follow)
#define NET_AF_UNIX 1
#define NET_AF_INET 2
#define NET_AF_INET6 10

struct ev_net {
    struct ev_head head;
    s32 ret;                 // the syscall's result: 0, an fd, or -errno
    u16 salen;               // bytes of sa read (0: no address)
    u16 lfamily;             // accept: the listening socket's family (0: unknown)
    u16 lport;               // accept: the port it was bound to, host order (0: unknown)
    u16 pad[3];
    u8 sa[NET_SA_MAX];       // the sockaddr as the caller gave it or got it
};

struct net_pending {
    u64 uaddr;               // accept: where the peer's address is written
    u64 ulen;                //         and its length
    s32 fd;
    u16 salen;               // connect, bind: bytes of sa read
    u16 pad;
    u8 sa[NET_SA_MAX];
};

BPF_TABLE("lru_hash", u32, struct net_pending, netpending, 4096);  // thread -> call under way
BPF_TABLE("lru_hash", u64, struct net_pending, netbound, 4096);    // (process, fd) -> bind
BPF_PERCPU_ARRAY(netscratch, struct net_pending, 1);

static __always_inline u64 net_fd_key(s32 fd) {
    return (bpf_get_current_pid_tgid() & 0xffffffff00000000ULL) | (u32)fd;
}

// A length of at most NET_SA_READ that the verifier can see is one: the empty asm
// hides the clamp from the compiler, which would otherwise drop the mask.
static __always_inline u32 net_bounded(u64 len) {
    u32 n = len > NET_SA_READ ? NET_SA_READ : (u32)len;
    asm volatile("" : "+r"(n));
    return n & NET_SA_READ;
}

// Reads the caller's sockaddr into p->sa; false for a family not reported.
static __always_inline int net_read_sa(struct net_pending *p, const void *uaddr, u64 len) {
    if (!uaddr || len < 2)
        return 0;
    u32 n = net_bounded(len);
    if (bpf_probe_read_user(p->sa, n, uaddr) < 0)
        return 0;
    u16 family = *(u16 *)p->sa;
    if (family != NET_AF_INET && family != NET_AF_INET6 && family != NET_AF_UNIX)
        return 0;
    p->salen = n;
    return 1;
}

static __always_inline struct net_pending *net_scratch(void) {
    int zero = 0;
    return netscratch.lookup(&zero);
}

static __always_inline void net_keep(struct net_pending *p) {
    u32 tid = (u32)bpf_get_current_pid_tgid();
    netpending.update(&tid, p);
}

static __always_inline struct net_pending *net_take(u32 *tid) {
    *tid = (u32)bpf_get_current_pid_tgid();
    return netpending.lookup(tid);
}

static __always_inline struct ev_net *net_reserve(u32 kind, s32 ret) {
    struct ev_net *e = events.ringbuf_reserve(sizeof(*e));
    if (!e) {
        count_lost();
        return 0;
    }
    fill(&e->head, kind);
    bpf_get_current_comm(e->head.comm, sizeof(e->head.comm));
    e->ret = ret;
    e->salen = 0;
    e->lfamily = 0;
    e->lport = 0;
    return e;
}

int net_enter_connect(struct tracepoint__syscalls__sys_enter_connect *args) {
    struct net_pending *p = net_scratch();
    if (!p)
        return 0;
    p->fd = args->fd;
    if (net_read_sa(p, args->uservaddr, (u64)args->addrlen))
        net_keep(p);
    return 0;
}

int net_exit_connect(struct tracepoint__syscalls__sys_exit_connect *args) {
    u32 tid;
    struct net_pending *p = net_take(&tid);
    if (!p)
        return 0;
    struct ev_net *e = net_reserve(EV_CONNECT, (s32)args->ret);
    if (e) {
        e->salen = p->salen;
        __builtin_memcpy(e->sa, p->sa, NET_SA_MAX);
        events.ringbuf_submit(e, 0);
    }
    netpending.delete(&tid);
    return 0;
}

int net_enter_bind(struct tracepoint__syscalls__sys_enter_bind *args) {
    struct net_pending *p = net_scratch();
    if (!p)
        return 0;
    p->fd = args->fd;
    if (net_read_sa(p, args->umyaddr, (u64)args->addrlen))
        net_keep(p);
    return 0;
}

int net_exit_bind(struct tracepoint__syscalls__sys_exit_bind *args) {
    u32 tid;
    struct net_pending *p = net_take(&tid);
    if (!p)
        return 0;
    if (args->ret == 0) {
        u64 key = net_fd_key(p->fd);
        netbound.update(&key, p);
    }
    netpending.delete(&tid);
    return 0;
}

int net_enter_listen(struct tracepoint__syscalls__sys_enter_listen *args) {
    struct net_pending *p = net_scratch();
    if (!p)
        return 0;
    p->fd = args->fd;
    p->salen = 0;
    net_keep(p);
    return 0;
}

int net_exit_listen(struct tracepoint__syscalls__sys_exit_listen *args) {
    u32 tid;
    struct net_pending *p = net_take(&tid);
    if (!p)
        return 0;
    if (args->ret == 0) {
        u64 key = net_fd_key(p->fd);
        struct net_pending *b = netbound.lookup(&key);
        struct ev_net *e = net_reserve(EV_LISTEN, 0);
        if (e) {
            if (b) {
                e->salen = b->salen;
                __builtin_memcpy(e->sa, b->sa, NET_SA_MAX);
            }
            events.ringbuf_submit(e, 0);
        }
    }
    netpending.delete(&tid);
    return 0;
}

static __always_inline int net_enter_accept(s32 fd, const void *uaddr, const void *ulen) {
    struct net_pending *p = net_scratch();
    if (!p)
        return 0;
    p->fd = fd;
    p->uaddr = (u64)uaddr;
    p->ulen = (u64)ulen;
    p->salen = 0;
    net_keep(p);
    return 0;
}

static __always_inline int net_exit_accept(long ret) {
    u32 tid;
    struct net_pending *p = net_take(&tid);
    if (!p)
        return 0;
    if (ret >= 0) {
        u64 fresh = net_fd_key((s32)ret);
        netbound.delete(&fresh);  // a new socket: whatever was bound at that fd is gone
        struct ev_net *e = net_reserve(EV_ACCEPT, (s32)ret);
        if (e) {
            s32 len = 0;
            if (p->uaddr && p->ulen &&
                    bpf_probe_read_user(&len, sizeof(len), (const void *)p->ulen) == 0 &&
                    len >= 2) {
                u32 n = net_bounded((u32)len);
                if (bpf_probe_read_user(e->sa, n, (const void *)p->uaddr) == 0)
                    e->salen = n;
            }
            u64 key = net_fd_key(p->fd);
            struct net_pending *b = netbound.lookup(&key);
            if (b && b->salen >= 4) {
                e->lfamily = *(u16 *)b->sa;
                e->lport = ((u16)b->sa[2] << 8) | b->sa[3];
                if (e->lfamily == NET_AF_UNIX)
                    e->lport = 0;
            }
            events.ringbuf_submit(e, 0);
        }
    }
    netpending.delete(&tid);
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
