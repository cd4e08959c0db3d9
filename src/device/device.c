/* Platforms and devices, context and queue, kernel programs, launches, the
 * buffer pool and profiling. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "cldetr/device.h"
#include "device/kernels.h"
#include "blas_tile.h"

struct cd_program_entry {
    const char *file;
    cl_program program;         /* NULL until built */
    int failed;                 /* build failed once: don't retry in this process */
};

struct cd_kernel_entry {
    char *name;                 /* owned; stable (profile entries point at it) */
    cl_kernel kernel;
    cl_program program;         /* the program it came from (cd_drop_program) */
    size_t wg_size, wg_multiple;
    long launches;              /* enqueued so far (cd_kernel_launches) */
};

struct cd_pool_entry { cl_mem mem; size_t bytes; };

/* ---- listing and selection --------------------------------------------- */

static void info_str(cl_device_id d, cl_device_info what, char *buf, size_t n) {
    buf[0] = '\0';
    if (clGetDeviceInfo(d, what, n, buf, NULL) != CL_SUCCESS) snprintf(buf, n, "?");
    buf[n - 1] = '\0';
}

int cd_list_devices(cd_device_info **out) {
    cl_uint np = 0;
    cl_int st = clGetPlatformIDs(0, NULL, &np);
    *out = NULL;
    if (st != CL_SUCCESS || np == 0)
        return cd_seterr("no OpenCL platform found (%s).\n"
                         "  Install an OpenCL driver: pocl-opencl-icd runs on CPUs (apt-get install pocl-opencl-icd);\n"
                         "  for a GPU install its vendor's OpenCL driver (NVIDIA: the driver's OpenCL ICD, AMD: ROCm\n"
                         "  or mesa-opencl-icd, Intel: intel-opencl-icd). Check with `clinfo -l`; OCL_ICD_VENDORS and\n"
                         "  /etc/OpenCL/vendors/*.icd tell the loader where drivers are.",
                         st == CL_SUCCESS ? "0 platforms" : cd_cl_status_name(st));
    cl_platform_id *plats = cd_xcalloc(np, sizeof *plats);
    CL_CHECK(clGetPlatformIDs(np, plats, NULL));
    int n = 0, cap = 8;
    cd_device_info *list = cd_xcalloc(cap, sizeof *list);
    for (cl_uint p = 0; p < np; p++) {
        cl_uint nd = 0;
        if (clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, 0, NULL, &nd) != CL_SUCCESS || nd == 0) continue;
        cl_device_id *devs = cd_xcalloc(nd, sizeof *devs);
        CL_CHECK(clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, nd, devs, NULL));
        for (cl_uint d = 0; d < nd; d++) {
            if (n == cap) { cap *= 2; list = cd_xrealloc(list, cap * sizeof *list); }
            cd_device_info *x = &list[n];
            memset(x, 0, sizeof *x);
            x->index = n;
            x->platform_index = (int)p;
            x->device_index = (int)d;
            x->platform = plats[p];
            x->device = devs[d];
            clGetPlatformInfo(plats[p], CL_PLATFORM_NAME, sizeof x->platform_name, x->platform_name, NULL);
            clGetPlatformInfo(plats[p], CL_PLATFORM_VERSION, sizeof x->platform_version, x->platform_version, NULL);
            info_str(devs[d], CL_DEVICE_NAME, x->name, sizeof x->name);
            info_str(devs[d], CL_DEVICE_VENDOR, x->vendor, sizeof x->vendor);
            info_str(devs[d], CL_DRIVER_VERSION, x->driver_version, sizeof x->driver_version);
            info_str(devs[d], CL_DEVICE_VERSION, x->version, sizeof x->version);
            info_str(devs[d], CL_DEVICE_OPENCL_C_VERSION, x->c_version, sizeof x->c_version);
            clGetDeviceInfo(devs[d], CL_DEVICE_TYPE, sizeof x->type, &x->type, NULL);
            clGetDeviceInfo(devs[d], CL_DEVICE_GLOBAL_MEM_SIZE, sizeof x->global_mem, &x->global_mem, NULL);
            clGetDeviceInfo(devs[d], CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof x->max_alloc, &x->max_alloc, NULL);
            clGetDeviceInfo(devs[d], CL_DEVICE_LOCAL_MEM_SIZE, sizeof x->local_mem, &x->local_mem, NULL);
            clGetDeviceInfo(devs[d], CL_DEVICE_MAX_COMPUTE_UNITS, sizeof x->compute_units, &x->compute_units, NULL);
            clGetDeviceInfo(devs[d], CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof x->max_work_group, &x->max_work_group, NULL);
            char ext[8192];
            info_str(devs[d], CL_DEVICE_EXTENSIONS, ext, sizeof ext);
            x->fp16 = strstr(ext, "cl_khr_fp16") != NULL;
            x->fp64 = strstr(ext, "cl_khr_fp64") != NULL;
            n++;
        }
        free(devs);
    }
    free(plats);
    if (n == 0) {
        free(list);
        return cd_seterr("OpenCL platforms were found but no device.\n"
                         "  Install pocl-opencl-icd for CPUs or your GPU vendor's OpenCL driver; check with `clinfo -l`.");
    }
    *out = list;
    return n;
}

const char *cd_device_type_name(cl_device_type t) {
    if (t & CL_DEVICE_TYPE_GPU) return "gpu";
    if (t & CL_DEVICE_TYPE_CPU) return "cpu";
    if (t & CL_DEVICE_TYPE_ACCELERATOR) return "accel";
    return "other";
}

