/* conn.c - see conn.h.
 *
 * The socket is non-blocking; every read and write waits with poll() up to a
 * deadline, so a silent daemon costs at most the call's timeout. */
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE /* struct ucred, SO_PEERCRED */
#endif
#include "conn.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _WIN32
#include <winsock2.h>
#include <windows.h>
#include <afunix.h>
typedef SOCKET sock_t;
#define BAD_SOCK INVALID_SOCKET
#define sock_close closesocket
#define sock_poll WSAPoll
#define sock_err() WSAGetLastError()
#define ERR_AGAIN(e) ((e) == WSAEWOULDBLOCK)
#define ERR_INTR(e) ((e) == WSAEINTR)
#define ERR_INPROGRESS(e) ((e) == WSAEWOULDBLOCK || (e) == WSAEINPROGRESS)
#define SEND_FLAGS 0
#else
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
typedef int sock_t;
#define BAD_SOCK (-1)
#define sock_close close
#define sock_poll poll
#define sock_err() errno
#define ERR_AGAIN(e) ((e) == EAGAIN || (e) == EWOULDBLOCK)
#define ERR_INTR(e) ((e) == EINTR)
#define ERR_INPROGRESS(e) ((e) == EINPROGRESS)
#ifdef MSG_NOSIGNAL
#define SEND_FLAGS MSG_NOSIGNAL /* a vanished daemon must not SIGPIPE the app */
#else
#define SEND_FLAGS 0            /* macOS: SO_NOSIGPIPE is set on the socket */
#endif
#endif

#define CONNECT_TIMEOUT_MS 2000

/* A set-uid/set-gid host must not let its caller choose the socket. */
#if defined(__GLIBC__)
#define env_get secure_getenv
#else
#define env_get getenv
#endif

static sock_t fd = BAD_SOCK;
static int tried_this_call;
static unsigned long epoch;
static uint32_t next_id;

/* ---- time ---- */

static long long now_ms(void)
{
#ifdef _WIN32
    return (long long)GetTickCount64();
#else
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
#endif
}

/* Waits for `events` until the deadline; 1 ready, 0 timeout, -1 error. */
static int wait_fd(short events, long long deadline)
{
    for (;;) {
        long long left = deadline - now_ms();
        struct pollfd p;
        int k;
        if (left <= 0)
            return 0;
        p.fd = fd;
        p.events = events;
        p.revents = 0;
        k = sock_poll(&p, 1, left > 60000 ? 60000 : (int)left);
        if (k < 0) {
            if (ERR_INTR(sock_err()))
                continue;
            return -1;
        }
        if (k > 0)
            return 1; /* errors/hangup are seen by the recv/send that follows */
    }
}

static int send_all(const uint8_t *p, size_t n, long long deadline)
{
    while (n > 0) {
        int chunk = n > 65536 ? 65536 : (int)n;
        long k = (long)send(fd, (const char *)p, chunk, SEND_FLAGS);
        if (k > 0) {
            p += k;
            n -= (size_t)k;
            continue;
        }
        if (k < 0 && ERR_INTR(sock_err()))
            continue;
        if (k < 0 && ERR_AGAIN(sock_err()) && wait_fd(POLLOUT, deadline) == 1)
            continue;
        return -1;
    }
    return 0;
}

static int recv_all(uint8_t *p, size_t n, long long deadline)
{
    while (n > 0) {
        int chunk = n > 65536 ? 65536 : (int)n;
        long k = (long)recv(fd, (char *)p, chunk, 0);
        if (k > 0) {
            p += k;
            n -= (size_t)k;
            continue;
        }
        if (k == 0)
            return -1; /* the daemon closed the connection */
        if (ERR_INTR(sock_err()))
            continue;
        if (ERR_AGAIN(sock_err()) && wait_fd(POLLIN, deadline) == 1)
            continue;
        return -1;
    }
    return 0;
}

/* ---- path and ownership ---- */

#ifdef _WIN32
/* Windows: %LOCALAPPDATA%\cpsd\pkcs11.sock. The profile directory's ACL
 * protects it; AF_UNIX on Windows has no peer-credential query
 * (no SO_PEERCRED/getpeereid), so no uid check is made there. */
static int socket_path(char *out, size_t cap)
{
    const char *env = getenv("CPSD_PKCS11_SOCKET");
    const char *lad;
    if (env && *env)
        return snprintf(out, cap, "%s", env) < (int)cap ? 0 : -1;
    lad = getenv("LOCALAPPDATA");
    if (!lad || !*lad)
        return -1;
    return snprintf(out, cap, "%s\\cpsd\\pkcs11.sock", lad) < (int)cap ? 0 : -1;
}

static int check_path(const char *path)
{
    (void)path;
    return 0;
}

