/* Learning-rate schedules: optional linear warmup, then the official step
 * drop (per epoch) or a cosine decay to a floor (per step). */
#include <math.h>
#include <string.h>

#include "cldetr/train.h"

int lr_schedule_kind(const char *name) {
    if (name && !strcmp(name, "step")) return LR_SCHED_STEP;
    if (name && !strcmp(name, "cosine")) return LR_SCHED_COSINE;
    return cd_seterr("unknown learning-rate schedule '%s' (expected step or cosine)", name ? name : "(null)");
}

double lr_factor(const lr_schedule *s, long step, long epoch) {
    if (step < 0) step = 0;
    if (epoch < 0) epoch = 0;
    double warm = 1.0;
    if (s->warmup_steps > 0 && step < s->warmup_steps) warm = (double)(step + 1) / (double)s->warmup_steps;
    if (s->kind == LR_SCHED_COSINE) {
        double span = (double)(s->total_steps - s->warmup_steps);
        double progress = span > 0 ? (double)(step - s->warmup_steps) / span : 1.0;
        if (progress < 0) progress = 0;
        if (progress > 1) progress = 1;
        double floor_ = s->min_lr_ratio;
        return warm * (floor_ + (1.0 - floor_) * 0.5 * (1.0 + cos(M_PI * progress)));
    }
    if (s->lr_drop <= 0) return warm;
    return warm * pow(s->gamma, (double)(epoch / s->lr_drop));
}

void lr_at(const lr_schedule *s, long step, long epoch, double lr[2]) {
    double f = lr_factor(s, step, epoch);
    lr[NN_GROUP_BACKBONE] = s->base_lr[NN_GROUP_BACKBONE] * f;
    lr[NN_GROUP_REST] = s->base_lr[NN_GROUP_REST] * f;
}
