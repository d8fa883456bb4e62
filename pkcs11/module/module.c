/* module.c - the C_* entry points except signing (sign.c) and the ones we do
 * not support (unsupported.c). Everything runs on the caller's thread under
 * the module lock; only SLOTS, TOKEN, LOGIN, LOGOUT and SIGN cross. */
#include "module.h"

#include <stdlib.h>
#include <string.h>

#include "lock.h"

static volatile int initialized;
static unsigned long init_pid;
static int login_busy; /* a LOGIN exchange runs without the lock */

#define FN_PTR(name, args) name,
static CK_FUNCTION_LIST function_list = {{2, 40}, CK_PKCS11_FUNCTIONS(FN_PTR)};
#undef FN_PTR

/* ---- shared helpers ---- */

int login_in_flight(void)
{
    return login_busy;
}

void wait_for_login(void)
{
    while (login_busy) {
        lock_leave();
        sleep_ms(10);
        lock_enter();
    }
}

CK_RV enter(int wait)
{
    if (!initialized || init_pid != current_pid())
        return CKR_CRYPTOKI_NOT_INITIALIZED;
    lock_enter();
    if (wait)
        wait_for_login();
    if (!initialized) {
        lock_leave();
        return CKR_CRYPTOKI_NOT_INITIALIZED;
    }
    conn_begin_call();
    return CKR_OK;
}

CK_RV leave(CK_RV rv)
{
    lock_leave();
    return rv;
}

CK_RV session_for(CK_SESSION_HANDLE h, session **out)
{
    session *s = session_get(h);
    if (!s)
        return CKR_SESSION_HANDLE_INVALID;
    *out = s;
    return CKR_OK;
}

static void on_slot_change(int slot)
{
    session_close_slot(slot);
}

void token_removed(int slot)
{
    snapshot_free(slots[slot].snap);
    slots[slot].snap = NULL;
    slots[slot].stale = 0;
    slots[slot].logged_in = 0;
    session_close_slot(slot);
}

CK_RV transport_rv(int conn_status)
{
    /* Unreachable: nothing was sent, the daemon is away. Broken: the call in
     * flight failed; the next call reconnects. */
    return conn_status == CONN_UNREACHABLE ? CKR_TOKEN_NOT_PRESENT : CKR_DEVICE_ERROR;
}

void req_token(wbuf *b, uint32_t op, int slot)
{
    req_begin(b, op);
    wb_str(b, T_READER, slots[slot].reader);
    wb_u32(b, T_GENERATION, slots[slot].generation);
}

static int valid_slot(CK_SLOT_ID id)
{
    return id < MAX_SLOTS && slots[id].reader != NULL;
}

/* SLOTS: cheap, never touches a card. */
static CK_RV refresh_slots(void)
{
    wbuf b;
    answer a;
    int k;
    if (login_busy)
        return CKR_OK; /* the connection is taken: the slots as last known */
    req_begin(&b, OP_SLOTS);
    k = conn_call(&b, TIMEOUT_OTHER_MS, &a);
    if (k == CONN_UNREACHABLE) {
        slots_all_absent(on_slot_change); /* known slots stay, without token */
        return CKR_OK;
    }
    if (k != CONN_OK) {
        slots_all_absent(on_slot_change);
        return CKR_DEVICE_ERROR;
    }
    if (a.rv != CKR_OK) {
        answer_free(&a);
        return a.rv;
    }
    k = slots_apply(a.buf, a.len, on_slot_change);
    answer_free(&a);
    return k == 0 ? CKR_OK : CKR_DEVICE_ERROR;
}

CK_RV ensure_snapshot(int slot)
{
    wbuf b;
    answer a;
    snapshot *snap;
    int k;
    if (!slots[slot].present)
        return CKR_TOKEN_NOT_PRESENT;
    if (slots[slot].snap && !slots[slot].stale)
        return CKR_OK;
    req_token(&b, OP_TOKEN, slot);
    k = conn_call(&b, TIMEOUT_TOKEN_MS, &a);
    if (k != CONN_OK)
        return transport_rv(k);
    if (a.rv == CKR_DEVICE_REMOVED || a.rv == CKR_TOKEN_NOT_PRESENT) {
        CK_RV rv = a.rv;
        answer_free(&a);
        token_removed(slot);
        slots[slot].present = 0; /* until SLOTS tells the new state */
        return rv;
    }
    if (a.rv != CKR_OK) {
        CK_RV rv = a.rv;
        answer_free(&a);
        return rv;
    }
    snap = snapshot_parse(a.buf, a.len);
    answer_free(&a);
    if (!snap)
        return CKR_DEVICE_ERROR;
    if (snap->generation != slots[slot].generation) {
        snapshot_free(snap);
        token_removed(slot);
        slots[slot].present = 0;
        return CKR_DEVICE_REMOVED;
    }
    snapshot_free(slots[slot].snap);
    slots[slot].snap = snap;
    slots[slot].stale = 0;
    return CKR_OK;
}