static int check_peer(void)
{
    return 0;
}
#else
static int socket_path(char *out, size_t cap)
{
    const char *env = env_get("CPSD_PKCS11_SOCKET");
    const char *xdg = env_get("XDG_RUNTIME_DIR");
    int n;
    if (env && *env)
        n = snprintf(out, cap, "%s", env);
    else if (xdg && *xdg == '/')
        n = snprintf(out, cap, "%s/cpsd/pkcs11.sock", xdg);
    else
        n = snprintf(out, cap, "/tmp/cpsd-%lu/pkcs11.sock", (unsigned long)getuid());
    return n > 0 && (size_t)n < cap ? 0 : -1;
}

/* The directory must be ours and writable by nobody else (no one could have
 * swapped the socket), and the socket must be ours. */
static int check_path(const char *path)
{
    char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
    const char *slash = strrchr(path, '/');
    struct stat st;
    size_t n;
    if (!slash)
        return -1;
    n = (size_t)(slash - path);
    if (n == 0)
        n = 1; /* "/x.sock" */
    if (n >= sizeof dir)
        return -1;
    memcpy(dir, path, n);
    dir[n] = 0;
    if (lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != getuid() ||
        (st.st_mode & (S_IWGRP | S_IWOTH)) != 0)
        return -1;
    if (lstat(path, &st) != 0 || !S_ISSOCK(st.st_mode) || st.st_uid != getuid())
        return -1;
    return 0;
}

/* Only a daemon of our own uid (not even root's) may answer. */
static int check_peer(void)
{
#if defined(SO_PEERCRED) && defined(__linux__)
    struct ucred cred;
    socklen_t len = sizeof cred;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || len != sizeof cred)
        return -1;
    return cred.uid == getuid() ? 0 : -1;
#elif defined(__APPLE__) || defined(__FreeBSD__) || defined(__OpenBSD__) || defined(__NetBSD__)
    uid_t uid;
    gid_t gid;
    if (getpeereid(fd, &uid, &gid) != 0)
        return -1;
    return uid == getuid() ? 0 : -1;
#else
#error "no peer credential check for this platform"
#endif
}
#endif

/* ---- connection ---- */

static int set_nonblocking(void)
{
#ifdef _WIN32
    u_long on = 1;
    return ioctlsocket(fd, FIONBIO, &on) == 0 ? 0 : -1;
#else
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0)
        return -1;
    /* Not inherited by programs the application executes. */
    if (fcntl(fd, F_SETFD, FD_CLOEXEC) != 0)
        return -1;
#ifdef SO_NOSIGPIPE
    {
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one);
    }
#endif
    return 0;
#endif
}

static void app_name(char *out, size_t cap)
{
    snprintf(out, cap, "?");
#if defined(_WIN32)
    {
        char full[MAX_PATH];
        DWORD n = GetModuleFileNameA(NULL, full, sizeof full);
        if (n > 0 && n < sizeof full) {
            const char *b = strrchr(full, '\\');
            snprintf(out, cap, "%s", b ? b + 1 : full);
        }
    }
#elif defined(__linux__)
    {
        FILE *f = fopen("/proc/self/comm", "r");
        if (f) {
            if (fgets(out, (int)cap, f))
                out[strcspn(out, "\n")] = 0;
            fclose(f);
        }
    }
#elif defined(__APPLE__) || defined(__FreeBSD__)
    snprintf(out, cap, "%s", getprogname());
#endif
}

static int hello(void);

static int open_socket(void)
{
    struct sockaddr_un sa;
    char path[sizeof sa.sun_path];
    int e;
#ifdef _WIN32
    static int wsa_ready;
    if (!wsa_ready) {
        WSADATA w;
        if (WSAStartup(MAKEWORD(2, 2), &w) != 0)
            return -1;
        wsa_ready = 1;
    }
#endif
    if (socket_path(path, sizeof path) != 0 || check_path(path) != 0)
        return -1;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd == BAD_SOCK)
        return -1;
    if (set_nonblocking() != 0)
        goto fail;
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        e = sock_err();
        /* EINTR: the connect goes on in the background, wait for it alike. */
        if (!(ERR_INPROGRESS(e) || ERR_INTR(e)) ||
            wait_fd(POLLOUT, now_ms() + CONNECT_TIMEOUT_MS) != 1)
            goto fail;
        {
            int soerr = 0;
#ifdef _WIN32
            int len = sizeof soerr;
            if (getsockopt(fd, SOL_SOCKET, SO_ERROR, (char *)&soerr, &len) != 0 || soerr)
                goto fail;
#else
            socklen_t len = sizeof soerr;
            if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0 || soerr)
                goto fail;
#endif
        }
    }
    if (check_peer() != 0)
        goto fail;
    epoch++;
    return 0;
fail:
    sock_close(fd);
    fd = BAD_SOCK;
    return -1;
}

void conn_setup(void)
{
    fd = BAD_SOCK;
    tried_this_call = 0;
}

