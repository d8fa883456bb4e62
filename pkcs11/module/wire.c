/* wire.c - see wire.h. */
#include "wire.h"

#include <stdlib.h>
#include <string.h>

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

uint32_t get_be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

void wb_init(wbuf *b)
{
    b->p = NULL;
    b->len = b->cap = 0;
    b->bad = 0;
    b->p = malloc(256);
    if (!b->p) {
        b->bad = 1;
        return;
    }
    b->cap = 256;
    b->len = 4;
}

void wb_free(wbuf *b)
{
    if (b->p) {
        volatile uint8_t *q = b->p;
        size_t i;
        for (i = 0; i < b->cap; i++)
            q[i] = 0;
        free(b->p);
    }
    b->p = NULL;
    b->len = b->cap = 0;
}

/* Makes room for n more bytes; never lets the frame pass the limit. */
static int wb_room(wbuf *b, size_t n)
{
    size_t need, cap;
    uint8_t *q;
    if (b->bad)
        return -1;
    if (n > WIRE_FRAME_MAX + 4 - b->len) {
        b->bad = 1;
        return -1;
    }
    need = b->len + n;
    if (need <= b->cap)
        return 0;
    cap = b->cap;
    while (cap < need)
        cap *= 2;
    /* Not realloc: the old block may hold a PIN and must be wiped. */
    q = malloc(cap);
    if (!q) {
        b->bad = 1;
        return -1;
    }
    memcpy(q, b->p, b->len);
    {
        volatile uint8_t *o = b->p;
        size_t i;
        for (i = 0; i < b->cap; i++)
            o[i] = 0;
    }
    free(b->p);
    b->p = q;
    b->cap = cap;
    return 0;
}

void wb_bytes(wbuf *b, uint16_t tag, const void *v, size_t n)
{
    if (n > WIRE_FRAME_MAX || wb_room(b, 6 + n) != 0)
        return;
    b->p[b->len] = (uint8_t)(tag >> 8);
    b->p[b->len + 1] = (uint8_t)tag;
    put_be32(b->p + b->len + 2, (uint32_t)n);
    if (n)
        memcpy(b->p + b->len + 6, v, n);
    b->len += 6 + n;
}

void wb_u32(wbuf *b, uint16_t tag, uint32_t v)
{
    uint8_t x[4];
    put_be32(x, v);
    wb_bytes(b, tag, x, 4);
}

void wb_str(wbuf *b, uint16_t tag, const char *s)
{
    wb_bytes(b, tag, s, strlen(s));
}

int wb_finish(wbuf *b)
{
    if (b->bad || b->len <= 4 || b->len - 4 > WIRE_FRAME_MAX)
        return -1;
    put_be32(b->p, (uint32_t)(b->len - 4));
    return 0;
}

void wr_init(wreader *r, const uint8_t *p, size_t len)
{
    r->p = p;
    r->len = len;
    r->off = 0;
}

int wr_next(wreader *r, wfield *f)
{
    size_t left = r->len - r->off;
    uint32_t n;
    if (left == 0)
        return 0;
    if (left < 6)
        return -1;
    n = get_be32(r->p + r->off + 2);
    if (n > left - 6)
        return -1;
    f->tag = (uint16_t)((r->p[r->off] << 8) | r->p[r->off + 1]);
    f->v = r->p + r->off + 6;
    f->len = n;
    r->off += 6 + (size_t)n;
    return 1;
}

int wf_u32(const wfield *f, uint32_t *out)
{
    if (f->len != 4)
        return -1;
    *out = get_be32(f->v);
    return 0;
}

int wf_u8(const wfield *f, uint8_t *out)
{
    if (f->len != 1)
        return -1;
    *out = f->v[0];
    return 0;
}

static int nested(uint16_t tag)
{
    return tag == T_SLOT || tag == T_TOKEN || tag == T_MECHANISM || tag == T_OBJECT ||
           tag == T_ATTR;
}

static int check(const uint8_t *p, size_t len, int depth)
{
    wreader r;
    wfield f;
    int k;
    if (depth > 4)
        return -1;
    wr_init(&r, p, len);
    while ((k = wr_next(&r, &f)) == 1)
        if (nested(f.tag) && check(f.v, f.len, depth + 1) != 0)
            return -1;
    return k;
}

int wr_check(const uint8_t *p, size_t len)
{
    return check(p, len, 0);
}