static int first_of_type(const cd_device_info *list, int n, cl_device_type t) {
    for (int i = 0; i < n; i++) if (list[i].type & t) return i;
    return -1;
}

int cd_select_device(const cd_device_info *list, int n, const char *spec) {
    const char *env = getenv("CLDETR_DEVICE");
    if (env && *env) spec = env;
    if (!spec || !*spec) {
        int i = first_of_type(list, n, CL_DEVICE_TYPE_GPU);
        if (i < 0) i = first_of_type(list, n, CL_DEVICE_TYPE_CPU);
        return i < 0 ? 0 : i;
    }
    if (!strcmp(spec, "any")) return 0;
    if (!strcmp(spec, "gpu") || !strcmp(spec, "cpu")) {
        int i = first_of_type(list, n, spec[0] == 'g' ? CL_DEVICE_TYPE_GPU : CL_DEVICE_TYPE_CPU);
        if (i < 0) return cd_seterr("no %s device found (see `cldetr devices`)%s", spec,
                                    env && *env ? "; CLDETR_DEVICE asked for it" : "");
        return i;
    }
    char *end;
    long idx = strtol(spec, &end, 10);
    if (end != spec && *end == '\0') {
        if (idx < 0 || idx >= n)
            return cd_seterr("device index %ld is out of range: there %s %d device%s (see `cldetr devices`)",
                             idx, n == 1 ? "is" : "are", n, n == 1 ? "" : "s");
        return (int)idx;
    }
    if (end != spec && *end == ':') {
        long d = strtol(end + 1, &end, 10);
        if (*end == '\0') {
            for (int i = 0; i < n; i++)
                if (list[i].platform_index == idx && list[i].device_index == d) return i;
            return cd_seterr("no device %ld on platform %ld (see `cldetr devices`)", d, idx);
        }
    }
    for (int i = 0; i < n; i++) if (cd_contains_ci(list[i].name, spec)) return i;
    for (int i = 0; i < n; i++) if (cd_contains_ci(list[i].platform_name, spec)) return i;
    return cd_seterr("no device matches '%s'%s: give an index, gpu, cpu, any, or part of a device name "
                     "(see `cldetr devices`)", spec, env && *env ? " (from CLDETR_DEVICE)" : "");
}

int cd_select_device_local(const cd_device_info *list, int n, const char *spec, int local_rank) {
    const char *env = getenv("CLDETR_DEVICE");
    int by_type = !spec || !*spec || !strcmp(spec, "gpu") || !strcmp(spec, "cpu") || !strcmp(spec, "any");
    if (local_rank <= 0 || (env && *env) || !by_type) return cd_select_device(list, n, spec);
    cl_device_type t = CL_DEVICE_TYPE_ALL;        /* "any" */
    if (!spec || !*spec) t = first_of_type(list, n, CL_DEVICE_TYPE_GPU) >= 0 ? CL_DEVICE_TYPE_GPU : CL_DEVICE_TYPE_CPU;
    else if (strcmp(spec, "any")) t = spec[0] == 'g' ? CL_DEVICE_TYPE_GPU : CL_DEVICE_TYPE_CPU;
    int count = 0;
    for (int i = 0; i < n; i++) count += (list[i].type & t) != 0;
    if (count == 0) return cd_select_device(list, n, spec);     /* its message: no device of that type */
    int want = local_rank % count;
    for (int i = 0; i < n; i++)
        if ((list[i].type & t) && want-- == 0) return i;
    return cd_select_device(list, n, spec);
}

/* ---- open / close ------------------------------------------------------ */

/* An error ends the process with exit(): the driver's worker threads must be
 * idle by then. PoCL compiles a kernel for its work-group size when a queued
 * launch first runs, in a worker thread, and exit() tearing the compiler down
 * under it aborted the process (exit 134 instead of the error's 1). Never
 * cd_finish here: a failing clFinish must not call cd_fatal again. */
static void finish_on_fatal(void *p) {
    cd_device *dev = p;
    if (dev && dev->queue) clFinish(dev->queue);
}

cd_device *cd_open(const char *spec, int profiling) { return cd_open_local(spec, profiling, 0); }

