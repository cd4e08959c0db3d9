/* TensorBoard event files (src/eval/tfevents.c): CRC-32C against the
 * standard check value, and a file of scalars read back record by record —
 * lengths and masked CRCs verified, then each Event decoded: the version
 * record first, then wall time, step and the Summary's tag and value. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cldetr/common.h"
#include "cldetr/tfevents.h"
#include "../check.h"

typedef struct { const unsigned char *p, *end; } rd;

static uint64_t varint(rd *r) {
    uint64_t v = 0;
    for (int s = 0; r->p < r->end && s < 64; s += 7) {
        unsigned char c = *r->p++;
        v |= (uint64_t)(c & 0x7F) << s;
        if (!(c & 0x80)) break;
    }
    return v;
}

typedef struct { double wall; int64_t step; char version[32], tag[64]; float value; int has_value; } event;

/* Decode an Event: 1 wall_time (fixed64 double), 2 step (varint), 3 file_version, 5 summary. */
static int decode(const unsigned char *p, size_t n, event *e) {
    memset(e, 0, sizeof *e);
    rd r = {p, p + n};
    while (r.p < r.end) {
        uint64_t key = varint(&r);
        int field = (int)(key >> 3), wire = (int)(key & 7);
        if (wire == 1) { if (r.end - r.p < 8) return -1; if (field == 1) memcpy(&e->wall, r.p, 8); r.p += 8; }
        else if (wire == 0) { uint64_t v = varint(&r); if (field == 2) e->step = (int64_t)v; }
        else if (wire == 2) {
            uint64_t len = varint(&r);
            if ((uint64_t)(r.end - r.p) < len) return -1;
            if (field == 3 && len < sizeof e->version) memcpy(e->version, r.p, len);
            if (field == 5) {                       /* Summary { 1: Value { 1: tag, 2: float } } */
                rd s = {r.p, r.p + len};
                if (varint(&s) != (1 << 3 | 2)) return -1;
                uint64_t vlen = varint(&s);
                rd v = {s.p, s.p + vlen};
                while (v.p < v.end) {
                    uint64_t k = varint(&v);
                    if (k == (1 << 3 | 2)) {
                        uint64_t tl = varint(&v);
                        if (tl < sizeof e->tag) memcpy(e->tag, v.p, tl);
                        v.p += tl;
                    } else if (k == (2 << 3 | 5)) {
                        memcpy(&e->value, v.p, 4);
                        e->has_value = 1;
                        v.p += 4;
                    } else return -1;
                }
            }
            r.p += len;
        } else return -1;
    }
    return 0;
}

int main(void) {
    t_ok(tfevents_crc32c("123456789", 9) == 0xE3069283u, "CRC-32C of \"123456789\" is the standard 0xE3069283");
    char dir[] = "/tmp/cldetr-tfevents-XXXXXX";
    t_ok(mkdtemp(dir) != NULL, "temp folder");
    tfevents w;
    t_ok(tfevents_open(&w, dir) == 0, "an event file opens: %s", cd_errbuf());
    const char *tags[3] = {"train/loss", "train/lr", "val/AP50"};
    const double vals[3] = {7.25, 2e-4, 0.5};
    for (int s = 1; s <= 4; s++)
        for (int k = 0; k < 3; k++) tfevents_scalar(&w, tags[k], s * 100, vals[k] * s);
    char path[sizeof w.path];
    snprintf(path, sizeof path, "%s", w.path);
    tfevents_close(&w);
    t_ok(strstr(path, "/events.out.tfevents.") != NULL, "the file is named events.out.tfevents.*: %s", path);

    size_t len;
    unsigned char *raw = (unsigned char *)cd_read_file(path, &len);
    t_ok(raw != NULL, "the file reads back (%zu bytes)", len);
    size_t pos = 0;
    int n = 0, crc_ok = 1, decoded = 1, values_ok = 1;
    event e;
    while (raw && pos + 12 <= len) {
        uint64_t rl = 0;
        uint32_t c1, c2;
        for (int i = 0; i < 8; i++) rl |= (uint64_t)raw[pos + i] << (8 * i);
        memcpy(&c1, raw + pos + 8, 4);
        if (c1 != tfevents_masked_crc(raw + pos, 8) || pos + 12 + rl + 4 > len) { crc_ok = 0; break; }
        memcpy(&c2, raw + pos + 12 + rl, 4);
        if (c2 != tfevents_masked_crc(raw + pos + 12, rl)) crc_ok = 0;
        if (decode(raw + pos + 12, rl, &e) < 0) decoded = 0;
        if (n == 0) {
            t_ok(!strcmp(e.version, "brain.Event:2") && e.wall > 1.6e9, "the first record is the version: '%s'",
                 e.version);
        } else {
            int s = (n - 1) / 3 + 1, k = (n - 1) % 3;
            if (!e.has_value || e.step != s * 100 || strcmp(e.tag, tags[k]) || e.value != (float)(vals[k] * s))
                values_ok = 0;
        }
        n++;
        pos += 12 + rl + 4;
    }
    t_ok(crc_ok && pos == len, "every record's length and data CRCs check, and the records fill the file");
    t_ok(decoded && n == 13, "13 events decode (the version and 12 scalars): %d", n);
    t_ok(values_ok, "each scalar has its tag, step and value");
    free(raw);
    unlink(path);
    rmdir(dir);
    t_ok(tfevents_open(&w, "/nonexistent-folder-cldetr") < 0 && strstr(cd_errbuf(), "/nonexistent-folder-cldetr"),
         "an unwritable folder is named: %s", cd_errbuf());
    return t_done();
}
