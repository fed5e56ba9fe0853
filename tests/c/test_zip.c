/* test_zip.c — the ZIP reader and writer (torsh/zip.h), the unpickler
 * (torsh/pickle.h) and the .pt writer/reader pair (torsh/pt.h) at the C
 * level: aligned stored entries read back in place, ZIP64 fields, streamed
 * entries, deflated entries (zlib-made) with honest and lying sizes, name
 * rules, atomic writes that leave the old file on failure, pickle values
 * and refusals, and a state dict saved by ts_pt_save and loaded back with
 * shared storage. PyTorch interop is tests/sh/test_pt_interop.sh. */
#include "check.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "torsh/pt.h"
#include "torsh/zip.h"

static const char *tmpdir;

static int count_files(void)
{
    DIR *d = opendir(tmpdir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));) n += e->d_name[0] != '.';
    if (d) closedir(d);
    return n;
}

static void test_write_read_round_trip(void)
{
    static unsigned char big[10000];
    for (size_t i = 0; i < sizeof big; i++) big[i] = (unsigned char)(i * 7 + 3);
    for (int z64 = 0; z64 < 2; z64++) {
        const char *path = check_tmp_path(z64 ? "z64.zip" : "plain.zip");
        ts_zip_write_opts o = { .align = 64, .zip64_at = z64 ? 100 : 0 };
        ts_zip_writer *w = ts_zip_writer_open(path, &o);
        CHECK(w != NULL);
        if (!w) return;
        CHECK(ts_zip_writer_add(w, "arc/small", "seven!!", 7) == TS_OK);
        CHECK(ts_zip_writer_begin(w, "arc/big", sizeof big) == TS_OK);
        for (size_t off = 0; off < sizeof big; off += 3000)
            CHECK(ts_zip_writer_write(w, big + off, sizeof big - off < 3000 ? sizeof big - off : 3000) == TS_OK);
        CHECK(ts_zip_writer_end(w) == TS_OK);
        CHECK(ts_zip_writer_add(w, "arc/empty", NULL, 0) == TS_OK);
        CHECK(ts_zip_writer_finish(w) == TS_OK);

        ts_zip *z = ts_zip_open(path);
        CHECK(z != NULL);
        if (!z) { fprintf(stderr, "%s\n", ts_last_error()); return; }
        CHECK(ts_zip_count(z) == 3);
        for (size_t i = 0; i < ts_zip_count(z); i++) CHECK(ts_zip_entry_at(z, i)->data_offset % 64 == 0);
        const ts_zip_entry *e = ts_zip_find(z, "arc/big");
        CHECK(e && e->usize == sizeof big && e->method == 0);
        CHECK(ts_zip_find(z, "arc/nope") == NULL);
        if (e) {
            const unsigned char *p = ts_zip_data(z, e);
            CHECK(p && memcmp(p, big, sizeof big) == 0);
            ts_storage *s = ts_zip_storage(z, e, 8, TS_ZIP_VERIFY);
            CHECK(s && s->data == p && s->readonly && s->nbytes == sizeof big);     /* in place */
            ts_storage *c = ts_zip_storage(z, e, 8, TS_ZIP_COPY);
            CHECK(c && c->data != p && !c->readonly && memcmp(c->data, big, sizeof big) == 0);
            ts_zip_close(z);                     /* the view keeps the mapping */
            z = NULL;
            CHECK(s && memcmp(s->data, big, sizeof big) == 0);
            ts_storage_release(s);
            ts_storage_release(c);
        }
        ts_zip_close(z);
        z = ts_zip_open(path);
        size_t n = 0;
        char *small = z ? ts_zip_read_alloc(z, ts_zip_find(z, "arc/small"), true, &n) : NULL;
        CHECK(small && n == 7 && strcmp(small, "seven!!") == 0);
        free(small);
        const ts_zip_entry *em = z ? ts_zip_find(z, "arc/empty") : NULL;
        CHECK(em && em->usize == 0);
        ts_zip_close(z);
    }
}

