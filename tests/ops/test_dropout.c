/* Dropout: the device's Philox uniforms equal the host's bit for bit; the keep
 * rate is 1-p within 5 sigma; forward and backward use the same mask; the
 * result is deterministic across runs and differs between streams; p = 0 and
 * p = 1; backward vs finite differences. */
#include "op_test.h"

/* Device uniforms u[j] = uniform(seed, stream, first + j) (kernel random_uniform). */
static float *device_uniforms(uint64_t seed, uint64_t stream, uint64_t first, size_t n) {
    cd_mem u = cd_alloc(ot_dev, n + 3, "uniforms");
    CD_LAUNCH1(ot_dev, "random_uniform", n, KM(cd_at(u, 3)), KUL(seed), KUL(stream), KUL(first), KUL(n));
    float *h = malloc(n * sizeof *h);
    cd_read(ot_dev, h, cd_at(u, 3), n);
    cd_free(ot_dev, u);
    return h;
}

static void test_uniforms(void) {
    static const uint64_t cases[][3] = {       /* seed, stream, first index */
        {0, 0, 0}, {1, 2, 3}, {0xFFFFFFFFFFFFFFFFULL, 0x8000000000000001ULL, 0xFFFFFFFFULL - 5000},
        {0x123456789ABCDEFULL, 7, 1ULL << 40}};
    size_t n = 10007;
    for (size_t c = 0; c < CD_ARRAY_LEN(cases); c++) {
        float *u = device_uniforms(cases[c][0], cases[c][1], cases[c][2], n);
        size_t diff = 0, out_of_range = 0;
        double mean = 0;
        for (size_t j = 0; j < n; j++) {
            float h = op_dropout_uniform_ref(cases[c][0], cases[c][1], cases[c][2] + j);
            if (memcmp(&h, &u[j], sizeof h)) {
                if (diff < 3) t_diag("u[%zu]: device %.9g host %.9g", j, u[j], h);
                diff++;
            }
            if (!(u[j] >= 0.0f && u[j] < 1.0f)) out_of_range++;
            mean += u[j];
        }
        mean /= (double)n;
        t_ok(diff == 0, "device uniforms == host uniforms bit for bit (case %zu, %zu differ)", c, diff);
        /* mean of n U(0,1): sigma = sqrt(1/12n) ~ 0.0029 */
        t_ok(out_of_range == 0 && fabs(mean - 0.5) < 5 * sqrt(1.0 / (12.0 * (double)n)),
             "uniforms in [0, 1), mean %.4f within 5 sigma of 0.5 (case %zu)", mean, c);
        free(u);
    }
}

/* Known answers of Philox-4x32-10 (Random123's kat_vectors), first output word:
 * counter (c0, c1, c2, c3) = (i_lo, i_hi, stream_lo, stream_hi), key = (seed_lo, seed_hi). */
static void test_known_answers(void) {
    static const struct { uint64_t seed, stream, i; uint32_t word0; } kat[] = {
        {0, 0, 0, 0x6627e8d5u},
        {0xFFFFFFFFFFFFFFFFULL, 0xFFFFFFFFFFFFFFFFULL, 0xFFFFFFFFFFFFFFFFULL, 0x408f276du},
        {0x299f31d0a4093822ULL, 0x0370734413198a2eULL, 0x85a308d3243f6a88ULL, 0xd16cfe09u}};
    for (size_t k = 0; k < CD_ARRAY_LEN(kat); k++) {
        float want = (float)(kat[k].word0 >> 8) * (1.0f / 16777216.0f);
        float host = op_dropout_uniform_ref(kat[k].seed, kat[k].stream, kat[k].i);
        float *dev = device_uniforms(kat[k].seed, kat[k].stream, kat[k].i, 1);
        t_ok(host == want && dev[0] == want, "Philox-4x32-10 known answer %zu: host %.9g device %.9g want %.9g", k,
             host, dev[0], want);
        free(dev);
    }
}

static void test_forward_backward(size_t n, float p, size_t off) {
    uint64_t seed = 0xC0FFEE + n, stream = 12345;
    char name[128];
    ot_tensor x = ot_rand(n, off, -2, 2), o = ot_nan(n, off + 1), dx = ot_nan(n, off + 2);
    ot_tensor g = ot_rand(n, off + 3, -1, 1);
    double *r = malloc(n * sizeof *r), *dr = malloc(n * sizeof *dr);
    op_dropout_forward(ot_dev, o.d, x.d, n, p, seed, stream);
    op_dropout_forward_ref(r, x.h, n, p, seed, stream);
    snprintf(name, sizeof name, "dropout forward n=%zu p=%g", n, p);
    ot_check(name, &o, r, 0, 1e-7);                 /* x * (1/(1-p)) rounded once to float */
    op_dropout_backward(ot_dev, dx.d, g.d, n, p, seed, stream, 0);
    op_dropout_backward_ref(dr, g.h, n, p, seed, stream, 0);
    snprintf(name, sizeof name, "dropout backward acc 0 n=%zu p=%g", n, p);
    ot_check(name, &dx, dr, 0, 1e-7);
    size_t mismatch = 0;
    for (size_t i = 0; i < n; i++) mismatch += (o.h[i] != 0) != (dx.h[i] != 0);
    t_ok(mismatch == 0, "forward and backward drop the same elements (n=%zu p=%g, %zu differ)", n, p, mismatch);
    op_dropout_backward(ot_dev, dx.d, g.d, n, p, seed, stream, 1);
    op_dropout_backward_ref(dr, g.h, n, p, seed, stream, 1);
    snprintf(name, sizeof name, "dropout backward acc 1 n=%zu p=%g", n, p);
    ot_check(name, &dx, dr, 1e-7, 1e-6);
    free(r); free(dr);
    ot_free(&x); ot_free(&o); ot_free(&dx); ot_free(&g);
}

