/* AdamW and clipping against torch.optim.AdamW + clip_grad_norm_
 * (tests/fixtures/train/adamw.bin, tools/reference/make_adamw_fixture.py),
 * the host reference against the kernel on a large odd-sized range, a
 * non-finite gradient norm, and the learning-rate schedules. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cldetr/train.h"
#include "../check.h"

/* ---- the fixture --------------------------------------------------------- */

typedef struct {
    char name[112];
    int group, ndim;
    size_t shape[4], n, off;    /* off: into the fixture's concatenation */
} fx_tensor;

typedef struct {
    double lr[2], max_norm, norm;
    const float *grad, *param, *m, *v;
} fx_step;

typedef struct {
    char *raw;
    size_t len, pos;
    int bad;
    double beta1, beta2, eps, wd;
    int n_tensors, n_steps;
    fx_tensor t[16];
    size_t N;
    const float *params0;
    fx_step s[16];
    float *copies[1 + 4 * 16];     /* aligned copies of the file's float arrays */
    int n_copies;
} fixture;

static const void *fx_take(fixture *f, size_t n) {
    if (f->bad || f->pos + n > f->len) { f->bad = 1; return NULL; }
    const void *p = f->raw + f->pos;
    f->pos += n;
    return p;
}
/* n floats from the file, copied to aligned memory (the file's offsets are not). */
static const float *fx_floats(fixture *f, size_t n) {
    const void *p = fx_take(f, n * sizeof(float));
    if (!p) return NULL;
    float *c = malloc(n ? n * sizeof(float) : 1);
    memcpy(c, p, n * sizeof(float));
    f->copies[f->n_copies++] = c;
    return c;
}
static void fx_free(fixture *f) {
    for (int i = 0; i < f->n_copies; i++) free(f->copies[i]);
    free(f->raw);
}
static uint32_t fx_u32(fixture *f) { uint32_t x = 0; const void *p = fx_take(f, 4); if (p) memcpy(&x, p, 4); return x; }
static double fx_f64(fixture *f) { double x = 0; const void *p = fx_take(f, 8); if (p) memcpy(&x, p, 8); return x; }

static int fx_load(fixture *f, const char *path) {
    memset(f, 0, sizeof *f);
    f->raw = cd_read_file(path, &f->len);
    if (!f->raw) return -1;
    const char *magic = fx_take(f, 8);
    if (!magic || memcmp(magic, "CLDADAMW", 8) || fx_u32(f) != 1) return -1;
    f->n_tensors = (int)fx_u32(f);
    f->n_steps = (int)fx_u32(f);
    if (f->n_tensors > 16 || f->n_steps > 16) return -1;
    f->beta1 = fx_f64(f); f->beta2 = fx_f64(f); f->eps = fx_f64(f); f->wd = fx_f64(f);
    for (int i = 0; i < f->n_tensors; i++) {
        fx_tensor *t = &f->t[i];
        t->group = (int)fx_u32(f);
        t->ndim = (int)fx_u32(f);
        t->n = 1;
        for (int d = 0; d < 4; d++) { t->shape[d] = fx_u32(f); t->n *= t->shape[d]; }
        uint32_t len = fx_u32(f);
        const char *name = fx_take(f, len);
        if (!name || len >= sizeof t->name) return -1;
        memcpy(t->name, name, len);
        t->off = f->N;
        f->N += t->n;
    }
    f->params0 = fx_floats(f, f->N);
    for (int k = 0; k < f->n_steps; k++) {
        fx_step *s = &f->s[k];
        s->lr[0] = fx_f64(f); s->lr[1] = fx_f64(f); s->max_norm = fx_f64(f); s->norm = fx_f64(f);
        s->grad = fx_floats(f, f->N);
        s->param = fx_floats(f, f->N);
        s->m = fx_floats(f, f->N);
        s->v = fx_floats(f, f->N);
    }
    return f->bad || f->pos != f->len ? -1 : 0;
}

/* |ref - got| <= rtol * (|ref| + terms[i]): the error bound of a sum, relative to
 * the magnitudes of its terms (terms NULL: plain relative). A parameter that
 * crosses zero (p * decay - update, both ~0.5, result ~1e-4) carries the
 * rounding of its terms, not of its tiny result; torch's AVX-512 sqrt is itself
 * not correctly rounded (1 ulp), so bit equality is not the bar. */
