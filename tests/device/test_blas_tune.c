/* GEMM tuning and layouts: the Xgemm candidate grid obeys CLBlast's rules and
 * the tile shape pairs the tile kernels' (broken ones named), a tuning line
 * is accepted by CLBlast and applied, a stored tile pair is applied at open
 * and tuning one kind keeps the other's lines, each kind's checks run that
 * kind's kernels, cd_gemm gives the reference
 * result under that tuning in both call layouts (row-major and swapped
 * column-major, with padding on either side), and the tune / bench-ops verbs
 * reject bad options with a message. */
#include <sys/wait.h>

#include "../check.h"
#include "cldetr/blas_tune.h"
#include "cldetr/selftest.h"

static cd_device *dev;

/* batch GEMMs with padded strides and offsets, compared with the reference over
 * the whole C buffer (so the padding between rows must stay as it was) */
static void check_gemm(int ta, int tb, size_t M, size_t N, size_t K, size_t batch, const char *layout) {
    size_t lda = (ta ? M : K) + 2, ldb = (tb ? K : N) + 1, ldc = N + 3;
    size_t sa = (ta ? K : M) * lda + 1, sb = (tb ? N : K) * ldb + 4, sc = M * ldc + 2;
    size_t na = 5 + sa * batch, nb = 3 + sb * batch, nc = 9 + sc * batch;
    float *A = malloc(na * 4), *B = malloc(nb * 4), *C0 = malloc(nc * 4), *R = malloc(nc * 4), *C = malloc(nc * 4);
    for (size_t i = 0; i < na; i++) A[i] = (float)t_uniform(-1, 1);
    for (size_t i = 0; i < nb; i++) B[i] = (float)t_uniform(-1, 1);
    for (size_t i = 0; i < nc; i++) R[i] = C0[i] = (float)t_uniform(-1, 1);
    cd_mem dA = cd_alloc(dev, na, "A"), dB = cd_alloc(dev, nb, "B"), dC = cd_alloc(dev, nc, "C");
    cd_write(dev, dA, A, na); cd_write(dev, dB, B, nb); cd_write(dev, dC, C0, nc);
    cd_gemm_batched(dev, ta, tb, M, N, K, 0.75f, cd_at(dA, 5), lda, sa, cd_at(dB, 3), ldb, sb, 0.5f,
                    cd_at(dC, 9), ldc, sc, batch);
    cd_read(dev, C, dC, nc);
    for (size_t b = 0; b < batch; b++)
        cd_gemm_ref(ta, tb, M, N, K, 0.75f, A + 5 + b * sa, lda, B + 3 + b * sb, ldb, 0.5f, R + 9 + b * sc, ldc);
    char name[128];
    snprintf(name, sizeof name, "gemm %c%c %zux%zux%zu batch %zu, %s layout", ta ? 'T' : 'N', tb ? 'T' : 'N',
             M, N, K, batch, layout);
    t_close_f(name, R, C, nc, 1e-5, 1e-4 * (1 + K / 64.0));
    cd_free(dev, dA); cd_free(dev, dB); cd_free(dev, dC);
    free(A); free(B); free(C0); free(R); free(C);
}

/* Run the cldetr binary with args; return its exit code, its output in out
 * (newlines turned to spaces, so that it can go in a TAP line). */
static int run_cli(const char *args, char *out, size_t n) {
    const char *bin = getenv("CLDETR_BIN");
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s' %s 2>&1", bin, args);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t len = fread(out, 1, n - 1, p);
    out[len] = '\0';
    for (char *c = out; *c; c++) if (*c == '\n') *c = ' ';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* cd_open in a child with XDG_CACHE_HOME=dir (and CLDETR_GEMM_TUNING=off when off):
 * 1 built-in for CPUs, 2 CLBlast's defaults, 3 tuned, 4 no device. */
static int gemm_params_in_child(const char *dir, int off) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        setenv("XDG_CACHE_HOME", dir, 1);
        if (off) setenv("CLDETR_GEMM_TUNING", "off", 1);
        cd_device *d = cd_open(NULL, 0);
        if (!d) _exit(4);
        _exit(!strcmp(d->gemm_params, "built-in for CPUs") ? 1 : !strcmp(d->gemm_params, "CLBlast's defaults") ? 2 : 3);
    }
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) < 0 || !WIFEXITED(st)) return -1;
    return WEXITSTATUS(st);
}

