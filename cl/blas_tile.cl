/* cldetr's GEMM kernels for GPUs (src/device/blas_tile.c, cd_gemm): 1.3-2x
 * CLBlast's speed at most of DETR-R50's products on an H200, 13x on its
 * weight gradients (bench/README.md). A file of their own, so that devices
 * that do not use them (CPUs) never compile them. Row-major C (M, N) = alpha
 * op(A) op(B) + beta C for a batch of matrices sA, sB, sC floats apart.
 * Conventions as in common.cl. */

/* A WX x WY work-group computes a BM x BN tile of C: per step of BK along k
 * it stages a BM x BK slice of op(A) and a BK x BN slice of op(B) in local
 * memory, stored k-major so the compute loop reads both as float4, and a
 * work-item accumulates a TM x TN block (BM/WY x BN/WX, 4 or 8 each) in
 * registers. Its rows are ty*4 .. ty*4+3 of each 4*WY-row band and its
 * columns tx*4 .. tx*4+3 of each 4*WX-column band, so a warp's float4 reads
 * of local memory fall in distinct banks. The next slice's global loads are
 * issued before the current slice's arithmetic. Every layout (ta, tb) and
 * every size is a compile-time constant of its kernel; the global loads run
 * along the contiguous index of each operand. Elements past M, N or the
 * slice's end load as 0 and are not stored. Each entry of C is one fma chain
 * over k in order, so every shape of tile gives the same bits for the same
 * parts of k.
 *
 * DB 1 stages the slices in two buffers in turn (one barrier a slice
 * instead of two, twice the local memory).
 *
 * Two shapes per build, "small" (TS_*) and "large" (TL_*), set by the
 * program's -D options (src/device/blas_tile.c: built-in, or what `cldetr
 * tune` measured best on the device); the defaults below are the built-in
 * ones, measured on an H200 (bench/README.md).
 *
 * Split k (one matrix): dim 2 of the range is the part, part s sums k in
 * [s*kc, min(K, (s+1)*kc)) and writes its own C, sC floats apart (the caller
 * passes a scratch buffer and gemm_split_sum adds the parts). Otherwise
 * nsplit = 1, kc = K and dim 2 is the batch. Range (ceil(N/BN)*WX,
 * ceil(M/BM)*WY, batch or nsplit), local (WX, WY, 1); a batch of two levels:
 * batch_offset (common.cl). */
#ifndef TS_BM
#define TS_BM 64
#define TS_BN 64
#define TS_BK 8
#define TS_WX 16
#define TS_WY 16
#endif
#ifndef TS_DB
#define TS_DB 0
#endif
#ifndef TL_BM
#define TL_BM 128
#define TL_BN 128
#define TL_BK 8
#define TL_WX 16
#define TL_WY 16
#endif
#ifndef TL_DB
#define TL_DB 0
#endif
#define TILE_PAD 4
#define TILE_MAX_LOADS 16   /* global loads per operand and work-item: BM * BK / (WX * WY) at most */

/* A linear layer's epilogue (cd_gemm_bias_nt): epi 1 adds bias[n] to C's
 * column n, epi 2 then a ReLU; the expressions of linear_bias_forward
 * (cl/linear.cl), which the product followed: the same bits. */
static inline __attribute__((always_inline)) float gemm_epilogue(const float v, const float b, const int epi) {
    const float r = v + b;
    return epi == 2 && r < 0.0f ? 0.0f : r;
}
static inline __attribute__((always_inline)) float4 gemm_epilogue4(const float4 v, __global const float *b,
                                                                   const int epi) {
    const float4 r = v + vload4(0, b);
    return epi == 2 ? select(r, (float4)(0.0f), isless(r, (float4)(0.0f))) : r;
}

/* Implicit operands of a convolution (cd_gemm_conv, src/ops/conv.c on GPUs):
 * the products read the image batch and the output gradient where they lie
 * instead of im2col's columns and packed copies, and write the output in its
 * (B, K, Ho, Wo) layout. A column q of a product over a batch is pixel p of
 * image b (q = b * P + p); a row crs of im2col is a tap (c, r, s) of the
 * window. The divisions are div_nonneg's (common.cl): q and crs stay below
 * 2^24, and every offset below 2^31 (cd_gemm_conv's caller checks). */
typedef struct {
    int C, H, W, R, S, Wo, stride, pad, dil, P, nch;   /* nch: channels of a (B, nch, P) tensor view */
    float inv_RS, inv_S, inv_Wo, inv_P;
} conv_geom;