CK_RV use_snapshot(int slot)
{
    CK_RV rv = ensure_snapshot(slot);
    /* A refresh that failed in transport leaves the last snapshot of this
     * generation, still right for objects; a removed card leaves none. */
    if (rv != CKR_OK && slots[slot].snap)
        return CKR_OK;
    return rv;
}

/* ---- general ---- */

static void forget_state(void)
{
    session_forget_all();
    slots_free_all();
}

CK_RV C_Initialize(CK_VOID_PTR pInitArgs)
{
    unsigned long pid = current_pid();
    CK_RV rv;
    init_guard_enter();
    if (initialized && init_pid == pid) {
        init_guard_leave();
        return CKR_CRYPTOKI_ALREADY_INITIALIZED;
    }
    if (initialized) {
        /* A child after fork(): drop what the parent had, never use its
         * socket or its lock. */
        lock_abandon();
        conn_forget_inherited();
        forget_state();
        login_busy = 0;
        initialized = 0;
    }
    rv = lock_init((const CK_C_INITIALIZE_ARGS *)pInitArgs);
    if (rv == CKR_OK) {
        conn_setup();
        init_pid = pid;
        initialized = 1;
    }
    init_guard_leave();
    return rv;
}

CK_RV C_Finalize(CK_VOID_PTR pReserved)
{
    if (pReserved != NULL)
        return CKR_ARGUMENTS_BAD;
    init_guard_enter();
    if (!initialized || init_pid != current_pid()) {
        init_guard_leave();
        return CKR_CRYPTOKI_NOT_INITIALIZED;
    }
    lock_enter();
    wait_for_login();
    conn_close();
    forget_state();
    initialized = 0;
    lock_leave();
    lock_destroy();
    init_guard_leave();
    return CKR_OK;
}

CK_RV C_GetInfo(CK_INFO_PTR pInfo)
{
    ENTER_CACHED();
    if (!pInfo)
        return leave(CKR_ARGUMENTS_BAD);
    memset(pInfo, 0, sizeof *pInfo);
    pInfo->cryptokiVersion.major = 2;
    pInfo->cryptokiVersion.minor = 40;
    pad_utf8(pInfo->manufacturerID, sizeof pInfo->manufacturerID, "cpsd");
    pad_utf8(pInfo->libraryDescription, sizeof pInfo->libraryDescription,
             "cpsd PKCS#11 module");
    pInfo->libraryVersion.major = 0;
    pInfo->libraryVersion.minor = 1;
    return leave(CKR_OK);
}

CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR ppFunctionList)
{
    if (!ppFunctionList)
        return CKR_ARGUMENTS_BAD;
    *ppFunctionList = &function_list;
    return CKR_OK;
}

/* ---- slots and tokens ---- */

CK_RV C_GetSlotList(CK_BBOOL tokenPresent, CK_SLOT_ID_PTR pSlotList, CK_ULONG_PTR pulCount)
{
    CK_ULONG n = 0;
    CK_RV rv;
    int i;
    ENTER_CACHED();
    if (!pulCount)
        return leave(CKR_ARGUMENTS_BAD);
    rv = refresh_slots();
    if (rv != CKR_OK)
        return leave(rv);
    for (i = 0; i < MAX_SLOTS && slots[i].reader; i++)
        if (!tokenPresent || slots[i].present)
            n++;
    if (!pSlotList) {
        *pulCount = n;
        return leave(CKR_OK);
    }
    if (*pulCount < n) {
        *pulCount = n;
        return leave(CKR_BUFFER_TOO_SMALL);
    }
    n = 0;
    for (i = 0; i < MAX_SLOTS && slots[i].reader; i++)
        if (!tokenPresent || slots[i].present)
            pSlotList[n++] = (CK_SLOT_ID)i;
    *pulCount = n;
    return leave(CKR_OK);
}

