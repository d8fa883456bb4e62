/* sign.c - C_SignInit/C_Sign/C_SignUpdate/C_SignFinal. Length queries and
 * CKR_BUFFER_TOO_SMALL are answered from the key's modulus without crossing
 * (a crossing would cost a card operation, and a PIN for an
 * always-authenticate key); the operation then stays active. */
#include "module.h"

#include <stdlib.h>
#include <string.h>

static int is_pss(CK_MECHANISM_TYPE m)
{
    return m == CKM_RSA_PKCS_PSS || m == CKM_SHA1_RSA_PKCS_PSS || m == CKM_SHA224_RSA_PKCS_PSS ||
           m == CKM_SHA256_RSA_PKCS_PSS || m == CKM_SHA384_RSA_PKCS_PSS ||
           m == CKM_SHA512_RSA_PKCS_PSS;
}

/* The hash a hash-and-sign PSS mechanism implies; 0 for CKM_RSA_PKCS_PSS. */
static CK_MECHANISM_TYPE pss_implied_hash(CK_MECHANISM_TYPE m)
{
    switch (m) {
    case CKM_SHA1_RSA_PKCS_PSS: return CKM_SHA_1;
    case CKM_SHA224_RSA_PKCS_PSS: return CKM_SHA224;
    case CKM_SHA256_RSA_PKCS_PSS: return CKM_SHA256;
    case CKM_SHA384_RSA_PKCS_PSS: return CKM_SHA384;
    case CKM_SHA512_RSA_PKCS_PSS: return CKM_SHA512;
    default: return 0;
    }
}

static int pss_params_ok(CK_MECHANISM_TYPE mech, const CK_RSA_PKCS_PSS_PARAMS *p,
                         CK_ULONG siglen)
{
    CK_MECHANISM_TYPE implied = pss_implied_hash(mech);
    if (p->hashAlg != CKM_SHA_1 && p->hashAlg != CKM_SHA224 && p->hashAlg != CKM_SHA256 &&
        p->hashAlg != CKM_SHA384 && p->hashAlg != CKM_SHA512)
        return 0;
    if (p->mgf < CKG_MGF1_SHA1 || p->mgf > CKG_MGF1_SHA224)
        return 0;
    if (implied && p->hashAlg != implied)
        return 0;
    return p->sLen <= siglen;
}

/* The signature length: the modulus in bytes, leading zeros aside. */
static CK_ULONG key_siglen(const object *key)
{
    const attr *m = obj_attr(key, CKA_MODULUS);
    CK_ULONG bits;
    if (m) {
        CK_ULONG i = 0;
        while (i < m->len && m->val[i] == 0)
            i++;
        if (m->len - i > 0)
            return m->len - i;
    }
    bits = obj_ulong(key, CKA_MODULUS_BITS, 0);
    return (bits + 7) / 8;
}

CK_RV C_SignInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey)
{
    session *s;
    const snapshot *sn;
    const object *key;
    const mechanism *m;
    sign_op *op;
    CK_RV rv;
    ENTER();
    rv = session_for(hSession, &s);
    if (rv != CKR_OK)
        return leave(rv);
    op = &s->sign;
    if (op->active)
        return leave(CKR_OPERATION_ACTIVE);
    if (!pMechanism)
        return leave(CKR_ARGUMENTS_BAD);
    rv = use_snapshot(s->slot); /* on failure s may be gone */
    if (rv != CKR_OK)
        return leave(rv);
    sn = slots[s->slot].snap;
    key = snap_object(sn, hKey, slot_logged_in(&slots[s->slot]));
    if (!key)
        return leave(CKR_KEY_HANDLE_INVALID);
    if (obj_ulong(key, CKA_CLASS, CK_UNAVAILABLE_INFORMATION) != CKO_PRIVATE_KEY)
        return leave(CKR_KEY_TYPE_INCONSISTENT);
    if (!obj_bool(key, CKA_SIGN, 0))
        return leave(CKR_KEY_FUNCTION_NOT_PERMITTED);
    m = snap_mech(sn, pMechanism->mechanism);
    if (!m || !(m->info.flags & CKF_SIGN))
        return leave(CKR_MECHANISM_INVALID);
    if (obj_ulong(key, CKA_KEY_TYPE, CK_UNAVAILABLE_INFORMATION) != CKK_RSA)
        return leave(CKR_KEY_TYPE_INCONSISTENT); /* every mechanism we forward is RSA */
    memset(op, 0, sizeof *op);
    op->siglen = key_siglen(key);
    if (op->siglen == 0)
        return leave(CKR_KEY_TYPE_INCONSISTENT);
    if (is_pss(pMechanism->mechanism)) {
        if (!pMechanism->pParameter ||
            pMechanism->ulParameterLen != sizeof(CK_RSA_PKCS_PSS_PARAMS))
            return leave(CKR_MECHANISM_PARAM_INVALID);
        memcpy(&op->pss, pMechanism->pParameter, sizeof op->pss);
        if (!pss_params_ok(pMechanism->mechanism, &op->pss, op->siglen))
            return leave(CKR_MECHANISM_PARAM_INVALID);
        op->is_pss = 1;
    } else if (pMechanism->pParameter || pMechanism->ulParameterLen) {
        return leave(CKR_MECHANISM_PARAM_INVALID);
    }
    op->mech = pMechanism->mechanism;
    op->key = hKey;
    op->always_auth = obj_bool(key, CKA_ALWAYS_AUTHENTICATE, 0);
    op->active = 1;
    return leave(CKR_OK);
}