/* An implicit op(B)'s load slot: a work-item's load p of every slice has
 * the same column n, so what n gives is computed once (slot_of) and each
 * slice adds what its row k gives (implicit_b):
 *   bv 1, tb 0 (op(B) = im2col(x), n a pixel q): the image's offset, the
 *     window's top-left corner (ih0, iw0); k is a tap (c, r, s);
 *   bv 1, tb 1 (op(B) = im2col(x)^T, n a tap): the channel's offset and the
 *     tap's shifts r*dil, s*dil; k is a pixel;
 *   bv 2 (op(B) a (B, nch, P) tensor, n a pixel): its offset at channel 0. */
typedef struct { int off, dy, dx; } conv_slot;

static inline __attribute__((always_inline)) conv_slot slot_of(const int n, const int bv, const int tb,
                                                               const conv_geom g) {
    conv_slot sl = {0, 0, 0};
    if (bv == 1 && !tb) {
        const int b = div_nonneg(n, g.P, g.inv_P), pix = n - b * g.P;
        const int oh = div_nonneg(pix, g.Wo, g.inv_Wo), ow = pix - oh * g.Wo;
        sl.off = b * g.C * g.H * g.W;
        sl.dy = oh * g.stride - g.pad;
        sl.dx = ow * g.stride - g.pad;
    } else if (bv == 1) {
        const int c = div_nonneg(n, g.R * g.S, g.inv_RS), rs = n - c * (g.R * g.S);
        const int r = div_nonneg(rs, g.S, g.inv_S);
        sl.off = c * g.H * g.W;
        sl.dy = r * g.dil;
        sl.dx = (rs - r * g.S) * g.dil;
    } else if (bv == 2) {
        const int b = div_nonneg(n, g.P, g.inv_P);
        sl.off = b * g.nch * g.P + (n - b * g.P);
    }
    return sl;
}

/* op(B) at (k, the slot's column), 0 in the padding */
static inline __attribute__((always_inline)) float implicit_b(__global const float *x, const int k,
                                                              const conv_slot sl, const int bv, const int tb,
                                                              const conv_geom g) {
    if (bv == 2) return x[sl.off + k * g.P];
    int off, ih, iw;
    if (!tb) {                         /* k a tap (c, r, s) */
        const int c = div_nonneg(k, g.R * g.S, g.inv_RS), rs = k - c * (g.R * g.S);
        const int r = div_nonneg(rs, g.S, g.inv_S);
        off = sl.off + c * g.H * g.W;
        ih = sl.dy + r * g.dil;
        iw = sl.dx + (rs - r * g.S) * g.dil;
    } else {                           /* k a pixel q of image b */
        const int b = div_nonneg(k, g.P, g.inv_P), pix = k - b * g.P;
        const int oh = div_nonneg(pix, g.Wo, g.inv_Wo), ow = pix - oh * g.Wo;
        off = sl.off + b * g.C * g.H * g.W;
        ih = oh * g.stride - g.pad + sl.dy;
        iw = ow * g.stride - g.pad + sl.dx;
    }
    return ih >= 0 && ih < g.H && iw >= 0 && iw < g.W ? x[off + ih * g.W + iw] : 0.0f;
}

/* where (ch, q) of a (B, nch, P) tensor lies: its rows are channels, its columns the batch's pixels */
static inline __attribute__((always_inline)) int chw_index(const int ch, const int q, const conv_geom g) {
    const int b = div_nonneg(q, g.P, g.inv_P);
    return (b * g.nch + ch) * g.P + (q - b * g.P);
}

