/* token.c - see token.h. Everything read from the daemon is checked against
 * the length of the field that holds it before it is copied. */
#include "token.h"

#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "wire.h"

slot slots[MAX_SLOTS];

static char *dup_field(const wfield *f)
{
    char *s;
    if (memchr(f->v, 0, f->len))
        return NULL;
    s = malloc(f->len + 1);
    if (!s)
        return NULL;
    memcpy(s, f->v, f->len);
    s[f->len] = 0;
    return s;
}

void snapshot_free(snapshot *s)
{
    size_t i, j;
    if (!s)
        return;
    for (i = 0; i < s->nobjects; i++) {
        for (j = 0; j < s->objects[i].nattrs; j++)
            free(s->objects[i].attrs[j].val);
        free(s->objects[i].attrs);
    }
    free(s->objects);
    free(s->mechs);
    free(s->label);
    free(s->manufacturer);
    free(s->model);
    free(s->serial);
    free(s);
}

void slots_free_all(void)
{
    int i;
    for (i = 0; i < MAX_SLOTS; i++) {
        free(slots[i].reader);
        snapshot_free(slots[i].snap);
    }
    memset(slots, 0, sizeof slots);
}

int slot_for_reader(const char *name, size_t len)
{
    int i;
    for (i = 0; i < MAX_SLOTS && slots[i].reader; i++)
        if (strlen(slots[i].reader) == len && memcmp(slots[i].reader, name, len) == 0)
            return i;
    if (i == MAX_SLOTS)
        return -1;
    slots[i].reader = malloc(len + 1);
    if (!slots[i].reader)
        return -1;
    memcpy(slots[i].reader, name, len);
    slots[i].reader[len] = 0;
    return i;
}

int slot_logged_in(const slot *s)
{
    return s->logged_in && s->login_epoch == conn_epoch() && conn_is_open();
}

/* The card in a slot changed or went away: what we knew of it is void. */
static void slot_changed(int i, void (*on_change)(int))
{
    snapshot_free(slots[i].snap);
    slots[i].snap = NULL;
    slots[i].stale = 0;
    slots[i].logged_in = 0;
    if (on_change)
        on_change(i);
}

int slots_apply(const uint8_t *body, size_t len, void (*on_change)(int))
{
    int seen[MAX_SLOTS] = {0};
    wreader r, rs;
    wfield f, g;
    int i;

    wr_init(&r, body, len);
    while (wr_next(&r, &f) == 1) {
        const uint8_t *name = NULL;
        size_t name_len = 0;
        uint8_t present = 0;
        uint32_t gen = 0, flags = 0;
        int idx;
        if (f.tag != T_SLOT)
            continue;
        wr_init(&rs, f.v, f.len);
        while (wr_next(&rs, &g) == 1) {
            if (g.tag == T_READER) {
                name = g.v;
                name_len = g.len;
            } else if (g.tag == T_PRESENT && wf_u8(&g, &present) != 0)
                return -1;
            else if (g.tag == T_GENERATION && wf_u32(&g, &gen) != 0)
                return -1;
            else if (g.tag == T_SLOT_FLAGS && wf_u32(&g, &flags) != 0)
                return -1;
        }
        if (!name || name_len == 0 || name_len > WIRE_READER_MAX ||
            memchr(name, 0, name_len))
            return -1;
        idx = slot_for_reader((const char *)name, name_len);
        if (idx < 0)
            continue; /* more readers than we have slots: ignore the rest */
        seen[idx] = 1;
        if (slots[idx].present != (present != 0) || slots[idx].generation != gen)
            slot_changed(idx, on_change);
        slots[idx].present = present != 0;
        slots[idx].generation = gen;
        slots[idx].slot_flags = flags;
    }
    for (i = 0; i < MAX_SLOTS && slots[i].reader; i++)
        if (!seen[i] && slots[i].present) {
            slots[i].present = 0; /* the reader went away: keep the slot */
            slot_changed(i, on_change);
        }
    return 0;
}

void slots_all_absent(void (*on_change)(int))
{
    int i;
    for (i = 0; i < MAX_SLOTS && slots[i].reader; i++)
        if (slots[i].present) {
            slots[i].present = 0;
            slot_changed(i, on_change);
        }
}

