/* TensorBoard event files (include/cldetr/tfevents.h): the protobuf messages
 * are encoded by hand, as they are three small messages. */
#include <errno.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "cldetr/common.h"
#include "cldetr/tfevents.h"

uint32_t tfevents_crc32c(const void *data, size_t n) {
    static uint32_t table[256];
    static int ready;
    if (!ready) {                        /* reflected polynomial 0x82F63B78 */
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++) c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
            table[i] = c;
        }
        ready = 1;
    }
    const unsigned char *p = data;
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) c = table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

uint32_t tfevents_masked_crc(const void *data, size_t n) {
    uint32_t c = tfevents_crc32c(data, n);
    return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

/* ---- protobuf encoding ---------------------------------------------------------- */

typedef struct { unsigned char b[512]; size_t n; } pb;

static void pb_byte(pb *m, unsigned char c) { if (m->n < sizeof m->b) m->b[m->n++] = c; }
static void pb_varint(pb *m, uint64_t v) {
    do { pb_byte(m, (unsigned char)((v & 0x7F) | (v > 0x7F ? 0x80 : 0))); v >>= 7; } while (v);
}
static void pb_bytes(pb *m, const void *p, size_t n) { for (size_t i = 0; i < n; i++) pb_byte(m, ((const unsigned char *)p)[i]); }
static void pb_le(pb *m, uint64_t v, int n) { for (int i = 0; i < n; i++) pb_byte(m, (unsigned char)(v >> (8 * i))); }
/* field `num` of wire type 2 (length-delimited) */
static void pb_field_bytes(pb *m, int num, const void *p, size_t n) {
    pb_varint(m, (uint64_t)num << 3 | 2);
    pb_varint(m, n);
    pb_bytes(m, p, n);
}

static double wall_time(void) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec + tv.tv_usec * 1e-6;
}

/* Event { 1: double wall_time; 2: int64 step; 3: string file_version | 5: Summary summary } */
static int write_event(tfevents *w, const pb *ev) {
    unsigned char len[8];
    for (int i = 0; i < 8; i++) len[i] = (unsigned char)((uint64_t)ev->n >> (8 * i));
    uint32_t c1 = tfevents_masked_crc(len, 8), c2 = tfevents_masked_crc(ev->b, ev->n);
    unsigned char crc[4];
    for (int i = 0; i < 4; i++) crc[i] = (unsigned char)(c1 >> (8 * i));
    int ok = fwrite(len, 1, 8, w->f) == 8 && fwrite(crc, 1, 4, w->f) == 4 && fwrite(ev->b, 1, ev->n, w->f) == ev->n;
    for (int i = 0; i < 4; i++) crc[i] = (unsigned char)(c2 >> (8 * i));
    ok = ok && fwrite(crc, 1, 4, w->f) == 4;
    return ok ? 0 : cd_seterr("cannot write %s: %s", w->path, strerror(errno));
}

static void pb_double(pb *m, int num, double v) {
    uint64_t u;
    memcpy(&u, &v, 8);
    pb_varint(m, (uint64_t)num << 3 | 1);
    pb_le(m, u, 8);
}

int tfevents_open(tfevents *w, const char *dir) {
    char host[64] = "host";
    gethostname(host, sizeof host - 1);
    host[sizeof host - 1] = '\0';
    if (snprintf(w->path, sizeof w->path, "%s/events.out.tfevents.%lld.%s.cldetr", dir, (long long)time(NULL), host) >=
        (int)sizeof w->path)
        return cd_seterr("event file name too long in %s", dir);
    if (!(w->f = fopen(w->path, "wb"))) return cd_seterr("cannot create %s: %s", w->path, strerror(errno));
    pb ev = {{0}, 0};
    pb_double(&ev, 1, wall_time());
    pb_field_bytes(&ev, 3, "brain.Event:2", 13);
    if (write_event(w, &ev) < 0) { tfevents_close(w); return -1; }
    fflush(w->f);
    return 0;
}

int tfevents_scalar(tfevents *w, const char *tag, int64_t step, double value) {
    size_t tl = strlen(tag);
    if (tl > 200) tl = 200;
    pb val = {{0}, 0}, sum = {{0}, 0}, ev = {{0}, 0};
    pb_field_bytes(&val, 1, tag, tl);                /* Value { 1: string tag; 2: float simple_value } */
    float f = (float)value;
    uint32_t u;
    memcpy(&u, &f, 4);
    pb_varint(&val, 2 << 3 | 5);
    pb_le(&val, u, 4);
    pb_field_bytes(&sum, 1, val.b, val.n);           /* Summary { 1: repeated Value value } */
    pb_double(&ev, 1, wall_time());
    pb_varint(&ev, 2 << 3 | 0);
    pb_varint(&ev, (uint64_t)step);
    pb_field_bytes(&ev, 5, sum.b, sum.n);
    return write_event(w, &ev);
}

void tfevents_flush(tfevents *w) { if (w->f) fflush(w->f); }

void tfevents_close(tfevents *w) {
    if (w->f) fclose(w->f);
    w->f = NULL;
}
