/* image.c — images for TensorBoard, converted as PyTorch's SummaryWriter
 * does (torch/utils/tensorboard/_utils.py convert_to_HWC, make_grid and
 * summary.py image): any dim order named by a format string ("CHW", "HWC",
 * "HW", "NCHW", ...), a batch laid out as a grid, grey replicated to RGB,
 * u8 taken as is and every other dtype scaled by 255 and truncated (clamped
 * to [0, 255], NaN -> 0), then PNG-encoded into Summary.Image. Provides
 * tb_to_byte, tb_image_to_hwc and ts_tb_add_image. */
#include "tb_proto.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint8_t tb_to_byte(double v, bool scale)
{
    float f = (float)v;
    if (scale) f *= 255.0f;
    if (!(f > 0)) return 0;             /* negatives and NaN */
    if (f >= 255.0f) return 255;
    return (uint8_t)f;                   /* truncation, like numpy's astype(uint8) */
}

ts_status tb_image_to_hwc(const char *op, const ts_tensor *img, const char *fmt, int grid_cols, uint8_t **pixels,
                          int64_t *ph, int64_t *pw, int *pc)
{
    *pixels = NULL;
    if (!img) return ts_fail(TS_ERR_ARG, "%s: no image", op);
    if (!fmt || !*fmt) fmt = img->ndim == 4 ? "NCHW" : "CHW";
    char f[8];
    size_t fl = strlen(fmt);
    if (fl < 2 || fl > 4) return ts_fail(TS_ERR_ARG, "%s: dataformats '%s' must be HW, CHW/HWC or NCHW/NHWC-like", op, fmt);
    for (size_t i = 0; i <= fl; i++) f[i] = (char)toupper((unsigned char)fmt[i]);
    char shape_s[TS_SHAPE_STR_CAP];
    ts_shape_str(img->shape, img->ndim, shape_s, sizeof shape_s);
    if ((size_t)img->ndim != fl)
        return ts_fail(TS_ERR_ARG, "%s: dataformats '%s' has %zu dims but the image is %s", op, fmt, fl, shape_s);
    /* position of each of N, C, H, W in the tensor's dims (-1 when absent) */
    int pos[4] = {-1, -1, -1, -1};
    const char *letters = "NCHW";
    for (size_t i = 0; i < fl; i++) {
        const char *at = strchr(letters, f[i]);
        if (!f[i] || !at || pos[at - letters] >= 0)
            return ts_fail(TS_ERR_ARG, "%s: bad dataformats '%s' (each of N, C, H, W at most once)", op, fmt);
        pos[at - letters] = (int)i;
    }
    if (pos[2] < 0 || pos[3] < 0) return ts_fail(TS_ERR_ARG, "%s: dataformats '%s' needs H and W", op, fmt);
    if (fl == 4 && (pos[0] < 0 || pos[1] < 0)) return ts_fail(TS_ERR_ARG, "%s: dataformats '%s' needs N, C, H and W", op, fmt);
    if (fl == 3 && pos[1] < 0) return ts_fail(TS_ERR_ARG, "%s: dataformats '%s' needs C, H and W", op, fmt);
    int64_t n = pos[0] >= 0 ? img->shape[pos[0]] : 1;
    int64_t c = pos[1] >= 0 ? img->shape[pos[1]] : 1;
    int64_t h = img->shape[pos[2]], w = img->shape[pos[3]];
    if (n < 1 || h < 1 || w < 1) return ts_fail(TS_ERR_ARG, "%s: empty image %s", op, shape_s);
    if (c != 1 && c != 3 && c != 4)
        return ts_fail(TS_ERR_ARG, "%s: image %s (%s) has %lld channels; 1, 3 or 4 are supported", op, shape_s, fmt, (long long)c);
    int oc = c == 1 ? 3 : (int)c;
    int64_t cols = n < grid_cols ? n : grid_cols;
    if (cols < 1) cols = 1;
    int64_t rows = (n + cols - 1) / cols;
    if (h > 65535 || w > 65535 || rows * h > 65535 || cols * w > 65535)
        return ts_fail(TS_ERR_ARG, "%s: image %s is too large (at most 65535 pixels a side)", op, shape_s);
    int64_t H = rows * h, W = cols * w;

    ts_tensor *d = ts_to_dtype(img, TS_F64);
    if (!d) return tb_fail_context(ts_last_status(), "%s", op);
    const double *src = ts_tensor_data(d);
    int64_t stride[TS_MAX_DIMS], s = 1;
    for (int i = img->ndim - 1; i >= 0; i--) { stride[i] = s; s *= img->shape[i]; }
    int64_t sn = pos[0] >= 0 ? stride[pos[0]] : 0, sc = pos[1] >= 0 ? stride[pos[1]] : 0;
    int64_t sh = stride[pos[2]], sw = stride[pos[3]];
    bool scale = img->dtype != TS_U8;
    uint8_t *px = calloc((size_t)(H * W * oc), 1);
    if (!px) { ts_tensor_release(d); return ts_fail(TS_ERR_MEMORY, "%s: out of memory", op); }
    for (int64_t k = 0; k < n; k++) {
        int64_t y0 = (k / cols) * h, x0 = (k % cols) * w;
        for (int64_t y = 0; y < h; y++)
            for (int64_t x = 0; x < w; x++) {
                uint8_t *o = px + ((y0 + y) * W + (x0 + x)) * oc;
                const double *e = src + k * sn + y * sh + x * sw;
                for (int ch = 0; ch < oc; ch++) o[ch] = tb_to_byte(e[c == 1 ? 0 : ch * sc], scale);
            }
    }
    ts_tensor_release(d);
    *pixels = px;
    *ph = H;
    *pw = W;
    *pc = oc;
    return TS_OK;
}

ts_status ts_tb_add_image(ts_tb_writer *w, const char *tag, const ts_tensor *img, const char *dataformats, int64_t step,
                          double walltime)
{
    if (tb_check_open(w, "add_image", tag)) return ts_last_status();
    if (!tag || !*tag) return ts_fail(TS_ERR_ARG, "add_image: empty tag");
    uint8_t *px;
    int64_t h, wd;
    int c;
    char op[160];
    snprintf(op, sizeof op, "add_image '%s'", tag);
    if (tb_image_to_hwc(op, img, dataformats, 8, &px, &h, &wd, &c)) return ts_last_status();
    tb_buf png = {0};
    ts_status st = tb_png_encode(px, wd, h, c, &png);
    free(px);
    if (st) { tb_buf_free(&png); return tb_fail_context(st, "%s", op); }
    Tensorboard__Summary__Image im = TENSORBOARD__SUMMARY__IMAGE__INIT;
    im.height = (int32_t)h;
    im.width = (int32_t)wd;
    im.colorspace = c;
    im.encoded_image_string.data = png.data;
    im.encoded_image_string.len = png.len;
    Tensorboard__Summary__Value v = TENSORBOARD__SUMMARY__VALUE__INIT;
    v.tag = (char *)tag;
    v.value_case = TENSORBOARD__SUMMARY__VALUE__VALUE_IMAGE;
    v.image = &im;
    st = tb_writer_add_value(w, &v, step, walltime);
    tb_buf_free(&png);
    return st;
}