/* Finishes the operation with `data`; the caller holds the lock. */
static CK_RV sign_now(session *s, const uint8_t *data, size_t dlen, CK_BYTE_PTR pSignature,
                      CK_ULONG_PTR pulSignatureLen)
{
    sign_op *op = &s->sign;
    int slot = s->slot, removed = 0, k;
    int ctx = op->ctx_auth && op->ctx_epoch == conn_epoch() && conn_is_open();
    wbuf b;
    answer a;
    CK_RV rv;
    wreader r;
    wfield f;

    if (!pulSignatureLen) {
        sign_op_end(op);
        return CKR_ARGUMENTS_BAD;
    }
    if (!pSignature) {
        *pulSignatureLen = op->siglen;
        return CKR_OK;
    }
    if (*pulSignatureLen < op->siglen) {
        *pulSignatureLen = op->siglen;
        return CKR_BUFFER_TOO_SMALL;
    }
    if (dlen > WIRE_SIGN_DATA_MAX) {
        sign_op_end(op);
        return CKR_DATA_LEN_RANGE;
    }
    if ((op->always_auth && !ctx) || (!ctx && !slot_logged_in(&slots[slot]))) {
        sign_op_end(op);
        return CKR_USER_NOT_LOGGED_IN;
    }

    req_token(&b, OP_SIGN, slot);
    wb_u32(&b, T_HANDLE, (uint32_t)op->key);
    wb_u32(&b, T_MECH_TYPE, (uint32_t)op->mech);
    wb_bytes(&b, T_DATA, data, dlen);
    if (op->is_pss) {
        wb_u32(&b, T_PSS_HASH, (uint32_t)op->pss.hashAlg);
        wb_u32(&b, T_PSS_MGF, (uint32_t)op->pss.mgf);
        wb_u32(&b, T_PSS_SALT, (uint32_t)op->pss.sLen);
    }
    k = conn_call(&b, TIMEOUT_SIGN_MS, &a);
    sign_op_end(op);
    if (k != CONN_OK)
        return transport_rv(k);
    rv = a.rv;
    if (rv == CKR_OK) {
        const uint8_t *sig = NULL;
        size_t siglen = 0;
        wr_init(&r, a.buf, a.len);
        while (wr_next(&r, &f) == 1)
            if (f.tag == T_SIGNATURE) {
                sig = f.v;
                siglen = f.len;
            }
        if (!sig || siglen == 0 || siglen > *pulSignatureLen) {
            rv = CKR_DEVICE_ERROR;
        } else {
            memcpy(pSignature, sig, siglen);
            *pulSignatureLen = (CK_ULONG)siglen;
        }
    } else if (rv == CKR_DEVICE_REMOVED) {
        removed = 1;
    }
    answer_free(&a);
    if (removed)
        token_removed(slot); /* closes s too: not used after this */
    else if (rv != CKR_OK)
        slots[slot].stale = 1; /* a refusal may come with a new state; a signature
                                  spends no PIN try: no TOKEN before the next one */
    return rv;
}

CK_RV C_Sign(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen,
             CK_BYTE_PTR pSignature, CK_ULONG_PTR pulSignatureLen)
{
    session *s;
    CK_RV rv;
    ENTER();
    rv = session_for(hSession, &s);
    if (rv != CKR_OK)
        return leave(rv);
    if (!s->sign.active)
        return leave(CKR_OPERATION_NOT_INITIALIZED);
    if (s->sign.multipart)
        return leave(CKR_OPERATION_ACTIVE); /* C_SignFinal ends a multi-part sign */
    if (!pData && ulDataLen > 0) {
        sign_op_end(&s->sign);
        return leave(CKR_ARGUMENTS_BAD);
    }
    return leave(sign_now(s, pData, ulDataLen, pSignature, pulSignatureLen));
}

CK_RV C_SignUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen)
{
    session *s;
    sign_op *op;
    CK_RV rv;
    ENTER();
    rv = session_for(hSession, &s);
    if (rv != CKR_OK)
        return leave(rv);
    op = &s->sign;
    if (!op->active)
        return leave(CKR_OPERATION_NOT_INITIALIZED);
    if (!pPart && ulPartLen > 0) {
        sign_op_end(op);
        return leave(CKR_ARGUMENTS_BAD);
    }
    if (ulPartLen > WIRE_SIGN_DATA_MAX - op->dlen) {
        sign_op_end(op);
        return leave(CKR_DATA_LEN_RANGE);
    }
    if (op->dlen + ulPartLen > op->dcap) {
        size_t cap = op->dcap ? op->dcap : 1024;
        uint8_t *grown;
        while (cap < op->dlen + ulPartLen)
            cap *= 2;
        grown = realloc(op->data, cap);
        if (!grown) {
            sign_op_end(op);
            return leave(CKR_HOST_MEMORY);
        }
        op->data = grown;
        op->dcap = cap;
    }
    if (ulPartLen)
        memcpy(op->data + op->dlen, pPart, ulPartLen);
    op->dlen += ulPartLen;
    op->multipart = 1;
    return leave(CKR_OK);
}

CK_RV C_SignFinal(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSignature,
                  CK_ULONG_PTR pulSignatureLen)
{
    session *s;
    CK_RV rv;
    ENTER();
    rv = session_for(hSession, &s);
    if (rv != CKR_OK)
        return leave(rv);
    if (!s->sign.active)
        return leave(CKR_OPERATION_NOT_INITIALIZED);
    return leave(sign_now(s, s->sign.data, s->sign.dlen, pSignature, pulSignatureLen));
}