CK_RV C_GetSlotInfo(CK_SLOT_ID slotID, CK_SLOT_INFO_PTR pInfo)
{
    CK_RV rv;
    ENTER_CACHED();
    if (!pInfo)
        return leave(CKR_ARGUMENTS_BAD);
    if (!valid_slot(slotID))
        return leave(CKR_SLOT_ID_INVALID);
    /* NSS polls insertion through here when C_WaitForSlotEvent is missing. */
    rv = refresh_slots();
    if (rv != CKR_OK)
        return leave(rv);
    memset(pInfo, 0, sizeof *pInfo);
    pad_utf8(pInfo->slotDescription, sizeof pInfo->slotDescription, slots[slotID].reader);
    pad_utf8(pInfo->manufacturerID, sizeof pInfo->manufacturerID, "cpsd");
    pInfo->flags = (slots[slotID].slot_flags & ~CKF_TOKEN_PRESENT) | CKF_REMOVABLE_DEVICE |
                   CKF_HW_SLOT | (slots[slotID].present ? CKF_TOKEN_PRESENT : 0);
    return leave(CKR_OK);
}

CK_RV C_GetTokenInfo(CK_SLOT_ID slotID, CK_TOKEN_INFO_PTR pInfo)
{
    const snapshot *sn;
    CK_RV rv;
    int i = (int)slotID;
    ENTER_CACHED();
    if (!pInfo)
        return leave(CKR_ARGUMENTS_BAD);
    if (!valid_slot(slotID))
        return leave(CKR_SLOT_ID_INVALID);
    if (login_busy && !slots[i].snap)
        wait_for_login(); /* nothing known yet: wait for the connection */
    rv = refresh_slots();
    if (rv == CKR_OK && !(login_busy && slots[i].snap))
        rv = ensure_snapshot(i);
    if (rv != CKR_OK)
        return leave(rv);
    sn = slots[i].snap;
    memset(pInfo, 0, sizeof *pInfo);
    pad_utf8(pInfo->label, sizeof pInfo->label, sn->label);
    pad_utf8(pInfo->manufacturerID, sizeof pInfo->manufacturerID, sn->manufacturer);
    pad_utf8(pInfo->model, sizeof pInfo->model, sn->model);
    pad_utf8(pInfo->serialNumber, sizeof pInfo->serialNumber, sn->serial);
    pInfo->flags = sn->flags;
    pInfo->ulMaxSessionCount = CK_EFFECTIVELY_INFINITE;
    pInfo->ulSessionCount = session_count(i, 0);
    pInfo->ulMaxRwSessionCount = CK_EFFECTIVELY_INFINITE;
    pInfo->ulRwSessionCount = session_count(i, 1);
    pInfo->ulMaxPinLen = sn->pin_max;
    pInfo->ulMinPinLen = sn->pin_min;
    pInfo->ulTotalPublicMemory = CK_UNAVAILABLE_INFORMATION;
    pInfo->ulFreePublicMemory = CK_UNAVAILABLE_INFORMATION;
    pInfo->ulTotalPrivateMemory = CK_UNAVAILABLE_INFORMATION;
    pInfo->ulFreePrivateMemory = CK_UNAVAILABLE_INFORMATION;
    memset(pInfo->utcTime, ' ', sizeof pInfo->utcTime);
    return leave(CKR_OK);
}

CK_RV C_GetMechanismList(CK_SLOT_ID slotID, CK_MECHANISM_TYPE_PTR pMechanismList,
                         CK_ULONG_PTR pulCount)
{
    const snapshot *sn;
    CK_RV rv;
    size_t i;
    ENTER();
    if (!pulCount)
        return leave(CKR_ARGUMENTS_BAD);
    if (!valid_slot(slotID))
        return leave(CKR_SLOT_ID_INVALID);
    rv = ensure_snapshot((int)slotID);
    if (rv != CKR_OK)
        return leave(rv);
    sn = slots[slotID].snap;
    if (!pMechanismList) {
        *pulCount = (CK_ULONG)sn->nmechs;
        return leave(CKR_OK);
    }
    if (*pulCount < sn->nmechs) {
        *pulCount = (CK_ULONG)sn->nmechs;
        return leave(CKR_BUFFER_TOO_SMALL);
    }
    for (i = 0; i < sn->nmechs; i++)
        pMechanismList[i] = sn->mechs[i].type;
    *pulCount = (CK_ULONG)sn->nmechs;
    return leave(CKR_OK);
}

