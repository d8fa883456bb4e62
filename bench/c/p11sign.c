/*
 * A plain PKCS#11 application for bench/pkcs11.ts: loads a module with dlopen, reads every attribute of
 * every object (as Firefox does when it loads a token), logs in and times C_SignInit + C_Sign with the
 * authentication key. Between phases it prints "phase <name>" and waits for a line on stdin, so that the
 * bench can count what reached the daemon during each phase.
 *
 *   p11sign <module.so> <pin> <signatures> <attribute passes>
 * Prints the signature times in nanoseconds on a line "sign_ns t1 t2 …".
 */
#define _POSIX_C_SOURCE 200809L
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "cryptoki.h"

#define CKO_PRIVATE_KEY_ 3UL
#define MAX_OBJECTS 64

static CK_FUNCTION_LIST_PTR p11;

static void check(CK_RV rv, const char *what) {
    if (rv != CKR_OK) {
        fprintf(stderr, "%s: 0x%lx\n", what, rv);
        exit(2);
    }
}

static void phase(const char *name) {
    char line[16];
    printf("phase %s\n", name);
    fflush(stdout);
    if (!fgets(line, sizeof line, stdin)) exit(3);
}

static long long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

/* The attributes an application such as NSS asks of certificates, keys and the profile object. */
static const CK_ATTRIBUTE_TYPE TYPES[] = {
    0x000 /* CLASS */, 0x001 /* TOKEN */, 0x002 /* PRIVATE */, 0x003 /* LABEL */, 0x011 /* VALUE */,
    0x080 /* CERTIFICATE_TYPE */, 0x081 /* ISSUER */, 0x082 /* SERIAL_NUMBER */, 0x100 /* KEY_TYPE */,
    0x101 /* SUBJECT */, 0x102 /* ID */, 0x103 /* SENSITIVE */, 0x108 /* SIGN */, 0x10A /* VERIFY */,
    0x120 /* MODULUS */, 0x121 /* MODULUS_BITS */, 0x122 /* PUBLIC_EXPONENT */, 0x162 /* EXTRACTABLE */,
    0x202 /* ALWAYS_AUTHENTICATE */, 0x601 /* PROFILE_ID */,
};
#define NTYPES (sizeof TYPES / sizeof TYPES[0])

static CK_ULONG find_all(CK_SESSION_HANDLE s, CK_ATTRIBUTE_PTR tmpl, CK_ULONG n, CK_OBJECT_HANDLE *out) {
    CK_ULONG count = 0;
    check(p11->C_FindObjectsInit(s, tmpl, n), "C_FindObjectsInit");
    check(p11->C_FindObjects(s, out, MAX_OBJECTS, &count), "C_FindObjects");
    check(p11->C_FindObjectsFinal(s), "C_FindObjectsFinal");
    return count;
}

/* Every attribute of every object, two passes each (lengths, then values). Returns the values read. */
static unsigned long read_attributes(CK_SESSION_HANDLE s) {
    CK_OBJECT_HANDLE objects[MAX_OBJECTS];
    CK_ULONG n = find_all(s, NULL, 0, objects);
    unsigned long values = 0;
    for (CK_ULONG i = 0; i < n; i++) {
        for (size_t t = 0; t < NTYPES; t++) {
            CK_ATTRIBUTE a = {TYPES[t], NULL, 0};
            CK_RV rv = p11->C_GetAttributeValue(s, objects[i], &a, 1);
            if (rv != CKR_OK || a.ulValueLen == (CK_ULONG)-1) continue;
            a.pValue = malloc(a.ulValueLen ? a.ulValueLen : 1);
            check(p11->C_GetAttributeValue(s, objects[i], &a, 1), "C_GetAttributeValue");
            free(a.pValue);
            values++;
        }
    }
    return values;
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: %s module.so pin signatures attribute-passes\n", argv[0]);
        return 1;
    }
    int signatures = atoi(argv[3]), passes = atoi(argv[4]);
    void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        fprintf(stderr, "dlopen: %s\n", dlerror());
        return 1;
    }
    CK_RV (*get)(CK_FUNCTION_LIST_PTR_PTR);
    *(void **)&get = dlsym(lib, "C_GetFunctionList");
    check(get(&p11), "C_GetFunctionList");
    check(p11->C_Initialize(NULL), "C_Initialize");

    CK_SLOT_ID slots[8];
    CK_ULONG nslots = 8;
    check(p11->C_GetSlotList(CK_TRUE, slots, &nslots), "C_GetSlotList");
    if (nslots == 0) {
        fprintf(stderr, "no token\n");
        return 1;
    }
    CK_TOKEN_INFO info;
    check(p11->C_GetTokenInfo(slots[0], &info), "C_GetTokenInfo");
    CK_SESSION_HANDLE s;
    check(p11->C_OpenSession(slots[0], CKF_SERIAL_SESSION, NULL, NULL, &s), "C_OpenSession");
    unsigned long first = read_attributes(s);
    printf("values %lu\n", first);
    phase("snapshot");

    unsigned long values = 0;
    for (int p = 0; p < passes; p++) values += read_attributes(s);
    printf("values %lu\n", values);
    phase("attributes");

    check(p11->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)argv[2], strlen(argv[2])), "C_Login");
    phase("login");

    /* The authentication key: a private key that does not ask the PIN for each signature. */
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY_;
    CK_ATTRIBUTE tmpl = {CKA_CLASS, &cls, sizeof cls};
    CK_OBJECT_HANDLE keys[MAX_OBJECTS], key = 0;
    CK_ULONG nkeys = find_all(s, &tmpl, 1, keys);
    for (CK_ULONG i = 0; i < nkeys && !key; i++) {
        CK_BBOOL always = CK_TRUE;
        CK_ATTRIBUTE a = {CKA_ALWAYS_AUTHENTICATE, &always, sizeof always};
        if (p11->C_GetAttributeValue(s, keys[i], &a, 1) == CKR_OK && !always) key = keys[i];
    }
    if (!key) {
        fprintf(stderr, "no authentication key\n");
        return 1;
    }
    CK_MECHANISM mech = {CKM_SHA256_RSA_PKCS, NULL, 0};
    unsigned char data[64], sig[512];
    long long *ns = calloc((size_t)signatures, sizeof *ns);
    for (int i = 0; i < signatures; i++) {
        CK_ULONG len = sizeof sig;
        memset(data, i & 0xff, sizeof data);
        long long t0 = now_ns();
        check(p11->C_SignInit(s, &mech, key), "C_SignInit");
        check(p11->C_Sign(s, data, sizeof data, sig, &len), "C_Sign");
        ns[i] = now_ns() - t0;
    }
    printf("sign_ns");
    for (int i = 0; i < signatures; i++) printf(" %lld", ns[i]);
    printf("\n");
    phase("signed");
    free(ns);
    check(p11->C_Logout(s), "C_Logout");
    check(p11->C_CloseSession(s), "C_CloseSession");
    check(p11->C_Finalize(NULL), "C_Finalize");
    return 0;
}