static void test_writer_failures_keep_the_old_file(void)
{
    const char *path = check_write_file("keep.zip", "old", 3);
    int before = count_files();
    ts_zip_writer *w = ts_zip_writer_open(path, NULL);
    CHECK(w != NULL);
    CHECK(ts_zip_writer_add(w, "../x", "a", 1) != TS_OK);
    CHECK(strstr(ts_last_error(), "'..'") != NULL);
    CHECK(ts_zip_writer_finish(w) != TS_OK);            /* a failed writer saves nothing */
    w = ts_zip_writer_open(path, NULL);
    CHECK(ts_zip_writer_add(w, "d/x", "a", 1) == TS_OK);
    CHECK(ts_zip_writer_add(w, "d/x", "b", 1) != TS_OK);   /* refused at once (zip.h: "must be new") */
    CHECK(strstr(ts_last_error(), "two entries are named 'd/x'") != NULL);
    CHECK(ts_zip_writer_begin(w, "d/y", 1) != TS_OK);      /* the writer stays failed */
    CHECK(ts_zip_writer_finish(w) != TS_OK);
    CHECK(strstr(ts_last_error(), "nothing was saved") != NULL);
    w = ts_zip_writer_open(path, NULL);
    CHECK(ts_zip_writer_begin(w, "d/y", 10) == TS_OK);
    CHECK(ts_zip_writer_write(w, "12345", 5) == TS_OK);
    CHECK(ts_zip_writer_end(w) != TS_OK);
    CHECK(strstr(ts_last_error(), "begun with 10 bytes, 5 were written") != NULL);
    ts_zip_writer_abort(w);
    char buf[8] = { 0 };
    FILE *f = fopen(path, "rb");
    CHECK(f && fread(buf, 1, sizeof buf, f) == 3 && memcmp(buf, "old", 3) == 0);
    if (f) fclose(f);
    CHECK(count_files() == before);                       /* no temp files left */
}

static void test_names(void)
{
    const char *ok[] = { "a", "a/b", "a/b/", "a.b/c..d", "..a/b" };
    const char *bad[] = { "", "/a", "a//b", "./a", "a/./b", "a/..", "../a", "a\\b", "C:/x" };
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) CHECK(ts_zip_check_name(ok[i], strlen(ok[i]), "t") == TS_OK);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) CHECK(ts_zip_check_name(bad[i], strlen(bad[i]), "t") != TS_OK);
}

/* A one-entry zip whose entry is `data` deflated, recording usize as its size. */
static size_t deflated_zip(unsigned char *out, const unsigned char *data, size_t n, uint32_t usize)
{
    unsigned char comp[4096];
    z_stream s;
    memset(&s, 0, sizeof s);
    deflateInit2(&s, 9, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY);
    s.next_in = (Bytef *)data;
    s.avail_in = (uInt)n;
    s.next_out = comp;
    s.avail_out = sizeof comp;
    deflate(&s, Z_FINISH);
    size_t cn = sizeof comp - s.avail_out;
    deflateEnd(&s);
    uint32_t crc = (uint32_t)crc32(0, data, (uInt)n);
    const char *name = "d/e";
    size_t k = 0;
    unsigned char h[46];
    memset(h, 0, sizeof h);
    memcpy(h, "PK\x03\x04", 4);
    h[8] = 8;
    memcpy(h + 14, &crc, 4);
    memcpy(h + 18, &(uint32_t){ (uint32_t)cn }, 4);
    memcpy(h + 22, &usize, 4);
    h[26] = 3;
    memcpy(out + k, h, 30); k += 30;
    memcpy(out + k, name, 3); k += 3;
    memcpy(out + k, comp, cn); k += cn;
    size_t cd = k;
    memset(h, 0, sizeof h);
    memcpy(h, "PK\x01\x02", 4);
    h[10] = 8;
    memcpy(h + 16, &crc, 4);
    memcpy(h + 20, &(uint32_t){ (uint32_t)cn }, 4);
    memcpy(h + 24, &usize, 4);
    h[28] = 3;
    memcpy(out + k, h, 46); k += 46;
    memcpy(out + k, name, 3); k += 3;
    unsigned char e[22] = { 'P', 'K', 5, 6, 0, 0, 0, 0, 1, 0, 1, 0 };
    uint32_t cs = (uint32_t)(k - cd), co = (uint32_t)cd;
    memcpy(e + 12, &cs, 4);
    memcpy(e + 16, &co, 4);
    memcpy(out + k, e, 22); k += 22;
    return k;
}

