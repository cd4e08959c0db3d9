/* The padding mask at feature resolution and the sine position encoding,
 * computed on the host (they depend only on the mask; no parameters). */
#include <math.h>

#include "cldetr/detr.h"

/* PyTorch's legacy 'nearest': src = floor(dst * in / out), clamped. */
void detr_mask_downsample(float *mask_f, const float *mask, size_t B, size_t H, size_t W, size_t Hf, size_t Wf) {
    for (size_t b = 0; b < B; b++)
        for (size_t i = 0; i < Hf; i++) {
            size_t si = CD_MIN((size_t)floor((double)i * (double)H / (double)Hf), H - 1);
            for (size_t j = 0; j < Wf; j++) {
                size_t sj = CD_MIN((size_t)floor((double)j * (double)W / (double)Wf), W - 1);
                mask_f[(b * Hf + i) * Wf + j] = mask[(b * H + si) * W + sj] != 0.0f ? 1.0f : 0.0f;
            }
        }
}

/* PositionEmbeddingSine(num_pos_feats = d/2, temperature 10000, normalize, scale 2π),
 * computed in float32 like the official code, output (B, S, d). */
void detr_sine_pos(float *pos, const float *mask_f, size_t B, size_t Hf, size_t Wf, size_t d) {
    const size_t F = d / 2;
    const float scale = 2.0f * (float)M_PI, eps = 1e-6f;
    float *ye = cd_xmalloc(Hf * Wf * sizeof *ye), *xe = cd_xmalloc(Hf * Wf * sizeof *xe);
    float *dim_t = cd_xmalloc(F * sizeof *dim_t);
    for (size_t k = 0; k < F; k++)
        dim_t[k] = powf(10000.0f, (float)(2 * (k / 2)) / (float)F);
    for (size_t b = 0; b < B; b++) {
        const float *m = mask_f + b * Hf * Wf;
        /* cumulative sums of not_mask down the rows and along the columns */
        for (size_t j = 0; j < Wf; j++) {
            float s = 0;
            for (size_t i = 0; i < Hf; i++) { s += m[i * Wf + j] == 0.0f; ye[i * Wf + j] = s; }
        }
        for (size_t i = 0; i < Hf; i++) {
            float s = 0;
            for (size_t j = 0; j < Wf; j++) { s += m[i * Wf + j] == 0.0f; xe[i * Wf + j] = s; }
        }
        for (size_t i = 0; i < Hf; i++)
            for (size_t j = 0; j < Wf; j++) {
                float y = ye[i * Wf + j] / (ye[(Hf - 1) * Wf + j] + eps) * scale;
                float x = xe[i * Wf + j] / (xe[i * Wf + Wf - 1] + eps) * scale;
                float *p = pos + ((b * Hf + i) * Wf + j) * d;
                for (size_t k = 0; k < F; k++) {
                    float py = y / dim_t[k], px = x / dim_t[k];
                    p[k] = (k % 2 == 0) ? sinf(py) : cosf(py);
                    p[F + k] = (k % 2 == 0) ? sinf(px) : cosf(px);
                }
            }
    }
    free(ye); free(xe); free(dim_t);
}

/* The denoising queries' box code: the image encoding's formula on each of the
 * box's four coordinates (already in [0, 1], times 2 pi), d/4 channels each. */
void detr_box_sine(float *out, const float *box, size_t d) {
    const size_t F = d / 4;
    for (int c = 0; c < 4; c++) {
        float v = box[c] * 2.0f * (float)M_PI;
        for (size_t k = 0; k < F; k++) {
            float t = v / powf(10000.0f, (float)(2 * (k / 2)) / (float)F);
            out[c * F + k] = (k % 2 == 0) ? sinf(t) : cosf(t);
        }
    }
}
