/* wire.h - TLV fields and frames of docs/pkcs11-protocol.md, with bounds checks. */
#ifndef CPSD_WIRE_H
#define CPSD_WIRE_H

#include <stddef.h>
#include <stdint.h>

#define WIRE_FRAME_MAX 1048576u
#define WIRE_SIGN_DATA_MAX (WIRE_FRAME_MAX - 8192u) /* room for the envelope */
#define WIRE_READER_MAX 1024u

enum {
    T_OP = 0x0001, T_ID = 0x0002, T_RV = 0x0003, T_MESSAGE = 0x0004,
    T_VERSION = 0x0010, T_APP = 0x0011, T_DAEMON = 0x0012,
    T_SLOT = 0x0020, T_READER = 0x0021, T_PRESENT = 0x0022,
    T_GENERATION = 0x0023, T_SLOT_FLAGS = 0x0024,
    T_TOKEN = 0x0030, T_LABEL = 0x0031, T_MANUFACTURER = 0x0032,
    T_MODEL = 0x0033, T_SERIAL = 0x0034, T_TOKEN_FLAGS = 0x0035,
    T_PIN_MIN = 0x0036, T_PIN_MAX = 0x0037,
    T_MECHANISM = 0x0040, T_MECH_TYPE = 0x0041, T_MECH_MIN = 0x0042,
    T_MECH_MAX = 0x0043, T_MECH_FLAGS = 0x0044,
    T_OBJECT = 0x0050, T_HANDLE = 0x0051, T_ATTR = 0x0052,
    T_ATTR_TYPE = 0x0053, T_ATTR_KIND = 0x0054, T_ATTR_VALUE = 0x0055,
    T_USER_TYPE = 0x0060, T_PIN = 0x0061, T_DATA = 0x0062,
    T_SIGNATURE = 0x0063, T_PSS_HASH = 0x0064, T_PSS_MGF = 0x0065,
    T_PSS_SALT = 0x0066
};

enum { OP_HELLO = 1, OP_SLOTS = 2, OP_TOKEN = 3, OP_LOGIN = 4, OP_LOGOUT = 5, OP_SIGN = 6 };
enum { KIND_BYTES = 0, KIND_ULONG = 1, KIND_BBOOL = 2 };

/* A frame being built: 4 reserved bytes for the length, then fields. Any
 * allocation failure or overflow sets `bad`; later writes are ignored. */
typedef struct wbuf {
    uint8_t *p;
    size_t len, cap;
    int bad;
} wbuf;

void wb_init(wbuf *b);
/* Zeroes the whole buffer before freeing: a frame may have held a PIN. */
void wb_free(wbuf *b);
void wb_u32(wbuf *b, uint16_t tag, uint32_t v);
void wb_bytes(wbuf *b, uint16_t tag, const void *v, size_t n);
void wb_str(wbuf *b, uint16_t tag, const char *s);
/* Patches the frame length; returns 0 when the frame is valid to send. */
int wb_finish(wbuf *b);

/* Reading: a cursor over one body or one nested value. */
typedef struct wfield {
    uint16_t tag;
    const uint8_t *v;
    size_t len;
} wfield;

typedef struct wreader {
    const uint8_t *p;
    size_t len, off;
} wreader;

void wr_init(wreader *r, const uint8_t *p, size_t len);
/* 1 = a field, 0 = end, -1 = a length that runs past its parent. */
int wr_next(wreader *r, wfield *f);
/* Typed views; 0 on success, -1 when the length does not fit the type. */
int wf_u32(const wfield *f, uint32_t *out);
int wf_u8(const wfield *f, uint8_t *out);
/* Scans a whole body: 0 when every field (recursively for the nested tags)
 * is in bounds. */
int wr_check(const uint8_t *p, size_t len);

uint32_t get_be32(const uint8_t *p);

#endif
