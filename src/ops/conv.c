/* conv2d forward and backward: im2col + GEMM (cd_gemm) over groups of images,
 * and plain C references.
 *
 * Layouts (row-major, P = Ho*Wo, CRS = C*R*S, a group of g images at once so
 * that deep layers with tiny P still give the GEMM a wide N):
 *   forward  tmp (K, gP)  = w (K, CRS)   @ col (CRS, gP)        NN
 *   dx       dcol (CRS, gP) = w^T        @ dperm (K, gP)        TN, then col2im gather
 *   dw       dw (K, CRS) += dout (g, K, P) . col^T              conv_dw_nt (CPUs)
 *            dw (K, CRS) += dperm (K, gP) @ colT (gP, CRS)      NN (GPUs)
 * CLBlast's kernel wants both operands with the reduction index as row index;
 * these layouts leave only the small operand (w, or dperm which is 1/CRS of
 * colT) to its transpose pre-pass, never the im2col matrix (transposing it
 * cost 10x the GEMM on PoCL; docs/performance.md). The weight gradient
 * has its reduction index contiguous in both dout and col, so CLBlast needs
 * the transposed im2col (conv_im2col_t); on CPUs conv_dw_nt reads the two as
 * they are instead (see use_dw_nt). When g = 1 the GEMMs read
 * and write the NCHW tensors in place; otherwise conv_unpack_out / conv_pack_dout
 * move between (g, K, P) and (K, g, P). A 1x1 stride-1 unpadded conv on a
 * wide image needs no im2col: its col is x itself.
 *
 * On CPUs, 3x3 stride-1 pad-1 convs with output rows 8 or a multiple of 16
 * wide skip im2col altogether (conv_is_implicit): xp is x zero-padded by 1,
 *   forward  out (B, K, P)  = w (K, C*9) over the windows of xp      conv3x3_s1_rows
 *   dx       dx (B, C, H*W) = wf (C, K*9) over the windows of doutp  the same kernel,
 *            doutp = dout padded by 1, wf = w with k, c swapped and the window flipped
 *   dw       dw (K, CRS) += dout (g, K, P) . (the windows of xp)^T   conv_dw3_nt
 * and short weight gradients (layer 4) run as dwT = col @ doutT on the row
 * GEMM (dw_products). The stem (stride 2, windows past 3x3, output rows a
 * multiple of 16) does the same from xs, the padded input split by column
 * parity (conv_is_phase_s2: conv_s2_phase_rows, conv_dws2_nt); its dx, when
 * wanted, goes through col2im. */
#include <math.h>
#include <string.h>

#include "cldetr/ops.h"
#include "ops/op_ref.h"

/* Floats of im2col scratch a group may use (64 MiB); one image is always allowed. */
static size_t conv_scratch_floats = (size_t)1 << 24;
/* Images per GEMM group: enough for ~1024 GEMM columns (g*P), no more: small
 * images need the batch to give the GEMM a wide N, large ones are faster image
 * by image (no pack/unpack, a shorter weight-gradient reduction). Timings:
 * bench/README.md (bench/bench_conv.c). With cldetr's GPU tile kernels the
 * groups are 32x larger: there a group costs a few launches (im2col, GEMM,
 * unpack; col2im) that a small model's step is bound by, a wide N fills more
 * compute units, and a long weight-gradient reduction is split over them. */
#define CONV_GROUP_COLS 1024
#define CONV_GROUP_COLS_TILES 32768
/* CLBlast (1.5.3) copies a GEMM operand through a pad pass unless its sizes
 * are multiples of the kernel's tiles (and its offset is 0, see
 * src/device/blas.c). The conv GEMMs are called column-major with the operands
 * swapped, so the forward's reduction CRS must be a multiple of KWG and dx's
 * output rows CRS a multiple of NWG; the tuned Xgemm on PoCL has KWG = 32 and
 * NWG = 64. The forward rounds CRS up to CONV_PAD_K (the stem's 147 -> 160:
 * no 2.4 MB pad copy of its im2col per image) and dx rounds dcol's rows up to
 * CONV_PAD_N (layer 1's 288 -> 320: no pad copy of dcol out of CLBlast's
 * scratch), with zero weight columns (conv_pad_cols). With other tile sizes
 * CLBlast pads as before: the rounding only costs the zero rows. */
#define CONV_PAD_K 32
#define CONV_PAD_N 64
#define CD_ROUND_UP(x, m) (((x) + (m) - 1) / (m) * (m))
/* CRS rounded up to m for CLBlast; cldetr's own kernels (the CPU row kernels,
 * cl/blas.cl, and the GPU tile kernels, cl/blas_tile.cl) take any size, and
 * the zero rows would only cost them time (layer 1's dx: 11% more products)
 * and, on GPUs, two launches a conv (the padded weights, the zeroed rows). */
static size_t conv_pad_to(cd_device *dev, size_t CRS, size_t m) {
    return cd_gemm_kernels(dev) == CD_GEMM_CLBLAST ? CD_ROUND_UP(CRS, m) : CRS;
}
/* im2col over (Wo, Ho, rows) from this output width up (cl/conv.cl). */
#define CONV_ROWS_MIN_W 16
/* conv_im2col_cpu_s1 (a work-item per window plane) from this output width
 * up; below, its scalar loops over rows of 4 cost more than the
 * work-item-per-element kernel's gathers (layer 4 of a 128x128 input, 4x4:
 * 0.52 against 0.18 ms in bench_conv). */
#define CONV_CPU_S1_MIN_W 8
/* 1x1 convs with at least this many output pixels per image skip im2col. */
#define CONV_DIRECT_MIN_P 512

/* ---- reference ----------------------------------------------------------- */

int conv2d_tap_ref(const conv_shape *s, size_t n, size_t c, size_t oh, size_t ow, size_t r, size_t q, size_t *xi) {
    long ih = (long)(oh * s->stride + r * s->dil) - (long)s->pad;
    long iw = (long)(ow * s->stride + q * s->dil) - (long)s->pad;
    if (ih < 0 || ih >= (long)s->H || iw < 0 || iw >= (long)s->W) return 0;
    *xi = ((n * s->C + c) * s->H + (size_t)ih) * s->W + (size_t)iw;
    return 1;
}

void conv2d_forward_ref(double *out, const double *x, const double *w, const double *b, const conv_shape *s) {
    size_t Ho = conv_out_h(s), Wo = conv_out_w(s);
    for (size_t n = 0; n < s->B; n++)
        for (size_t k = 0; k < s->K; k++)
            for (size_t oh = 0; oh < Ho; oh++)
                for (size_t ow = 0; ow < Wo; ow++) {
                    double acc = b ? b[k] : 0.0;
                    size_t xi;
                    for (size_t c = 0; c < s->C; c++)
                        for (size_t r = 0; r < s->R; r++)
                            for (size_t q = 0; q < s->S; q++)
                                if (conv2d_tap_ref(s, n, c, oh, ow, r, q, &xi))
                                    acc += x[xi] * w[((k * s->C + c) * s->R + r) * s->S + q];
                    out[((n * s->K + k) * Ho + oh) * Wo + ow] = acc;
                }
}

