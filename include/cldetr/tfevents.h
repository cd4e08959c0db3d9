/* TensorBoard event files, written by cldetr itself (src/eval/tfevents.c):
 * `tensorboard --logdir runs` shows a run's scalars without any Python at run
 * time.
 *
 * The format: a file of records, each
 *   u64 length (little-endian), u32 masked CRC-32C of those 8 bytes,
 *   length bytes of a serialized tensorflow.Event protobuf, u32 masked CRC-32C of them,
 * where masked(c) = ((c >> 15) | (c << 17)) + 0xa282ead8. The first event
 * holds file_version "brain.Event:2"; each scalar is an Event {wall_time,
 * step, summary {value {tag, simple_value}}}. */
#ifndef CLDETR_TFEVENTS_H
#define CLDETR_TFEVENTS_H

#include <stdint.h>
#include <stdio.h>

typedef struct {
    FILE *f;
    char path[4096];
} tfevents;

/* Create DIR/events.out.tfevents.<seconds>.<host>.cldetr and write the
 * version record. 0, or -1 with cd_errbuf() naming the file. */
int tfevents_open(tfevents *w, const char *dir);
/* One scalar at a step (flushed by tfevents_flush). 0, or -1 with cd_errbuf(). */
int tfevents_scalar(tfevents *w, const char *tag, int64_t step, double value);
void tfevents_flush(tfevents *w);
void tfevents_close(tfevents *w);

/* CRC-32C (Castagnoli) of n bytes and TensorBoard's mask of it (for readers and tests). */
uint32_t tfevents_crc32c(const void *data, size_t n);
uint32_t tfevents_masked_crc(const void *data, size_t n);

#endif
