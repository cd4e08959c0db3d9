/* The device layer: OpenCL platforms and devices, one context and one in-order
 * queue, kernels built at runtime from the cl/ files (embedded at build time, cached
 * on disk as binaries), a buffer pool, checked launches, and CLBlast GEMM.
 *
 * Device memory is addressed as (buffer, element offset) pairs — cd_mem — as
 * CLBlast does, so views need no sub-buffers. Every kernel takes each pointer
 * as two arguments: `__global float *x, const ulong x_off` (see cl/common.h
 * conventions in cl/elementwise.cl). */
#ifndef CLDETR_DEVICE_H
#define CLDETR_DEVICE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifndef CL_TARGET_OPENCL_VERSION
#define CL_TARGET_OPENCL_VERSION 120
#endif
#include <CL/cl.h>

#include "cldetr/common.h"

/* ---- errors ------------------------------------------------------------ */

const char *cd_cl_status_name(cl_int status);       /* "CL_OUT_OF_RESOURCES" */
const char *cd_cl_status_hint(cl_int status);       /* what to do about it */
const char *cd_clblast_status_name(int status);
CD_NORETURN void cd_cl_fail(cl_int status, const char *expr, const char *file, int line);
CD_NORETURN void cd_clblast_fail(int status, const char *expr, const char *file, int line);