cd_device *cd_open_local(const char *spec, int profiling, int local_rank) {
    cd_device_info *list;
    int n = cd_list_devices(&list);
    if (n < 0) return NULL;
    int i = cd_select_device_local(list, n, spec, local_rank);
    if (i < 0) { free(list); return NULL; }
    cd_device *dev = cd_xcalloc(1, sizeof *dev);
    dev->info = list[i];
    free(list);
    cl_int err;
    cl_context_properties props[] = {CL_CONTEXT_PLATFORM, (cl_context_properties)dev->info.platform, 0};
    dev->ctx = clCreateContext(props, 1, &dev->info.device, NULL, NULL, &err);
    if (err != CL_SUCCESS) {
        cd_seterr("cannot create an OpenCL context on %s: %s (%s)", dev->info.name,
                  cd_cl_status_name(err), cd_cl_status_hint(err));
        free(dev);
        return NULL;
    }
    dev->profiling = profiling;
    dev->cpu_shaped = (dev->info.type & CL_DEVICE_TYPE_GPU) == 0;
    static const char *const shapes[] = {"cpu", "gpu"};
    int shape = cd_env_choice("CLDETR_KERNEL_SHAPE", shapes, 2, ", by the device's type");
    if (shape >= 0) dev->cpu_shaped = shape == 0;
    dev->queue = clCreateCommandQueue(dev->ctx, dev->info.device,
                                      profiling ? CL_QUEUE_PROFILING_ENABLE : 0, &err);
    if (err != CL_SUCCESS) {
        cd_seterr("cannot create a command queue on %s: %s", dev->info.name, cd_cl_status_name(err));
        clReleaseContext(dev->ctx);
        free(dev);
        return NULL;
    }
    /* No fast-math: -INFINITY masks, NaN guards and exp overflow need IEEE. */
    snprintf(dev->build_options, sizeof dev->build_options, "-cl-std=CL1.2");
    const char **files;
    dev->n_programs = cd_kernel_files(&files);
    dev->programs = cd_xcalloc(dev->n_programs, sizeof *dev->programs);
    for (int k = 0; k < dev->n_programs; k++) dev->programs[k].file = files[k];
    dev->verbose = getenv("CLDETR_VERBOSE") != NULL;
    memcpy(dev->tiles, blas_tile_builtin, sizeof dev->tiles);
    dev->tile_params = "built-in";
    cd_blas_init(dev);
    cd_atfatal(finish_on_fatal, dev);
    return dev;
}

void cd_finish(cd_device *dev) { CL_CHECK(clFinish(dev->queue)); }

void cd_close(cd_device *dev) {
    if (!dev) return;
    cd_atfatal_remove(finish_on_fatal, dev);
    clFinish(dev->queue);
    cd_profile_reset(dev);
    for (int i = 0; i < dev->n_kernels; i++) {
        clReleaseKernel(dev->kernels[i].kernel);
        free(dev->kernels[i].name);
    }
    for (int i = 0; i < dev->n_programs; i++) if (dev->programs[i].program) clReleaseProgram(dev->programs[i].program);
    cd_pool_trim(dev);
    if (dev->blas_temp) clReleaseMemObject(dev->blas_temp);
    clReleaseCommandQueue(dev->queue);
    clReleaseContext(dev->ctx);
    free(dev->kernels);
    for (int i = 0; i < dev->n_retired; i++) free(dev->retired_names[i]);
    free(dev->retired_names);
    free(dev->programs);
    free(dev->pool);
    free(dev->events);
    free(dev->event_names);
    free(dev->profile);
    free(dev);
}

/* ---- kernel sources ---------------------------------------------------- */

/* cl/common.cl is no program of its own: cd_build_file puts it before every file. */
#define COMMON_FILE "common.cl"

static const char **source_files;   /* the programs: every embedded file but COMMON_FILE */
static int n_source_files;
static char **disk_sources;         /* from CLDETR_KERNEL_DIR, parallel to cd_embedded_kernels */

int cd_kernel_files(const char ***names) {
    if (!source_files) {
        int n = 0;
        while (cd_embedded_kernels[n].file) n++;
        source_files = cd_xcalloc(n, sizeof *source_files);
        disk_sources = cd_xcalloc(n, sizeof *disk_sources);
        for (int i = 0; i < n; i++)
            if (strcmp(cd_embedded_kernels[i].file, COMMON_FILE)) source_files[n_source_files++] = cd_embedded_kernels[i].file;
    }
    *names = source_files;
    return n_source_files;
}

const char *cd_kernel_source(const char *file) {
    const char **names;
    cd_kernel_files(&names);
    for (int i = 0; cd_embedded_kernels[i].file; i++) {
        if (strcmp(cd_embedded_kernels[i].file, file)) continue;
        const char *dir = getenv("CLDETR_KERNEL_DIR");
        if (dir && *dir) {
            if (!disk_sources[i]) {
                char path[4096];
                snprintf(path, sizeof path, "%s/%s", dir, file);
                disk_sources[i] = cd_read_file(path, NULL);
                if (!disk_sources[i])
                    cd_fatal("CLDETR_KERNEL_DIR=%s: %s (unset CLDETR_KERNEL_DIR to use the embedded kernels)",
                             dir, cd_errbuf());
            }
            return disk_sources[i];
        }
        return cd_embedded_kernels[i].source;
    }
    return NULL;
}

/* Does `src` define `__kernel void NAME(`? A plain scan: kernels are declared
 * as "__kernel void name(" (or "__kernel __attribute__((...)) void name(") at
 * the start of a line in cl/ files. */
static int source_defines(const char *src, const char *name) {
    size_t n = strlen(name);
    for (const char *p = strstr(src, "__kernel"); p; p = strstr(p + 8, "__kernel")) {
        const char *q = p + 8;
        while (*q == ' ' || *q == '\t' || *q == '\n') q++;
        if (!strncmp(q, "__attribute__", 13)) {   /* __kernel __attribute__((...)) void name( */
            int depth = 0;
            for (q += 13; *q; q++) {
                if (*q == '(') depth++;
                else if (*q == ')' && --depth == 0) { q++; break; }
            }
            while (*q == ' ' || *q == '\t' || *q == '\n') q++;
        }
        if (strncmp(q, "void", 4)) continue;
        q += 4;
        while (*q == ' ' || *q == '\t' || *q == '\n') q++;
        if (!strncmp(q, name, n) && (q[n] == '(' || q[n] == ' ')) return 1;
    }
    return 0;
}

/* ---- program build with the binary cache -------------------------------- */