static inline __attribute__((always_inline)) void gemm_tile(
    __global float *C, __global const float *A, __global const float *B, const int M, const int N,
    const int K, const int lda, const int ldb, const int ldc, const ulong sA, const ulong sB, const ulong sC,
    const float alpha, const float beta, const int nsplit, const int kc, const uint zi, const ulong sAo,
    const ulong sBo, const ulong sCo, __global const float *bias, const int epi, __global float *sums,
    const int has_sums, __local float4 *As4, __local float4 *Bs4, const int ta, const int tb, const int BM,
    const int BN, const int BK, const int WX, const int WY, const int DB, const int av, const int bv,
    const int cv,
    const conv_geom cg) {
    /* av 1: op(A) (M, K) is a (B, M, P) tensor; bv 1: op(B) is im2col of x, 2: op(B) (K, N) is a
     * (B, K, P) tensor; cv 1: C (M, N) is written as a (B, M, P) tensor (scalar stores) */
    const int NT = WX * WY, TM = BM / WY, TN = BN / WX;   /* TM, TN: 4 or 8 */
    const int LA = BM * BK / NT, LB = BN * BK / NT;       /* global loads per work-item */
    const int sa = BM + TILE_PAD, sb = BN + TILE_PAD;     /* row pitch of the staged slices */
    __local float *As = (__local float *)As4, *Bs = (__local float *)Bs4;
    const int tx = (int)get_local_id(0), ty = (int)get_local_id(1);
    const uint t = get_local_id(1) * (uint)WX + get_local_id(0);   /* unsigned: / and % by powers of 2 are shifts */
    const int n0 = (int)get_group_id(0) * BN, m0 = (int)get_group_id(1) * BM;
    const int z = (int)get_group_id(2), b = nsplit > 1 ? 0 : z, part = nsplit > 1 ? z : 0;
    const int kb = part * kc, ke = min(K, kb + kc);
    A += batch_offset(b, zi, sA, sAo);
    B += batch_offset(b, zi, sB, sBo);
    C += nsplit > 1 ? (ulong)part * sC : batch_offset(b, zi, sC, sCo);

    /* where each of this work-item's global loads lands in the slice: load p
     * is element t + p*NT of the slice, counted along the operand's
     * contiguous index */
    int am[TILE_MAX_LOADS], ak[TILE_MAX_LOADS], bn[TILE_MAX_LOADS], bk[TILE_MAX_LOADS];
#pragma unroll
    for (int p = 0; p < LA; p++) {
        const uint e = t + (uint)(p * NT);
        if (ta) { am[p] = (int)(e % (uint)BM); ak[p] = (int)(e / (uint)BM); }
        else { ak[p] = (int)(e % (uint)BK); am[p] = (int)(e / (uint)BK); }
    }
#pragma unroll
    for (int p = 0; p < LB; p++) {
        const uint e = t + (uint)(p * NT);
        if (tb) { bk[p] = (int)(e % (uint)BK); bn[p] = (int)(e / (uint)BK); }
        else { bn[p] = (int)(e % (uint)BN); bk[p] = (int)(e / (uint)BN); }
    }
    conv_slot bs[TILE_MAX_LOADS];    /* implicit op(B): what each load's column gives (slot_of) */
#pragma unroll
    for (int p = 0; p < LB; p++) bs[p] = slot_of(min(n0 + bn[p], N - 1), bv, tb, cg);   /* past N: never read */
    float ra[TILE_MAX_LOADS], rb[TILE_MAX_LOADS];
#define TILE_LOAD(k0)                                                                                  \
    do {                                                                                               \
        _Pragma("unroll") for (int p = 0; p < LA; p++) {                                               \
            const int gm = m0 + am[p], gk = (k0) + ak[p];                                              \
            ra[p] = (gm < M && gk < ke) ? A[av ? chw_index(gm, gk, cg) : ta ? gk * lda + gm : gm * lda + gk] \
                                        : 0.0f;                                                        \
        }                                                                                              \
        _Pragma("unroll") for (int p = 0; p < LB; p++) {                                               \
            const int gn = n0 + bn[p], gk = (k0) + bk[p];                                              \
            rb[p] = (gn < N && gk < ke) ? (bv ? implicit_b(B, gk, bs[p], bv, tb, cg)                  \
                                              : B[tb ? gn * ldb + gk : gk * ldb + gn])                 \
                                        : 0.0f;                                                        \
        }                                                                                              \
    } while (0)

    float acc[8][8];
#pragma unroll
    for (int i = 0; i < 8; i++)
#pragma unroll
        for (int j = 0; j < 8; j++) acc[i][j] = 0.0f;

    /* has_sums: the work-groups of the first column tile also sum op(A)'s
     * columns over their k (a work-item per row of the tile, in k order) */
    const int summing = has_sums && n0 == 0 && (int)t < BM;
    float srow = 0.0f;
    TILE_LOAD(kb);
    for (int k0 = kb, it = 0; k0 < ke; k0 += BK, it++) {
        /* DB: two buffers, a slice to each in turn: the barrier after a
         * store is the only one, since every work-item passed it after it
         * last read the buffer the next store fills */
        const int buf = DB ? (it & 1) : 0;
        __local float *Ab = As + buf * BK * sa, *Bb = Bs + buf * BK * sb;
        __local const float4 *Ab4 = As4 + buf * BK * (sa / 4), *Bb4 = Bs4 + buf * BK * (sb / 4);
        if (!DB) barrier(CLK_LOCAL_MEM_FENCE);  /* the previous slice is no longer read */
#pragma unroll
        for (int p = 0; p < LA; p++) Ab[ak[p] * sa + am[p]] = ra[p];
#pragma unroll
        for (int p = 0; p < LB; p++) Bb[bk[p] * sb + bn[p]] = rb[p];
        barrier(CLK_LOCAL_MEM_FENCE);
        if (summing)
#pragma unroll
            for (int k = 0; k < BK; k++) srow += Ab[k * sa + (int)t];
        if (k0 + BK < ke) TILE_LOAD(k0 + BK);
#pragma unroll
        for (int k = 0; k < BK; k++) {
            float a[8], bv[8];
#pragma unroll
            for (int g = 0; g < TM / 4; g++) {
                const float4 v = Ab4[k * (sa / 4) + g * WY + ty];
                a[g * 4] = v.x; a[g * 4 + 1] = v.y; a[g * 4 + 2] = v.z; a[g * 4 + 3] = v.w;
            }
#pragma unroll
            for (int h = 0; h < TN / 4; h++) {
                const float4 v = Bb4[k * (sb / 4) + h * WX + tx];
                bv[h * 4] = v.x; bv[h * 4 + 1] = v.y; bv[h * 4 + 2] = v.z; bv[h * 4 + 3] = v.w;
            }
#pragma unroll
            for (int i = 0; i < TM; i++)
#pragma unroll
                for (int j = 0; j < TN; j++) acc[i][j] = fma(a[i], bv[j], acc[i][j]);
        }
    }
#undef TILE_LOAD
    if (summing && m0 + (int)t < M) {  /* k in parts: part's own sums after the parts' C (gemm_split_sum adds) */
        if (nsplit > 1) sums[(ulong)part * M + m0 + t] = srow;
        else sums[m0 + t] += srow;
    }

#pragma unroll
    for (int i = 0; i < TM; i++) {
        const int m = m0 + (i / 4) * (4 * WY) + ty * 4 + (i % 4);
        if (m >= M) continue;
#pragma unroll
        for (int h = 0; h < TN / 4; h++) {
            const int n = n0 + h * (4 * WX) + tx * 4;
            __global float *c = C + m * ldc + n;
            if (cv) {                  /* nsplit 1: the caller keeps a scattered C whole */
#pragma unroll
                for (int q = 0; q < 4; q++) {
                    if (n + q >= N) break;
                    __global float *cq = C + chw_index(m, n + q, cg);
                    const float r = alpha * acc[i][h * 4 + q];
                    *cq = beta != 0.0f ? fma(beta, *cq, r) : r;
                }
            } else if (n + 4 <= N) {
                float4 r = alpha * (float4)(acc[i][h * 4], acc[i][h * 4 + 1], acc[i][h * 4 + 2], acc[i][h * 4 + 3]);
                if (beta != 0.0f) r = fma((float4)(beta), vload4(0, c), r);
                if (epi) r = gemm_epilogue4(r, bias + n, epi);
                vstore4(r, 0, c);
            } else {
#pragma unroll
                for (int q = 0; q < 4; q++) {
                    if (n + q >= N) break;
                    const float r = alpha * acc[i][h * 4 + q];
                    const float v = beta != 0.0f ? fma(beta, c[q], r) : r;
                    c[q] = epi ? gemm_epilogue(v, bias[n + q], epi) : v;
                }
            }
        }
    }
}