static void test_deflate(void)
{
    unsigned char data[3000], zip[8192];
    for (size_t i = 0; i < sizeof data; i++) data[i] = (unsigned char)(i % 17);
    struct { uint32_t usize; const char *error; } cases[] = {
        { sizeof data, NULL },
        { sizeof data - 1, "inflates to more than its recorded 2999 bytes" },
        { sizeof data + 1, "corrupt or shorter than its recorded 3001 bytes" },
        { 0x7FFFFFFF, "more than deflate can produce" },
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        size_t len = deflated_zip(zip, data, sizeof data, cases[c].usize);
        const char *path = check_write_file("deflate.zip", zip, len);
        ts_zip *z = ts_zip_open(path);
        if (!z) {
            CHECK(cases[c].error && strstr(ts_last_error(), cases[c].error));
            continue;
        }
        const ts_zip_entry *e = ts_zip_find(z, "d/e");
        size_t n;
        void *buf = e ? ts_zip_read_alloc(z, e, true, &n) : NULL;
        if (!cases[c].error) {
            CHECK(buf && n == sizeof data && memcmp(buf, data, n) == 0);
            CHECK(ts_zip_data(z, e) == NULL);                       /* compressed: not in place */
            ts_storage *s = ts_zip_storage(z, e, 8, TS_ZIP_VERIFY);
            CHECK(s && !s->readonly && memcmp(s->data, data, sizeof data) == 0);
            ts_storage_release(s);
        } else {
            CHECK(!buf && strstr(ts_last_error(), cases[c].error));
        }
        free(buf);
        ts_zip_close(z);
    }
}

static void test_pickle_values(void)
{
    /* {'a': [1, -2, 2.5, 'x'], 'b': (None, True)} at protocol 2, by hand */
    const char pk[] = "\x80\x02}q\x00(X\x01\x00\x00\x00" "a]q\x01(K\x01J\xfe\xff\xff\xffG@\x04\x00\x00\x00\x00\x00\x00"
                      "X\x01\x00\x00\x00" "xeX\x01\x00\x00\x00" "bN\x88\x86u.";
    ts_pickle *p = ts_pickle_load(pk, sizeof pk - 1, NULL, NULL);
    CHECK(p != NULL);
    if (!p) { fprintf(stderr, "%s\n", ts_last_error()); return; }
    const ts_pkval *r = ts_pickle_root(p);
    CHECK(r->kind == TS_PK_DICT && r->u.dict.n == 2);
    const ts_pkval *a = ts_pk_dict_get(r, "a"), *b = ts_pk_dict_get(r, "b");
    CHECK(a && a->kind == TS_PK_LIST && a->u.seq.n == 4);
    if (a && a->u.seq.n == 4) {
        CHECK(a->u.seq.items[0]->u.i == 1 && a->u.seq.items[1]->u.i == -2);
        CHECK(a->u.seq.items[2]->kind == TS_PK_FLOAT && a->u.seq.items[2]->u.f == 2.5);
        CHECK(a->u.seq.items[3]->kind == TS_PK_STR && strcmp(a->u.seq.items[3]->u.str.s, "x") == 0);
    }
    CHECK(b && b->kind == TS_PK_TUPLE && b->u.seq.n == 2 && b->u.seq.items[0]->kind == TS_PK_NONE && b->u.seq.items[1]->u.b);
    ts_pickle_free(p);
#define BYTES(s) s, sizeof(s) - 1
    struct { const char *bytes; size_t n; const char *error; } bad[] = {
        { BYTES("\x80\x02" "cos\nsystem\n."), "global 'os.system' is not allowed (offset 2)" },
        { BYTES("\x80\x02" "ctorch._utils\n_rebuild_tensor_v2\n)R."), "needs a checkpoint reader" },
        { BYTES("\x80\x02" "(((t"), "truncated: the data ends before the STOP opcode (offset 6)" },
        { BYTES("\x80\x06" "N."), "pickle protocol 6 is newer than 5" },
    };
#undef BYTES
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        CHECK(ts_pickle_load(bad[i].bytes, bad[i].n, NULL, NULL) == NULL);
        CHECK(strstr(ts_last_error(), bad[i].error) != NULL);
    }
}