static uint64_t program_key(cd_device *dev, const char *file, const char *options, const char *src) {
    uint64_t h = CD_FNV_SEED;
    const char *parts[] = {dev->info.name, dev->info.vendor, dev->info.driver_version,
                           dev->info.platform_version, options, file, src};
    for (size_t i = 0; i < CD_ARRAY_LEN(parts); i++) h = cd_fnv1a(parts[i], strlen(parts[i]) + 1, h);
    return h;
}

static char *build_log(cd_device *dev, cl_program prog) {
    size_t n = 0;
    clGetProgramBuildInfo(prog, dev->info.device, CL_PROGRAM_BUILD_LOG, 0, NULL, &n);
    char *log = cd_xcalloc(n + 1, 1);
    if (n) clGetProgramBuildInfo(prog, dev->info.device, CL_PROGRAM_BUILD_LOG, n, log, NULL);
    return log;
}

static cl_program try_cached(cd_device *dev, uint64_t key, const char *options) {
    size_t len;
    unsigned char *bin = cd_cache_load("prog", key, &len);
    if (!bin) return NULL;
    cl_int err, bst;
    const unsigned char *b = bin;
    cl_program p = clCreateProgramWithBinary(dev->ctx, 1, &dev->info.device, &len, &b, &bst, &err);
    free(bin);
    if (err != CL_SUCCESS || bst != CL_SUCCESS) { if (p) clReleaseProgram(p); return NULL; }
    if (clBuildProgram(p, 1, &dev->info.device, options, NULL, NULL) != CL_SUCCESS) {
        clReleaseProgram(p);
        return NULL;               /* stale or foreign binary: rebuild from source */
    }
    return p;
}

static void store_binary(cl_program p, uint64_t key) {
    size_t len = 0;
    if (clGetProgramInfo(p, CL_PROGRAM_BINARY_SIZES, sizeof len, &len, NULL) != CL_SUCCESS || len == 0) return;
    unsigned char *bin = cd_xmalloc(len);
    unsigned char *bins[1] = {bin};
    if (clGetProgramInfo(p, CL_PROGRAM_BINARIES, sizeof bins, bins, NULL) == CL_SUCCESS)
        cd_cache_store("prog", key, bin, len);
    free(bin);
}

/* Some compilers (NVIDIA's) ignore `#line` and name the source "<kernel>" or
 * "<source>" with their own line numbering. Build a probe with an error on a
 * known line, learn the compiler's name for the source and its line offset,
 * and rewrite the log so that it reads "file.cl:LINE:COL" on every device.
 * Such a compiler also counts the common_lines lines of cl/common.cl and the
 * second `#line` before the file: a line among them is common.cl's. */
static char *fix_log_locations(cd_device *dev, const char *file, long common_lines, const char *log) {
    static const char probe[] = "#line 1 \"cldetr_probe.cl\"\n\n\n__kernel void cldetr_probe(void) { cldetr_probe_error; }\n";
    const char *src = probe;
    cl_int err;
    cl_program p = clCreateProgramWithSource(dev->ctx, 1, &src, NULL, &err);
    if (err != CL_SUCCESS) return cd_xstrdup(log);
    char name[32] = "";
    long offset = 0;
    if (clBuildProgram(p, 1, &dev->info.device, dev->build_options, NULL, NULL) != CL_SUCCESS) {
        char *plog = build_log(dev, p);
        const char *names[] = {"cldetr_probe.cl", "<kernel>", "<source>", "<stdin>", "input"};
        for (size_t i = 0; i < CD_ARRAY_LEN(names) && !name[0]; i++) {
            char pat[40];
            snprintf(pat, sizeof pat, "%s:", names[i]);
            const char *hit = strstr(plog, pat);
            long line;
            if (hit && sscanf(hit + strlen(pat), "%ld", &line) == 1) {
                snprintf(name, sizeof name, "%s", names[i]);
                offset = line - 3;            /* the probe's error is on line 3 */
            }
        }
        free(plog);
    }
    clReleaseProgram(p);
    if (!name[0] || (!strcmp(name, "cldetr_probe.cl") && offset == 0)) return cd_xstrdup(log);
    /* rewrite "<name>:N:" (or "file.cl:N:" when only the numbering is off) */
    int ignores_line = strcmp(name, "cldetr_probe.cl") != 0;
    const char *from = ignores_line ? name : file;
    size_t flen = strlen(from), cap = strlen(log) * 2 + 256, o = 0;
    char *out = cd_xmalloc(cap);
    for (const char *q = log; *q;) {
        long line;
        int used = 0;
        if (!strncmp(q, from, flen) && q[flen] == ':' && sscanf(q + flen + 1, "%ld%n", &line, &used) == 1 && used > 0) {
            if (o + 64 + strlen(file) >= cap) { cap *= 2; out = cd_xrealloc(out, cap); }
            line -= offset;
            if (ignores_line && line <= common_lines) o += (size_t)snprintf(out + o, cap - o, "%s:%ld", COMMON_FILE, line);
            else o += (size_t)snprintf(out + o, cap - o, "%s:%ld", file, line - (ignores_line ? common_lines + 1 : 0));
            q += flen + 1 + used;
            continue;
        }
        if (o + 2 >= cap) { cap *= 2; out = cd_xrealloc(out, cap); }
        out[o++] = *q++;
    }
    out[o] = '\0';
    return out;
}

