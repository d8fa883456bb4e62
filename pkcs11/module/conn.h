/* conn.h - the one connection to the user's daemon: path and owner checks,
 * peer credentials, HELLO, framed request/answer with timeouts, reconnect. */
#ifndef CPSD_CONN_H
#define CPSD_CONN_H

#include <stddef.h>
#include <stdint.h>

#include "wire.h"

enum {
    CONN_OK = 0,
    CONN_UNREACHABLE = -1, /* no daemon (or not ours): nothing was sent */
    CONN_BROKEN = -2       /* failed mid-call: the connection is closed */
};

/* Timeouts: a PIN pad LOGIN may take minutes. TOKEN may wait for the
 * daemon's read of a card just inserted: the daemon answers within 20 s
 * (pkcs11/tokens.ts, TOKEN_WAIT_MS), a typed error if the card is not read
 * by then, so the module waits longer than that and never gives up first
 * (giving up closes the connection). SLOTS waits at most 8 s there. */
#define TIMEOUT_LOGIN_MS (10 * 60 * 1000)
#define TIMEOUT_SIGN_MS (60 * 1000)
#define TIMEOUT_TOKEN_MS (25 * 1000)
#define TIMEOUT_OTHER_MS (10 * 1000)

typedef struct answer {
    uint8_t *buf;    /* the body; freed by answer_free */
    size_t len;
    uint32_t rv;     /* the CKR_ value the daemon returned */
} answer;

void conn_setup(void);          /* at C_Initialize: no socket yet */
void conn_close(void);          /* at C_Finalize, or on any failure */
void conn_forget_inherited(void); /* child after fork: close our copy only */
void conn_begin_call(void);     /* each C_* call may (re)connect once */
/* Changes with every new connection: login state belongs to one connection. */
unsigned long conn_epoch(void);
int conn_is_open(void);

/* Starts a request: OP and a fresh ID. */
void req_begin(wbuf *b, uint32_t op);
/* Sends b (wiped and freed here, whatever happens) and reads the answer. */
int conn_call(wbuf *b, int timeout_ms, answer *a);
void answer_free(answer *a);

/* conn_call in three steps, for the LOGIN that may wait minutes on a PIN pad
 * and so runs its exchange without the module lock: prepare (under the lock:
 * frame, connect, HELLO), exchange (no lock; touches no connection state, and
 * no other thread uses the connection meanwhile), settle (under the lock:
 * close a broken connection). prepare frees b on failure, exchange always. */
int conn_prepare(wbuf *b, answer *a);
int conn_exchange(wbuf *b, int timeout_ms, answer *a);
void conn_settle(int status);

#endif
