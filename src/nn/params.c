/* The parameter registry and its flat device buffers. */
#include <stdlib.h>
#include <string.h>

#include "cldetr/nn.h"

int nn_param_add(nn_params *ps, const char *name, int group, int trainable, int buffer,
                 int ndim, size_t s0, size_t s1, size_t s2, size_t s3) {
    if (ps->finalized) cd_fatal("nn_param_add(%s) after finalize (a bug in cldetr)", name);
    if (nn_param_find(ps, name) >= 0) cd_fatal("parameter %s declared twice (a bug in cldetr)", name);
    if (ps->n == ps->cap) {
        ps->cap = ps->cap ? 2 * ps->cap : 256;
        ps->p = cd_xrealloc(ps->p, ps->cap * sizeof *ps->p);
    }
    nn_param *p = &ps->p[ps->n];
    memset(p, 0, sizeof *p);
    if (strlen(name) >= sizeof p->name) cd_fatal("parameter name too long: %s", name);
    strcpy(p->name, name);
    size_t s[4] = {s0, s1, s2, s3};
    p->ndim = ndim;
    p->n = 1;
    for (int d = 0; d < 4; d++) {
        p->shape[d] = d < ndim ? s[d] : 1;
        if (d < ndim) p->n *= s[d];
    }
    p->group = group;
    p->buffer = buffer;
    p->trainable = trainable && !buffer;
    return ps->n++;
}

int nn_param_find(const nn_params *ps, const char *name) {
    for (int i = 0; i < ps->n; i++) if (!strcmp(ps->p[i].name, name)) return i;
    return -1;
}

void nn_params_finalize(nn_params *ps, cd_device *dev) {
    size_t off = 0;
    /* trainable backbone, trainable rest, then frozen params, then buffers */
    for (int pass = 0; pass < 4; pass++) {
        if (pass < 2) ps->train_begin[pass] = off;
        for (int i = 0; i < ps->n; i++) {
            nn_param *p = &ps->p[i];
            int cls = p->trainable ? p->group : (p->buffer ? 3 : 2);
            if (cls != pass) continue;
            p->off = off;
            off += p->n;
        }
        if (pass < 2) ps->train_end[pass] = off;
        if (pass == 1) ps->n_trainable = off;
    }
    ps->total = off;
    ps->host = cd_xcalloc(CD_MAX(off, (size_t)1), sizeof(float));
    ps->data = cd_alloc(dev, CD_MAX(off, (size_t)1), "parameters");
    ps->grad = cd_alloc(dev, CD_MAX(ps->n_trainable, (size_t)1), "parameter gradients");
    ps->finalized = 1;
}

void nn_params_upload(nn_params *ps, cd_device *dev) { cd_write(dev, ps->data, ps->host, ps->total); }
void nn_params_download(nn_params *ps, cd_device *dev) { cd_read(dev, ps->host, ps->data, ps->total); }

void nn_params_free(nn_params *ps, cd_device *dev) {
    if (ps->finalized && dev) {
        cd_free(dev, ps->data);
        cd_free(dev, ps->grad);
    }
    free(ps->host);
    free(ps->p);
    memset(ps, 0, sizeof *ps);
}