static int close_terms(const char *name, const float *ref, const float *got, const float *terms, size_t n,
                       double rtol) {
    size_t bad = 0;
    double max_err = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)ref[i] - got[i]);
        double tol = rtol * (fabs(ref[i]) + (terms ? terms[i] : 0.0f));
        if (tol > 0 && e / tol > max_err) max_err = e / tol;
        if (!(e <= tol)) {
            if (bad < 5) t_diag("%s[%zu]: ref %.9g got %.9g (err %.3g, tol %.3g)", name, i, ref[i], got[i], e, tol);
            bad++;
        }
    }
    t_ok(bad == 0, "%s (n=%zu, rtol %g of the terms, worst err %.3g of tol)", name, n, rtol, max_err);
    return bad == 0;
}

/* Gather a flat model-layout array (ps offsets) into the fixture's order. */
static void to_fixture_order(const fixture *f, const nn_params *ps, const int *idx, const float *model, float *out) {
    for (int i = 0; i < f->n_tensors; i++)
        memcpy(out + f->t[i].off, model + ps->p[idx[i]].off, f->t[i].n * sizeof(float));
}

static void test_fixture(cd_device *dev) {
    const char *root = getenv("CLDETR_SOURCE_ROOT");
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/fixtures/train/adamw.bin", root ? root : ".");
    fixture f;
    int ok = fx_load(&f, path) == 0;
    t_ok(ok, "fixture %s loads (%d tensors, %zu floats, %d steps)", path, f.n_tensors, f.N, f.n_steps);
    if (!ok) { fx_free(&f); return; }

    /* The fixture's tensors in their order, with a frozen parameter and a buffer
     * registered between them: neither may change. */
    nn_params ps = {0};
    int idx[16];
    for (int i = 0; i < f.n_tensors; i++) {
        fx_tensor *t = &f.t[i];
        idx[i] = nn_param_add(&ps, t->name, t->group, 1, 0, t->ndim, t->shape[0], t->shape[1], t->shape[2], t->shape[3]);
        if (i == 1) nn_param_add(&ps, "backbone.0.body.conv1.weight", NN_GROUP_BACKBONE, 0, 0, 2, 5, 3, 0, 0);
        if (i == 3) nn_param_add(&ps, "backbone.0.body.bn1.running_var", NN_GROUP_BACKBONE, 0, 1, 1, 7, 0, 0, 0);
    }
    nn_params_finalize(&ps, dev);
    t_ok(ps.n_trainable == f.N && ps.total == f.N + 22 && ps.train_end[0] == ps.train_begin[1],
         "layout: %zu trainable of %zu, backbone [%zu, %zu), rest [%zu, %zu)", ps.n_trainable, ps.total,
         ps.train_begin[0], ps.train_end[0], ps.train_begin[1], ps.train_end[1]);
    for (size_t i = 0; i < ps.total; i++) ps.host[i] = (float)i + 0.25f;        /* frozen and buffers */
    for (int i = 0; i < f.n_tensors; i++)
        memcpy(nn_param_host(&ps, idx[i]), f.params0 + f.t[i].off, f.t[i].n * sizeof(float));
    nn_params_upload(&ps, dev);
    float *frozen0 = malloc((ps.total - ps.n_trainable) * sizeof(float));
    memcpy(frozen0, ps.host + ps.n_trainable, (ps.total - ps.n_trainable) * sizeof(float));

    adamw_state opt;
    adamw_init(&opt, dev, &ps, f.beta1, f.beta2, f.eps, f.wd);
    size_t N = f.N;
    float *grad = malloc(N * sizeof(float)), *m = malloc(N * sizeof(float)), *v = malloc(N * sizeof(float));
    float *got = malloc(N * sizeof(float)), *pterm = malloc(N * sizeof(float)), *mterm = malloc(N * sizeof(float));
    /* the host reference, run beside the device, in the fixture's order */
    float *rp = malloc(N * sizeof(float)), *rm = calloc(N, sizeof(float)), *rv = calloc(N, sizeof(float));
    memcpy(rp, f.params0, N * sizeof(float));

    for (int k = 0; k < f.n_steps; k++) {
        const fx_step *s = &f.s[k];
        for (int i = 0; i < f.n_tensors; i++)
            cd_write(dev, cd_at(ps.grad, ps.p[idx[i]].off), s->grad + f.t[i].off, f.t[i].n);
        double norm = -1;
        int rc = adamw_step(&opt, dev, &ps, s->lr, s->max_norm, &norm);
        float scale = adamw_clip_scale(norm, s->max_norm);
        t_ok(rc == 0 && fabs(norm - s->norm) <= 1e-6 * s->norm,
             "step %d: pre-clip norm %.9g, torch %.9g (max_norm %g: %s)", k + 1, norm, s->norm, s->max_norm,
             scale < 1 ? "clipped" : "not clipped");
        t_ok(opt.step == (uint64_t)k + 1, "step %d: step counter %llu", k + 1, (unsigned long long)opt.step);

        nn_params_download(&ps, dev);
        cd_read(dev, m, opt.m, N);
        cd_read(dev, v, opt.v, N);
        /* The terms of the sums so far (the error bound of a k-step trajectory):
         * p_k = p_{k-1} * decay - update_k: |p_0| + sum of |p_j - p_{j-1}|;
         * m_k = m_{k-1} + (1 - b1) (g_k - m_{k-1}): sum of |m_{j-1}| + (1 - b1) |g_j|. */
        const float *p_old = k ? f.s[k - 1].param : f.params0, *m_old = k ? f.s[k - 1].m : NULL;
        for (size_t i = 0; i < N; i++) {
            pterm[i] = (k ? pterm[i] : fabsf(p_old[i])) + fabsf(s->param[i] - p_old[i]);
            mterm[i] = (k ? mterm[i] : 0.0f) + (m_old ? fabsf(m_old[i]) : 0.0f) +
                       (float)(1 - f.beta1) * fabsf(s->grad[i]);
        }
        char what[64];
        to_fixture_order(&f, &ps, idx, ps.host, got);
        snprintf(what, sizeof what, "step %d params", k + 1);
        close_terms(what, s->param, got, pterm, N, 1e-6);
        to_fixture_order(&f, &ps, idx, m, got);
        snprintf(what, sizeof what, "step %d exp_avg", k + 1);
        close_terms(what, s->m, got, mterm, N, 1e-6);
        to_fixture_order(&f, &ps, idx, v, got);
        snprintf(what, sizeof what, "step %d exp_avg_sq", k + 1);
        close_terms(what, s->v, got, NULL, N, 1e-6);
        t_ok(!memcmp(frozen0, ps.host + ps.n_trainable, (ps.total - ps.n_trainable) * sizeof(float)),
             "step %d: frozen parameters and buffers unchanged", k + 1);

        /* host reference, with torch's norm (isolates the update from the reduction) */
        float rscale = adamw_clip_scale(s->norm, s->max_norm);
        for (int i = 0; i < f.n_tensors; i++) {
            size_t o = f.t[i].off;
            adamw_update_ref(rp + o, rm + o, rv + o, s->grad + o, f.t[i].n, rscale, s->lr[f.t[i].group],
                             f.beta1, f.beta2, f.eps, f.wd, (uint64_t)k + 1);
        }
        snprintf(what, sizeof what, "step %d host reference params", k + 1);
        close_terms(what, s->param, rp, pterm, N, 1e-6);
        snprintf(what, sizeof what, "step %d host reference exp_avg", k + 1);
        close_terms(what, s->m, rm, mterm, N, 1e-6);
    }

    /* A non-finite gradient: reported, nothing applied. */
    const char *kinds[2] = {"NaN", "infinite"};
    for (int c = 0; c < 2; c++) {
        float bad = c == 0 ? NAN : INFINITY;
        cd_write(dev, cd_at(ps.grad, 3), &bad, 1);
        nn_params_download(&ps, dev);
        float *before = malloc(ps.total * sizeof(float));
        memcpy(before, ps.host, ps.total * sizeof(float));
        cd_read(dev, m, opt.m, N);
        uint64_t step0 = opt.step;
        double norm = 0;
        int rc = adamw_step(&opt, dev, &ps, f.s[0].lr, 0.1, &norm);
        t_ok(rc == -1 && strstr(cd_errbuf(), kinds[c]) && strstr(cd_errbuf(), "skipped"),
             "%s gradient norm reported (rc %d, norm %g): %s", kinds[c], rc, norm, cd_errbuf());
        nn_params_download(&ps, dev);
        cd_read(dev, v, opt.m, N);
        t_ok(!memcmp(before, ps.host, ps.total * sizeof(float)) && !memcmp(m, v, N * sizeof(float)) &&
             opt.step == step0, "%s gradient: parameters, moments and step unchanged", kinds[c]);
        free(before);
    }

    adamw_free(&opt, dev);
    nn_params_free(&ps, dev);
    free(grad); free(m); free(v); free(got); free(rp); free(rm); free(rv); free(frozen0); fx_free(&f);
    free(pterm); free(mterm);
}

