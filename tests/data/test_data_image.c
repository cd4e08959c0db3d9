/* Image decode of every supported format against the known pattern the
 * fixtures were made from, bad files, and the resize filter against PIL. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../check.h"
#include "cldetr/common.h"
#include "cldetr/data.h"

static char root[1024];

static const char *fixture(const char *name) {
    static char p[2048];
    snprintf(p, sizeof p, "%s/tests/fixtures/data/%s", root, name);
    return p;
}

/* R = 8x, G = 10y, B = 4x + 5y */
static int expect(int x, int y, int c) { return c == 0 ? 8 * x : c == 1 ? 10 * y : 4 * x + 5 * y; }

static void check_format(const char *name, int grey, int max_err) {
    data_image im;
    int rc = data_image_load(&im, fixture(name));
    t_ok(rc == 0, "%s decodes (%s)", name, rc ? cd_errbuf() : "ok");
    if (rc) return;
    t_ok(im.w == 32 && im.h == 24, "%s is 32x24 (got %dx%d)", name, im.w, im.h);
    int worst = 0;
    for (int y = 0; y < 24; y++)
        for (int x = 0; x < 32; x++)
            for (int c = 0; c < 3; c++) {
                int e = grey ? expect(x, y, 1) : expect(x, y, c);
                int d = abs((int)im.rgb[(y * 32 + x) * 3 + c] - e);
                if (d > worst) worst = d;
            }
    t_ok(worst <= max_err, "%s pixels match the pattern (max err %d, allowed %d)", name, worst, max_err);
    data_image_free(&im);
}

static void check_bad(const char *name, const char *want) {
    data_image im;
    int rc = data_image_load(&im, fixture(name));
    const char *msg = cd_errbuf();
    t_ok(rc == -1 && strstr(msg, name) && strstr(msg, want), "%s refused: '%s'", name, rc ? msg : "(decoded!)");
    if (!rc) data_image_free(&im);
}

/* A file's bytes with `ins` inserted at `at` (and the byte at `set` set to `v`
 * afterwards, when set >= 0), decoded from memory. */
static int decode_edit(const char *name, size_t at, const void *ins, size_t n_ins, long set, int v,
                       data_image *im) {
    size_t len;
    char *src = cd_read_file(fixture(name), &len);
    if (!src) return -2;
    uint8_t *b = cd_xmalloc(len + n_ins);
    memcpy(b, src, at);
    memcpy(b + at, ins, n_ins);
    memcpy(b + at + n_ins, src + at, len - at);
    if (set >= 0) b[set] = (uint8_t)v;
    int rc = data_image_decode(im, b, len + n_ins, name);
    free(src);
    free(b);
    return rc;
}

/* stb_image builds a Huffman table before checking its code counts; counts
 * summing past 256 write out of bounds (stb_image.h stbi__build_huffman). The
 * decoder refuses such tables wherever stb would read them, and only those. */
static void check_huffman(void) {
    data_image im;
    check_bad("bad_huffman.jpg", "corrupt JPEG (Huffman table)");
    /* fmt_baseline.jpg: the first DHT (DC table 0) at byte 177, its counts at 182..197 */
    int rc = decode_edit("fmt_baseline.jpg", 0, "", 0, 182, 3, &im);   /* 3 codes of length 1 */
    t_ok(rc == -1 && strstr(cd_errbuf(), "corrupt JPEG (Huffman table)"),
         "a table over its code space (3 codes of length 1) refused: '%s'", rc ? cd_errbuf() : "(decoded!)");
    if (!rc) data_image_free(&im);
    /* fmt_progressive.jpg: a DHT between scans at byte 272, its last count at 292 */
    rc = decode_edit("fmt_progressive.jpg", 0, "", 0, 292, 255, &im);
    t_ok(rc == -1 && strstr(cd_errbuf(), "corrupt JPEG (Huffman table)"),
         "a bad table between progressive scans refused: '%s'", rc ? cd_errbuf() : "(decoded!)");
    if (!rc) data_image_free(&im);
    /* an APP1 segment (as EXIF or ICC data) holding the bytes of a bad DHT: stb skips it */
    uint8_t app[4 + 21] = {0xFF, 0xE1, 0x00, 23, 0xFF, 0xC4, 0x00, 0x13, 0x00};
    memset(app + 9, 0xFF, 16);
    rc = decode_edit("fmt_baseline.jpg", 2, app, sizeof app, -1, 0, &im);
    t_ok(rc == 0 && im.w == 32 && im.h == 24, "FF C4 inside an APP1 segment is not taken for a table (%s)",
         rc ? cd_errbuf() : "decoded");
    if (!rc) data_image_free(&im);
}

/* PNM from memory: 8-bit grey made RGB; 16-bit refused (stb v2.27 keeps the
 * low byte of each sample, and a 16-bit PGM asked of it as RGB made it read
 * past its buffer); a header without a width refused. */