void conv2d_backward_ref(double *dx, double *dw, double *db, const double *dout, const double *x,
                         const double *w, const conv_shape *s) {
    size_t Ho = conv_out_h(s), Wo = conv_out_w(s);
    if (dx) memset(dx, 0, s->B * s->C * s->H * s->W * sizeof *dx);
    if (dw) memset(dw, 0, s->K * s->C * s->R * s->S * sizeof *dw);
    if (db) memset(db, 0, s->K * sizeof *db);
    for (size_t n = 0; n < s->B; n++)
        for (size_t k = 0; k < s->K; k++)
            for (size_t oh = 0; oh < Ho; oh++)
                for (size_t ow = 0; ow < Wo; ow++) {
                    double g = dout[((n * s->K + k) * Ho + oh) * Wo + ow];
                    if (db) db[k] += g;
                    size_t xi;
                    for (size_t c = 0; c < s->C; c++)
                        for (size_t r = 0; r < s->R; r++)
                            for (size_t q = 0; q < s->S; q++) {
                                if (!conv2d_tap_ref(s, n, c, oh, ow, r, q, &xi)) continue;
                                size_t wi = ((k * s->C + c) * s->R + r) * s->S + q;
                                if (dx) dx[xi] += g * w[wi];
                                if (dw) dw[wi] += g * x[xi];
                            }
                }
}

/* ---- device -------------------------------------------------------------- */

static void check_shape(const conv_shape *s) {
    if (s->stride == 0 || s->dil == 0 || s->R == 0 || s->S == 0 ||
        s->H + 2 * s->pad < s->dil * (s->R - 1) + 1 || s->W + 2 * s->pad < s->dil * (s->S - 1) + 1)
        cd_fatal("conv2d: kernel %zux%zu (dilation %zu, stride %zu, padding %zu) does not fit a %zux%zu input",
                 s->R, s->S, s->dil, s->stride, s->pad, s->H, s->W);
}

static int conv_is_direct(const conv_shape *s) {
    return s->R == 1 && s->S == 1 && s->stride == 1 && s->pad == 0 && s->H * s->W >= CONV_DIRECT_MIN_P;
}

/* Images per group: CONV_GROUP_COLS columns (CONV_GROUP_COLS_TILES with the
 * GPU tile kernels), within the im2col scratch limit, at least 1. */
static size_t conv_group(cd_device *dev, const conv_shape *s, size_t P) {
    size_t per = s->C * s->R * s->S * P;
    size_t g = per ? conv_scratch_floats / per : s->B;
    size_t cols = cd_gemm_kernels(dev) == CD_GEMM_TILES ? CONV_GROUP_COLS_TILES : CONV_GROUP_COLS;
    g = CD_MIN(g, (cols + P - 1) / P);
    return CD_MAX((size_t)1, CD_MIN(g, s->B));
}

/* The kernels index with int and divide with div_nonneg (cl/conv.cl), exact
 * below 2^24: every tensor of a group stays below 2^31 elements, and the
 * numbers divided (rows, pixels, channels of a group) below 2^24. */
static void check_index_range(const conv_shape *s, size_t g) {
    size_t P = conv_out_h(s) * conv_out_w(s), CRS = s->C * s->R * s->S, lim24 = (size_t)1 << 24;
    if (CRS * g * P >= ((size_t)1 << 31) || s->B * s->C * s->H * s->W >= ((size_t)1 << 31) ||
        s->B * s->K * P >= ((size_t)1 << 31) || CRS * g >= lim24 || s->B * s->C >= lim24 ||
        conv_out_h(s) * g >= lim24 || P >= lim24 || s->H + s->pad >= lim24 || s->W + s->pad >= lim24)
        cd_fatal("conv2d: input %zux%zux%zux%zu, %zu outputs, kernel %zux%zu is too large for the conv kernels' "
                 "32-bit indexing; use smaller images or batches", s->B, s->C, s->H, s->W, s->K, s->R, s->S);
}

/* 1/n for the kernels' div_nonneg */
static float inv(size_t n) { return 1.0f / (float)n; }

/* im2col and col2im in their CPU shape (conv_im2col_cpu_s1: a work-item per
 * window plane, vector copies, for stride 1 and outputs at least 8 wide; conv_col2im_k3s1p1_cpu: a
 * work-item per row, for 3x3 stride 1 pad 1), by device type, or forced for
 * tests: 1 CPU shape, 0 the work-item-per-element kernels, -1 by device. At
 * stride 2 a plane kernel copying element by element was slower than
 * conv_im2col_rows (3.0 against 2.7 ms a shapes.ini step). */
static int cpu_movers = -1;

int op_conv2d_set_cpu_movers(int mode) {
    int old = cpu_movers;
    cpu_movers = mode;
    return old;
}

static int use_cpu_movers(const cd_device *dev) {
    return cpu_movers >= 0 ? cpu_movers : cd_cpu_shaped(dev);
}

/* A 3x3 stride-2 pad-1 conv whose input is twice its output's width, a
 * multiple of 4 (CPUs): the k3s2p1 movers' vector blocks fit its rows. */
static int k3s2p1_cpu_width(const cd_device *dev, const conv_shape *s) {
    size_t Wo = conv_out_w(s);
    return s->R == 3 && s->S == 3 && s->stride == 2 && s->pad == 1 && s->dil == 1 && s->W == 2 * Wo &&
           Wo % 4 == 0 && use_cpu_movers(dev);
}

/* col (CRS, g*P) or colT (g*P, CRS) from x (g, C, H, W); on CPUs the common
 * windows have kernels of their own, the others take the general ones. */
