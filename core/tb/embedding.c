/* embedding.c — the projector's files, laid out as PyTorch's add_embedding
 * writes them (torch/utils/tensorboard/_embedding.py and writer.py):
 * <logdir>/<%05d step>/<escaped tag>/{tensors.tsv, metadata.tsv, sprite.png}
 * and <logdir>/projector_config.pbtxt (text-format ProjectorConfig listing
 * every embedding the writer added). Each file is written atomically.
 * Provides ts_tb_add_embedding. */
#include "tb_proto.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* PyTorch's _encode: % -> %25, / -> %2f, \ -> %5c */
static char *encode_tag(const char *tag)
{
    size_t n = strlen(tag);
    char *out = malloc(3 * n + 1), *o = out;
    if (!out) return ts_fail_null(TS_ERR_MEMORY, "add_embedding: out of memory");
    for (const char *p = tag; *p; p++) {
        if (*p == '%') { memcpy(o, "%25", 3); o += 3; }
        else if (*p == '/') { memcpy(o, "%2f", 3); o += 3; }
        else if (*p == '\\') { memcpy(o, "%5c", 3); o += 3; }
        else *o++ = *p;
    }
    *o = '\0';
    return out;
}

/* A text-format string literal, escaped as protobuf's CEscape does. */
static ts_status put_quoted(tb_buf *b, const char *s)
{
    if (tb_buf_put(b, "\"", 1)) return ts_last_status();
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char e[8];
        size_t k;
        switch (*p) {
        case '\n': k = 2; memcpy(e, "\\n", 2); break;
        case '\r': k = 2; memcpy(e, "\\r", 2); break;
        case '\t': k = 2; memcpy(e, "\\t", 2); break;
        case '"': k = 2; memcpy(e, "\\\"", 2); break;
        case '\'': k = 2; memcpy(e, "\\'", 2); break;
        case '\\': k = 2; memcpy(e, "\\\\", 2); break;
        default:
            if (*p < 0x20 || *p >= 0x7f) k = (size_t)snprintf(e, sizeof e, "\\%03o", *p);
            else { e[0] = (char)*p; k = 1; }
        }
        if (tb_buf_put(b, e, k)) return ts_last_status();
    }
    return tb_buf_put(b, "\"", 1);
}

static ts_status put_str(tb_buf *b, const char *s) { return tb_buf_put(b, s, strlen(s)); }

static ts_status write_tensors_tsv(const char *path, const ts_tensor *mat)
{
    ts_tensor *d = ts_to_dtype(mat, TS_F64);
    if (!d) return tb_fail_context(ts_last_status(), "add_embedding");
    const double *x = ts_tensor_data(d);
    int64_t n = mat->shape[0], dim = mat->shape[1];
    bool single = mat->dtype == TS_F32 || mat->dtype == TS_F16 || mat->dtype == TS_BF16;   /* ints print exactly */
    tb_buf b = {0};
    ts_status st = tb_buf_reserve(&b, (size_t)(n * dim) * 12 + 1);
    char num[40];
    for (int64_t i = 0; i < n && !st; i++)
        for (int64_t j = 0; j < dim && !st; j++) {
            tb_format_number(num, sizeof num, x[i * dim + j], single);
            st = put_str(&b, num);
            if (!st) st = tb_buf_put(&b, j + 1 < dim ? "\t" : "\n", 1);
        }
    ts_tensor_release(d);
    if (!st) st = tb_write_file("add_embedding", path, b.data, b.len);
    tb_buf_free(&b);
    return st;
}

static ts_status write_metadata_tsv(const char *path, const ts_tb_embedding *e, int64_t n)
{
    tb_buf b = {0};
    ts_status st = TS_OK;
    if (e->metadata_header) {
        st = put_str(&b, e->metadata_header);
        if (!st) st = tb_buf_put(&b, "\n", 1);
    }
    for (int64_t i = 0; i < n && !st; i++) {
        if (!e->metadata[i]) { st = ts_fail(TS_ERR_ARG, "add_embedding: metadata label %lld is missing", (long long)i + 1); break; }
        if (strchr(e->metadata[i], '\n')) {
            st = ts_fail(TS_ERR_ARG, "add_embedding: metadata label %lld contains a newline", (long long)i + 1);
            break;
        }
        st = put_str(&b, e->metadata[i]);
        if (!st) st = tb_buf_put(&b, "\n", 1);
    }
    if (!st) st = tb_write_file("add_embedding", path, b.data, b.len);
    tb_buf_free(&b);
    return st;
}

/* A square grid of ceil(sqrt(N)) x ceil(sqrt(N)) cells of the label images. */
static ts_status write_sprite(const char *path, const ts_tensor *img, int64_t *cell_h, int64_t *cell_w)
{
    int64_t n = img->shape[0];
    int64_t side = (int64_t)ceil(sqrt((double)n));
    while (side * side < n) side++;
    uint8_t *px;
    int64_t gh, gw;
    int c;
    if (tb_image_to_hwc("add_embedding: label_img", img, "NCHW", (int)side, &px, &gh, &gw, &c)) return ts_last_status();
    *cell_h = img->shape[2];
    *cell_w = img->shape[3];
    int64_t H = side * img->shape[2], W = side * img->shape[3];   /* gw == W, gh <= H */
    uint8_t *sq = calloc((size_t)(H * W * c), 1);
    if (!sq) { free(px); return ts_fail(TS_ERR_MEMORY, "add_embedding: out of memory for the sprite"); }
    memcpy(sq, px, (size_t)(gh * gw * c));
    free(px);
    tb_buf png = {0};
    ts_status st = tb_png_encode(sq, W, H, c, &png);
    free(sq);
    if (!st) st = tb_write_file("add_embedding", path, png.data, png.len);
    tb_buf_free(&png);
    return st;
}