/* cl/blas_tile_conv.cl is built with this file before it (src/device/device.c)
 * and BLAS_TILE_PRELUDE defined: the helpers above, none of the kernels below. */
#ifndef BLAS_TILE_PRELUDE

/* One kernel per layout and tile shape: the arguments and the body they share. */
#define GEMM_TILE_ARGS                                                                                        \
    __global float *C, const ulong C_off, __global const float *A, const ulong A_off, __global const float *B, \
        const ulong B_off, const int M, const int N, const int K, const int lda, const int ldb, const int ldc,  \
        const ulong sA, const ulong sB, const ulong sC, const float alpha, const float beta, const int nsplit,   \
        const int kc, const uint zi, const ulong sAo, const ulong sBo, const ulong sCo,                         \
        __global const float *bias, const ulong bias_off, const int epi, __global float *sums,                  \
        const ulong sums_off, const int has_sums
#define GEMM_TILE_BODY(TA, TB, BM, BN, BK, WX, WY, DB)                                                        \
    __local float4 As4[(1 + (DB)) * (BK) * ((BM) + TILE_PAD) / 4];                                            \
    __local float4 Bs4[(1 + (DB)) * (BK) * ((BN) + TILE_PAD) / 4];                                            \
    const conv_geom none = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0.0f, 0.0f, 0.0f, 0.0f};                          \
    gemm_tile(C + C_off, A + A_off, B + B_off, M, N, K, lda, ldb, ldc, sA, sB, sC, alpha, beta, nsplit, kc,   \
              zi, sAo, sBo, sCo, bias + bias_off, epi, sums + sums_off, has_sums, As4, Bs4, TA, TB, BM, BN, BK, \
              WX, WY, DB, 0, 0, 0, none)
