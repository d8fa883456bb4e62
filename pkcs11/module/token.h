/* token.h - slots keyed by reader name, and the per-token snapshot from TOKEN:
 * token info, mechanisms, objects as generic attribute lists. */
#ifndef CPSD_TOKEN_H
#define CPSD_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#include "cryptoki.h"

#define MAX_SLOTS 32

typedef struct attr {
    CK_ATTRIBUTE_TYPE type;
    CK_ULONG len;
    uint8_t *val; /* native layout: a CK_ULONG, a CK_BBOOL, or bytes */
} attr;

typedef struct object {
    CK_OBJECT_HANDLE handle;
    size_t nattrs;
    attr *attrs;
    int is_private; /* CKA_PRIVATE true: hidden until login */
} object;

typedef struct mechanism {
    CK_MECHANISM_TYPE type;
    CK_MECHANISM_INFO info;
} mechanism;

typedef struct snapshot {
    uint32_t generation;
    char *label, *manufacturer, *model, *serial;
    uint32_t flags, pin_min, pin_max;
    size_t nmechs, nobjects;
    mechanism *mechs;
    object *objects;
} snapshot;

typedef struct slot {
    char *reader;           /* the stable key; NULL = unused entry */
    int present;
    uint32_t generation;
    uint32_t slot_flags;
    snapshot *snap;         /* NULL until asked, dropped on a new generation */
    int stale;              /* ask TOKEN again before the next token info */
    int logged_in;          /* CKU_USER via this module, valid for login_epoch */
    unsigned long login_epoch;
} slot;

extern slot slots[MAX_SLOTS];

void slots_free_all(void);
/* The index for a reader name, adding it; -1 when the table is full. */
int slot_for_reader(const char *name, size_t len);
/* Parses a SLOTS answer body; calls on_change(index) for every slot whose
 * card changed or went away. Returns 0, or -1 for a malformed answer. */
int slots_apply(const uint8_t *body, size_t len, void (*on_change)(int));
/* Marks every slot without token (daemon unreachable). */
void slots_all_absent(void (*on_change)(int));

/* Parses a TOKEN answer body into a new snapshot; NULL when malformed. */
snapshot *snapshot_parse(const uint8_t *body, size_t len);
void snapshot_free(snapshot *s);

int slot_logged_in(const slot *s);

const object *snap_object(const snapshot *s, CK_OBJECT_HANDLE h, int logged_in);
const attr *obj_attr(const object *o, CK_ATTRIBUTE_TYPE t);
/* CK_ULONG / CK_BBOOL attribute values, with a default when absent. */
CK_ULONG obj_ulong(const object *o, CK_ATTRIBUTE_TYPE t, CK_ULONG dflt);
int obj_bool(const object *o, CK_ATTRIBUTE_TYPE t, int dflt);
/* 1 when every template attribute is present with the same value. */
int obj_matches(const object *o, const CK_ATTRIBUTE *tmpl, CK_ULONG n);
const mechanism *snap_mech(const snapshot *s, CK_MECHANISM_TYPE t);

/* Copies UTF-8 into a blank-padded fixed field, cut on a character boundary. */
void pad_utf8(CK_UTF8CHAR *dst, size_t cap, const char *src);

#endif