/* "#line 1 "name"" and text, ending in a newline, at dst (room enough); returns the chars written */
static size_t put_file(char *dst, const char *name, const char *text) {
    size_t len = strlen(text);
    return (size_t)sprintf(dst, "#line 1 \"%s\"\n%s%s", name, text, len && text[len - 1] != '\n' ? "\n" : "");
}

static cd_program_entry *find_program(const cd_device *dev, const char *file) {
    for (int i = 0; i < dev->n_programs; i++)
        if (!strcmp(dev->programs[i].file, file)) return &dev->programs[i];
    return NULL;
}

int cd_build_file(cd_device *dev, const char *file) {
    cd_program_entry *pe = find_program(dev, file);
    if (!pe) return cd_seterr("no kernel file named %s", file);
    if (pe->program) return 0;
    if (pe->failed) return cd_seterr("%s failed to build earlier", file);
    const char *body = cd_kernel_source(file), *common = cd_kernel_source(COMMON_FILE);
    if (!common) common = "";
    /* blas_tile_conv.cl's kernels are built on blas_tile.cl's helpers: that
     * file goes between common.cl and it, its own kernels left out */
    const char *prelude = !strcmp(file, BLAS_TILE_CONV_FILE) ? cd_kernel_source(BLAS_TILE_FILE) : NULL;
    /* cl/common.cl, (the prelude,) then the file; #line makes compiler messages read "file.cl:LINE:COL".
     * The program cache key is the hash of this whole text. */
    size_t n = strlen(common) + strlen(body) + (prelude ? strlen(prelude) : 0) + 256, o = 0;
    char *src = cd_xmalloc(n);
    o += put_file(src + o, COMMON_FILE, common);
    if (prelude) {
        o += (size_t)sprintf(src + o, "#define BLAS_TILE_PRELUDE\n");
        o += put_file(src + o, BLAS_TILE_FILE, prelude);
    }
    /* the lines before the file's own #line (fix_log_locations; a compiler that ignores #line names
     * the prelude's lines common.cl's) */
    long common_lines = -1;
    for (size_t i = 0; i < o; i++) common_lines += src[i] == '\n';
    sprintf(src + o, "#line 1 \"%s\"\n%s", file, body);
    /* the options every program gets, and a file's own: the GPU tile GEMM's tile shapes */
    char options[sizeof dev->build_options + 256];
    snprintf(options, sizeof options, "%s", dev->build_options);
    if (!strcmp(file, BLAS_TILE_FILE) || prelude)
        blas_tile_options(dev, options + strlen(options), sizeof options - strlen(options));
    uint64_t key = program_key(dev, file, options, src);
    double t0 = cd_now();
    cl_program p = try_cached(dev, key, options);
    int from_cache = p != NULL;
    if (!p) {
        cl_int err;
        const char *s = src;
        p = clCreateProgramWithSource(dev->ctx, 1, &s, NULL, &err);
        CL_CHECK_ERR(err, "clCreateProgramWithSource");
        err = clBuildProgram(p, 1, &dev->info.device, options, NULL, NULL);
        if (err != CL_SUCCESS) {
            char *raw = build_log(dev, p);
            char *log = fix_log_locations(dev, file, common_lines, raw);
            cd_seterr("kernel file %s did not build for %s (%s):\n%s", file, dev->info.name,
                      cd_cl_status_name(err), log);
            free(raw);
            free(log);
            clReleaseProgram(p);
            free(src);
            pe->failed = 1;
            return -1;
        }
        store_binary(p, key);
    }
    free(src);
    pe->program = p;
    if (dev->verbose)
        fprintf(stderr, "cldetr: built %s in %.0f ms%s\n", file, 1e3 * (cd_now() - t0),
                from_cache ? " (from cache)" : "");
    return 0;
}

int cd_build_all(cd_device *dev, FILE *log) {
    int failed = 0;
    for (int i = 0; i < dev->n_programs; i++) {
        if (cd_build_file(dev, dev->programs[i].file) < 0) {
            if (log) fprintf(log, "%s\n", cd_errbuf());
            failed++;
        }
    }
    return failed;
}

void cd_drop_program(cd_device *dev, const char *file) {
    cd_program_entry *pe = find_program(dev, file);
    if (!pe || !pe->program) return;
    cd_finish(dev);
    int kept = 0;
    for (int i = 0; i < dev->n_kernels; i++) {
        cd_kernel_entry *ke = &dev->kernels[i];
        if (ke->program == pe->program) {
            clReleaseKernel(ke->kernel);
            /* profile entries point at the name: kept until cd_close */
            dev->retired_names = cd_xrealloc(dev->retired_names, (size_t)(dev->n_retired + 1) * sizeof(char *));
            dev->retired_names[dev->n_retired++] = ke->name;
        } else {
            dev->kernels[kept++] = *ke;
        }
    }
    dev->n_kernels = kept;
    clReleaseProgram(pe->program);
    pe->program = NULL;
    pe->failed = 0;
}

static cd_kernel_entry *find_kernel(const cd_device *dev, const char *name) {
    for (int i = 0; i < dev->n_kernels; i++)
        if (!strcmp(dev->kernels[i].name, name)) return &dev->kernels[i];
    return NULL;
}

