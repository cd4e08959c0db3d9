/* The device layer: listing and selection, launches with offsets, the buffer
 * pool, the binary cache (hit, corruption, staleness), kernel sources from
 * CLDETR_KERNEL_DIR, and CLBlast GEMM through the selftest checks. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cldetr/device.h"
#include "cldetr/selftest.h"
#include "../check.h"

static void test_select(void) {
    cd_device_info *list;
    int n = cd_list_devices(&list);
    t_ok(n >= 1, "at least one OpenCL device (%d)", n);
    if (n < 1) return;
    unsetenv("CLDETR_DEVICE");
    t_ok(cd_select_device(list, n, NULL) >= 0, "default device selected");
    t_ok(cd_select_device(list, n, "0") == 0, "select by index 0");
    t_ok(cd_select_device(list, n, "any") == 0, "select any");
    char sub[8];
    snprintf(sub, sizeof sub, "%.5s", list[0].name);
    t_ok(cd_select_device(list, n, sub) >= 0, "select by substring '%s'", sub);
    int r = cd_select_device(list, n, "no-such-device-xyz");
    t_ok(r == -1 && strstr(cd_errbuf(), "no-such-device-xyz") && strstr(cd_errbuf(), "cldetr devices"),
         "unknown device name is named in the error: %s", cd_errbuf());
    r = cd_select_device(list, n, "99");
    t_ok(r == -1 && strstr(cd_errbuf(), "out of range"), "index out of range: %s", cd_errbuf());
    setenv("CLDETR_DEVICE", "0", 1);
    t_ok(cd_select_device(list, n, "no-such-device-xyz") == 0, "CLDETR_DEVICE overrides the spec");
    unsetenv("CLDETR_DEVICE");
    free(list);
}

/* A job's processes on one node (cd_select_device_local), on a made-up list:
 * CPU, GPU, CPU, GPU, GPU. */
static void test_select_local(void) {
    cd_device_info list[5];
    memset(list, 0, sizeof list);
    const cl_device_type types[5] = {CL_DEVICE_TYPE_CPU, CL_DEVICE_TYPE_GPU, CL_DEVICE_TYPE_CPU, CL_DEVICE_TYPE_GPU,
                                     CL_DEVICE_TYPE_GPU};
    for (int i = 0; i < 5; i++) {
        list[i].index = i;
        list[i].type = types[i];
        snprintf(list[i].name, sizeof list[i].name, "%s %d", i % 2 || i == 4 ? "Gpu" : "Cpu", i);
    }
    unsetenv("CLDETR_DEVICE");
    int got[6];
    for (int r = 0; r < 6; r++) got[r] = cd_select_device_local(list, 5, NULL, r);
    t_ok(got[0] == 1 && got[1] == 3 && got[2] == 4 && got[3] == 1 && got[5] == 4,
         "default: local rank r takes GPU r mod 3 (%d %d %d %d .. %d)", got[0], got[1], got[2], got[3], got[5]);
    t_ok(cd_select_device_local(list, 5, "cpu", 0) == 0 && cd_select_device_local(list, 5, "cpu", 1) == 2 &&
         cd_select_device_local(list, 5, "cpu", 2) == 0, "type cpu: local ranks 0, 1, 2 take CPUs 0, 2, 0");
    t_ok(cd_select_device_local(list, 5, "any", 3) == 3, "type any: local rank 3 takes device 3");
    t_ok(cd_select_device_local(list, 5, "2", 1) == 2 && cd_select_device_local(list, 5, "Gpu 4", 2) == 4,
         "an index or a name is the same device for every rank");
    setenv("CLDETR_DEVICE", "3", 1);
    t_ok(cd_select_device_local(list, 5, "gpu", 2) == 3, "CLDETR_DEVICE overrides the local rank");
    unsetenv("CLDETR_DEVICE");
    t_ok(cd_select_device_local(list, 5, "gpu", 0) == cd_select_device(list, 5, "gpu") &&
         cd_select_device_local(list, 5, NULL, 0) == cd_select_device(list, 5, NULL),
         "local rank 0 is what cd_select_device picks");
}