/* ---- TOKEN ---- */

static int parse_mech(snapshot *s, const wfield *f)
{
    wreader r;
    wfield g;
    mechanism m;
    uint32_t v;
    int have_type = 0;
    mechanism *grown;
    memset(&m, 0, sizeof m);
    wr_init(&r, f->v, f->len);
    while (wr_next(&r, &g) == 1) {
        if (g.tag != T_MECH_TYPE && g.tag != T_MECH_MIN && g.tag != T_MECH_MAX &&
            g.tag != T_MECH_FLAGS)
            continue;
        if (wf_u32(&g, &v) != 0)
            return -1;
        if (g.tag == T_MECH_TYPE) {
            m.type = v;
            have_type = 1;
        } else if (g.tag == T_MECH_MIN)
            m.info.ulMinKeySize = v;
        else if (g.tag == T_MECH_MAX)
            m.info.ulMaxKeySize = v;
        else
            m.info.flags = v;
    }
    if (!have_type)
        return -1;
    grown = realloc(s->mechs, (s->nmechs + 1) * sizeof *grown);
    if (!grown)
        return -1;
    s->mechs = grown;
    s->mechs[s->nmechs++] = m;
    return 0;
}

static int parse_attr(object *o, const wfield *f)
{
    wreader r;
    wfield g;
    uint32_t type = 0;
    uint8_t kind = 0xff;
    const uint8_t *v = NULL;
    size_t vlen = 0;
    int have_type = 0, have_value = 0;
    attr a, *grown;

    wr_init(&r, f->v, f->len);
    while (wr_next(&r, &g) == 1) {
        if (g.tag == T_ATTR_TYPE) {
            if (wf_u32(&g, &type) != 0)
                return -1;
            have_type = 1;
        } else if (g.tag == T_ATTR_KIND) {
            if (wf_u8(&g, &kind) != 0)
                return -1;
        } else if (g.tag == T_ATTR_VALUE) {
            v = g.v;
            vlen = g.len;
            have_value = 1;
        }
    }
    if (!have_type || !have_value)
        return -1;
    if (obj_attr(o, type))
        return -1; /* one value per attribute */
    a.type = type;
    if (kind == KIND_ULONG) {
        CK_ULONG u;
        if (vlen != 4)
            return -1;
        u = get_be32(v);
        a.len = sizeof u;
        a.val = malloc(sizeof u);
        if (!a.val)
            return -1;
        memcpy(a.val, &u, sizeof u);
    } else if (kind == KIND_BBOOL) {
        if (vlen != 1 || v[0] > 1)
            return -1;
        a.len = 1;
        a.val = malloc(1);
        if (!a.val)
            return -1;
        a.val[0] = v[0];
    } else if (kind == KIND_BYTES) {
        a.len = (CK_ULONG)vlen;
        a.val = NULL;
        if (vlen) {
            a.val = malloc(vlen);
            if (!a.val)
                return -1;
            memcpy(a.val, v, vlen);
        }
    } else {
        return 0; /* a kind from a later version: skip the attribute */
    }
    grown = realloc(o->attrs, (o->nattrs + 1) * sizeof *grown);
    if (!grown) {
        free(a.val);
        return -1;
    }
    o->attrs = grown;
    o->attrs[o->nattrs++] = a;
    return 0;
}

static int parse_object(snapshot *s, const wfield *f)
{
    wreader r;
    wfield g;
    object o, *grown;
    uint32_t h = 0;
    size_t j;
    memset(&o, 0, sizeof o);
    wr_init(&r, f->v, f->len);
    while (wr_next(&r, &g) == 1) {
        if (g.tag == T_HANDLE) {
            if (wf_u32(&g, &h) != 0)
                goto bad;
        } else if (g.tag == T_ATTR) {
            if (parse_attr(&o, &g) != 0)
                goto bad;
        }
    }
    if (h == 0 || snap_object(s, h, 1))
        goto bad; /* handles are non-zero and unique */
    o.handle = h;
    o.is_private = obj_bool(&o, CKA_PRIVATE, 0);
    grown = realloc(s->objects, (s->nobjects + 1) * sizeof *grown);
    if (!grown)
        goto bad;
    s->objects = grown;
    s->objects[s->nobjects++] = o;
    return 0;
bad:
    for (j = 0; j < o.nattrs; j++)
        free(o.attrs[j].val);
    free(o.attrs);
    return -1;
}