static cd_kernel_entry *get_kernel(cd_device *dev, const char *name) {
    cd_kernel_entry *ke = find_kernel(dev, name);
    if (ke) return ke;
    int prog = -1;
    for (int i = 0; i < dev->n_programs && prog < 0; i++)
        if (source_defines(cd_kernel_source(dev->programs[i].file), name)) prog = i;
    if (prog < 0) cd_fatal("no kernel named '%s' in cl/*.cl", name);
    if (cd_build_file(dev, dev->programs[prog].file) < 0) cd_fatal("%s", cd_errbuf());
    if (dev->n_kernels == dev->cap_kernels) {
        dev->cap_kernels = dev->cap_kernels ? 2 * dev->cap_kernels : 64;
        dev->kernels = cd_xrealloc(dev->kernels, dev->cap_kernels * sizeof *dev->kernels);
    }
    ke = &dev->kernels[dev->n_kernels];
    memset(ke, 0, sizeof *ke);
    ke->name = cd_xstrdup(name);
    cl_int err;
    ke->program = dev->programs[prog].program;
    ke->kernel = clCreateKernel(dev->programs[prog].program, name, &err);
    if (err != CL_SUCCESS)
        cd_fatal("clCreateKernel(%s) from %s failed: %s", name, dev->programs[prog].file, cd_cl_status_name(err));
    CL_CHECK(clGetKernelWorkGroupInfo(ke->kernel, dev->info.device, CL_KERNEL_WORK_GROUP_SIZE,
                                      sizeof ke->wg_size, &ke->wg_size, NULL));
    CL_CHECK(clGetKernelWorkGroupInfo(ke->kernel, dev->info.device, CL_KERNEL_PREFERRED_WORK_GROUP_SIZE_MULTIPLE,
                                      sizeof ke->wg_multiple, &ke->wg_multiple, NULL));
    if (ke->wg_multiple == 0) ke->wg_multiple = 1;
    dev->n_kernels++;
    return ke;
}

cl_kernel cd_kernel(cd_device *dev, const char *name) { return get_kernel(dev, name)->kernel; }
size_t cd_kernel_wg_size(cd_device *dev, const char *name) { return get_kernel(dev, name)->wg_size; }

long cd_kernel_launches(const cd_device *dev, const char *name) {
    const cd_kernel_entry *ke = find_kernel(dev, name);
    return ke ? ke->launches : 0;
}

/* ---- launches ---------------------------------------------------------- */

static size_t round_up(size_t x, size_t m) { return (x + m - 1) / m * m; }

/* Local size for an automatic launch: a multiple of the preferred multiple, at
 * most the kernel's limit; 1-D aims at 64..256, 2-D/3-D spread it over dim 0. */
static void auto_local(const cd_kernel_entry *ke, int dims, const size_t *global, size_t *local) {
    size_t limit = ke->wg_size, mult = ke->wg_multiple;
    size_t target = CD_MIN(limit, (size_t)256);
    if (mult > target) mult = target;
    for (int d = 0; d < dims; d++) local[d] = 1;
    if (dims == 1) {
        size_t l = round_up(CD_MIN(target, CD_MAX(global[0], (size_t)1)), mult);
        local[0] = CD_MIN(l, target);
    } else {
        size_t l0 = CD_MIN(round_up(CD_MAX(global[0], (size_t)1), mult), CD_MIN(target, (size_t)64));
        local[0] = CD_MAX(l0, (size_t)1);
        size_t rest = target / local[0];
        local[1] = CD_MAX(CD_MIN(rest, global[1]), (size_t)1);
        /* keep a power of two in dim 1 so it divides typical sizes nicely */
        size_t p = 1; while (p * 2 <= local[1]) p *= 2; local[1] = p;
    }
}

size_t cd_blocks_local(const cd_device *dev, size_t blocks0, size_t others) {
    size_t target = 4 * CD_MAX((size_t)dev->info.compute_units, (size_t)2);
    size_t per = (blocks0 * others + target - 1) / target;
    return CD_MAX((size_t)1, CD_MIN(blocks0, CD_MIN(per, (size_t)64)));
}

static void set_args(cd_kernel_entry *ke, const char *name, const cd_karg *args, int nargs) {
    cl_kernel k = ke->kernel;
    cl_uint ai = 0;
    for (int i = 0; i < nargs; i++) {
        const cd_karg *a = &args[i];
        cl_int st;
        switch (a->kind) {
        case 1: {
            cl_ulong off = a->v.m.off;
            if (!a->v.m.mem) cd_fatal("kernel %s: argument %d is a null buffer (a bug in cldetr)", name, i);
            st = clSetKernelArg(k, ai++, sizeof(cl_mem), &a->v.m.mem);
            if (st == CL_SUCCESS) st = clSetKernelArg(k, ai++, sizeof off, &off);
            break;
        }
        case 2: st = clSetKernelArg(k, ai++, sizeof a->v.i, &a->v.i); break;
        case 3: st = clSetKernelArg(k, ai++, sizeof a->v.u, &a->v.u); break;
        case 4: st = clSetKernelArg(k, ai++, sizeof a->v.f, &a->v.f); break;
        case 5: st = clSetKernelArg(k, ai++, a->v.local_bytes, NULL); break;
        case 6: st = clSetKernelArg(k, ai++, sizeof a->v.ul, &a->v.ul); break;
        default: cd_fatal("kernel %s: bad argument kind %d", name, a->kind);
        }
        if (st != CL_SUCCESS)
            cd_fatal("kernel %s: setting argument %d (OpenCL index %u) failed: %s — the host launcher and the "
                     "kernel's signature disagree (a bug in cldetr)", name, i, ai - 1, cd_cl_status_name(st));
    }
}