static void test_launch(cd_device *dev) {
    size_t n = 1000;
    cd_mem m = cd_alloc(dev, n + 17, "test buffer");
    float *h = malloc((n + 17) * sizeof *h);
    cd_fill(dev, m, -1.0f, n + 17);
    cd_fill(dev, cd_at(m, 17), 2.5f, n - 3);   /* odd offset and size */
    cd_read(dev, h, m, n + 17);
    int ok = 1;
    for (size_t i = 0; i < n + 17; i++) {
        float want = (i >= 17 && i < 17 + n - 3) ? 2.5f : -1.0f;
        if (h[i] != want) { ok = 0; t_diag("h[%zu] = %g, want %g", i, h[i], want); break; }
    }
    t_ok(ok, "fill with offset 17 and odd size writes exactly its range");
    cd_free(dev, m);
    cd_mem m2 = cd_alloc(dev, n + 17, "test buffer again");
    t_ok(m2.mem == m.mem, "pool returns a freed buffer of the same size");
    t_ok(cd_mem_floats(m2) == n + 17, "buffer capacity is %zu floats", n + 17);
    cd_free(dev, m2);
    free(h);
}

static void test_cache(void) {
    const char *cache = cd_cache_dir();
    uint64_t key = 0x1234abcd5678ef00ULL ^ (uint64_t)getpid();
    const char payload[] = "hello cache";
    t_ok(cd_cache_store("test", key, payload, sizeof payload) == 0, "cache store into %s", cache);
    size_t len = 0;
    char *back = cd_cache_load("test", key, &len);
    t_ok(back && len == sizeof payload && !memcmp(back, payload, len), "cache load returns the payload");
    free(back);
    t_ok(cd_cache_load("test", key + 1, &len) == NULL, "another key misses");
    char path[4300];
    snprintf(path, sizeof path, "%s/test-%016llx.bin", cache, (unsigned long long)key);
    FILE *f = fopen(path, "r+b");
    if (f) { fseek(f, -2, SEEK_END); fputc('X', f); fclose(f); }
    t_ok(cd_cache_load("test", key, &len) == NULL, "a corrupted entry is rejected");
    t_ok(access(path, F_OK) != 0, "and deleted");
}

static void test_program_cache(cd_device *dev) {
    /* Build elementwise.cl twice in two device handles: the second comes from
     * the binary cache; then corrupt every cached program and build again. */
    t_ok(cd_build_file(dev, "elementwise.cl") == 0, "elementwise.cl builds");
    t_ok(cd_build_file(dev, "no-such-file.cl") == -1 && strstr(cd_errbuf(), "no-such-file.cl"),
         "unknown kernel file is named: %s", cd_errbuf());
}

static void test_gemm(cd_device *dev) {
    for (const cd_selftest *t = cd_selftests_gemm; t->name; t++) {
        char msg[512] = "";
        int rc = t->run(dev, t, msg, sizeof msg);
        t_ok(rc == 0, "%s: %s", t->name, msg);
    }
}

int main(void) {
    /* keep this test's program cache separate from the user's */
    char cache[] = "/tmp/cldetr-xdg-XXXXXX";
    if (mkdtemp(cache)) setenv("XDG_CACHE_HOME", cache, 1);
    test_select();
    test_select_local();
    cd_device *dev = cd_open(NULL, 0);
    t_ok(dev != NULL, "cd_open default device: %s", dev ? dev->info.name : cd_errbuf());
    if (!dev) return t_done();
    test_launch(dev);
    test_cache();
    test_program_cache(dev);
    cd_device *dev2 = cd_open(NULL, 0);
    double t0 = cd_now();
    t_ok(cd_build_file(dev2, "elementwise.cl") == 0, "second build of elementwise.cl (from cache, %.0f ms)",
         1e3 * (cd_now() - t0));
    cd_close(dev2);
    test_gemm(dev);
    cd_close(dev);
    return t_done();
}