/* The kernel against the host reference on one large group with an odd size and
 * offset (several work-groups), and an empty backbone group. */
static void test_large(cd_device *dev) {
    nn_params ps = {0};
    nn_param_add(&ps, "backbone.0.body.conv1.weight", NN_GROUP_BACKBONE, 0, 0, 1, 3, 0, 0, 0);  /* frozen */
    nn_param_add(&ps, "transformer.big.weight", NN_GROUP_REST, 1, 0, 2, 317, 331, 0, 0);
    nn_params_finalize(&ps, dev);
    size_t n = ps.n_trainable;
    t_ok(ps.train_end[0] == ps.train_begin[0] && n == 317 * 331, "empty backbone group, %zu rest", n);
    float *p = malloc(n * 4), *m = malloc(n * 4), *v = malloc(n * 4), *g = malloc(n * 4);
    float *dp = malloc(n * 4), *dm = malloc(n * 4), *dv = malloc(n * 4);
    t_seed(7);
    float *pterm = malloc(n * 4);      /* |p0| + the sum of |updates|: the terms of p's sum */
    for (size_t i = 0; i < n; i++) { p[i] = (float)t_uniform(-1, 1); m[i] = 0; v[i] = 0; pterm[i] = fabsf(p[i]); }
    memcpy(ps.host, p, n * 4);
    nn_params_upload(&ps, dev);
    adamw_state opt;
    adamw_init(&opt, dev, &ps, 0.9, 0.999, 1e-8, 1e-4);
    double lr[2] = {1e-5, 1e-3};
    for (int k = 1; k <= 3; k++) {
        for (size_t i = 0; i < n; i++) g[i] = (float)t_uniform(-2, 2) * (i % 97 == 0 ? 1e-9f : 1.0f);
        cd_write(dev, ps.grad, g, n);
        float scale = k == 2 ? 0.37f : 1.0f;
        adamw_update(&opt, dev, &ps, lr, scale);
        memcpy(dp, p, n * 4);
        adamw_update_ref(p, m, v, g, n, scale, lr[1], 0.9, 0.999, 1e-8, 1e-4, (uint64_t)k);
        for (size_t i = 0; i < n; i++) pterm[i] += fabsf(p[i] - dp[i]);
    }
    nn_params_download(&ps, dev);
    cd_read(dev, dm, opt.m, n);
    cd_read(dev, dv, opt.v, n);
    memcpy(dp, ps.host, n * 4);
    /* m and v use only exactly rounded operations (mul, add, fma): equal on every
     * device; p also goes through sqrt and a division (a few ulp in OpenCL) */
    close_terms("3 steps on 104927 params: device vs host params", p, dp, pterm, n, 1e-6);
    t_ok(!memcmp(m, dm, n * 4), "device vs host exp_avg: bit-identical");
    t_ok(!memcmp(v, dv, n * 4), "device vs host exp_avg_sq: bit-identical");
    adamw_free(&opt, dev);
    nn_params_free(&ps, dev);
    free(p); free(m); free(v); free(g); free(dp); free(dm); free(dv); free(pterm);
}