/* In a child with XDG_CACHE_HOME=dir: store text as the device's GEMM tuning,
 * open the device again and report what it took: bit 0 the tile shapes of
 * `want` (tile_params "tuned (cldetr tune)"), bit 1 CLBlast's parameters as
 * without a tuning (on a CPU the built-in set). 8 = no device. */
static int stored_tiles_in_child(const char *dir, const char *text, const cd_tile_shape want[2]) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        setenv("XDG_CACHE_HOME", dir, 1);
        if (strncmp(cd_cache_dir(), dir, strlen(dir))) _exit(9);   /* never the user's cache */
        cd_device *d = cd_open(NULL, 0);
        if (!d) _exit(8);
        uint64_t key = cd_blas_tuning_key(d);
        int cpu = (d->info.type & CL_DEVICE_TYPE_CPU) != 0;
        cd_close(d);
        if (cd_cache_store("gemm", key, text, strlen(text))) _exit(8);
        d = cd_open(NULL, 0);
        if (!d) _exit(8);
        int got = (!memcmp(d->tiles, want, sizeof d->tiles) && !strcmp(d->tile_params, "tuned (cldetr tune)")) |
                  (!strcmp(d->gemm_params, cpu ? "built-in for CPUs" : "CLBlast's defaults") << 1);
        _exit(got);
    }
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) < 0 || !WIFEXITED(st)) return -1;
    return WEXITSTATUS(st);
}

/* The kernels a profiled device ran since its last reset: bit 0 CLBlast's
 * (gemm_NN, gemm_TN, ...), bit 1 the tile kernels, bit 2 the row kernels. */
static int kernels_ran(cd_device *d) {
    cd_profile_collect(d);
    int got = 0;
    for (int i = 0; i < d->n_profile; i++) {
        const char *n = d->profile[i].name;
        if (!strncmp(n, "gemm_tile_", 10)) got |= 2;
        else if (!strncmp(n, "gemm_rows", 9) || !strncmp(n, "gemm_dot", 8)) got |= 4;
        else if (!strncmp(n, "gemm_", 5) && strcmp(n, "gemm_split_sum")) got |= 1;
    }
    cd_profile_reset(d);
    return got;
}

/* A stored pair is what cd_open builds the tile kernels with; CLBlast keeps
 * its parameters. Runs before this process resolves its cache folder (the
 * children's XDG_CACHE_HOME must count). */
static void stored_tiles_check(void) {
    const char *list[32];
    cd_tile_shape t[2];
    cd_gemm_tile_candidates(0, list, 32);
    char dir[] = "/tmp/cldetr-tiles-XXXXXX";
    if (mkdtemp(dir)) {
        char text[512];
        cd_gemm_parse_tiles(list[1], t);
        snprintf(text, sizeof text, "# cldetr tune tiles test\n%s\n", list[1]);
        int got = stored_tiles_in_child(dir, text, t);
        t_ok(got == 3, "a stored tile pair is applied at cd_open, CLBlast's parameters as without one (%d)", got);
        char cmd[600];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd)) t_diag("could not remove %s", dir);
    }
}

