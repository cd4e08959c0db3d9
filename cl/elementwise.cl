/* Element-wise kernels.
 *
 * Conventions of every cl/ file (the host side is cd_launch in src/device/):
 * - each buffer argument is a pair `__global float *x, const ulong x_off`, and
 *   the kernel starts with `x += x_off;` (offsets count floats, as CLBlast's);
 * - sizes are passed as `const ulong n` (or int/uint where small), and every
 *   kernel guards `if (gid >= n) return;` because global sizes are rounded up;
 * - OpenCL C 1.2, no extensions, no fast-math. */

__kernel void fill(__global float *y, const ulong y_off, const float value, const ulong n) {
    y += y_off;
    size_t gid = get_global_id(0);
    if (gid >= n) return;
    y[gid] = value;
}