static void test_pt_save_load(void)
{
    int64_t shape[2] = { 3, 4 };
    ts_tensor *w = ts_arange(0, 12, 1, TS_F32), *w2 = ts_view(w, shape, 2);
    ts_tensor *wt = ts_transpose(w2, 0, 1), *i = ts_arange(-5, 5, 1, TS_I64);
    const char *names[] = { "w", "wt", "i", "tied" };
    ts_tensor *ts[] = { w2, wt, i, w2 };
    const char *path = check_tmp_path("sd.pt");
    CHECK(ts_pt_save(path, names, ts, 4, 0) == TS_OK);
    CHECK(ts_pt_sniff(path) && strcmp(ts_pt_sniff(path), "zip") == 0);
    ts_pickle *p = ts_pt_load(path, TS_PT_VERIFY);
    CHECK(p != NULL);
    if (p) {
        const ts_pkval *r = ts_pickle_root(p);
        CHECK(r->kind == TS_PK_DICT && (r->flags & TS_PK_ORDERED) && r->u.dict.n == 4);
        const ts_pkval *lw = ts_pk_dict_get(r, "w"), *lwt = ts_pk_dict_get(r, "wt"), *lt = ts_pk_dict_get(r, "tied");
        CHECK(lw && lwt && lt && lw->kind == TS_PK_TENSOR && lwt->kind == TS_PK_TENSOR);
        if (lw && lwt && lt) {
            CHECK(lw->u.tensor.t->storage == lt->u.tensor.t->storage);          /* one tensor, two names: shared */
            CHECK(lw->u.tensor.t->storage != lwt->u.tensor.t->storage);
            CHECK(lw->u.tensor.t->storage->readonly);                             /* mapped in place */
            CHECK(ts_tensor_get_f64(lwt->u.tensor.t, (int64_t[]){ 3, 1 }) == 7.0);
            CHECK(lwt->u.tensor.t->shape[0] == 4 && ts_tensor_is_contiguous(lwt->u.tensor.t));
        }
        const ts_pkval *li = ts_pk_dict_get(r, "i");
        CHECK(li && li->u.tensor.t->dtype == TS_I64 && ts_tensor_get_i64(li->u.tensor.t, (int64_t[]){ 0 }) == -5);
        ts_pickle_free(p);
    }
    ts_tensor_release(w);
    ts_tensor_release(w2);
    ts_tensor_release(wt);
    ts_tensor_release(i);
}

/* Names must be new at every size of the writer's name set (it grows past 64 slots). */
static void test_writer_refuses_duplicate_names(void)
{
    const char *path = check_tmp_path("many.zip");
    ts_zip_writer *w = ts_zip_writer_open(path, NULL);
    CHECK(w != NULL);
    if (!w) return;
    char name[32];
    for (int i = 0; i < 300; i++) {
        snprintf(name, sizeof name, "data/%d", i);
        CHECK(ts_zip_writer_add(w, name, name, strlen(name)) == TS_OK);
    }
    CHECK(ts_zip_writer_finish(w) == TS_OK);
    ts_zip *z = ts_zip_open(path);
    CHECK(z && ts_zip_count(z) == 300 && ts_zip_find(z, "data/299") != NULL);
    ts_zip_close(z);
    for (int dup = 0; dup < 300; dup += 299) {              /* the first and the last name */
        w = ts_zip_writer_open(path, NULL);
        for (int i = 0; w && i < 300; i++) {
            snprintf(name, sizeof name, "data/%d", i);
            CHECK(ts_zip_writer_add(w, name, "x", 1) == TS_OK);
        }
        snprintf(name, sizeof name, "data/%d", dup);
        CHECK(ts_zip_writer_begin(w, name, 1) != TS_OK);
        char want[64];
        snprintf(want, sizeof want, "two entries are named 'data/%d'", dup);
        CHECK(strstr(ts_last_error(), want) != NULL);
        ts_zip_writer_abort(w);
    }
    z = ts_zip_open(path);                                   /* the aborted writers left the file alone */
    const ts_zip_entry *e = z ? ts_zip_find(z, "data/7") : NULL;
    CHECK(e && e->usize == 6);
    ts_zip_close(z);
}

int main(void)
{
    if (!(tmpdir = check_tmpdir("zip"))) return 1;
    RUN(test_write_read_round_trip);
    RUN(test_writer_failures_keep_the_old_file);
    RUN(test_writer_refuses_duplicate_names);
    RUN(test_names);
    RUN(test_deflate);
    RUN(test_pickle_values);
    RUN(test_pt_save_load);
    return check_finish("zip");
}