/* Enqueue a kernel whose arguments are set; g is a multiple of l; offset NULL = 0. */
static void enqueue(cd_device *dev, cd_kernel_entry *ke, int dims, const size_t *offset, const size_t *g,
                    const size_t *l) {
    cl_event ev = NULL;
    cl_int st = clEnqueueNDRangeKernel(dev->queue, ke->kernel, (cl_uint)dims, offset, g, l, 0, NULL,
                                       dev->profiling ? &ev : NULL);
    if (st != CL_SUCCESS) {
        cd_fatal("launching kernel %s (global %zu x %zu x %zu, local %zu x %zu x %zu) failed: %s\n  hint: %s%s%s",
                 ke->name, g[0], dims > 1 ? g[1] : 1, dims > 2 ? g[2] : 1, l[0], dims > 1 ? l[1] : 1,
                 dims > 2 ? l[2] : 1, cd_cl_status_name(st), cd_cl_status_hint(st),
                 dev->oom_hint ? "; " : "", dev->oom_hint ? dev->oom_hint : "");
    }
    if (ev) cd_profile_add_event(dev, ke->name, ev);
    ke->launches++;
}

void cd_launch(cd_device *dev, const char *name, int dims, const size_t *global,
               const size_t *local, const cd_karg *args, int nargs) {
    cd_kernel_entry *ke = get_kernel(dev, name);
    set_args(ke, name, args, nargs);
    size_t g[3], l[3];
    if (local) for (int d = 0; d < dims; d++) l[d] = local[d];
    else auto_local(ke, dims, global, l);
    for (int d = 0; d < dims; d++) {
        if (global[d] == 0) return;   /* nothing to do */
        g[d] = round_up(global[d], l[d]);
    }
    enqueue(dev, ke, dims, NULL, g, l);
}

void cd_launch1_split(cd_device *dev, const char *name, const char *tail_name, size_t n, const cd_karg *args,
                      int nargs) {
    if (n == 0) return;
    cd_kernel_entry *ke = get_kernel(dev, name);
    size_t l;
    auto_local(ke, 1, &n, &l);
    size_t bulk = n / l * l;
    if (bulk) {
        set_args(ke, name, args, nargs);
        enqueue(dev, ke, 1, NULL, &bulk, &l);
    }
    if (bulk == n) return;
    cd_kernel_entry *kt = get_kernel(dev, tail_name);
    set_args(kt, tail_name, args, nargs);
    size_t lt, rest = n - bulk;
    auto_local(kt, 1, &rest, &lt);
    size_t gt = round_up(rest, lt);
    enqueue(dev, kt, 1, &bulk, &gt, &lt);
}

/* ---- memory ------------------------------------------------------------ */

cd_mem cd_alloc(cd_device *dev, size_t n, const char *what) {
    size_t bytes = CD_MAX(n, (size_t)1) * sizeof(float);
    for (int i = dev->n_pool - 1; i >= 0; i--) {
        if (dev->pool[i].bytes == bytes) {
            cd_mem m = {dev->pool[i].mem, 0};
            dev->pool[i] = dev->pool[--dev->n_pool];
            dev->bytes_pooled -= bytes;
            dev->bytes_live += bytes;
            if (dev->bytes_live > dev->bytes_peak) dev->bytes_peak = dev->bytes_live;
            return m;
        }
    }
    if (bytes > dev->info.max_alloc)
        cd_fatal("tensor '%s' needs %.1f MiB, more than one buffer can hold on %s (%.1f MiB)\n  hint: %s",
                 what ? what : "?", bytes / 1048576.0, dev->info.name, dev->info.max_alloc / 1048576.0,
                 dev->oom_hint ? dev->oom_hint : cd_cl_status_hint(CL_MEM_OBJECT_ALLOCATION_FAILURE));
    cl_int err;
    cl_mem mem = clCreateBuffer(dev->ctx, CL_MEM_READ_WRITE, bytes, NULL, &err);
    if (err != CL_SUCCESS && dev->n_pool) {        /* give pooled memory back and retry */
        cd_pool_trim(dev);
        mem = clCreateBuffer(dev->ctx, CL_MEM_READ_WRITE, bytes, NULL, &err);
    }
    if (err != CL_SUCCESS)
        cd_fatal("out of device memory allocating tensor '%s' (%.1f MiB; %.1f MiB already in use on %s): %s\n  hint: %s",
                 what ? what : "?", bytes / 1048576.0, dev->bytes_live / 1048576.0, dev->info.name,
                 cd_cl_status_name(err),
                 dev->oom_hint ? dev->oom_hint : cd_cl_status_hint(CL_MEM_OBJECT_ALLOCATION_FAILURE));
    dev->bytes_live += bytes;
    if (dev->bytes_live > dev->bytes_peak) dev->bytes_peak = dev->bytes_live;
    return (cd_mem){mem, 0};
}

size_t cd_mem_floats(cd_mem m) {
    size_t bytes = 0;
    if (!m.mem) return 0;
    CL_CHECK(clGetMemObjectInfo(m.mem, CL_MEM_SIZE, sizeof bytes, &bytes, NULL));
    return bytes / sizeof(float) - m.off;
}

