/* summary_basic.c — the simple summaries, laid out as PyTorch's
 * torch/utils/tensorboard/summary.py writes them: scalars (simple_value, or
 * the new-style rank-0 tensor with plugin "scalars"), audio (mono 16-bit
 * WAV in Summary.Audio) and text (plugin "text", DT_STRING [1] under
 * "<tag>/text_summary"). Provides tb_wav_encode, ts_tb_add_scalar,
 * ts_tb_add_audio and ts_tb_add_text. */
#include "tb_proto.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

ts_status ts_tb_add_scalar(ts_tb_writer *w, const char *tag, double value, int64_t step, double walltime,
                           ts_tb_scalar_style style)
{
    if (tb_check_open(w, "add_scalar", tag)) return ts_last_status();
    if (!tag || !*tag) return ts_fail(TS_ERR_ARG, "add_scalar: empty tag");
    Tensorboard__Summary__Value v = TENSORBOARD__SUMMARY__VALUE__INIT;
    v.tag = (char *)tag;
    Tensorboard__TensorProto t = TENSORBOARD__TENSOR_PROTO__INIT;
    float f = (float)value;
    tb_meta meta;
    if (style == TS_TB_SIMPLE) {
        v.value_case = TENSORBOARD__SUMMARY__VALUE__VALUE_SIMPLE_VALUE;
        v.simple_value = f;
    } else {
        if (style == TS_TB_TENSOR_F64) {
            t.dtype = TENSORBOARD__DATA_TYPE__DT_DOUBLE;
            t.n_double_val = 1;
            t.double_val = &value;
        } else {
            t.dtype = TENSORBOARD__DATA_TYPE__DT_FLOAT;
            t.n_float_val = 1;
            t.float_val = &f;
        }
        tb_meta_init(&meta, "scalars", NULL, 0);
        v.metadata = &meta.meta;
        v.value_case = TENSORBOARD__SUMMARY__VALUE__VALUE_TENSOR;
        v.tensor = &t;
    }
    return tb_writer_add_value(w, &v, step, walltime);
}

/* ---- audio ------------------------------------------------------------------------- */

static void le16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void le32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }

ts_status tb_wav_encode(const int16_t *samples, int64_t n, uint32_t rate, tb_buf *out)
{
    if (n < 0 || (uint64_t)n * 2 > 0xFFFFFFFFu - 36) return ts_fail(TS_ERR_ARG, "wav: %lld samples is too many", (long long)n);
    uint32_t data_len = (uint32_t)n * 2;
    uint8_t h[44];
    memcpy(h, "RIFF", 4);
    le32(h + 4, 36 + data_len);
    memcpy(h + 8, "WAVEfmt ", 8);
    le32(h + 16, 16);           /* fmt chunk size */
    le16(h + 20, 1);            /* PCM */
    le16(h + 22, 1);            /* mono */
    le32(h + 24, rate);
    le32(h + 28, rate * 2);     /* byte rate */
    le16(h + 32, 2);            /* block align */
    le16(h + 34, 16);           /* bits per sample */
    memcpy(h + 36, "data", 4);
    le32(h + 40, data_len);
    if (tb_buf_reserve(out, 44 + (size_t)data_len) || tb_buf_put(out, h, 44)) return ts_last_status();
    for (int64_t i = 0; i < n; i++) {
        uint8_t s[2];
        le16(s, (uint16_t)samples[i]);
        tb_buf_put(out, s, 2);
    }
    return TS_OK;
}

