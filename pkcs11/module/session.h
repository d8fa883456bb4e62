/* session.h - open sessions and their one find and one sign operation. */
#ifndef CPSD_SESSION_H
#define CPSD_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "cryptoki.h"

typedef struct sign_op {
    int active;
    CK_MECHANISM_TYPE mech;
    int is_pss;
    CK_RSA_PKCS_PSS_PARAMS pss;
    CK_OBJECT_HANDLE key;
    CK_ULONG siglen;          /* from the key's modulus: length queries stay local */
    int always_auth;          /* the key has CKA_ALWAYS_AUTHENTICATE */
    int ctx_auth;             /* C_Login(CKU_CONTEXT_SPECIFIC) done for this op */
    unsigned long ctx_epoch;  /* ...on this connection */
    int multipart;            /* C_SignUpdate was used */
    uint8_t *data;
    size_t dlen, dcap;
} sign_op;

typedef struct session {
    struct session *next;
    CK_SESSION_HANDLE handle;
    int slot;
    CK_FLAGS flags;
    int find_active;
    CK_OBJECT_HANDLE *found;
    size_t nfound, pos;
    sign_op sign;
} session;

session *session_new(int slot, CK_FLAGS flags);
session *session_get(CK_SESSION_HANDLE h);
void session_close(session *s);
void session_close_slot(int slot);
void session_close_all(void);
/* After fork: the parent's sessions mean nothing to the child. */
void session_forget_all(void);
size_t session_count(int slot, int rw_only);
void sign_op_end(sign_op *op);
void find_end(session *s);

#endif
