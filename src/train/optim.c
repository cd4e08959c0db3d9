/* AdamW with two parameter groups and global-norm gradient clipping, over the
 * flat parameter buffer (include/cldetr/train.h). Kernels: cl/optim.cl. */
#include <math.h>
#include <string.h>

#include "cldetr/ops.h"
#include "cldetr/train.h"

void adamw_init(adamw_state *st, cd_device *dev, const nn_params *ps,
                double beta1, double beta2, double eps, double weight_decay) {
    if (!ps->finalized) cd_fatal("adamw_init before nn_params_finalize (a bug in cldetr)");
    memset(st, 0, sizeof *st);
    st->beta1 = beta1;
    st->beta2 = beta2;
    st->eps = eps;
    st->weight_decay = weight_decay;
    st->n = ps->n_trainable;
    size_t cap = CD_MAX(st->n, (size_t)1);
    st->m = cd_alloc(dev, cap, "AdamW first moments");
    st->v = cd_alloc(dev, cap, "AdamW second moments");
    st->norm_buf = cd_alloc(dev, 1, "gradient norm");
    cd_fill(dev, st->m, 0.0f, cap);
    cd_fill(dev, st->v, 0.0f, cap);
}

void adamw_free(adamw_state *st, cd_device *dev) {
    if (st->m.mem) cd_free(dev, st->m);
    if (st->v.mem) cd_free(dev, st->v);
    if (st->norm_buf.mem) cd_free(dev, st->norm_buf);
    memset(st, 0, sizeof *st);
}

double adamw_grad_norm(adamw_state *st, cd_device *dev, const nn_params *ps) {
    if (ps->n_trainable == 0) return 0.0;
    float sumsq;
    op_sumsq(dev, st->norm_buf, ps->grad, ps->n_trainable);
    cd_read(dev, &sumsq, st->norm_buf, 1);
    return sqrt((double)sumsq);
}

/* torch.nn.utils.clip_grad_norm_: clip_coef = max_norm / (total_norm + 1e-6)
 * with total_norm a float32 tensor, so the arithmetic is float32; clamped to 1
 * (torch always multiplies, by 1 when the norm is below max_norm). */
float adamw_clip_scale(double norm, double max_norm) {
    if (max_norm <= 0) return 1.0f;
    float denom = (float)norm + 1e-6f;
    float coef = (float)max_norm / denom;
    return coef < 1.0f ? coef : 1.0f;
}

/* The per-step scalars, computed in double as PyTorch computes them in Python,
 * then rounded to float as PyTorch rounds a Python scalar for a float tensor. */
typedef struct { float decay, omb1, beta2, omb2, neg_step, bc2_sqrt, eps; } adamw_scalars;

static adamw_scalars adamw_scalars_for(double lr, double beta1, double beta2, double eps, double wd, uint64_t t) {
    adamw_scalars s;
    double bc1 = 1.0 - pow(beta1, (double)t);
    double bc2 = 1.0 - pow(beta2, (double)t);
    s.decay = (float)(1.0 - lr * wd);
    s.omb1 = (float)(1.0 - beta1);
    s.beta2 = (float)beta2;
    s.omb2 = (float)(1.0 - beta2);
    s.neg_step = (float)(-(lr / bc1));
    s.bc2_sqrt = (float)sqrt(bc2);
    s.eps = (float)eps;
    return s;
}

void adamw_update(adamw_state *st, cd_device *dev, nn_params *ps, const double lr[2], float grad_scale) {
    if (st->n != ps->n_trainable) cd_fatal("adamw_update: optimizer state for %zu parameters, model has %zu "
                                           "(a bug in cldetr)", st->n, ps->n_trainable);
    uint64_t t = st->step + 1;
    for (int g = 0; g < 2; g++) {
        size_t begin = ps->train_begin[g], n = ps->train_end[g] - begin;
        if (n == 0) continue;
        adamw_scalars s = adamw_scalars_for(lr[g], st->beta1, st->beta2, st->eps, st->weight_decay, t);
        CD_LAUNCH1_SPLIT(dev, "adamw_update", "adamw_update_tail", n,
                         KM(cd_at(ps->data, begin)), KM(cd_at(ps->grad, begin)),
                         KM(cd_at(st->m, begin)), KM(cd_at(st->v, begin)),
                         KF(grad_scale), KF(s.decay), KF(s.omb1), KF(s.beta2), KF(s.omb2), KF(s.neg_step),
                         KF(s.bc2_sqrt), KF(s.eps), KUL(n));
    }
    st->step = t;
}

int adamw_step(adamw_state *st, cd_device *dev, nn_params *ps, const double lr[2], double max_norm,
               double *grad_norm) {
    double norm = adamw_grad_norm(st, dev, ps);
    if (grad_norm) *grad_norm = norm;
    if (!isfinite(norm))
        return cd_seterr("the gradient norm is %s at optimizer step %llu: update skipped "
                         "(a diverging loss; lower train.lr or keep train.clip_max_norm > 0)",
                         isnan(norm) ? "NaN" : "infinite", (unsigned long long)st->step + 1);
    adamw_update(st, dev, ps, lr, adamw_clip_scale(norm, max_norm));
    return 0;
}

/* Same order of operations as the kernel; c_std=c11 (ISO mode) keeps GCC from
 * contracting a*b+c into an fma, so each operation rounds to float. */
void adamw_update_ref(float *p, float *m, float *v, const float *g, size_t n, float grad_scale,
                      double lr, double beta1, double beta2, double eps, double weight_decay, uint64_t t) {
    adamw_scalars s = adamw_scalars_for(lr, beta1, beta2, eps, weight_decay, t);
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] * grad_scale;
        float pi = p[i] * s.decay;
        float mi = fmaf(s.omb1, gi - m[i], m[i]);
        float vi = v[i] * s.beta2;
        vi = vi + s.omb2 * gi * gi;
        float denom = sqrtf(vi) / s.bc2_sqrt + s.eps;
        p[i] = pi + s.neg_step * mi / denom;
        m[i] = mi;
        v[i] = vi;
    }
}