void cd_free(cd_device *dev, cd_mem m) {
    if (!m.mem) return;
    size_t bytes = 0;
    CL_CHECK(clGetMemObjectInfo(m.mem, CL_MEM_SIZE, sizeof bytes, &bytes, NULL));
    if (dev->n_pool == dev->cap_pool) {
        dev->cap_pool = dev->cap_pool ? 2 * dev->cap_pool : 64;
        dev->pool = cd_xrealloc(dev->pool, dev->cap_pool * sizeof *dev->pool);
    }
    dev->pool[dev->n_pool++] = (cd_pool_entry){m.mem, bytes};
    dev->bytes_pooled += bytes;
    dev->bytes_live -= bytes;
}

void cd_pool_trim(cd_device *dev) {
    if (dev->n_pool) clFinish(dev->queue);
    for (int i = 0; i < dev->n_pool; i++) clReleaseMemObject(dev->pool[i].mem);
    dev->n_pool = 0;
    dev->bytes_pooled = 0;
}

void cd_write(cd_device *dev, cd_mem dst, const float *src, size_t n) {
    if (n) CL_CHECK(clEnqueueWriteBuffer(dev->queue, dst.mem, CL_TRUE, dst.off * sizeof(float),
                                         n * sizeof(float), src, 0, NULL, NULL));
}

void cd_read(cd_device *dev, float *dst, cd_mem src, size_t n) {
    if (n) CL_CHECK(clEnqueueReadBuffer(dev->queue, src.mem, CL_TRUE, src.off * sizeof(float),
                                        n * sizeof(float), dst, 0, NULL, NULL));
}

void cd_write_bytes(cd_device *dev, cl_mem dst, size_t off, const void *src, size_t n) {
    if (n) CL_CHECK(clEnqueueWriteBuffer(dev->queue, dst, CL_TRUE, off, n, src, 0, NULL, NULL));
}

void cd_read_bytes(cd_device *dev, void *dst, cl_mem src, size_t off, size_t n) {
    if (n) CL_CHECK(clEnqueueReadBuffer(dev->queue, src, CL_TRUE, off, n, dst, 0, NULL, NULL));
}

void cd_fill(cd_device *dev, cd_mem dst, float value, size_t n) {
    CD_LAUNCH1(dev, "fill", n, KM(dst), KF(value), KUL(n));
}

void cd_copy(cd_device *dev, cd_mem dst, cd_mem src, size_t n) {
    if (n) CL_CHECK(clEnqueueCopyBuffer(dev->queue, src.mem, dst.mem, src.off * sizeof(float),
                                        dst.off * sizeof(float), n * sizeof(float), 0, NULL, NULL));
}

/* ---- profiling --------------------------------------------------------- */

void cd_profile_add_event(cd_device *dev, const char *name, cl_event ev) {
    if (dev->n_events == dev->cap_events) {
        dev->cap_events = dev->cap_events ? 2 * dev->cap_events : 1024;
        dev->events = cd_xrealloc(dev->events, dev->cap_events * sizeof *dev->events);
        dev->event_names = cd_xrealloc(dev->event_names, dev->cap_events * sizeof *dev->event_names);
    }
    dev->events[dev->n_events] = ev;
    dev->event_names[dev->n_events++] = name;
}

void cd_profile_collect(cd_device *dev) {
    if (!dev->n_events) return;
    cd_finish(dev);
    for (int i = 0; i < dev->n_events; i++) {
        cl_ulong t0 = 0, t1 = 0;
        clGetEventProfilingInfo(dev->events[i], CL_PROFILING_COMMAND_START, sizeof t0, &t0, NULL);
        clGetEventProfilingInfo(dev->events[i], CL_PROFILING_COMMAND_END, sizeof t1, &t1, NULL);
        clReleaseEvent(dev->events[i]);
        const char *name = dev->event_names[i];
        int j = 0;
        while (j < dev->n_profile && strcmp(dev->profile[j].name, name)) j++;
        if (j == dev->n_profile) {
            dev->profile = cd_xrealloc(dev->profile, (dev->n_profile + 1) * sizeof *dev->profile);
            dev->profile[dev->n_profile++] = (cd_profile_entry){name, 0, 0};
        }
        dev->profile[j].ms += (t1 > t0 ? (double)(t1 - t0) : 0.0) * 1e-6;
        dev->profile[j].count++;
    }
    dev->n_events = 0;
}

static int by_time_desc(const void *a, const void *b) {
    double x = ((const cd_profile_entry *)a)->ms, y = ((const cd_profile_entry *)b)->ms;
    return (x < y) - (x > y);
}

void cd_profile_print(cd_device *dev, FILE *f) {
    cd_profile_collect(dev);
    qsort(dev->profile, dev->n_profile, sizeof *dev->profile, by_time_desc);
    double total = 0;
    for (int i = 0; i < dev->n_profile; i++) total += dev->profile[i].ms;
    fprintf(f, "%-32s %10s %8s %10s %6s\n", "kernel", "total ms", "calls", "us/call", "share");
    for (int i = 0; i < dev->n_profile; i++) {
        const cd_profile_entry *e = &dev->profile[i];
        fprintf(f, "%-32s %10.2f %8ld %10.1f %5.1f%%\n", e->name, e->ms, e->count,
                1e3 * e->ms / (double)CD_MAX(e->count, 1L), total > 0 ? 100 * e->ms / total : 0);
    }
}

void cd_profile_reset(cd_device *dev) {
    for (int i = 0; i < dev->n_events; i++) clReleaseEvent(dev->events[i]);
    dev->n_events = 0;
    dev->n_profile = 0;
}