__kernel __attribute__((reqd_work_group_size(TS_WX, TS_WY, 1))) void gemm_tile_small_nn(GEMM_TILE_ARGS) {
    GEMM_TILE_BODY(0, 0, TS_BM, TS_BN, TS_BK, TS_WX, TS_WY, TS_DB);
}
__kernel __attribute__((reqd_work_group_size(TS_WX, TS_WY, 1))) void gemm_tile_small_nt(GEMM_TILE_ARGS) {
    GEMM_TILE_BODY(0, 1, TS_BM, TS_BN, TS_BK, TS_WX, TS_WY, TS_DB);
}
__kernel __attribute__((reqd_work_group_size(TS_WX, TS_WY, 1))) void gemm_tile_small_tn(GEMM_TILE_ARGS) {
    GEMM_TILE_BODY(1, 0, TS_BM, TS_BN, TS_BK, TS_WX, TS_WY, TS_DB);
}
__kernel __attribute__((reqd_work_group_size(TS_WX, TS_WY, 1))) void gemm_tile_small_tt(GEMM_TILE_ARGS) {
    GEMM_TILE_BODY(1, 1, TS_BM, TS_BN, TS_BK, TS_WX, TS_WY, TS_DB);
}
__kernel __attribute__((reqd_work_group_size(TL_WX, TL_WY, 1))) void gemm_tile_large_nn(GEMM_TILE_ARGS) {
    GEMM_TILE_BODY(0, 0, TL_BM, TL_BN, TL_BK, TL_WX, TL_WY, TL_DB);
}
__kernel __attribute__((reqd_work_group_size(TL_WX, TL_WY, 1))) void gemm_tile_large_nt(GEMM_TILE_ARGS) {
    GEMM_TILE_BODY(0, 1, TL_BM, TL_BN, TL_BK, TL_WX, TL_WY, TL_DB);
}
__kernel __attribute__((reqd_work_group_size(TL_WX, TL_WY, 1))) void gemm_tile_large_tn(GEMM_TILE_ARGS) {
    GEMM_TILE_BODY(1, 0, TL_BM, TL_BN, TL_BK, TL_WX, TL_WY, TL_DB);
}
__kernel __attribute__((reqd_work_group_size(TL_WX, TL_WY, 1))) void gemm_tile_large_tt(GEMM_TILE_ARGS) {
    GEMM_TILE_BODY(1, 1, TL_BM, TL_BN, TL_BK, TL_WX, TL_WY, TL_DB);
}

/* C (M x N, ldc) = beta C + the sum of gemm_tile's nsplit parts (W: nsplit
 * contiguous M x N matrices), added in order, then gemm_epilogue (epi). With
 * has_sums, sums (M) += the parts' row sums (nsplit x M after the parts in
 * W), added in order, by the work-items of column 0. Range (N, M). */
__kernel void gemm_split_sum(__global float *C, const ulong C_off, __global const float *W, const ulong W_off,
                             const int M, const int N, const int ldc, const int nsplit, const float beta,
                             __global const float *bias, const ulong bias_off, const int epi,
                             __global float *sums, const ulong sums_off, const int has_sums) {
    const int n = (int)get_global_id(0), m = (int)get_global_id(1);
    if (n >= N || m >= M) return;
    const ulong mn = (ulong)M * (ulong)N;
    if (has_sums && n == 0) {
        __global const float *ws = W + W_off + nsplit * mn + m;
        float t = ws[0];
        for (int p = 1; p < nsplit; p++) t += ws[(ulong)p * M];
        sums[sums_off + m] += t;
    }
    __global const float *w = W + W_off + (ulong)m * N + n;
    float s = 0.0f;
    for (int p = 0; p < nsplit; p++) s += w[p * mn];
    __global float *c = C + C_off + (ulong)m * ldc + n;
    const float v = beta != 0.0f ? fma(beta, *c, s) : s;
    *c = epi ? gemm_epilogue(v, bias[bias_off + n], epi) : v;
}

#endif   /* BLAS_TILE_PRELUDE */