static void tile_shape_checks(void) {
    const char *list[32];
    int n = cd_gemm_tile_candidates(0, list, 32), nq = cd_gemm_tile_candidates(1, list + 16, 16), good = 0;
    cd_tile_shape t[2];
    for (int i = 0; i < n; i++) good += cd_gemm_parse_tiles(list[i], t) == 0;
    t_ok(n >= 6 && good == n, "all %d tile shape pairs obey the tile kernels' rules", n);
    t_ok(nq > 0 && nq < n && !strcmp(list[16], list[0]), "--quick tries %d of them, the built-in pair first", nq);
    for (int i = 1; i < n; i += n - 2) {   /* one with one buffer, the last with two */
        char line[256];
        cd_gemm_parse_tiles(list[i], t);
        cd_gemm_tiles_line(t, line, sizeof line);
        t_ok(!strcmp(line, list[i]), "a pair's line reads back as written: %s", line);
    }
    static const char *const bad[][2] = {
        {"Tiles S_BM=64 S_BN=64 S_BK=8 S_WX=16 S_WY=16 L_BM=128 L_BN=128 L_BK=8 L_WX=16",
         "L_WY is missing or not a positive number"},
        {"Tiles S_BM=48 S_BN=64 S_BK=8 S_WX=16 S_WY=16 L_BM=128 L_BN=128 L_BK=8 L_WX=16 L_WY=16",
         "BM (48) must be 4 or 8 times WY (16)"},
        {"Tiles S_BM=64 S_BN=64 S_BK=12 S_WX=16 S_WY=16 L_BM=128 L_BN=128 L_BK=8 L_WX=16 L_WY=16",
         "WX, WY and BK must be powers of two"},
        {"Tiles S_BM=128 S_BN=16 S_BK=8 S_WX=4 S_WY=16 L_BM=128 L_BN=128 L_BK=8 L_WX=16 L_WY=16",
         "BM and BN (128, 16) at most WX*WY (64)"},
        {"Tiles S_BM=64 S_BN=64 S_BK=2 S_WX=16 S_WY=16 L_BM=128 L_BN=128 L_BK=8 L_WX=16 L_WY=16",
         "must be 1 to 16 whole loads"},
        {"Tiles S_BM=64 S_BN=64 S_BK=8 S_WX=16 S_WY=16 L_BM=128 L_BN=128 L_BK=64 L_WX=16 L_WY=16",
         "tile shape large: a slice (BM*BK = 8192, BN*BK = 8192) must be 1 to 16 whole loads"},
        {"Xgemm MWG=64", "the line must start with 'Tiles'"},
        {"Tiles S_BM=64 S_BN=64 S_BK=8 S_WX=16 S_WY=16 S_DB=2 L_BM=128 L_BN=128 L_BK=8 L_WX=16 L_WY=16",
         "DB must be 0 or 1"},
        {"Tiles S_BM=64 S_BN=64 S_BK=8 S_WX=16 S_WY=16 L_BM=128 L_BN=128 L_BK=8 L_WX=16 L_WY=16 L_DB=x",
         "L_DB is not a number"},
        {"Tiles S_BM=64x S_BN=64 S_BK=8 S_WX=16 S_WY=16 L_BM=128 L_BN=128 L_BK=8 L_WX=16 L_WY=16",
         "S_BM is missing or not a positive number"},
    };
    for (size_t i = 0; i < CD_ARRAY_LEN(bad); i++) {
        int rc = cd_gemm_parse_tiles(bad[i][0], t);
        t_ok(rc == -1 && strstr(cd_errbuf(), bad[i][1]), "a broken pair is refused, naming the rule: %s",
             cd_errbuf());
    }

    /* tuning one kind keeps the other's lines */
    const char *stored = "# cldetr tune 2026-12-01 on X: 100 GFLOP/s\nXgemm MWG=64\nGemmRoutine X=0\n"
                         "# cldetr tune tiles 2026-12-01 on X: 9\nTiles S_BM=64\n";
    char *m = cd_gemm_tuning_merge(stored, CD_GEMM_TILES, "# cldetr tune tiles new\nTiles S_BM=32\n");
    t_ok(!strcmp(m, "# cldetr tune 2026-12-01 on X: 100 GFLOP/s\nXgemm MWG=64\nGemmRoutine X=0\n"
                    "# cldetr tune tiles new\nTiles S_BM=32\n"), "new tile shapes replace the old, CLBlast's stay");
    free(m);
    m = cd_gemm_tuning_merge(stored, CD_GEMM_CLBLAST, "");
    t_ok(!strcmp(m, "# cldetr tune tiles 2026-12-01 on X: 9\nTiles S_BM=64\n"),
         "CLBlast's lines removed (its defaults won), the tile shapes stay");
    free(m);
    m = cd_gemm_tuning_merge(NULL, CD_GEMM_CLBLAST, "Xgemm MWG=32\n");
    t_ok(!strcmp(m, "Xgemm MWG=32\n"), "nothing stored before: the new lines alone");
    free(m);
}

