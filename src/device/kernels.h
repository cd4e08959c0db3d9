/* Kernel sources embedded at build time by tools/embed_text.py. */
#ifndef CLDETR_DEVICE_KERNELS_H
#define CLDETR_DEVICE_KERNELS_H
typedef struct { const char *file; const char *source; } cd_embedded_source;
extern const cd_embedded_source cd_embedded_kernels[];   /* ends with {NULL, NULL} */
#endif