static void im2col(cd_device *dev, cd_mem col, cd_mem x, size_t g, const conv_shape *s, int transposed) {
    size_t Ho = conv_out_h(s), Wo = conv_out_w(s), CRS = s->C * s->R * s->S;
    int cpu = !transposed && use_cpu_movers(dev);
    int k3p1 = s->R == 3 && s->S == 3 && s->pad == 1 && s->dil == 1;
    if (cpu && k3p1 && s->stride == 1 && Wo == 4) {   /* layer 4's 4-wide planes: a channel per work-item */
        CD_LAUNCH1(dev, "conv_im2col_k3s1p1_w4", s->C * g, KM(col), KM(x), KI(g), KI(s->C), KI(s->H), KI(s->W),
                   KI(s->R), KI(s->S), KI(Ho), KI(Wo), KI(s->stride), KI(s->pad), KI(s->dil), KF(inv(g)),
                   KF(inv(s->R * s->S)), KF(inv(s->S)), KF(inv(Wo)));
        return;
    }
    if (cpu && k3s2p1_cpu_width(dev, s)) {   /* a channel per work-item */
        CD_LAUNCH1(dev, "conv_im2col_k3s2p1_cpu", s->C * g, KM(col), KM(x), KI(g), KI(s->C), KI(s->H), KI(s->W),
                   KI(s->R), KI(s->S), KI(Ho), KI(Wo), KI(s->stride), KI(s->pad), KI(s->dil), KF(inv(g)),
                   KF(inv(s->R * s->S)), KF(inv(s->S)), KF(inv(Wo)));
        return;
    }
    if (cpu && s->stride == 2 && s->dil == 1 && Wo % 16 == 0 && s->R * s->S > 9) {   /* the stem, from a padded copy */
        size_t Hp = s->H + 2 * s->pad, Wp = s->W + 2 * s->pad;
        cd_mem xp = cd_alloc(dev, g * s->C * Hp * Wp + 16, "conv2d padded input");
        CD_LAUNCH1(dev, "conv_pad_input", g * s->C, KM(xp), KM(x), KI(g * s->C), KI(s->H), KI(s->W), KI(s->pad));
        CD_LAUNCH1(dev, "conv_im2col_s2_padded", CRS * g, KM(col), KM(xp), KI(g), KI(s->C), KI(Hp), KI(Wp), KI(s->R),
                   KI(s->S), KI(Ho), KI(Wo), KF(inv(g)), KF(inv(s->R * s->S)), KF(inv(s->S)));
        cd_free(dev, xp);   /* the in-order queue runs the copy before any reuse */
        return;
    }
    if (cpu && s->stride <= 2 && Wo >= (s->stride == 1 ? CONV_CPU_S1_MIN_W : 16))
        CD_LAUNCH1(dev, s->stride == 1 ? "conv_im2col_cpu_s1" : "conv_im2col_cpu_s2", CRS * g, KM(col), KM(x),
                   KI(g), KI(s->C), KI(s->H), KI(s->W), KI(s->R), KI(s->S), KI(Ho), KI(Wo), KI(s->stride),
                   KI(s->pad), KI(s->dil), KF(inv(g)), KF(inv(s->R * s->S)), KF(inv(s->S)), KF(inv(Wo)));
    else if (transposed)
        CD_LAUNCH3(dev, "conv_im2col_t", CRS, Wo, Ho * g, KM(col), KM(x), KI(g), KI(s->C), KI(s->H), KI(s->W),
                   KI(s->R), KI(s->S), KI(Ho), KI(Wo), KI(s->stride), KI(s->pad), KI(s->dil), KF(inv(g)),
                   KF(inv(s->R * s->S)), KF(inv(s->S)), KF(inv(Ho)));
    else if (Wo >= CONV_ROWS_MIN_W)
        CD_LAUNCH3(dev, s->stride == 1 ? "conv_im2col_rows_s1" : "conv_im2col_rows", Wo, Ho, CRS * g, KM(col), KM(x),
                   KI(g), KI(s->C), KI(s->H), KI(s->W), KI(s->R), KI(s->S), KI(Ho), KI(Wo), KI(s->stride), KI(s->pad),
                   KI(s->dil), KF(inv(g)), KF(inv(s->R * s->S)), KF(inv(s->S)), KF(inv(Wo)));
    else
        CD_LAUNCH2(dev, s->stride == 1 ? "conv_im2col_s1" : "conv_im2col", Ho * Wo, CRS * g, KM(col), KM(x), KI(g),
                   KI(s->C), KI(s->H), KI(s->W), KI(s->R), KI(s->S), KI(Ho), KI(Wo), KI(s->stride), KI(s->pad),
                   KI(s->dil), KF(inv(g)), KF(inv(s->R * s->S)), KF(inv(s->S)), KF(inv(Wo)));
}

/* dx (g, C, H, W) (=/+=) gathered from dcol (CRS, g*P); common windows have kernels
 * with the loops unrolled (cl/conv.cl). */
static void col2im(cd_device *dev, cd_mem dx, cd_mem dcol, size_t g, const conv_shape *s, int acc) {
    const char *name = "conv_col2im";
    int k3p1 = s->R == 3 && s->S == 3 && s->pad == 1 && s->dil == 1;
    if (k3s2p1_cpu_width(dev, s)) {   /* rows in blocks of 16 outputs, or of 4 */
        CD_LAUNCH2(dev, conv_out_w(s) % 16 == 0 ? "conv_col2im_k3s2p1_cpu" : "conv_col2im_k3s2p1_cpu4", s->H,
                   g * s->C, KM(dx), KM(dcol), KI(g), KI(s->C), KI(s->H), KI(s->W), KI(s->R), KI(s->S),
                   KI(conv_out_h(s)), KI(conv_out_w(s)), KI(s->stride), KI(s->pad), KI(s->dil),
                   KF(inv(s->stride)), KF(inv(s->C)), KI(acc));
        return;
    }
    if (s->R == 1 && s->S == 1 && s->stride == 2 && s->pad == 0 && s->W == 2 * conv_out_w(s) &&
        conv_out_w(s) % 4 == 0 && use_cpu_movers(dev)) {   /* a downsample's dx: a plane per work-item */
        CD_LAUNCH1(dev, "conv_col2im_k1s2_cpu", g * s->C, KM(dx), KM(dcol), KI(g), KI(s->C), KI(s->H), KI(s->W),
                   KI(s->R), KI(s->S), KI(conv_out_h(s)), KI(conv_out_w(s)), KI(s->stride), KI(s->pad), KI(s->dil),
                   KF(inv(s->stride)), KF(inv(s->C)), KI(acc));
        return;
    }
    if (k3p1 && s->stride == 1 && s->W == 4 && use_cpu_movers(dev)) {   /* a plane per work-item */
        CD_LAUNCH1(dev, "conv_col2im_k3s1p1_w4", g * s->C, KM(dx), KM(dcol), KI(g), KI(s->C), KI(s->H), KI(s->W),
                   KI(s->R), KI(s->S), KI(conv_out_h(s)), KI(conv_out_w(s)), KI(s->stride), KI(s->pad), KI(s->dil),
                   KF(inv(s->stride)), KF(inv(s->C)), KI(acc));
        return;
    }
    if (k3p1 && s->stride == 1 && use_cpu_movers(dev)) {
        CD_LAUNCH2(dev, "conv_col2im_k3s1p1_cpu", s->H, g * s->C, KM(dx), KM(dcol), KI(g), KI(s->C), KI(s->H),
                   KI(s->W), KI(s->R), KI(s->S), KI(conv_out_h(s)), KI(conv_out_w(s)), KI(s->stride), KI(s->pad),
                   KI(s->dil), KF(inv(s->stride)), KF(inv(s->C)), KI(acc));
        return;
    }
    if (s->R == 3 && s->S == 3 && s->stride == 1) name = "conv_col2im_k3s1";
    else if (s->R == 3 && s->S == 3 && s->stride == 2) name = "conv_col2im_k3s2";
    else if (s->R == 1 && s->S == 1) name = "conv_col2im_k1";
    CD_LAUNCH3(dev, name, s->W, s->H, g * s->C, KM(dx), KM(dcol), KI(g), KI(s->C), KI(s->H), KI(s->W),
               KI(s->R), KI(s->S), KI(conv_out_h(s)), KI(conv_out_w(s)), KI(s->stride), KI(s->pad), KI(s->dil),
               KF(inv(s->stride)), KF(inv(s->C)), KI(acc));
}