/* Check an OpenCL call that returns a status. */
#define CL_CHECK(expr) do { cl_int cd_st_ = (expr); \
    if (cd_st_ != CL_SUCCESS) cd_cl_fail(cd_st_, #expr, __FILE__, __LINE__); } while (0)
/* Check the errcode_ret of a clCreate* call: `x = clCreateBuffer(..., &err); CL_CHECK_ERR(err, "clCreateBuffer");` */
#define CL_CHECK_ERR(err, what) do { if ((err) != CL_SUCCESS) cd_cl_fail((err), (what), __FILE__, __LINE__); } while (0)
/* Check a CLBlast call. */
#define CLBLAST_CHECK(expr) do { int cd_bst_ = (int)(expr); \
    if (cd_bst_ != 0) cd_clblast_fail(cd_bst_, #expr, __FILE__, __LINE__); } while (0)

/* ---- devices ----------------------------------------------------------- */

typedef struct {
    int index;                  /* flat index over all platforms, as `cldetr devices` prints */
    int platform_index, device_index;
    cl_platform_id platform;
    cl_device_id device;
    cl_device_type type;
    char platform_name[128], platform_version[128];
    char name[256], vendor[128], driver_version[128], version[128], c_version[128];
    cl_ulong global_mem, max_alloc, local_mem;
    cl_uint compute_units;
    size_t max_work_group;
    int fp16, fp64;
} cd_device_info;

/* Every device of every platform. Returns the count (>= 1), or -1 with
 * cd_errbuf() saying what to install when there is no platform or device. */
int cd_list_devices(cd_device_info **out);

/* Pick a device: spec NULL or "" = the default (first GPU, else first CPU, else
 * the first device); "gpu" / "cpu" / "any" = first of that type; a number = the
 * flat index; otherwise a case-insensitive substring of the device name (or
 * "PLATFORM:DEVICE" indices). The environment variable CLDETR_DEVICE, when set,
 * overrides spec. Returns the list index or -1 with cd_errbuf(). */
int cd_select_device(const cd_device_info *list, int n, const char *spec);

/* The device of the process with this local rank (its index among a
 * data-parallel job's processes on the node, include/cldetr/dist.h): with
 * spec NULL, "", "gpu", "cpu" or "any" and no CLDETR_DEVICE, local rank r
 * takes the (r mod count)-th device of that type (the default: GPUs, else
 * CPUs); an index or a name in spec or CLDETR_DEVICE picks the same device
 * for every rank. Local rank 0 gives what cd_select_device gives. */
int cd_select_device_local(const cd_device_info *list, int n, const char *spec, int local_rank);

const char *cd_device_type_name(cl_device_type t);

/* ---- an open device ---------------------------------------------------- */

typedef struct { cl_mem mem; size_t off; } cd_mem;      /* off counts floats */
static inline cd_mem cd_at(cd_mem m, size_t off) { m.off += off; return m; }

typedef struct cd_kernel_entry cd_kernel_entry;
typedef struct cd_program_entry cd_program_entry;
typedef struct cd_pool_entry cd_pool_entry;
typedef struct cd_profile_entry cd_profile_entry;

/* A tile shape of cl/blas_tile.cl's GEMM kernels: a bm x bn tile of C per
 * wx x wy work-group, k staged bk deep in local memory, in one buffer or
 * (db) two in turn. */
typedef struct { int bm, bn, bk, wx, wy, db; } cd_tile_shape;

typedef struct cd_device {
    cd_device_info info;
    cl_context ctx;
    cl_command_queue queue;
    int profiling;                  /* queue created with CL_QUEUE_PROFILING_ENABLE */
    char build_options[256];        /* options every program is built with */
    /* programs: one per cl/ file, built on first use of one of its kernels */
    cd_program_entry *programs; int n_programs;
    cd_kernel_entry *kernels; int n_kernels, cap_kernels;
    char **retired_names; int n_retired;   /* names of kernels of dropped programs (cd_drop_program) */
    /* buffer pool: freed buffers kept by size for reuse */
    cd_pool_entry *pool; int n_pool, cap_pool;
    size_t bytes_live, bytes_pooled, bytes_peak;
    const char *oom_hint;           /* which config keys shrink memory, set by the caller */
    /* CLBlast scratch for the GEMM pre-pass, grown on demand */
    cl_mem blas_temp; size_t blas_temp_bytes;
    /* profiling: events of launches since the last cd_profile_collect */
    cl_event *events; const char **event_names; int n_events, cap_events;
    cd_profile_entry *profile; int n_profile;
    int verbose;
    int cpu_shaped;                 /* kernels in their CPU shape (cd_cpu_shaped) */
    const char *gemm_params;        /* where the GEMM parameters came from: "tuned (cldetr tune)",
                                       "built-in for CPUs" or "CLBlast's defaults" */
    cd_tile_shape tiles[2];         /* the GPU tile GEMM's small and large tile shapes */
    const char *tile_params;        /* where they came from: "built-in" or "tuned (cldetr tune)" */
} cd_device;

/* Open a device (spec as cd_select_device). Returns NULL with cd_errbuf(). */
cd_device *cd_open(const char *spec, int profiling);
/* The same for the process of this local rank (cd_select_device_local). */
cd_device *cd_open_local(const char *spec, int profiling, int local_rank);
void cd_close(cd_device *dev);
void cd_finish(cd_device *dev);

/* Kernels in their CPU shape (a work-item runs loops with explicit vectors:
 * conv_dw_nt, cl/blas.cl's GEMM, the row-wise layer norm and softmax) rather
 * than their GPU shape (work-groups sharing local memory, CLBlast): every
 * device that does not say it is a GPU, unless CLDETR_KERNEL_SHAPE=cpu|gpu
 * says otherwise at cd_open (oclgrind calls itself a GPU; its test runs the
 * CPU shape too). Each user keeps its own switch for tests on top of this. */
static inline int cd_cpu_shaped(const cd_device *dev) { return dev->cpu_shaped; }

/* ---- kernels ----------------------------------------------------------- */

/* Where kernel sources come from: CLDETR_KERNEL_DIR, else the embedded copy. */
const char *cd_kernel_source(const char *file);          /* NULL if unknown */
int cd_kernel_files(const char ***names);                /* list of cl/ file names */

/* Build one cl/ file for this device (through the binary cache). Returns 0 or
 * -1 with cd_errbuf() holding the compiler log ("file.cl:LINE:COL: error ..."). */
int cd_build_file(cd_device *dev, const char *file);
/* Build every cl/ file; returns the number that failed (logs in stderr). */
int cd_build_all(cd_device *dev, FILE *log);
/* Release a built program and its kernels (after cd_finish); the next launch
 * of one of its kernels builds it again (with the options of the moment). */
void cd_drop_program(cd_device *dev, const char *file);

/* A kernel by name, building its file on first use; fatal if the name is unknown
 * or its file does not build. */
cl_kernel cd_kernel(cd_device *dev, const char *name);

typedef struct {
    int kind;                       /* 1 mem (2 args), 2 int, 3 uint, 4 float, 5 local bytes, 6 ulong */
    union { cd_mem m; cl_int i; cl_uint u; cl_float f; size_t local_bytes; cl_ulong ul; } v;
} cd_karg;
#define KM(x) ((cd_karg){.kind = 1, .v.m = (x)})
#define KI(x) ((cd_karg){.kind = 2, .v.i = (cl_int)(x)})
#define KU(x) ((cd_karg){.kind = 3, .v.u = (cl_uint)(x)})
#define KF(x) ((cd_karg){.kind = 4, .v.f = (cl_float)(x)})
#define KLOCAL(bytes) ((cd_karg){.kind = 5, .v.local_bytes = (bytes)})
#define KUL(x) ((cd_karg){.kind = 6, .v.ul = (cl_ulong)(x)})

/* Launch `name` over an n-D range. global[] is rounded up to a multiple of the
 * local size, so kernels guard with `if (gid >= n) return;`. local NULL = chosen
 * from the device (CL_KERNEL_WORK_GROUP_SIZE and its preferred multiple). */
void cd_launch(cd_device *dev, const char *name, int dims, const size_t *global,
               const size_t *local, const cd_karg *args, int nargs);
#define CD_NARGS(...) ((int)(sizeof((cd_karg[]){__VA_ARGS__}) / sizeof(cd_karg)))
/* 1-D launch over n work-items: CD_LAUNCH1(dev, "relu_forward", n, KM(out), KM(x), KI(n)) */
#define CD_LAUNCH1(dev, name, n, ...) \
    cd_launch((dev), (name), 1, (size_t[]){(n)}, NULL, (cd_karg[]){__VA_ARGS__}, CD_NARGS(__VA_ARGS__))
/* A 1-D launch over exactly n work-items, for a kernel whose bounds guard
 * would cost it its vector code: PoCL runs a kernel with a guarded body of
 * several stores and a sqrt or a division one work-item at a time (AdamW: 3.3x
 * slower). `name` has no guard and runs over the largest multiple of its
 * work-group size; `tail_name`, the same body behind `if (gid >= n) return;`,
 * runs over the rest from that global offset. Both take the same arguments. */
void cd_launch1_split(cd_device *dev, const char *name, const char *tail_name, size_t n, const cd_karg *args,
                      int nargs);
#define CD_LAUNCH1_SPLIT(dev, name, tail_name, n, ...) \
    cd_launch1_split((dev), (name), (tail_name), (n), (cd_karg[]){__VA_ARGS__}, CD_NARGS(__VA_ARGS__))
/* 2-D / 3-D launches with automatic local size */
#define CD_LAUNCH2(dev, name, n0, n1, ...) \
    cd_launch((dev), (name), 2, (size_t[]){(n0), (n1)}, NULL, (cd_karg[]){__VA_ARGS__}, CD_NARGS(__VA_ARGS__))
#define CD_LAUNCH3(dev, name, n0, n1, n2, ...) \
    cd_launch((dev), (name), 3, (size_t[]){(n0), (n1), (n2)}, NULL, (cd_karg[]){__VA_ARGS__}, CD_NARGS(__VA_ARGS__))
/* Launch with an explicit work-group size (global is a multiple of local). */
#define CD_LAUNCH_WG(dev, name, dims, global, local, ...) \
    cd_launch((dev), (name), (dims), (global), (local), (cd_karg[]){__VA_ARGS__}, CD_NARGS(__VA_ARGS__))

/* Local size along dim 0 for kernels whose work-items along it share one
 * operand's stripe (the row GEMM, the implicit convolutions): as many of the
 * blocks0 blocks as keep at least 4 work-groups per compute unit, at most 64;
 * `others` is the range's extent in the other dimensions. */
size_t cd_blocks_local(const cd_device *dev, size_t blocks0, size_t others);

/* Largest work-group size this kernel can use on this device. */
size_t cd_kernel_wg_size(cd_device *dev, const char *name);
/* How many times a kernel was enqueued on dev (0 when never built; tests). */
long cd_kernel_launches(const cd_device *dev, const char *name);

/* ---- memory ------------------------------------------------------------ */

/* n floats from the pool (reused by exact size) or a new buffer. `what` names
 * the tensor in out-of-memory messages. Contents are undefined (garbage). */
cd_mem cd_alloc(cd_device *dev, size_t n, const char *what);
void cd_free(cd_device *dev, cd_mem m);               /* back to the pool */
void cd_pool_trim(cd_device *dev);                    /* release pooled buffers */
size_t cd_mem_floats(cd_mem m);                       /* capacity of the buffer from m.off */

void cd_write(cd_device *dev, cd_mem dst, const float *src, size_t n);     /* blocking */
void cd_read(cd_device *dev, float *dst, cd_mem src, size_t n);            /* blocking */
void cd_write_bytes(cd_device *dev, cl_mem dst, size_t off_bytes, const void *src, size_t n);
void cd_read_bytes(cd_device *dev, void *dst, cl_mem src, size_t off_bytes, size_t n);
void cd_fill(cd_device *dev, cd_mem dst, float value, size_t n);
void cd_copy(cd_device *dev, cd_mem dst, cd_mem src, size_t n);

/* ---- profiling --------------------------------------------------------- */

struct cd_profile_entry { const char *name; double ms; long count; };
/* Wait, read the recorded launch events, add them to dev->profile. */
void cd_profile_collect(cd_device *dev);
void cd_profile_print(cd_device *dev, FILE *f);
void cd_profile_reset(cd_device *dev);
/* Record an event for the profile (used by the BLAS wrapper). */
void cd_profile_add_event(cd_device *dev, const char *name, cl_event ev);

/* ---- cache ------------------------------------------------------------- */

/* $XDG_CACHE_HOME/cldetr or ~/.cache/cldetr, created on demand. */
const char *cd_cache_dir(void);
/* Load/store a blob keyed by a 64-bit key under the cache dir (name prefix).
 * load returns NULL when absent or corrupt (a corrupt entry is deleted). */
void *cd_cache_load(const char *prefix, uint64_t key, size_t *len);
int cd_cache_store(const char *prefix, uint64_t key, const void *data, size_t len);

/* ---- GEMM, row-major -------------------------------------------------------
 * C[M,N] = alpha * op(A) op(B) + beta * C, op(A) is [M,K], op(B) is [K,N];
 * ta/tb: 0 = as stored, 1 = transposed. lda/ldb/ldc are row strides of the
 * matrices as stored. The kernels: as cd_gemm_kernels says (cldetr's row
 * kernels on CPUs, CLBlast keeping A^T B^T there; its tile kernels on GPUs). */
void cd_gemm(cd_device *dev, int ta, int tb, size_t M, size_t N, size_t K,
             float alpha, cd_mem A, size_t lda, cd_mem B, size_t ldb,
             float beta, cd_mem C, size_t ldc);
/* C (M, N) = A (M, K) B^T (B stored (N, K)) + bias (N) on every row, then
 * with relu a ReLU, in the product's launch where cldetr's own kernels run the
 * device's GEMMs (row kernels on CPUs, tile kernels on GPUs: a linear layer's
 * forward): returns 1 when done, 0 when nothing was computed and the caller
 * must do it another way (cd_gemm, then the bias). */
int cd_gemm_bias_nt(cd_device *dev, size_t M, size_t N, size_t K, cd_mem A, size_t lda, cd_mem B, size_t ldb,
                    cd_mem C, size_t ldc, cd_mem bias, int relu);
/* C (M, N) += A^T B (A stored (K, M), B (K, N)) and sums (M) += the rows of
 * A^T summed in k order, in the product's launch where cldetr's own kernels
 * run the device's GEMMs (a linear layer's weight and bias gradients; on the
 * row kernels the bits of ops_reduce_axis's column sums, on the tile kernels
 * not, and with k in parts one more launch): 1 when done, 0 when nothing was
 * computed and the caller must do it another way. */
int cd_gemm_tn_sums(cd_device *dev, size_t M, size_t N, size_t K, cd_mem A, size_t lda, cd_mem B, size_t ldb,
                    cd_mem C, size_t ldc, cd_mem sums);
/* batch independent GEMMs with strides (in floats) between consecutive A, B, C. */
void cd_gemm_batched(cd_device *dev, int ta, int tb, size_t M, size_t N, size_t K,
                     float alpha, cd_mem A, size_t lda, size_t strideA,
                     cd_mem B, size_t ldb, size_t strideB,
                     float beta, cd_mem C, size_t ldc, size_t strideC, size_t batch);
/* The matrices of a batched GEMM in two levels, outer x inner of them: matrix
 * (o, i) of A starts o * sAo + i * sA floats into A, likewise B and C; the
 * same kernels and results as a one-level batch of inner * outer. Attention
 * reads its heads in place this way: (B, L, heads * hd) tensors are B x heads
 * matrices (L, hd) with row stride heads * hd, sA = hd, sAo = L * heads * hd. */
typedef struct { size_t inner, outer, sA, sB, sC, sAo, sBo, sCo; } cd_batch;
void cd_gemm_strided(cd_device *dev, int ta, int tb, size_t M, size_t N, size_t K, float alpha, cd_mem A,
                     size_t lda, cd_mem B, size_t ldb, float beta, cd_mem C, size_t ldc, const cd_batch *bt);
/* Which kernels cd_gemm runs on dev: CLBlast, cl/blas.cl's row kernels (the
 * default on devices that are not GPUs) or cl/blas_tile.cl's tile kernels
 * (the default on GPUs that allow 256-work-item groups). CLDETR_GEMM_KERNELS=clblast|rows|
 * tiles|auto overrides the default for a run; cd_gemm_set_kernels overrides both
 * for tests and benchmarks (a CD_GEMM_* value, -1 = by device and
 * environment) and returns the old setting. */
enum { CD_GEMM_CLBLAST = 0, CD_GEMM_ROWS = 1, CD_GEMM_TILES = 2 };
int cd_gemm_kernels(const cd_device *dev);
int cd_gemm_set_kernels(int mode);
const char *cd_gemm_kernels_name(const cd_device *dev);   /* for logs: "CLBlast", ... */
/* Tests and benchmarks: force the tile kernels' tile shape (CD_TILE_SMALL or
 * CD_TILE_LARGE; 0 = by the product's shape) and their number of k parts
 * (>= 1; 0 = by shape). */
enum { CD_TILE_SMALL = 1, CD_TILE_LARGE = 2 };
void cd_gemm_set_tiles(int tile, int nsplit);
/* "GEMM parameters" for logs: the tile shapes' origin on the tile kernels,
 * CLBlast's parameters' otherwise (e.g. "tile shapes: built-in"). */
const char *cd_gemm_params(const cd_device *dev);
/* Parse a "Tiles S_BM=64 S_BN=64 S_BK=8 S_WX=16 S_WY=16 L_BM=128 ..." line
 * (the small shape, then the large, S_DB=1 / L_DB=1 optional; as `cldetr
 * tune` stores it) into
 * out[0..1], checking the kernels' rules (4 or 8 rows and columns per
 * work-item, whole loads per work-item, ...). Returns 0, or -1 with
 * cd_errbuf() naming the broken rule. */
int cd_gemm_parse_tiles(const char *line, cd_tile_shape out[2]);
/* The line of two shapes, as cd_gemm_parse_tiles reads it. */
void cd_gemm_tiles_line(const cd_tile_shape t[2], char *buf, size_t n);
/* Use these tile shapes on dev from now on (cl/blas_tile.cl is rebuilt with
 * them at its next launch). Returns 0, or -1 with cd_errbuf() when the device
 * cannot run them (work-group or local memory too large). */
int cd_gemm_set_tile_shapes(cd_device *dev, const cd_tile_shape t[2]);
/* A convolution's products on the GPU tile kernels with implicit operands
 * (no im2col columns, no packed copies): the batch's images x (B, C, H, W),
 * the output or its gradient (B, K, Ho, Wo), the window R x S. which:
 *   CD_CONV_FW: out (B, M=K, P) = alpha A (M, K=CRS) . im2col(B=x) (CRS, N=B*P)
 *   CD_CONV_DW: C (M=K, N=CRS) = alpha A=dout (K, B*P) . im2col(B=x)^T + beta C
 *   CD_CONV_DX: C (M=CRS, N=B*P) = alpha A^T (A=w: K x CRS, lda) . B=dout (K, B*P) + beta C
 * The bits of the same products on im2col's columns. Returns 1 when launched,
 * 0 when the caller must use the columns (no tile kernels here, sizes past
 * the kernels' 2^24 divisions). */
typedef struct { int C, H, W, R, S, Ho, Wo, stride, pad, dil, K; } cd_conv_view;
enum { CD_CONV_FW = 0, CD_CONV_DW = 1, CD_CONV_DX = 2 };
int cd_gemm_conv(cd_device *dev, int which, size_t M, size_t N, size_t K, float alpha, cd_mem A, size_t lda,
                 cd_mem B, float beta, cd_mem C, size_t ldc, const cd_conv_view *v);
/* Apply stored GEMM tunings for this device (called by cd_open). */
void cd_blas_init(cd_device *dev);

#endif
