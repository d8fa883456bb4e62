/* session.c - see session.h. Handles are never reused during the module's
 * lifetime, so a stale handle is always CKR_SESSION_HANDLE_INVALID. */
#include "session.h"

#include <stdlib.h>
#include <string.h>

static session *head;
static CK_SESSION_HANDLE last_handle;

session *session_new(int slot, CK_FLAGS flags)
{
    session *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->handle = ++last_handle;
    s->slot = slot;
    s->flags = flags;
    s->next = head;
    head = s;
    return s;
}

session *session_get(CK_SESSION_HANDLE h)
{
    session *s;
    for (s = head; s; s = s->next)
        if (s->handle == h)
            return s;
    return NULL;
}

void sign_op_end(sign_op *op)
{
    if (op->data) {
        volatile uint8_t *p = op->data;
        size_t i;
        for (i = 0; i < op->dlen; i++)
            p[i] = 0;
        free(op->data);
    }
    memset(op, 0, sizeof *op);
}

void find_end(session *s)
{
    free(s->found);
    s->found = NULL;
    s->nfound = s->pos = 0;
    s->find_active = 0;
}

void session_close(session *s)
{
    session **pp;
    for (pp = &head; *pp; pp = &(*pp)->next)
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    find_end(s);
    sign_op_end(&s->sign);
    free(s);
}

void session_close_slot(int slot)
{
    session **pp = &head;
    while (*pp) {
        session *s = *pp;
        if (s->slot == slot) {
            *pp = s->next;
            find_end(s);
            sign_op_end(&s->sign);
            free(s);
        } else
            pp = &s->next;
    }
}

void session_close_all(void)
{
    while (head)
        session_close(head);
}

void session_forget_all(void)
{
    session_close_all();
}

size_t session_count(int slot, int rw_only)
{
    size_t n = 0;
    session *s;
    for (s = head; s; s = s->next)
        if (s->slot == slot && (!rw_only || (s->flags & CKF_RW_SESSION)))
            n++;
    return n;
}
