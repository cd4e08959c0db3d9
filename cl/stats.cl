/* Summary statistics of a tensor for the per-layer training log (src/ops/stats.c):
 * sum, sum of squares and the count of zeros, in two deterministic passes. */

/* Pass 1: work-group g sums a strided share of x; part (G, 3) gets
 * {sum, sum of squares, zeros} of its items. Local size a power of two. */
__kernel void moments_partial(__global float *part, const ulong part_off, __global const float *x, const ulong x_off,
                              const ulong n, __local float *red) {
    part += part_off; x += x_off;
    size_t l = get_local_id(0), L = get_local_size(0), g = get_group_id(0), G = get_num_groups(0);
    float s = 0.0f, s2 = 0.0f, z = 0.0f;
    for (size_t i = g * L + l; i < n; i += G * L) {
        float v = x[i];
        s += v;
        s2 += v * v;
        z += v == 0.0f ? 1.0f : 0.0f;
    }
    s = wg_sum(red, s);
    s2 = wg_sum(red, s2);
    z = wg_sum(red, z);
    if (l == 0) { part[3 * g] = s; part[3 * g + 1] = s2; part[3 * g + 2] = z; }
}

/* Pass 2: one work-group adds the G partial triples: out (3). */
__kernel void moments_final(__global float *out, const ulong out_off, __global const float *part, const ulong part_off,
                            const ulong G, __local float *red) {
    out += out_off; part += part_off;
    size_t l = get_local_id(0), L = get_local_size(0);
    for (int k = 0; k < 3; k++) {
        float s = 0.0f;
        for (size_t g = l; g < G; g += L) s += part[3 * g + k];
        s = wg_sum(red, s);
        if (l == 0) out[k] = s;
    }
}