/* The weight gradient's path: 1 = conv_dw_nt from im2col's own layout (CPU
 * devices), 0 = cd_gemm from the transposed im2col (GPUs: conv_dw_nt has a
 * work-item run along whole rows, no local-memory tiling, which suits a CPU's
 * caches and not a GPU's coalescing), -1 = by device type. On PoCL conv_dw_nt
 * was faster at every shapes.ini shape (bench/README.md). */
static int dw_path = -1;

int op_conv2d_set_dw_path(int path) {
    int old = dw_path;
    dw_path = path;
    return old;
}

static int use_dw_nt(cd_device *dev) {
    return dw_path >= 0 ? dw_path : cd_cpu_shaped(dev);
}

/* The implicit 3x3 convolution (cl/conv.cl's conv3x3_s1_rows and conv_dw3_*):
 * 3x3, stride 1, pad 1, output rows 8 or a multiple of 16 wide, images a
 * multiple of 16 pixels and the batch of 32, on CPUs (a work-item runs along whole rows, as
 * conv_dw_nt does), or forced for tests: 1 on, 0 off, -1 by device type. It
 * writes a padded copy of the input, 1/9 of the columns, instead of im2col,
 * and gives the same bits. */
static int implicit_mode = -1;

int op_conv2d_set_implicit(int mode) {
    int old = implicit_mode;
    implicit_mode = mode;
    return old;
}

/* The GPU tile kernels with implicit operands (cd_gemm_conv): the forward
 * reads x in place and writes out in its layout, the weight gradient reads x
 * and dout in place, over the whole batch in one product each; the input
 * gradient's product reads dout in place (col2im stays). No im2col columns,
 * no packed copies, no unpacking: 4 launches a conv fewer in a training step
 * and the same bits (tests/ops/test_conv.c). CLDETR_CONV_TILES=implicit|
 * columns|auto chooses (auto: columns, until a GPU has timed both), forced
 * for tests by op_conv2d_set_tile_operands (1 implicit, 0 columns, -1 by the
 * environment). */
static int tile_operands = -1;

int op_conv2d_set_tile_operands(int mode) {
    int old = tile_operands;
    tile_operands = mode;
    return old;
}

/* CLDETR_CONV_TILES, read once (an unknown value ends the run on every device): 1 implicit */
static int tile_operands_env(void) {
    static int env = -2;
    static const char *const modes[] = {"implicit", "columns"};
    if (env == -2) env = cd_env_choice("CLDETR_CONV_TILES", modes, 2, NULL) == 0;
    return env;
}

static int use_tile_operands(cd_device *dev) {
    int on = tile_operands >= 0 ? tile_operands : tile_operands_env();
    return on && cd_gemm_kernels(dev) == CD_GEMM_TILES;
}

int op_conv2d_reads_in_place(cd_device *dev) { return use_tile_operands(dev); }

static cd_conv_view conv_view(const conv_shape *s) {
    return (cd_conv_view){(int)s->C, (int)s->H, (int)s->W, (int)s->R, (int)s->S, (int)conv_out_h(s),
                          (int)conv_out_w(s), (int)s->stride, (int)s->pad, (int)s->dil, (int)s->K};
}

/* Floats of one image's padded copy xp (C, H+2, W+2), and of the batch's, that
 * the implicit path reads. */
static size_t padded_image_floats(const conv_shape *s) { return s->C * (s->H + 2) * (s->W + 2); }
static size_t padded_floats(const conv_shape *s) { return s->B * padded_image_floats(s); }

static int conv_is_implicit(cd_device *dev, const conv_shape *s) {
    size_t Wo = conv_out_w(s), P = conv_out_h(s) * Wo;
    int on = implicit_mode >= 0 ? implicit_mode : cd_cpu_shaped(dev);
    return on && s->R == 3 && s->S == 3 && s->stride == 1 && s->pad == 1 && s->dil == 1 &&
           (Wo % 16 == 0 || Wo == 8) && P % 16 == 0 && s->B * P % 32 == 0 &&
           padded_floats(s) < ((size_t)1 << 31) &&
           s->B * s->K * P < ((size_t)1 << 31);
}

/* The implicit kernel of s's width class: names[0] for outputs a multiple of
 * 16 wide, names[1] (the _w8 kernel of cl/conv.cl) for 8 wide. */
static const char *implicit_kernel(const char *const names[2], const conv_shape *s) {
    return names[conv_out_w(s) % 16 == 0 ? 0 : 1];
}

/* out (B, K, Ho, Wo) (=/+= by acc) = the 3x3 windows of xp (B, C, Ho+2, Wo+2)
 * by w (K, C*9): conv3x3_s1_rows. s gives the width class and Ho, Wo. */
static void implicit_conv(cd_device *dev, cd_mem out, cd_mem xp, cd_mem w, size_t B, size_t C, size_t K,
                          const conv_shape *s, int acc) {
    size_t mb = (K + 7) / 8, nb = B * conv_out_h(s) * conv_out_w(s) / 32;
    size_t global[2] = {mb, nb}, local[2] = {cd_blocks_local(dev, mb, nb), 1};
    static const char *const names[2] = {"conv3x3_s1_rows", "conv3x3_s1_rows_w8"};
    CD_LAUNCH_WG(dev, implicit_kernel(names, s), 2, global, local, KM(out), KM(xp), KM(w), KI(B), KI(C), KI(K),
                 KI(conv_out_h(s)), KI(conv_out_w(s)), KI(acc));
}

/* xp (n, C, H+2, W+2) from x (n, C, H, W) */
static void pad_input(cd_device *dev, cd_mem xp, cd_mem x, size_t n, const conv_shape *s) {
    CD_LAUNCH1(dev, "conv_pad_input", n * s->C, KM(xp), KM(x), KI(n * s->C), KI(s->H), KI(s->W), KI(1));
}