/* Each kind's checks run that kind's kernels: CLBlast's, or the tile kernels
 * (`cldetr tune` once timed cldetr's own kernels for every CLBlast
 * candidate). */
static void tune_kernel_checks(void) {
    cd_device *d = cd_open(NULL, 1);
    if (!d) return;
    char msg[512] = "";
    int rc = cd_gemm_tune_check(d, CD_GEMM_CLBLAST, 0, NULL, msg, sizeof msg), ran = kernels_ran(d);
    t_ok(rc == 0 && ran == 1, "the CLBlast candidates' checks pass on CLBlast's kernels alone (ran %d) %s", ran, msg);
    int old = cd_gemm_set_kernels(CD_GEMM_TILES), tiles = cd_gemm_kernels(d) == CD_GEMM_TILES;   /* fit here? */
    cd_gemm_set_kernels(old);
    rc = cd_gemm_tune_check(d, CD_GEMM_TILES, 0, NULL, msg, sizeof msg);   /* built-in pair; ops_gemm_tiles: all */
    ran = kernels_ran(d);
    t_ok(rc == 0 && ran == (tiles ? 2 : 1), "the tile candidates' checks pass on the tile kernels alone (ran %d, "
         "%s) %s", ran, tiles ? "the device runs them" : "CLBlast: the device cannot run them", msg);
    cd_close(d);
}