ts_status ts_tb_add_embedding(ts_tb_writer *w, const ts_tb_embedding *e)
{
    if (!e) return ts_fail(TS_ERR_ARG, "add_embedding: no embedding");
    const char *tag = e->tag && *e->tag ? e->tag : "default";
    if (tb_check_open(w, "add_embedding", tag)) return ts_last_status();
    const ts_tensor *mat = e->mat;
    char s[TS_SHAPE_STR_CAP];
    if (!mat || mat->ndim != 2)
        return ts_fail(TS_ERR_ARG, "add_embedding '%s': mat must be 2-D [N, D], got %s", tag,
                       mat ? ts_shape_str(mat->shape, mat->ndim, s, sizeof s) : "nothing");
    int64_t n = mat->shape[0];
    if (n < 1 || mat->shape[1] < 1) return ts_fail(TS_ERR_ARG, "add_embedding '%s': mat %s is empty", tag, ts_shape_str(mat->shape, 2, s, sizeof s));
    if (e->label_img && (e->label_img->ndim != 4 || e->label_img->shape[0] != n))
        return ts_fail(TS_ERR_ARG, "add_embedding '%s': label_img must be [N, C, H, W] with N = %lld, got %s", tag,
                       (long long)n, ts_shape_str(e->label_img->shape, e->label_img->ndim, s, sizeof s));

    char *enc = encode_tag(tag);
    if (!enc) return ts_last_status();
    char *subdir = tb_strdup_printf("%05lld/%s", (long long)e->step, enc);
    free(enc);
    if (!subdir) return ts_last_status();
    const char *logdir = ts_tb_writer_logdir(w);
    char *dir = tb_strdup_printf("%s/%s", logdir, subdir);
    char *p_tensors = tb_strdup_printf("%s/tensors.tsv", dir ? dir : "");
    char *p_meta = tb_strdup_printf("%s/metadata.tsv", dir ? dir : "");
    char *p_sprite = tb_strdup_printf("%s/sprite.png", dir ? dir : "");
    char *p_config = tb_strdup_printf("%s/projector_config.pbtxt", logdir);
    ts_status st = (!dir || !p_tensors || !p_meta || !p_sprite || !p_config) ? ts_last_status() : TS_OK;
    if (!st) st = tb_mkdirs("add_embedding", dir);
    if (!st && e->metadata) st = write_metadata_tsv(p_meta, e, n);
    int64_t ch = 0, cw = 0;
    if (!st && e->label_img) st = write_sprite(p_sprite, e->label_img, &ch, &cw);
    if (!st) st = write_tensors_tsv(p_tensors, mat);

    /* the config block, fields in field-number order as text_format prints them */
    tb_buf blk = {0};
    char line[64];
    if (!st) {
        char *name = tb_strdup_printf("%s:%05lld", tag, (long long)e->step);
        char *tp = tb_strdup_printf("%s/tensors.tsv", subdir), *mp = tb_strdup_printf("%s/metadata.tsv", subdir);
        char *sp = tb_strdup_printf("%s/sprite.png", subdir);
        if (!name || !tp || !mp || !sp) st = ts_last_status();
        if (!st) st = put_str(&blk, "embeddings {\n  tensor_name: ");
        if (!st) st = put_quoted(&blk, name);
        if (!st && e->metadata) {
            st = put_str(&blk, "\n  metadata_path: ");
            if (!st) st = put_quoted(&blk, mp);
        }
        if (!st && e->label_img) {
            st = put_str(&blk, "\n  sprite {\n    image_path: ");
            if (!st) st = put_quoted(&blk, sp);
            snprintf(line, sizeof line, "\n    single_image_dim: %lld\n    single_image_dim: %lld\n  }", (long long)cw,
                     (long long)ch);
            if (!st) st = put_str(&blk, line);
        }
        if (!st) st = put_str(&blk, "\n  tensor_path: ");
        if (!st) st = put_quoted(&blk, tp);
        if (!st) st = put_str(&blk, "\n}\n");
        free(name); free(tp); free(mp); free(sp);
    }
    if (!st) {
        tb_buf *cfg = tb_writer_projector(w);
        size_t before = cfg->len;
        st = tb_buf_put(cfg, blk.data, blk.len);
        if (!st) st = tb_write_file("add_embedding", p_config, cfg->data, cfg->len);
        if (st) cfg->len = before;    /* the config on disk did not change either */
    }
    tb_buf_free(&blk);
    free(subdir); free(dir); free(p_tensors); free(p_meta); free(p_sprite); free(p_config);
    return st;
}