/* kept fraction of n ones; returns the device output in *out (host copy) */
static double keep_rate(size_t n, float p, uint64_t seed, uint64_t stream, float **out) {
    double *ones = malloc(n * sizeof *ones);
    for (size_t i = 0; i < n; i++) ones[i] = 1.0;
    ot_tensor x = ot_from(ones, n, 1), o = ot_nan(n, 2);
    op_dropout_forward(ot_dev, o.d, x.d, n, p, seed, stream);
    *out = malloc(n * sizeof **out);
    cd_read(ot_dev, *out, o.d, n);
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) kept += (*out)[i] != 0.0f;
    free(ones);
    ot_free(&x); ot_free(&o);
    return (double)kept / (double)n;
}

static void test_statistics(void) {
    size_t n = 200003;
    static const float ps[] = {0.1f, 0.5f, 0.9f};
    for (size_t k = 0; k < CD_ARRAY_LEN(ps); k++) {
        float p = ps[k], *a, *b, *c;
        double sigma = sqrt((double)p * (1 - p) / (double)n);
        double rate = keep_rate(n, p, 99, 1000 + k, &a);
        t_ok(fabs(rate - (1 - p)) < 5 * sigma, "keep rate %.5f within 5 sigma (%.5f) of 1-p = %.2f", rate,
             sigma, 1 - p);
        float scale = 1.0f / (1.0f - p);
        size_t wrong = 0;
        for (size_t i = 0; i < n; i++) wrong += a[i] != 0.0f && a[i] != scale;
        t_ok(wrong == 0, "kept elements scaled by 1/(1-p) = %g (p=%g, %zu wrong)", scale, p, wrong);
        keep_rate(n, p, 99, 1000 + k, &b);
        t_ok(memcmp(a, b, n * sizeof *a) == 0, "same seed and stream give the same mask (p=%g)", p);
        keep_rate(n, p, 99, 2000 + k, &c);
        size_t same = 0;
        for (size_t i = 0; i < n; i++) same += (a[i] != 0) == (c[i] != 0);
        /* independent masks agree with probability p^2 + (1-p)^2 */
        double agree = (double)same / (double)n, expect = (double)p * p + (1.0 - p) * (1.0 - p);
        t_ok(fabs(agree - expect) < 5 * sqrt(expect * (1 - expect) / (double)n),
             "another stream gives an independent mask (agreement %.4f, expected %.4f)", agree, expect);
        free(a); free(b); free(c);
    }
}

static void test_extremes(void) {
    size_t n = 1000;
    ot_tensor x = ot_rand(n, 2, -3, 3), o = ot_nan(n, 1);
    op_dropout_forward(ot_dev, o.d, x.d, n, 0.0f, 5, 6);
    ot_check("dropout p = 0 is the identity", &o, x.h, 0, 0);
    double *zero = calloc(n, sizeof *zero);
    cd_fill(ot_dev, x.d, INFINITY, n);
    op_dropout_forward(ot_dev, o.d, x.d, n, 1.0f, 5, 6);
    ot_check("dropout p = 1 gives zeros, even for inf input", &o, zero, 0, 0);
    free(zero);
    ot_free(&x); ot_free(&o);
}

/* FD of L = sum dout * dropout(x): linear in x, h = 1e-3; atol 1e-6, rtol 1e-6. */
typedef struct { double *x, *dout; size_t n; float p; } dr_ctx;
static double dr_loss(void *q) {
    dr_ctx *c = q;
    double *out = malloc(c->n * sizeof *out);
    op_dropout_forward_ref(out, c->x, c->n, c->p, 77, 88);
    double L = op_dot(c->dout, out, c->n);
    free(out);
    return L;
}

static void test_fd(void) {
    size_t n = 257;
    ot_tensor x = ot_rand(n, 1, -1, 1), g = ot_rand(n, 2, -1, 1), dx = ot_nan(n, 3);
    op_dropout_backward(ot_dev, dx.d, g.d, n, 0.25f, 77, 88, 0);
    double *fd = malloc(n * sizeof *fd);
    dr_ctx c = {x.h, g.h, n, 0.25f};
    op_fd_grad(fd, x.h, n, 1e-3, dr_loss, &c);
    ot_check("dropout backward vs finite differences", &dx, fd, 1e-6, 1e-6);
    free(fd);
    ot_free(&x); ot_free(&g); ot_free(&dx);
}

int main(void) {
    ot_open();
    t_seed(202);
    test_known_answers();
    test_uniforms();
    static const size_t sizes[] = {1, 7, 33, 257, 1000, 4099};
    for (size_t i = 0; i < CD_ARRAY_LEN(sizes); i++) test_forward_backward(sizes[i], i % 2 ? 0.1f : 0.5f, i + 1);
    test_statistics();
    test_extremes();
    test_fd();
    ot_cases("dropout");
    return ot_finish();
}