/* The stem's windows through the column-parity split xs (B, C, 2, Hs, Ws) of
 * the padded input (cl/conv.cl, conv_phase_split_s2): stride 2 and windows
 * past 3x3 (the 3x3 stride-2 convs keep their CPU movers), on CPUs or by
 * op_conv2d_set_implicit, with rows of outputs a multiple of 16. */
static size_t phase_rows(const conv_shape *s) { return 2 * conv_out_h(s) + s->R - 2; }
static size_t phase_cols(const conv_shape *s) { return conv_out_w(s) + (s->S - 1) / 2; }
static size_t phase_image_floats(const conv_shape *s) { return s->C * 2 * phase_rows(s) * phase_cols(s); }
static size_t phase_floats(const conv_shape *s) { return s->B * phase_image_floats(s); }

static int conv_is_phase_s2(cd_device *dev, const conv_shape *s) {
    size_t Wo = conv_out_w(s), P = conv_out_h(s) * Wo;
    int on = implicit_mode >= 0 ? implicit_mode : cd_cpu_shaped(dev);
    return on && s->stride == 2 && s->dil == 1 && s->R * s->S > 9 && Wo % 16 == 0 && P % 16 == 0 &&
           s->B * P % 32 == 0 && phase_floats(s) < ((size_t)1 << 31) && s->B * s->K * P < ((size_t)1 << 31);
}

/* xs of n images of x */
static void phase_split(cd_device *dev, cd_mem xs, cd_mem x, size_t n, const conv_shape *s) {
    CD_LAUNCH2(dev, "conv_phase_split_s2", phase_rows(s), n * s->C, KM(xs), KM(x), KI(n * s->C), KI(s->H),
               KI(s->W), KI(s->pad), KI(phase_rows(s)), KI(phase_cols(s)));
}

/* out (B, K, P) = w (K, C*R*S) on the windows of xs: conv_s2_phase_rows */
static void phase_conv(cd_device *dev, cd_mem out, cd_mem xs, cd_mem w, const conv_shape *s) {
    size_t mb = (s->K + 7) / 8, nb = s->B * conv_out_h(s) * conv_out_w(s) / 32;
    size_t global[2] = {mb, nb}, local[2] = {cd_blocks_local(dev, mb, nb), 1};
    CD_LAUNCH_WG(dev, "conv_s2_phase_rows", 2, global, local, KM(out), KM(xs), KM(w), KI(s->B), KI(s->C), KI(s->K),
                 KI(conv_out_h(s)), KI(conv_out_w(s)), KI(s->R), KI(s->S), KI(phase_rows(s)), KI(phase_cols(s)));
}

/* Kept columns: the forward's im2col of every group, one after another, so
 * that conv_dw_nt reads them in the backward instead of building them again.
 * Group n0 (g images) is col (CRSp, g*P) at n0*CRSp*P; rows past CRS are zero. */
size_t op_conv2d_keep_floats(cd_device *dev, const conv_shape *s) {
    check_shape(s);
    if (!use_dw_nt(dev) || conv_is_direct(s)) return 0;
    if (conv_is_implicit(dev, s)) return padded_floats(s);
    if (conv_is_phase_s2(dev, s)) return phase_floats(s);
    return conv_pad_to(dev, s->C * s->R * s->S, CONV_PAD_K) * s->B * conv_out_h(s) * conv_out_w(s);
}

/* out (B, K, Ho, Wo) = conv(x (B, C, H, W), w (K, C, R, S)) + b (K) or none */
void op_conv2d_forward(cd_device *dev, cd_mem out, cd_mem x, cd_mem w, cd_mem b, const conv_shape *s) {
    op_conv2d_forward_keep(dev, out, x, w, b, s, cd_none());
}

size_t op_conv2d_forward_keep(cd_device *dev, cd_mem out, cd_mem x, cd_mem w, cd_mem b, const conv_shape *s,
                              cd_mem keep) {
    check_shape(s);
    tile_operands_env();
    size_t P = conv_out_h(s) * conv_out_w(s), CRS = s->C * s->R * s->S, CHW = s->C * s->H * s->W;
    size_t KP = s->K * P;
    check_index_range(s, conv_group(dev, s, P));
    if (conv_is_direct(s)) {
        for (size_t n = 0; n < s->B; n++)
            cd_gemm(dev, 0, 0, s->K, P, s->C, 1.0f, w, s->C, cd_at(x, n * CHW), P, 0.0f, cd_at(out, n * KP), P);
        if (cd_has(b)) CD_LAUNCH3(dev, "conv_add_bias", P, s->K, s->B, KM(out), KM(b), KI(s->B), KI(s->K), KI(P));
        return 0;
    }
    if (conv_is_implicit(dev, s)) {   /* keep, when given, is xp */
        cd_mem xp = cd_has(keep) ? keep : cd_alloc(dev, padded_floats(s), "conv2d padded input");
        pad_input(dev, xp, x, s->B, s);
        implicit_conv(dev, out, xp, w, s->B, s->C, s->K, s, 0);
        if (cd_has(b)) CD_LAUNCH3(dev, "conv_add_bias", P, s->K, s->B, KM(out), KM(b), KI(s->B), KI(s->K), KI(P));
        if (!cd_has(keep)) cd_free(dev, xp);
        return conv_group(dev, s, P);
    }
    if (conv_is_phase_s2(dev, s)) {   /* keep, when given, is xs */
        cd_mem xs = cd_has(keep) ? keep : cd_alloc(dev, phase_floats(s), "conv2d phase-split input");
        phase_split(dev, xs, x, s->B, s);
        phase_conv(dev, out, xs, w, s);
        if (cd_has(b)) CD_LAUNCH3(dev, "conv_add_bias", P, s->K, s->B, KM(out), KM(b), KI(s->B), KI(s->K), KI(P));
        if (!cd_has(keep)) cd_free(dev, xs);
        return conv_group(dev, s, P);
    }
    size_t G = conv_group(dev, s, P), CRSp = conv_pad_to(dev, CRS, CONV_PAD_K);
    if (!cd_has(keep) && !cd_has(b) && use_tile_operands(dev)) {   /* out = w . im2col(x), the whole batch */
        cd_conv_view v = conv_view(s);
        if (cd_gemm_conv(dev, CD_CONV_FW, s->K, s->B * P, CRS, 1.0f, w, CRS, x, 0.0f, out, P, &v)) return G;
    }
    cd_mem col = cd_has(keep) ? cd_none() : cd_alloc(dev, CRSp * G * P, "conv2d im2col");
    cd_mem tmp = G > 1 ? cd_alloc(dev, KP * G, "conv2d output group") : cd_none();
    cd_mem wk = w;
    if (CRSp != CRS) {   /* the reduction rounded up to CLBlast's KWG: zero weight columns, zero col rows */
        wk = cd_alloc(dev, s->K * CRSp, "conv2d padded weights");
        CD_LAUNCH2(dev, "conv_pad_cols", CRSp, s->K, KM(wk), KM(w), KI(s->K), KI(CRS), KI(CRSp));
    }
    for (size_t n0 = 0; n0 < s->B; n0 += G) {
        size_t g = CD_MIN(G, s->B - n0);
        cd_mem o = cd_at(out, n0 * KP);
        if (cd_has(keep)) col = cd_at(keep, n0 * CRSp * P);
        im2col(dev, col, cd_at(x, n0 * CHW), g, s, 0);
        if (CRSp != CRS) cd_fill(dev, cd_at(col, CRS * g * P), 0.0f, (CRSp - CRS) * g * P);
        if (g == 1) {
            cd_gemm(dev, 0, 0, s->K, P, CRSp, 1.0f, wk, CRSp, col, P, 0.0f, o, P);
            if (cd_has(b)) CD_LAUNCH3(dev, "conv_add_bias", P, s->K, 1, KM(o), KM(b), KI(1), KI(s->K), KI(P));
        } else {
            cd_gemm(dev, 0, 0, s->K, g * P, CRSp, 1.0f, wk, CRSp, col, g * P, 0.0f, tmp, g * P);
            CD_LAUNCH3(dev, "conv_unpack_out", P, s->K, g, KM(o), KM(tmp), KM(cd_has(b) ? b : tmp), KI(cd_has(b)),
                       KI(g), KI(s->K), KI(P));
        }
    }
    if (!cd_has(keep)) cd_free(dev, col);
    if (G > 1) cd_free(dev, tmp);
    if (CRSp != CRS) cd_free(dev, wk);
    return G;
}