ts_status ts_tb_add_audio(ts_tb_writer *w, const char *tag, const ts_tensor *samples, double sample_rate, int64_t step,
                          double walltime)
{
    if (tb_check_open(w, "add_audio", tag)) return ts_last_status();
    if (!tag || !*tag) return ts_fail(TS_ERR_ARG, "add_audio: empty tag");
    if (!samples) return ts_fail(TS_ERR_ARG, "add_audio '%s': no samples", tag);
    if (!(sample_rate >= 1 && sample_rate <= 4294967295.0 / 2))
        return ts_fail(TS_ERR_ARG, "add_audio '%s': bad sample rate %g", tag, sample_rate);
    int big = 0;
    for (int i = 0; i < samples->ndim; i++) big += samples->shape[i] != 1;
    if (big > 1) {
        char s[TS_SHAPE_STR_CAP];
        return ts_fail(TS_ERR_ARG, "add_audio '%s': samples %s must be 1-dimensional (mono) after squeezing", tag,
                       ts_shape_str(samples->shape, samples->ndim, s, sizeof s));
    }
    int64_t n = ts_tensor_numel(samples);
    ts_tensor *d = ts_to_dtype(samples, TS_F64);
    if (!d) return tb_fail_context(ts_last_status(), "add_audio '%s'", tag);
    const double *x = ts_tensor_data(d);
    int16_t *pcm = malloc(sizeof *pcm * (size_t)(n ? n : 1));
    if (!pcm) { ts_tensor_release(d); return ts_fail(TS_ERR_MEMORY, "add_audio '%s': out of memory", tag); }
    bool single = samples->dtype != TS_F64;
    for (int64_t i = 0; i < n; i++) {
        double v = x[i];
        if (v != v) v = 0;
        if (v > 1) v = 1;
        if (v < -1) v = -1;
        pcm[i] = single ? (int16_t)((float)v * 32767.0f) : (int16_t)(v * 32767.0);
    }
    ts_tensor_release(d);
    tb_buf wav = {0};
    ts_status st = tb_wav_encode(pcm, n, (uint32_t)llround(sample_rate), &wav);
    free(pcm);
    if (st) { tb_buf_free(&wav); return tb_fail_context(st, "add_audio '%s'", tag); }
    Tensorboard__Summary__Audio a = TENSORBOARD__SUMMARY__AUDIO__INIT;
    a.sample_rate = (float)sample_rate;
    a.num_channels = 1;
    a.length_frames = n;
    a.encoded_audio_string.data = wav.data;
    a.encoded_audio_string.len = wav.len;
    a.content_type = "audio/wav";
    Tensorboard__Summary__Value v = TENSORBOARD__SUMMARY__VALUE__INIT;
    v.tag = (char *)tag;
    v.value_case = TENSORBOARD__SUMMARY__VALUE__VALUE_AUDIO;
    v.audio = &a;
    st = tb_writer_add_value(w, &v, step, walltime);
    tb_buf_free(&wav);
    return st;
}

/* ---- text ----------------------------------------------------------------------------- */

ts_status ts_tb_add_text(ts_tb_writer *w, const char *tag, const char *text, size_t len, int64_t step, double walltime)
{
    if (tb_check_open(w, "add_text", tag)) return ts_last_status();
    if (!tag || !*tag) return ts_fail(TS_ERR_ARG, "add_text: empty tag");
    char *full = tb_strdup_printf("%s/text_summary", tag);
    if (!full) return ts_last_status();
    tb_meta meta;
    tb_meta_init(&meta, "text", NULL, 0);
    tb_shape shape;
    int64_t one = 1;
    tb_shape_init(&shape, &one, 1);
    ProtobufCBinaryData s = {len, (uint8_t *)(text ? text : "")};
    Tensorboard__TensorProto t = TENSORBOARD__TENSOR_PROTO__INIT;
    t.dtype = TENSORBOARD__DATA_TYPE__DT_STRING;
    t.tensor_shape = &shape.proto;
    t.n_string_val = 1;
    t.string_val = &s;
    Tensorboard__Summary__Value v = TENSORBOARD__SUMMARY__VALUE__INIT;
    v.tag = full;
    v.metadata = &meta.meta;
    v.value_case = TENSORBOARD__SUMMARY__VALUE__VALUE_TENSOR;
    v.tensor = &t;
    ts_status st = tb_writer_add_value(w, &v, step, walltime);
    free(full);
    return st;
}
