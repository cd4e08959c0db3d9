/* The on-disk cache: compiled program binaries and GEMM tunings, each a file
 * "<prefix>-<key>.bin" holding a header (magic, version, key, length, checksum)
 * and the payload. A file that fails any check is deleted and reported absent,
 * so a corrupt or stale entry is rebuilt, never trusted. Writes are atomic
 * (temporary file, then rename). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cldetr/device.h"

#define CACHE_MAGIC "CLDTRC01"

typedef struct {
    char magic[8];
    uint64_t key;
    uint64_t len;
    uint64_t checksum;
} cache_header;

const char *cd_cache_dir(void) {
    static char dir[4096];
    if (dir[0]) return dir;
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    if (xdg && *xdg) snprintf(dir, sizeof dir, "%s/cldetr", xdg);
    else if (home && *home) snprintf(dir, sizeof dir, "%s/.cache/cldetr", home);
    else snprintf(dir, sizeof dir, "/tmp/cldetr-cache");
    return dir;
}

static void entry_path(char *buf, size_t n, const char *prefix, uint64_t key) {
    snprintf(buf, n, "%s/%s-%016llx.bin", cd_cache_dir(), prefix, (unsigned long long)key);
}

void *cd_cache_load(const char *prefix, uint64_t key, size_t *len) {
    char path[4200];
    entry_path(path, sizeof path, prefix, key);
    size_t n;
    char *buf = cd_read_file(path, &n);
    if (!buf) return NULL;
    cache_header h;
    int ok = n >= sizeof h;
    if (ok) {
        memcpy(&h, buf, sizeof h);
        ok = !memcmp(h.magic, CACHE_MAGIC, 8) && h.key == key && h.len == n - sizeof h &&
             h.checksum == cd_fnv1a(buf + sizeof h, h.len, CD_FNV_SEED);
    }
    if (!ok) {
        if (getenv("CLDETR_VERBOSE")) fprintf(stderr, "cldetr: cache entry %s is corrupt; rebuilding\n", path);
        unlink(path);
        free(buf);
        return NULL;
    }
    void *out = cd_xmalloc(h.len ? h.len : 1);
    memcpy(out, buf + sizeof h, h.len);
    free(buf);
    *len = h.len;
    return out;
}

int cd_cache_store(const char *prefix, uint64_t key, const void *data, size_t len) {
    if (cd_mkdir_p(cd_cache_dir())) return -1;      /* a cache we cannot write is not an error */
    char path[4200], tmp[4300];
    entry_path(path, sizeof path, prefix, key);
    snprintf(tmp, sizeof tmp, "%s.%d.tmp", path, (int)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) return -1;
    cache_header h;
    memcpy(h.magic, CACHE_MAGIC, 8);
    h.key = key;
    h.len = len;
    h.checksum = cd_fnv1a(data, len, CD_FNV_SEED);
    int ok = fwrite(&h, sizeof h, 1, f) == 1 && fwrite(data, 1, len, f) == len;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path)) { unlink(tmp); return -1; }
    return 0;
}
