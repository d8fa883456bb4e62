/* module.h - shared by the C_* entry points (module.c, sign.c). */
#ifndef CPSD_MODULE_H
#define CPSD_MODULE_H

#include "conn.h"
#include "cryptoki.h"
#include "session.h"
#include "token.h"

/* Checks initialisation (and that we are not a forked child that did not
 * C_Initialize), takes the lock, allows one (re)connect for this call. */
CK_RV enter(int wait_for_login);
CK_RV leave(CK_RV rv);

/* ENTER: the call may use the connection, so it first waits until no LOGIN
 * is in flight (a LOGIN runs its exchange without the lock). ENTER_CACHED:
 * the call answers from what is known while a LOGIN waits on a PIN pad. */
#define ENTER_WITH(wait)                  \
    do {                                  \
        CK_RV enter_rv_ = enter(wait);    \
        if (enter_rv_ != CKR_OK)          \
            return enter_rv_;             \
    } while (0)
#define ENTER() ENTER_WITH(1)
#define ENTER_CACHED() ENTER_WITH(0)

/* True while a LOGIN exchange runs without the lock. */
int login_in_flight(void);
/* Waits (dropping and retaking the lock) until no LOGIN is in flight. */
void wait_for_login(void);

CK_RV session_for(CK_SESSION_HANDLE h, session **out);
/* The token's snapshot, asking TOKEN when there is none or it is stale. */
CK_RV ensure_snapshot(int slot);
/* The same for calls on a session: a stale snapshot (after LOGIN, SIGN) is
 * refreshed, so objects shown only after login appear; if the refresh fails
 * in transport the last snapshot of this generation is used. */
CK_RV use_snapshot(int slot);
/* The daemon said the card we knew is gone: drop its state and sessions. */
void token_removed(int slot);
/* Maps a transport failure to the call's return value. */
CK_RV transport_rv(int conn_status);
/* Starts a request on a token: OP, ID, READER, GENERATION. */
void req_token(wbuf *b, uint32_t op, int slot);

#endif