snapshot *snapshot_parse(const uint8_t *body, size_t len)
{
    wreader r, rt;
    wfield f, g;
    snapshot *s;
    int found = 0;

    s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    wr_init(&r, body, len);
    while (wr_next(&r, &f) == 1) {
        if (f.tag != T_TOKEN || found)
            continue;
        found = 1;
        wr_init(&rt, f.v, f.len);
        while (wr_next(&rt, &g) == 1) {
            char **str = NULL;
            uint32_t *num = NULL;
            switch (g.tag) {
            case T_GENERATION: num = &s->generation; break;
            case T_TOKEN_FLAGS: num = &s->flags; break;
            case T_PIN_MIN: num = &s->pin_min; break;
            case T_PIN_MAX: num = &s->pin_max; break;
            case T_LABEL: str = &s->label; break;
            case T_MANUFACTURER: str = &s->manufacturer; break;
            case T_MODEL: str = &s->model; break;
            case T_SERIAL: str = &s->serial; break;
            case T_MECHANISM:
                if (parse_mech(s, &g) != 0)
                    goto bad;
                break;
            case T_OBJECT:
                if (parse_object(s, &g) != 0)
                    goto bad;
                break;
            default: break;
            }
            if (num && wf_u32(&g, num) != 0)
                goto bad;
            if (str) {
                free(*str);
                if (!(*str = dup_field(&g)))
                    goto bad;
            }
        }
    }
    if (!found)
        goto bad;
    return s;
bad:
    snapshot_free(s);
    return NULL;
}

/* ---- lookups ---- */

const object *snap_object(const snapshot *s, CK_OBJECT_HANDLE h, int logged_in)
{
    size_t i;
    for (i = 0; i < s->nobjects; i++)
        if (s->objects[i].handle == h)
            return s->objects[i].is_private && !logged_in ? NULL : &s->objects[i];
    return NULL;
}

const attr *obj_attr(const object *o, CK_ATTRIBUTE_TYPE t)
{
    size_t i;
    for (i = 0; i < o->nattrs; i++)
        if (o->attrs[i].type == t)
            return &o->attrs[i];
    return NULL;
}

CK_ULONG obj_ulong(const object *o, CK_ATTRIBUTE_TYPE t, CK_ULONG dflt)
{
    const attr *a = obj_attr(o, t);
    CK_ULONG v;
    if (!a || a->len != sizeof v)
        return dflt;
    memcpy(&v, a->val, sizeof v);
    return v;
}

int obj_bool(const object *o, CK_ATTRIBUTE_TYPE t, int dflt)
{
    const attr *a = obj_attr(o, t);
    if (!a || a->len != 1)
        return dflt;
    return a->val[0] != 0;
}

int obj_matches(const object *o, const CK_ATTRIBUTE *tmpl, CK_ULONG n)
{
    CK_ULONG i;
    for (i = 0; i < n; i++) {
        const attr *a = obj_attr(o, tmpl[i].type);
        if (!a || a->len != tmpl[i].ulValueLen)
            return 0;
        if (a->len && memcmp(a->val, tmpl[i].pValue, a->len) != 0)
            return 0;
    }
    return 1;
}

const mechanism *snap_mech(const snapshot *s, CK_MECHANISM_TYPE t)
{
    size_t i;
    for (i = 0; i < s->nmechs; i++)
        if (s->mechs[i].type == t)
            return &s->mechs[i];
    return NULL;
}

void pad_utf8(CK_UTF8CHAR *dst, size_t cap, const char *src)
{
    size_t n = src ? strlen(src) : 0;
    if (n > cap) {
        n = cap;
        /* Do not cut a multi-byte character: back up to its first byte. */
        while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80)
            n--;
    }
    memset(dst, ' ', cap);
    if (n)
        memcpy(dst, src, n);
}