/* Floats of col a chunk of conv_dw_nt_chunks may span (CRS rows of `chunk`
 * pixels): 512 KB, to stay in a core's cache while every block of dw reads it. */
#define DW_CHUNK_FLOATS ((size_t)1 << 17)
/* Split the reduction only when an image has at least two chunks of this many
 * pixels: below, the partial sums cost more than the cache saves. */
#define DW_CHUNK_MIN 128
static int dw_chunks = 1;
/* Reductions of at most this many pixels (a group's g*P) with at least this
 * many output channels and rows go through the row GEMM instead
 * (dw_products): there conv_dw_nt's 4 x 4 blocks spend more on their ends (16
 * lane sums each) than on the short dot products. In bench_conv (--dw-gemm),
 * layer 4 of shapes.ini (K 256, 2304 rows, 128 pixels) 0.82 -> 0.57 ms and
 * its stride-2 conv 0.53 -> 0.30 ms; layers 2 and 3's stride-2 convs (512
 * and 1024 pixels) and the 1x1 downsamples were 10-60% slower that way.
 * Tests switch it off with op_conv2d_set_dw_gemm. */
#define DW_GEMM_MAX_GP 256
#define DW_GEMM_MIN_K 64
#define DW_GEMM_MIN_CRS 512
static int dw_gemm = 1;

int op_conv2d_set_dw_gemm(int on) {
    int old = dw_gemm;
    dw_gemm = on;
    return old;
}

int op_conv2d_set_dw_chunks(int on) {
    int old = dw_chunks;
    dw_chunks = on;
    return old;
}

/* dw (K, CRS) += sum over b < g, p < P of dout (g, K, P) [b][k][p] *
 * col[crs*cs + b*cb + p], or, with xs (the conv's shape, implicit path), of
 * the columns of the padded input col = xp (g, C, H+2, W+2) (3x3 stride 1) or
 * of the phase-split input col = xs (g, C, 2, Hs, Ws) (the stem). Long reductions
 * (large images) are split into chunks that stay in cache
 * (conv_dw_nt_chunks) and their partial sums added in order (conv_dw_sum);
 * short ones run whole in conv_dw_nt. */
static void dw_products(cd_device *dev, cd_mem dw, cd_mem dout, cd_mem col, size_t g, size_t K, size_t CRS,
                        size_t P, size_t cs, size_t cb, const conv_shape *xs) {
    size_t nc = (CRS + 3) / 4, nk = (K + 3) / 4;
    if (!xs && cs == g * P && cb == P && g * P <= DW_GEMM_MAX_GP && K >= DW_GEMM_MIN_K && CRS >= DW_GEMM_MIN_CRS &&
        dw_gemm && cd_gemm_kernels(dev) == CD_GEMM_ROWS) {
        /* a short reduction over col in its group layout: dwT (CRS, K) = col @ doutT, one row GEMM */
        cd_mem dT = cd_alloc(dev, g * P * K, "conv2d transposed output gradient");
        cd_mem wT = cd_alloc(dev, CRS * K, "conv2d transposed weight gradient");
        op_permute(dev, dT, dout, (size_t[]){g, K, P, 1}, (int[]){0, 2, 1, 3}, 0);   /* (g, P, K) */
        cd_gemm(dev, 0, 0, CRS, K, g * P, 1.0f, col, g * P, dT, K, 0.0f, wT, K);
        CD_LAUNCH2(dev, "conv_dw_add_t", (CRS + 15) / 16, (K + 15) / 16, KM(dw), KM(wT), KI(K), KI(CRS));
        cd_free(dev, wT);
        cd_free(dev, dT);
        return;
    }
    size_t chunk = CD_MIN(DW_CHUNK_FLOATS / CRS / 16 * 16, (size_t)1024);
    static const char *const whole3[2] = {"conv_dw3_nt", "conv_dw3_nt_w8"};
    static const char *const chunks3[2] = {"conv_dw3_nt_chunks", "conv_dw3_nt_chunks_w8"};
    int phase = xs && xs->stride == 2;   /* col is the stem's xs, else xp */
    const char *chunks_kernel = phase ? "conv_dws2_nt_chunks" : xs ? implicit_kernel(chunks3, xs) : "conv_dw_nt_chunks";
    if (!dw_chunks || chunk < DW_CHUNK_MIN || P < 2 * chunk || nc * nk > cd_kernel_wg_size(dev, chunks_kernel)) {
        if (phase)
            CD_LAUNCH2(dev, "conv_dws2_nt", nc, nk, KM(dw), KM(dout), KM(col), KI(g), KI(K), KI(xs->C),
                       KI(conv_out_h(xs)), KI(conv_out_w(xs)), KI(xs->R), KI(xs->S), KI(phase_rows(xs)),
                       KI(phase_cols(xs)));
        else if (xs)
            CD_LAUNCH2(dev, implicit_kernel(whole3, xs), nc, nk, KM(dw), KM(dout),
                       KM(col), KI(g), KI(K), KI(xs->C), KI(conv_out_h(xs)), KI(conv_out_w(xs)));
        else
            CD_LAUNCH2(dev, "conv_dw_nt", nc, nk, KM(dw), KM(dout), KM(col), KI(g), KI(K), KI(CRS), KI(P), KUL(cs),
                       KUL(cb));
        return;
    }
    size_t cpi = (P + chunk - 1) / chunk;
    chunk = CD_ROUND_UP((P + cpi - 1) / cpi, 16);   /* balanced chunks, still whole vectors */
    size_t nch = g * cpi;
    cd_mem part = cd_alloc(dev, nch * K * CRS, "conv2d weight-gradient chunks");
    size_t global[3] = {nc, nk, nch}, local[3] = {nc, nk, 1};   /* a work-group per chunk */
    if (phase)
        CD_LAUNCH_WG(dev, chunks_kernel, 3, global, local, KM(part), KM(dout), KM(col), KI(K), KI(xs->C),
                     KI(conv_out_h(xs)), KI(conv_out_w(xs)), KI(xs->R), KI(xs->S), KI(phase_rows(xs)),
                     KI(phase_cols(xs)), KI(chunk), KI(cpi));
    else if (xs)
        CD_LAUNCH_WG(dev, chunks_kernel, 3, global, local, KM(part), KM(dout), KM(col), KI(K), KI(xs->C),
                     KI(conv_out_h(xs)), KI(conv_out_w(xs)), KI(chunk), KI(cpi));
    else
        CD_LAUNCH_WG(dev, "conv_dw_nt_chunks", 3, global, local, KM(part), KM(dout), KM(col), KI(K), KI(CRS),
                     KI(P), KUL(cs), KUL(cb), KI(chunk), KI(cpi));
    CD_LAUNCH1(dev, "conv_dw_sum", (K * CRS + 15) / 16, KM(dw), KM(part), KI(nch), KI(K * CRS));
    cd_free(dev, part);
}