void conn_close(void)
{
    if (fd != BAD_SOCK) {
        sock_close(fd);
        fd = BAD_SOCK;
    }
}

void conn_forget_inherited(void)
{
    /* close() only: shutdown() would cut the parent's connection too. */
    conn_close();
}

void conn_begin_call(void)
{
    tried_this_call = 0;
}

unsigned long conn_epoch(void)
{
    return epoch;
}

int conn_is_open(void)
{
    return fd != BAD_SOCK;
}

void req_begin(wbuf *b, uint32_t op)
{
    wb_init(b);
    wb_u32(b, T_OP, op);
    wb_u32(b, T_ID, ++next_id);
}

void answer_free(answer *a)
{
    free(a->buf);
    a->buf = NULL;
    a->len = 0;
}

/* An idle connection the daemon closed (restart) reads as EOF at once. */
static int idle_conn_dead(void)
{
    struct pollfd p;
    p.fd = fd;
    p.events = POLLIN;
    p.revents = 0;
    return sock_poll(&p, 1, 0) != 0;
}

/* One exchange on an open connection. It reads `fd` but changes no state:
 * a LOGIN runs it without the module lock (see conn_call_unlocked). */
static int exchange(wbuf *b, int timeout_ms, answer *a)
{
    long long deadline = now_ms() + timeout_ms;
    uint8_t hdr[4];
    uint32_t n, want_id, id = 0;
    int have_id = 0, have_rv = 0, k;
    wreader r;
    wfield f;

    a->buf = NULL;
    a->len = 0;
    a->rv = 0;
    want_id = get_be32(b->p + 4 + 6 + 4 + 6); /* OP field, then ID's value */
    if (send_all(b->p, b->len, deadline) != 0 || recv_all(hdr, 4, deadline) != 0)
        goto broken;
    n = get_be32(hdr);
    if (n < 1 || n > WIRE_FRAME_MAX)
        goto broken;
    a->buf = malloc(n);
    if (!a->buf || recv_all(a->buf, n, deadline) != 0)
        goto broken;
    a->len = n;
    if (wr_check(a->buf, a->len) != 0)
        goto broken;
    wr_init(&r, a->buf, a->len);
    while ((k = wr_next(&r, &f)) == 1) {
        if (f.tag == T_ID && wf_u32(&f, &id) == 0)
            have_id = 1;
        else if (f.tag == T_RV && wf_u32(&f, &a->rv) == 0)
            have_rv = 1;
    }
    if (k != 0 || !have_id || !have_rv || id != want_id)
        goto broken;
    return CONN_OK;
broken:
    answer_free(a);
    return CONN_BROKEN;
}

static int hello(void)
{
    wbuf b;
    answer a;
    wreader r;
    wfield f;
    uint32_t version = 0;
    char name[64];
    int k;

    req_begin(&b, OP_HELLO);
    wb_u32(&b, T_VERSION, 1);
    app_name(name, sizeof name);
    wb_str(&b, T_APP, name);
    if (wb_finish(&b) != 0) {
        wb_free(&b);
        return -1;
    }
    k = exchange(&b, TIMEOUT_OTHER_MS, &a);
    wb_free(&b);
    if (k != CONN_OK)
        return -1; /* ensure_open closes */
    wr_init(&r, a.buf, a.len);
    while (wr_next(&r, &f) == 1)
        if (f.tag == T_VERSION)
            wf_u32(&f, &version);
    k = a.rv == 0 && version == 1 ? 0 : -1;
    answer_free(&a);
    return k;
}

static int ensure_open(void)
{
    if (fd != BAD_SOCK && idle_conn_dead())
        conn_close();
    if (fd != BAD_SOCK)
        return 0;
    if (tried_this_call)
        return -1;
    tried_this_call = 1;
    if (open_socket() != 0)
        return -1;
    if (hello() != 0) {
        conn_close();
        return -1;
    }
    return 0;
}

int conn_prepare(wbuf *b, answer *a)
{
    a->buf = NULL;
    a->len = 0;
    a->rv = 0;
    if (wb_finish(b) != 0) {
        wb_free(b);
        return CONN_BROKEN; /* cannot happen with checked inputs */
    }
    if (ensure_open() != 0) {
        wb_free(b);
        return CONN_UNREACHABLE;
    }
    return CONN_OK;
}

int conn_exchange(wbuf *b, int timeout_ms, answer *a)
{
    int k = exchange(b, timeout_ms, a);
    wb_free(b);
    return k;
}

void conn_settle(int status)
{
    if (status == CONN_BROKEN)
        conn_close();
}

int conn_call(wbuf *b, int timeout_ms, answer *a)
{
    int k = conn_prepare(b, a);
    if (k != CONN_OK)
        return k;
    k = conn_exchange(b, timeout_ms, a);
    conn_settle(k);
    return k;
}