static void check_pnm(void) {
    data_image im;
    static const uint8_t pgm8[] = "P5\n2 1\n255\n\x10\xF0";
    int rc = data_image_decode(&im, pgm8, sizeof pgm8 - 1, "grey.pgm");
    t_ok(rc == 0 && im.w == 2 && im.h == 1 && !memcmp(im.rgb, "\x10\x10\x10\xF0\xF0\xF0", 6),
         "8-bit PGM decodes to RGB (%s)", rc ? cd_errbuf() : "ok");
    if (!rc) data_image_free(&im);
    static const char *const bad[][3] = {
        {"P5\n2 1\n65535\n\x10\x01\xF0\x02", "grey16.pgm", "16-bit PNM (maxval above 255) is not supported"},
        {"P6 1 1 256 \x01\x00\x02\x00\x03\x00", "rgb16.ppm", "16-bit PNM (maxval above 255) is not supported"},
        {"P5\nx 1\n255\n\x10\xF0", "nowidth.pgm", "cannot decode image (it has no pixels: 0x"}};
    size_t len[] = {sizeof "P5\n2 1\n65535\n\x10\x01\xF0\x02" - 1, sizeof "P6 1 1 256 \x01\x00\x02\x00\x03\x00" - 1,
                    sizeof "P5\nx 1\n255\n\x10\xF0" - 1};
    for (size_t k = 0; k < CD_ARRAY_LEN(bad); k++) {
        rc = data_image_decode(&im, bad[k][0], len[k], bad[k][1]);
        t_ok(rc == -1 && strstr(cd_errbuf(), bad[k][1]) && strstr(cd_errbuf(), bad[k][2]), "%s refused: '%s'",
             bad[k][1], rc ? cd_errbuf() : "(decoded!)");
        if (!rc) data_image_free(&im);
    }
}

/* A 58-byte TGA header claiming 14596x12291 pixels is refused before stb
 * allocates half a gigabyte; a large flat PNG (as compressible as real images
 * get) still decodes. */
static void check_claimed_size(void) {
    uint8_t tga[58] = {0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x04, 0x39, 0x03, 0x30, 24, 0};
    data_image im;
    int rc = data_image_decode(&im, tga, sizeof tga, "huge.tga");
    t_ok(rc == -1 && strstr(cd_errbuf(), "huge.tga: corrupt image: its header claims 14596x12291 pixels"),
         "a TGA header claiming 14596x12291 pixels from 58 bytes refused: '%s'", rc ? cd_errbuf() : "(decoded!)");
    if (!rc) data_image_free(&im);

    char path[512];
    snprintf(path, sizeof path, "%s/cldetr_flat_%d.png", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getpid());
    data_image flat = {1500, 1500, cd_xcalloc((size_t)1500 * 1500 * 3, 1)};
    int wrote = data_write_png(path, &flat) == 0;
    data_image_free(&flat);
    size_t len = 0;
    char *png = wrote ? cd_read_file(path, &len) : NULL;
    remove(path);
    rc = png ? data_image_decode(&im, png, len, "flat.png") : -1;
    t_ok(rc == 0 && im.w == 1500 && im.h == 1500, "a flat 1500x1500 PNG of %zu bytes decodes (%s)", len,
         rc ? cd_errbuf() : "ok");
    if (!rc) data_image_free(&im);
    free(png);
}

static void check_resize(void) {
    size_t len;
    char *buf = cd_read_file(fixture("resize_ref.bin"), &len);
    t_ok(buf != NULL, "resize_ref.bin read");
    if (!buf) return;
    const char *p = buf;
    int32_t n;
    memcpy(&n, p, 4); p += 4;
    for (int k = 0; k < n; k++) {
        int32_t d[4];
        memcpy(d, p, 16); p += 16;
        int w = d[0], h = d[1], ow = d[2], oh = d[3];
        data_image im = {w, h, cd_xmalloc((size_t)w * h * 3)};
        memcpy(im.rgb, p, (size_t)w * h * 3); p += (size_t)w * h * 3;
        const uint8_t *ref = (const uint8_t *)p; p += (size_t)ow * oh * 3;
        data_image_resize(&im, ow, oh);
        /* our resize follows PIL's fixed-point BILINEAR: same bytes */
        double sum = 0; int worst_in = 0;
        for (int y = 0; y < oh; y++)
            for (int x = 0; x < ow; x++)
                for (int c = 0; c < 3; c++) {
                    size_t i = ((size_t)y * ow + x) * 3 + c;
                    int e = abs((int)im.rgb[i] - (int)ref[i]);
                    sum += e;
                    if (e > worst_in) worst_in = e;
                }
        double mean = sum / ((double)ow * oh * 3);
        t_diag("resize %dx%d -> %dx%d: mean abs diff %.3f, max %d", w, h, ow, oh, mean, worst_in);
        t_ok(im.w == ow && im.h == oh && mean == 0 && worst_in == 0,
             "resize %dx%d -> %dx%d equals PIL bilinear (mean abs diff %.3f, max %d)", w, h, ow, oh, mean,
             worst_in);
        data_image_free(&im);
    }
    free(buf);
}

int main(void) {
    (void)t_seed; (void)t_uniform; (void)t_close_f;   /* check.h helpers this test does not use */
    const char *r = getenv("CLDETR_SOURCE_ROOT");
    snprintf(root, sizeof root, "%s", r ? r : ".");
    check_format("fmt_rgb16.png", 0, 0);
    check_format("fmt_grey.png", 1, 0);
    check_format("fmt_grey16.png", 1, 0);
    check_format("fmt_rgba.png", 0, 0);
    check_format("fmt_rgb.bmp", 0, 0);
    check_format("fmt_baseline.jpg", 0, 8);
    check_format("fmt_progressive.jpg", 0, 8);
    check_bad("truncated.jpg", "truncated JPEG");
    check_bad("truncated.png", "cannot decode image");
    check_bad("not_an_image.png", "cannot decode image");
    check_bad("no_such_file.png", "cannot open");
    check_huffman();
    check_pnm();
    check_claimed_size();
    check_resize();
    return t_done();
}