CK_RV C_GetMechanismInfo(CK_SLOT_ID slotID, CK_MECHANISM_TYPE type, CK_MECHANISM_INFO_PTR pInfo)
{
    const mechanism *m;
    CK_RV rv;
    ENTER();
    if (!pInfo)
        return leave(CKR_ARGUMENTS_BAD);
    if (!valid_slot(slotID))
        return leave(CKR_SLOT_ID_INVALID);
    rv = ensure_snapshot((int)slotID);
    if (rv != CKR_OK)
        return leave(rv);
    m = snap_mech(slots[slotID].snap, type);
    if (!m)
        return leave(CKR_MECHANISM_INVALID);
    *pInfo = m->info;
    return leave(CKR_OK);
}

/* ---- sessions ---- */

CK_RV C_OpenSession(CK_SLOT_ID slotID, CK_FLAGS flags, CK_VOID_PTR pApplication,
                    CK_NOTIFY Notify, CK_SESSION_HANDLE_PTR phSession)
{
    session *s;
    CK_RV rv;
    (void)pApplication; /* no callbacks: we never notify */
    (void)Notify;
    ENTER();
    if (!phSession)
        return leave(CKR_ARGUMENTS_BAD);
    if (!valid_slot(slotID))
        return leave(CKR_SLOT_ID_INVALID);
    if (!(flags & CKF_SERIAL_SESSION))
        return leave(CKR_SESSION_PARALLEL_NOT_SUPPORTED);
    rv = ensure_snapshot((int)slotID);
    if (rv != CKR_OK)
        return leave(rv);
    s = session_new((int)slotID, flags & (CKF_SERIAL_SESSION | CKF_RW_SESSION));
    if (!s)
        return leave(CKR_HOST_MEMORY);
    *phSession = s->handle;
    return leave(CKR_OK);
}

/* The token's last session closed: PKCS#11 says the user is logged out. */
static void logout_if_idle(int slot)
{
    wbuf b;
    answer a;
    if (session_count(slot, 0) != 0 || !slot_logged_in(&slots[slot]))
        return;
    slots[slot].logged_in = 0;
    req_token(&b, OP_LOGOUT, slot);
    if (conn_call(&b, TIMEOUT_OTHER_MS, &a) == CONN_OK)
        answer_free(&a);
}

CK_RV C_CloseSession(CK_SESSION_HANDLE hSession)
{
    session *s;
    int slot;
    CK_RV rv;
    ENTER();
    rv = session_for(hSession, &s);
    if (rv != CKR_OK)
        return leave(rv);
    slot = s->slot;
    session_close(s);
    logout_if_idle(slot);
    return leave(CKR_OK);
}

CK_RV C_CloseAllSessions(CK_SLOT_ID slotID)
{
    ENTER();
    if (!valid_slot(slotID))
        return leave(CKR_SLOT_ID_INVALID);
    session_close_slot((int)slotID);
    logout_if_idle((int)slotID);
    return leave(CKR_OK);
}

CK_RV C_GetSessionInfo(CK_SESSION_HANDLE hSession, CK_SESSION_INFO_PTR pInfo)
{
    session *s;
    CK_RV rv;
    int user;
    ENTER_CACHED();
    if (!pInfo)
        return leave(CKR_ARGUMENTS_BAD);
    rv = session_for(hSession, &s);
    if (rv != CKR_OK)
        return leave(rv);
    user = slot_logged_in(&slots[s->slot]);
    pInfo->slotID = (CK_SLOT_ID)s->slot;
    if (s->flags & CKF_RW_SESSION)
        pInfo->state = user ? CKS_RW_USER_FUNCTIONS : CKS_RW_PUBLIC_SESSION;
    else
        pInfo->state = user ? CKS_RO_USER_FUNCTIONS : CKS_RO_PUBLIC_SESSION;
    pInfo->flags = s->flags;
    pInfo->ulDeviceError = 0;
    return leave(CKR_OK);
}

/* ---- login ---- */

#define PIN_BYTES_MAX 256 /* a frame bound, not a PIN rule */