/* dw (K, CRS) += dout (B, K, P) . col^T by conv_dw_nt, col in im2col's layout
 * over as many images at once as the scratch limit allows (x itself for a
 * direct 1x1 conv). */
static void dw_from_columns(cd_device *dev, cd_mem dw, cd_mem dout, cd_mem x, const conv_shape *s) {
    size_t P = conv_out_h(s) * conv_out_w(s), CRS = s->C * s->R * s->S, CHW = s->C * s->H * s->W;
    if (conv_is_direct(s)) {
        dw_products(dev, dw, dout, x, s->B, s->K, CRS, P, P, CHW, NULL);
        return;
    }
    size_t G = CD_MAX((size_t)1, CD_MIN(s->B, conv_scratch_floats / (CRS * P)));
    check_index_range(s, G);
    if (conv_is_phase_s2(dev, s)) {   /* the same groups, their columns read from the phase-split input */
        cd_mem xs = cd_alloc(dev, phase_floats(s), "conv2d phase-split input");
        phase_split(dev, xs, x, s->B, s);
        for (size_t n0 = 0; n0 < s->B; n0 += G)
            dw_products(dev, dw, cd_at(dout, n0 * s->K * P), cd_at(xs, n0 * phase_image_floats(s)),
                        CD_MIN(G, s->B - n0), s->K, CRS, P, 0, 0, s);
        cd_free(dev, xs);
        return;
    }
    int imp = conv_is_implicit(dev, s);   /* the same groups, their columns read from the padded input */
    size_t xpn = padded_image_floats(s);
    cd_mem col = imp ? cd_alloc(dev, padded_floats(s), "conv2d padded input") : cd_alloc(dev, CRS * G * P,
                                                                                          "conv2d im2col");
    if (imp) pad_input(dev, col, x, s->B, s);
    for (size_t n0 = 0; n0 < s->B; n0 += G) {
        size_t g = CD_MIN(G, s->B - n0);
        if (!imp) im2col(dev, col, cd_at(x, n0 * CHW), g, s, 0);
        dw_products(dev, dw, cd_at(dout, n0 * s->K * P), imp ? cd_at(col, n0 * xpn) : col, g, s->K, CRS, P,
                    g * P, P, imp ? s : NULL);
    }
    cd_free(dev, col);
}

/* dw (K, CRS) += dout (B, K, P) . col^T by conv_dw_nt from the forward's kept
 * columns (op_conv2d_forward_keep, groups of G images): with G = 1 one launch
 * over the whole batch, an image's columns CRSp*P floats after the last. */
static void dw_from_kept(cd_device *dev, cd_mem dw, cd_mem dout, cd_mem cols, size_t G, const conv_shape *s) {
    size_t P = conv_out_h(s) * conv_out_w(s), CRS = s->C * s->R * s->S, CRSp = conv_pad_to(dev, CRS, CONV_PAD_K);
    int imp = conv_is_implicit(dev, s), ph = conv_is_phase_s2(dev, s);   /* cols is xp or xs: the same groups */
    const conv_shape *xs = imp || ph ? s : NULL;
    if (G == 1) {
        dw_products(dev, dw, dout, cols, s->B, s->K, CRS, P, P, CRSp * P, xs);
        return;
    }
    size_t per = imp ? padded_image_floats(s) : ph ? phase_image_floats(s) : CRSp * P;
    for (size_t n0 = 0; n0 < s->B; n0 += G) {
        size_t g = CD_MIN(G, s->B - n0);
        dw_products(dev, dw, cd_at(dout, n0 * s->K * P), cd_at(cols, n0 * per), g, s->K, CRS, P, g * P, P, xs);
    }
}

/* dx (=/+= by acc, may be none), dw += (may be none), db += (may be none);
 * dout (B, K, Ho, Wo), x (B, C, H, W), w (K, C, R, S) */
void op_conv2d_backward(cd_device *dev, cd_mem dx, cd_mem dw, cd_mem db, cd_mem dout, cd_mem x, cd_mem w,
                        const conv_shape *s, int acc) {
    op_conv2d_backward_kept(dev, dx, dw, db, dout, x, w, cd_none(), 0, s, acc);
}

