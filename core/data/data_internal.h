/* data_internal.h — what the files of core/data share (not installed): a
 * checked transform pipeline with its shapes, and the function that runs
 * it on one sample. transform.c provides them, loader.c uses them. */
#ifndef TORSH_DATA_INTERNAL_H
#define TORSH_DATA_INTERNAL_H

#include "internal.h"
#include "torsh/data.h"

typedef struct ts_pipeline {
    ts_transform tf[TS_DATA_MAX_TRANSFORMS];
    int ntf;
    int in_ndim, out_ndim;                 /* one sample, before and after */
    int64_t in_shape[TS_MAX_DIMS], out_shape[TS_MAX_DIMS];
    int64_t in_numel, out_numel, max_numel;   /* max over all steps */
    bool has_crop;
    int last_crop;                         /* index of the last crop step */
} ts_pipeline;

/* Copies and checks the steps against a sample shape (ndim <= 7). */
ts_status ts_pipeline_init(ts_pipeline *pl, const ts_transform *tf, int ntf, const int64_t *shape, int ndim);
/* Runs the pipeline on one contiguous sample src of dtype sdt into out
 * (out_numel floats). scratch: 2 * max_numel floats when the pipeline
 * crops, else may be NULL. key: ts_data_key(seed, epoch, TRANSFORM). */
void ts_pipeline_run(const ts_pipeline *pl, const void *src, ts_dtype sdt, float *out, float *scratch, uint64_t key,
                     int64_t position);

#endif