CK_RV C_Login(CK_SESSION_HANDLE hSession, CK_USER_TYPE userType, CK_UTF8CHAR_PTR pPin,
              CK_ULONG ulPinLen)
{
    session *s;
    wbuf b;
    answer a;
    CK_RV rv;
    CK_OBJECT_HANDLE key;
    int slot, k;
    ENTER();
    rv = session_for(hSession, &s);
    if (rv != CKR_OK)
        return leave(rv);
    slot = s->slot;
    if (userType != CKU_USER && userType != CKU_CONTEXT_SPECIFIC)
        return leave(CKR_USER_TYPE_INVALID);
    if (!pPin && ulPinLen != 0)
        return leave(CKR_ARGUMENTS_BAD);
    if (ulPinLen > PIN_BYTES_MAX)
        return leave(CKR_PIN_LEN_RANGE);
    if (userType == CKU_USER && slot_logged_in(&slots[slot]))
        return leave(CKR_USER_ALREADY_LOGGED_IN);
    if (userType == CKU_CONTEXT_SPECIFIC && !s->sign.active)
        return leave(CKR_OPERATION_NOT_INITIALIZED);

    req_token(&b, OP_LOGIN, slot);
    wb_u32(&b, T_USER_TYPE, (uint32_t)userType);
    if (pPin) /* NULL: protected authentication path, the daemon asks */
        wb_bytes(&b, T_PIN, pPin, ulPinLen);
    key = s->sign.key;
    if (userType == CKU_CONTEXT_SPECIFIC)
        wb_u32(&b, T_HANDLE, (uint32_t)key);
    /* A PIN pad may take minutes: exchange without the lock, so that other
     * threads can still read slots, tokens and objects (Firefox keeps its UI
     * polling while its protected-authentication dialog is up). Calls that
     * need the connection wait for us. b (with the PIN copy) is wiped. */
    k = conn_prepare(&b, &a);
    if (k == CONN_OK) {
        login_busy = 1;
        lock_leave();
        k = conn_exchange(&b, TIMEOUT_LOGIN_MS, &a);
        lock_enter();
        login_busy = 0;
        conn_settle(k);
    }
    if (k != CONN_OK)
        return leave(transport_rv(k));
    rv = a.rv;
    answer_free(&a);
    if (rv == CKR_DEVICE_REMOVED) {
        token_removed(slot);
        return leave(rv);
    }
    slots[slot].stale = 1; /* the PIN counter flags may have changed */
    /* ALREADY_LOGGED_IN: the daemon kept this connection's login that we had
     * forgotten; agree with it (the caller is told as the spec says). */
    if (rv == CKR_OK || (rv == CKR_USER_ALREADY_LOGGED_IN && userType == CKU_USER)) {
        if (userType == CKU_USER) {
            slots[slot].logged_in = 1;
            slots[slot].login_epoch = conn_epoch();
        } else {
            s = session_get(hSession); /* looked up again after the unlocked wait */
            if (s && s->sign.active && s->sign.key == key) {
                s->sign.ctx_auth = 1;
                s->sign.ctx_epoch = conn_epoch();
            }
        }
    }
    return leave(rv);
}

CK_RV C_Logout(CK_SESSION_HANDLE hSession)
{
    session *s;
    wbuf b;
    answer a;
    CK_RV rv;
    int slot, k;
    ENTER();
    rv = session_for(hSession, &s);
    if (rv != CKR_OK)
        return leave(rv);
    slot = s->slot;
    if (!slot_logged_in(&slots[slot]))
        return leave(CKR_USER_NOT_LOGGED_IN);
    slots[slot].logged_in = 0; /* whatever the answer: we no longer rely on it */
    slots[slot].stale = 1;
    req_token(&b, OP_LOGOUT, slot);
    k = conn_call(&b, TIMEOUT_OTHER_MS, &a);
    if (k != CONN_OK)
        return leave(transport_rv(k));
    rv = a.rv;
    answer_free(&a);
    if (rv == CKR_DEVICE_REMOVED)
        token_removed(slot);
    return leave(rv);
}

/* ---- objects ---- */

static int check_template(const CK_ATTRIBUTE *t, CK_ULONG n)
{
    CK_ULONG i;
    if (n > 0 && !t)
        return -1;
    for (i = 0; i < n; i++)
        if (t[i].ulValueLen > 0 && !t[i].pValue)
            return -1;
    return 0;
}

CK_RV C_FindObjectsInit(CK_SESSION_HANDLE hSession, CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount)
{
    session *s;
    const snapshot *sn;
    CK_RV rv;
    int user;
    size_t i;
    ENTER();
    rv = session_for(hSession, &s);
    if (rv != CKR_OK)
        return leave(rv);
    if (s->find_active)
        return leave(CKR_OPERATION_ACTIVE);
    if (check_template(pTemplate, ulCount) != 0)
        return leave(CKR_ARGUMENTS_BAD);
    rv = use_snapshot(s->slot); /* on failure s may be gone */
    if (rv != CKR_OK)
        return leave(rv);
    sn = slots[s->slot].snap;
    user = slot_logged_in(&slots[s->slot]);
    /* Handles are copied: a later snapshot refresh does not disturb the search. */
    s->found = malloc((sn->nobjects ? sn->nobjects : 1) * sizeof *s->found);
    if (!s->found)
        return leave(CKR_HOST_MEMORY);
    s->nfound = s->pos = 0;
    for (i = 0; i < sn->nobjects; i++) {
        const object *o = &sn->objects[i];
        if (o->is_private && !user)
            continue;
        if (obj_matches(o, pTemplate, ulCount))
            s->found[s->nfound++] = o->handle;
    }
    s->find_active = 1;
    return leave(CKR_OK);
}