void op_conv2d_backward_kept(cd_device *dev, cd_mem dx, cd_mem dw, cd_mem db, cd_mem dout, cd_mem x, cd_mem w,
                             cd_mem cols, size_t cols_group, const conv_shape *s, int acc) {
    check_shape(s);
    size_t P = conv_out_h(s) * conv_out_w(s), CRS = s->C * s->R * s->S, CHW = s->C * s->H * s->W;
    size_t KP = s->K * P;
    check_index_range(s, conv_group(dev, s, P));
    if (cd_has(db)) {
        size_t wg = cd_kernel_wg_size(dev, "conv_bias_backward"), l = 1;
        while (l * 2 <= CD_MIN(wg, (size_t)256)) l *= 2;
        CD_LAUNCH_WG(dev, "conv_bias_backward", 1, (size_t[]){s->K * l}, (size_t[]){l}, KM(db), KM(dout),
                     KLOCAL(l * sizeof(float)), KI(s->B), KI(s->K), KUL(P));
    }
    if (!cd_has(dx) && !cd_has(dw)) return;
    int dw_nt = cd_has(dw) && use_dw_nt(dev);
    if (dw_nt) {
        if (cd_has(cols)) dw_from_kept(dev, dw, dout, cols, cols_group, s);
        else dw_from_columns(dev, dw, dout, x, s);
        if (!cd_has(dx)) return;
    }
    if (cd_has(dx) && conv_is_implicit(dev, s)) {
        /* dx = conv3x3_s1_rows of dout padded by 1 with the flipped weights: no dcol, no col2im */
        conv_shape t = {s->B, s->K, conv_out_h(s), conv_out_w(s), s->C, 3, 3, 1, 1, 1};   /* dout as the input */
        cd_mem dp = cd_alloc(dev, padded_floats(&t), "conv2d padded output gradient");
        cd_mem wf = cd_alloc(dev, s->C * s->K * 9, "conv2d flipped weights");
        pad_input(dev, dp, dout, s->B, &t);
        CD_LAUNCH2(dev, "conv_flip_weights", s->C, s->K, KM(wf), KM(w), KI(s->K), KI(s->C));
        implicit_conv(dev, dx, dp, wf, s->B, s->K, s->C, s, acc);
        cd_free(dev, wf);
        cd_free(dev, dp);
        if (!cd_has(dw) || dw_nt) return;
        dx = cd_none();
    }
    if (conv_is_direct(s)) {
        for (size_t n = 0; n < s->B; n++) {
            cd_mem dn = cd_at(dout, n * KP);
            if (cd_has(dw) && !dw_nt)   /* dw (K, C) += dout_n (K, P) @ x_n^T (P, C) */
                cd_gemm(dev, 0, 1, s->K, s->C, P, 1.0f, dn, P, cd_at(x, n * CHW), P, 1.0f, dw, s->C);
            if (cd_has(dx))   /* dx_n (C, P) = w^T (C, K) @ dout_n (K, P) */
                cd_gemm(dev, 1, 0, s->C, P, s->K, 1.0f, w, s->C, dn, P, acc ? 1.0f : 0.0f, cd_at(dx, n * CHW), P);
        }
        return;
    }
    size_t G = conv_group(dev, s, P), CRSp = cd_has(dx) ? conv_pad_to(dev, CRS, CONV_PAD_N) : CRS;
    int implicit = use_tile_operands(dev);
    cd_conv_view v = conv_view(s);
    if (implicit && cd_has(dw) && !dw_nt &&   /* dw (K, CRS) += dout (K, B*P) . im2col(x)^T, the whole batch */
        cd_gemm_conv(dev, CD_CONV_DW, s->K, CRS, s->B * P, 1.0f, dout, 0, x, 1.0f, dw, CRS, &v)) {
        if (!cd_has(dx)) return;
        dw = cd_none();
    }
    cd_mem col = cd_alloc(dev, CRSp * G * P, "conv2d im2col");
    cd_mem dperm = cd_none();   /* dout's group packed (K, gP), when the product cannot read it in place */
    cd_mem wk = w;
    if (CRSp != CRS) {   /* dcol's rows rounded up to CLBlast's NWG: zero weight columns */
        wk = cd_alloc(dev, s->K * CRSp, "conv2d padded weights");
        CD_LAUNCH2(dev, "conv_pad_cols", CRSp, s->K, KM(wk), KM(w), KI(s->K), KI(CRS), KI(CRSp));
    }
    for (size_t n0 = 0; n0 < s->B; n0 += G) {
        size_t g = CD_MIN(G, s->B - n0), gP = g * P;
        cd_mem dg = cd_at(dout, n0 * KP);
        if (!cd_has(dw) && cd_has(dx) && implicit &&   /* dcol (CRS, gP) = w^T . dout (K, gP) read in place */
            cd_gemm_conv(dev, CD_CONV_DX, CRS, gP, s->K, 1.0f, w, CRS, dg, 0.0f, col, gP, &v)) {
            col2im(dev, cd_at(dx, n0 * CHW), col, g, s, acc);
            continue;
        }
        if (g > 1) {
            if (!cd_has(dperm)) dperm = cd_alloc(dev, KP * G, "conv2d output-gradient group");
            CD_LAUNCH3(dev, "conv_pack_dout", P, s->K, g, KM(dperm), KM(dg), KI(g), KI(s->K), KI(P));
            dg = dperm;
        }
        if (cd_has(dw) && !dw_nt) {   /* dw (K, CRS) += dperm (K, gP) @ colT (gP, CRS) */
            im2col(dev, col, cd_at(x, n0 * CHW), g, s, 1);
            cd_gemm(dev, 0, 0, s->K, CRS, gP, 1.0f, dg, gP, col, CRS, 1.0f, dw, CRS);
        }
        if (cd_has(dx)) {   /* dcol (CRS, gP) = w^T (CRS, K) @ dperm (K, gP), then gather into dx */
            cd_gemm(dev, 1, 0, CRSp, gP, s->K, 1.0f, wk, CRSp, dg, gP, 0.0f, col, gP);
            col2im(dev, cd_at(dx, n0 * CHW), col, g, s, acc);
        }
    }
    cd_free(dev, col);
    if (cd_has(dperm)) cd_free(dev, dperm);
    if (CRSp != CRS) cd_free(dev, wk);
}

size_t op_conv2d_set_scratch_limit(size_t floats) {
    size_t old = conv_scratch_floats;
    conv_scratch_floats = floats;
    return old;
}

/* For tests and the selftest: the im2col / col2im kernels alone.
 * col (CRS, B*P) or colT (B*P, CRS) from x (B, C, H, W); dx (=/+=) the gather of dcol (CRS, B*P). */
void op_conv2d_im2col(cd_device *dev, cd_mem col, cd_mem x, const conv_shape *s, int transposed) {
    check_shape(s);
    check_index_range(s, s->B);
    im2col(dev, col, x, s->B, s, transposed);
}

void op_conv2d_col2im(cd_device *dev, cd_mem dx, cd_mem dcol, const conv_shape *s, int acc) {
    check_shape(s);
    check_index_range(s, s->B);
    col2im(dev, dx, dcol, s->B, s, acc);
}
