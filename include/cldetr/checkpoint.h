/* Checkpoint files (src/nn/checkpoint.c): parameters, buffers, the optimizer's
 * moments and the run state in one versioned, checksummed file, written
 * atomically. Beside the weights code: a checkpoint is the model's registry
 * plus what training needs to continue bit for bit. */
#ifndef CLDETR_CHECKPOINT_H
#define CLDETR_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "cldetr/device.h"
#include "cldetr/nn.h"

/* Format version 1, little-endian, written atomically (a temporary file in the
 * same folder, fsync, rename, fsync of the folder: a kill at any moment leaves
 * the previous checkpoint whole):
 *
 *   header, 136 bytes
 *     char     magic[8]            "CLDETRCK"
 *     u32      version             1
 *     u32      n_params            entries of the table
 *     u64      config_hash         given by the caller
 *     u64      step, epoch         given by the caller
 *     u64      rng[8]              given by the caller (unused words 0)
 *     u64      text_len            bytes of the config text
 *     u64      total               floats of parameter data (params + buffers)
 *     u64      n_trainable         floats of trainable parameters
 *     u64      n_moments           floats in each of m, v (0 or n_trainable)
 *   config text, text_len bytes (the effective config, no terminator)
 *   table, n_params entries of 168 bytes
 *     char     name[112]           NUL-padded
 *     u32      ndim
 *     u32      flags               bit 0 trainable, bit 1 buffer, bits 8-15 group
 *     u64      shape[4]            unused dims 1
 *     u64      off, n              floats, into the data (and into m, v if trainable)
 *   data       f32[total]          the flat parameter buffer as laid out by the registry
 *   optimizer  u64 adam_step, f32 m[n_moments], f32 v[n_moments]
 *   checksum   u64                 cd_fnv1a(CD_FNV_SEED) of every byte before it
 */
#define CKPT_MAGIC "CLDETRCK"
#define CKPT_VERSION 1u
#define CKPT_RNG_WORDS 8
/* step and epoch are below this (2^62) in every file the readers accept */
#define CKPT_MAX_COUNT ((uint64_t)1 << 62)

typedef struct {
    uint64_t config_hash;
    uint64_t step, epoch;
    uint64_t rng[CKPT_RNG_WORDS];
    /* ckpt_save: the effective config (may be NULL); ckpt_load / ckpt_read_meta:
     * a malloc'd NUL-terminated copy, for the caller to free */
    char *config_text;
    /* filled by the readers */
    uint32_t version, n_params;
    uint64_t total, n_trainable, n_moments;
} ckpt_meta;

/* The optimizer state a checkpoint holds: Adam's first and second moments
 * over the trainable parameters (n floats each, at the gradients' offsets)
 * and its update count (train.h's adamw_moments makes one from an adamw_state). */
typedef struct {
    cd_mem m, v;
    size_t n;                   /* = ps->n_trainable */
    uint64_t *step;             /* read by ckpt_save, written by ckpt_load */
} ckpt_moments;

/* Write parameters (ps->data, read back from the device), the optimizer state
 * (opt may be NULL: weights only) and meta to path, atomically. Returns 0 or
 * -1 with cd_errbuf() naming the file and the failed call; on failure the old
 * file at path is untouched. */
int ckpt_save(const char *path, const ckpt_meta *meta, nn_params *ps, const ckpt_moments *opt, cd_device *dev);

/* Read and check a checkpoint (magic, version, the range of every header
 * field (step and epoch below CKPT_MAX_COUNT, sizes against each other and the file length),
 * the checksum, every parameter's name and shape against ps), then load the
 * parameters into ps (host copy and device) and, when opt is not NULL, the
 * moments and step into opt (the file must hold them, and each parameter's
 * trainable flag must match). meta (may be NULL) receives the header and the
 * config text. Nothing in ps or opt changes unless every check passes.
 * Returns 0 or -1 with cd_errbuf() naming the file and the problem (the first
 * mismatching parameter for a file of another config). */
int ckpt_load(const char *path, ckpt_meta *meta, nn_params *ps, const ckpt_moments *opt, cd_device *dev);

/* Only the header and the config text (checks magic, version, the header
 * fields' ranges and the file length, not the checksum): enough to rebuild the
 * model before ckpt_load. The rng words are the caller's to check. */
int ckpt_read_meta(const char *path, ckpt_meta *meta);

/* The size in bytes of the file ckpt_save writes for ps, a config text of
 * text_len bytes, with (with_opt) or without the optimizer state. */
uint64_t ckpt_file_bytes(const nn_params *ps, size_t text_len, int with_opt);

void ckpt_meta_free(ckpt_meta *meta);          /* frees config_text */

/* The model's num_classes from a checkpoint's parameter table (rows of
 * class_embed.bias minus one), without loading it; -1 with cd_errbuf(). */
int ckpt_num_classes(const char *path);

#endif