CK_RV C_FindObjects(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE_PTR phObject,
                    CK_ULONG ulMaxObjectCount, CK_ULONG_PTR pulObjectCount)
{
    session *s;
    CK_RV rv;
    CK_ULONG n = 0;
    ENTER_CACHED();
    rv = session_for(hSession, &s);
    if (rv != CKR_OK)
        return leave(rv);
    if (!pulObjectCount || (!phObject && ulMaxObjectCount > 0))
        return leave(CKR_ARGUMENTS_BAD);
    if (!s->find_active)
        return leave(CKR_OPERATION_NOT_INITIALIZED);
    while (n < ulMaxObjectCount && s->pos < s->nfound)
        phObject[n++] = s->found[s->pos++];
    *pulObjectCount = n;
    return leave(CKR_OK);
}

CK_RV C_FindObjectsFinal(CK_SESSION_HANDLE hSession)
{
    session *s;
    CK_RV rv;
    ENTER_CACHED();
    rv = session_for(hSession, &s);
    if (rv != CKR_OK)
        return leave(rv);
    if (!s->find_active)
        return leave(CKR_OPERATION_NOT_INITIALIZED);
    find_end(s);
    return leave(CKR_OK);
}

/* Key material of a sensitive or non-extractable private key: the snapshot
 * never has it, and the spec's answer is CKR_ATTRIBUTE_SENSITIVE. */
static int is_sensitive(const object *o, CK_ATTRIBUTE_TYPE t)
{
    if (obj_ulong(o, CKA_CLASS, CK_UNAVAILABLE_INFORMATION) != CKO_PRIVATE_KEY)
        return 0;
    if (!obj_bool(o, CKA_SENSITIVE, 1) && obj_bool(o, CKA_EXTRACTABLE, 0))
        return 0;
    return t == CKA_PRIVATE_EXPONENT || t == CKA_PRIME_1 || t == CKA_PRIME_2 ||
           t == CKA_EXPONENT_1 || t == CKA_EXPONENT_2 || t == CKA_COEFFICIENT ||
           t == CKA_VALUE;
}

CK_RV C_GetAttributeValue(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject,
                          CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount)
{
    session *s;
    const object *o;
    CK_RV rv;
    CK_ULONG i;
    int sensitive = 0, invalid = 0, small = 0;
    ENTER();
    rv = session_for(hSession, &s);
    if (rv != CKR_OK)
        return leave(rv);
    if (ulCount > 0 && !pTemplate)
        return leave(CKR_ARGUMENTS_BAD);
    rv = use_snapshot(s->slot); /* on failure s may be gone */
    if (rv != CKR_OK)
        return leave(rv);
    o = snap_object(slots[s->slot].snap, hObject, slot_logged_in(&slots[s->slot]));
    if (!o)
        return leave(CKR_OBJECT_HANDLE_INVALID);
    for (i = 0; i < ulCount; i++) {
        CK_ATTRIBUTE *t = &pTemplate[i];
        const attr *a = obj_attr(o, t->type);
        if (!a) {
            if (is_sensitive(o, t->type))
                sensitive = 1;
            else
                invalid = 1;
            t->ulValueLen = CK_UNAVAILABLE_INFORMATION;
        } else if (!t->pValue) {
            t->ulValueLen = a->len;
        } else if (t->ulValueLen < a->len) {
            t->ulValueLen = CK_UNAVAILABLE_INFORMATION;
            small = 1;
        } else {
            if (a->len)
                memcpy(t->pValue, a->val, a->len);
            t->ulValueLen = a->len;
        }
    }
    rv = sensitive ? CKR_ATTRIBUTE_SENSITIVE
         : invalid ? CKR_ATTRIBUTE_TYPE_INVALID
         : small   ? CKR_BUFFER_TOO_SMALL
                   : CKR_OK;
    return leave(rv);
}