static void test_clip_scale(void) {
    t_ok(adamw_clip_scale(5.0, 0) == 1.0f, "max_norm 0: no clipping");
    t_ok(adamw_clip_scale(0.05, 0.1) == 1.0f, "norm below max_norm: factor 1");
    float want = 0.1f / (2.0f + 1e-6f);
    t_ok(adamw_clip_scale(2.0, 0.1) == want, "norm 2, max 0.1: factor %.9g (0.1 / (2 + 1e-6) in float)", want);
    /* torch clips when max_norm / (norm + 1e-6) < 1, i.e. also at norm == max_norm */
    t_ok(adamw_clip_scale(0.1, 0.1) < 1.0f, "norm == max_norm: factor just below 1 (as torch)");
}

/* ---- schedules ----------------------------------------------------------- */

static int near(double a, double b) { return fabs(a - b) <= 1e-12 * fabs(b) + 1e-18; }

static void test_schedules(void) {
    /* the official recipe: StepLR(200, 0.1) per epoch, backbone 1e-5, rest 1e-4 */
    lr_schedule s = {.kind = LR_SCHED_STEP, .base_lr = {1e-5, 1e-4}, .lr_drop = 200, .gamma = 0.1};
    double lr[2];
    struct { long epoch; double f; } st[] = {{0, 1}, {199, 1}, {200, 0.1}, {399, 0.1}, {400, 0.01}, {650, 0.001}};
    int ok = 1;
    for (size_t i = 0; i < CD_ARRAY_LEN(st); i++) {
        lr_at(&s, 123456, st[i].epoch, lr);
        if (!near(lr[0], 1e-5 * st[i].f) || !near(lr[1], 1e-4 * st[i].f)) {
            ok = 0;
            t_diag("epoch %ld: lr %g %g, want factor %g", st[i].epoch, lr[0], lr[1], st[i].f);
        }
    }
    t_ok(ok, "step schedule: x0.1 at epochs 200 and 400, per epoch, both groups");
    s.lr_drop = 0;
    t_ok(lr_factor(&s, 0, 100000) == 1.0, "lr_drop 0: never drops");

    /* warmup then step */
    s.lr_drop = 3;
    s.warmup_steps = 4;
    t_ok(near(lr_factor(&s, 0, 0), 0.25) && near(lr_factor(&s, 2, 0), 0.75) && lr_factor(&s, 3, 0) == 1.0 &&
         lr_factor(&s, 4, 0) == 1.0, "warmup 4: 0.25, 0.75 at steps 0, 2; 1 from step 3");
    t_ok(near(lr_factor(&s, 1, 3), 0.5 * 0.1), "warmup and a drop multiply");

    /* warmup 10 + cosine to 0.1 over 110 steps */
    lr_schedule c = {.kind = LR_SCHED_COSINE, .base_lr = {2e-5, 2e-4}, .warmup_steps = 10, .total_steps = 110,
                     .min_lr_ratio = 0.1};
    struct { long step; double f; } ct[] = {
        {0, 0.1}, {4, 0.5}, {9, 1.0}, {10, 1.0},
        {35, 0.1 + 0.9 * (2 + M_SQRT2) / 4},     /* progress 1/4: (1 + cos(pi/4)) / 2 */
        {60, 0.55},                               /* halfway */
        {85, 0.1 + 0.9 * (2 - M_SQRT2) / 4},
        {110, 0.1}, {500, 0.1}};
    ok = 1;
    for (size_t i = 0; i < CD_ARRAY_LEN(ct); i++) {
        lr_at(&c, ct[i].step, 7, lr);
        if (!near(lr[0], 2e-5 * ct[i].f) || !near(lr[1], 2e-4 * ct[i].f)) {
            ok = 0;
            t_diag("step %ld: lr %.12g %.12g, want factor %.12g", ct[i].step, lr[0], lr[1], ct[i].f);
        }
    }
    t_ok(ok, "cosine: warmup 10, halfway 0.55, floor 0.1 at the end and after");
    int mono = 1;
    for (long k = 10; k < 110; k++) mono &= lr_factor(&c, k + 1, 0) <= lr_factor(&c, k, 0);
    t_ok(mono, "cosine decreases monotonically after warmup");
    c.min_lr_ratio = 0;
    c.warmup_steps = 0;
    t_ok(lr_factor(&c, 0, 0) == 1.0 && fabs(lr_factor(&c, 110, 0)) < 1e-15, "cosine without warmup: 1 to 0");

    t_ok(lr_schedule_kind("step") == LR_SCHED_STEP && lr_schedule_kind("cosine") == LR_SCHED_COSINE,
         "schedule names");
    t_ok(lr_schedule_kind("linear") == -1 && strstr(cd_errbuf(), "'linear'") && strstr(cd_errbuf(), "cosine"),
         "unknown schedule named: %s", cd_errbuf());
}

int main(void) {
    test_schedules();
    test_clip_scale();
    cd_device *dev = cd_open(NULL, 0);
    if (!dev) {
        t_diag("SKIP device tests: no OpenCL device: %s", cd_errbuf());
        return t_done();
    }
    t_diag("device: %s", dev->info.name);
    test_fixture(dev);
    test_large(dev);
    cd_close(dev);
    return t_done();
}