int main(void) {
    /* the grid obeys CLBlast's rules; a broken line is named */
    const char *list[32];
    for (int gpu = 1; gpu >= 0; gpu--) {    /* the CPU grid last: list[] keeps it for the checks below */
        int n = cd_gemm_tune_candidates(gpu, 0, list, 32), nq = cd_gemm_tune_candidates(gpu, 1, list + 16, 16), good = 0;
        for (int i = 0; i < n; i++) good += cd_gemm_check_xgemm(list[i]) == 0;
        t_ok(n >= 8 && good == n, "all %d %s tuning candidates obey CLBlast's Xgemm rules", n, gpu ? "GPU" : "CPU");
        t_ok(nq > 0 && nq < n && !strcmp(list[16], list[0]), "--quick tries %d of them, the base set first", nq);
    }
    int rc = cd_gemm_check_xgemm("MWG=96 NWG=64 KWG=32 MDIMC=8 NDIMC=4 MDIMA=8 NDIMB=4 KWI=2 VWM=8 VWN=8 SA=0 SB=0 STRM=0 STRN=0");
    t_ok(rc == -1 && strstr(cd_errbuf(), "MWG (96) must be a multiple of MDIMC*VWM (64)"),
         "MWG=96 with MDIMC*VWM=64 is rejected: %s", cd_errbuf());
    rc = cd_gemm_check_xgemm("MWG=128 NWG=64 KWG=32 MDIMC=8 NDIMC=4");
    t_ok(rc == -1 && strstr(cd_errbuf(), "MDIMA is missing"), "a missing parameter is named: %s", cd_errbuf());

    /* no stored tuning (an empty cache folder, in a child: the folder is read once per process): a CPU
     * gets the built-in parameters (no silent 5-10x slower GEMM), other devices CLBlast's defaults;
     * CLDETR_GEMM_TUNING=off always CLBlast's. The built-in set is list[0], checked below with GEMMs. */
    stored_tiles_check();
    char empty[] = "/tmp/cldetr-no-tuning-XXXXXX";
    if (mkdtemp(empty)) {
        int got = gemm_params_in_child(empty, 0), got_off = gemm_params_in_child(empty, 1);
        t_ok(got == 1 || got == 2, "without a stored tuning: %s (1 built-in for CPUs, 2 CLBlast's defaults)",
             got == 1 ? "built-in for CPUs" : got == 2 ? "CLBlast's defaults" : "no device or another answer");
        t_ok(got_off == 2, "CLDETR_GEMM_TUNING=off: CLBlast's defaults (%d)", got_off);
        rmdir(empty);
    }
    dev = cd_open(NULL, 0);
    if (dev) {
        int cpu = (dev->info.type & CL_DEVICE_TYPE_CPU) != 0;
        const char *b = cd_blas_builtin_tuning(dev);
        char want[512];                         /* exactly what `cldetr tune` would store for the base set */
        snprintf(want, sizeof want, "Xgemm GEMMK=0 KREG=1 %s\nGemmRoutine XGEMM_MIN_INDIRECT_SIZE=0\n", list[0]);
        t_ok(cpu ? b && !strcmp(b, want) && gemm_params_in_child(empty, 0) != 2 : b == NULL,
             "the built-in set is for CPU devices only: the base candidate as `cldetr tune` stores it");
        cd_close(dev);
        dev = NULL;
    }

    tile_shape_checks();
    tune_kernel_checks();

    /* CLI: bad options give exit 2 and a message */
    if (getenv("CLDETR_BIN")) {
        char out[4096];
        rc = run_cli("tune --budget abc", out, sizeof out);
        t_ok(rc == 2 && strstr(out, "--budget needs a number of seconds > 0, got 'abc'"), "tune --budget abc: %d, %s", rc, out);
        rc = run_cli("tune --frobnicate", out, sizeof out);
        t_ok(rc == 2 && strstr(out, "unknown option '--frobnicate'"), "tune --frobnicate: %d", rc);
        rc = run_cli("tune --list", out, sizeof out);
        t_ok(rc == 0 && strstr(out, "Xgemm GEMMK=0 KREG=1 MWG=128 NWG=64 KWG=32") && strstr(out, "for GPUs") &&
                 strstr(out, "MDIMC=16 NDIMC=16 MDIMA=16 NDIMB=16 KWI=2 VWM=2 VWN=2 SA=1 SB=1") &&
                 strstr(out, " 0* Tiles S_BM=64 S_BN=64 S_BK=8 S_WX=16 S_WY=16 L_BM=128"),
             "tune --list prints the three grids");
        rc = run_cli("tune --kernels cuda", out, sizeof out);
        t_ok(rc == 2 && strstr(out, "--kernels needs tiles, clblast or auto, got 'cuda'"),
             "tune --kernels cuda: %d, %s", rc, out);
        rc = run_cli("bench-ops --seconds 0", out, sizeof out);
        t_ok(rc == 2 && strstr(out, "--seconds needs a number in (0, 60], got '0'"), "bench-ops --seconds 0: %d, %s", rc, out);
        rc = run_cli("tune --device no-such-device-xyz --quick --budget 30", out, sizeof out);
        t_ok(rc == 1 && strstr(out, "no device matches 'no-such-device-xyz'"), "tune on a missing device: %d, %s", rc, out);
    }

    dev = cd_open(NULL, 0);
    if (!dev) { t_diag("no OpenCL device: %s", cd_errbuf()); return t_done(); }
    t_diag("device: %s", dev->info.name);
    char line[1024];
    snprintf(line, sizeof line, "# a comment\nXgemm GEMMK=0 KREG=1 %s\nGemmRoutine XGEMM_MIN_INDIRECT_SIZE=0\n", list[0]);
    t_ok(cd_blas_apply_tuning(dev, line) == 2, "CLBlast accepts the base Xgemm and GemmRoutine lines");
    t_ok(cd_blas_apply_tuning(dev, "Xgemm MWG=128\n") == 0, "an incomplete Xgemm line is refused (CLBlast needs every parameter)");
    /* MWG=128 NWG=64: N=200 M=37 favours one layout, M=200 N=37 the other; force each too */
    t_seed(7);
    static const char *names[] = {"per-shape", "row-major", "swapped"};
    for (int layout = -1; layout <= 1; layout++) {
        cd_blas_set_layout(layout);
        for (int t = 0; t < 4; t++) {
            check_gemm(t & 1, t >> 1, 37, 200, 70, 1, names[layout + 1]);
            check_gemm(t & 1, t >> 1, 200, 37, 33, 1, names[layout + 1]);
        }
        check_gemm(0, 1, 19, 23, 32, 3, names[layout + 1]);
        check_gemm(1, 0, 23, 19, 9, 2, names[layout + 1]);
    }
    cd_blas_set_layout(-1);
    cd_close(dev);
    return t_done();
}
