/* test_hub.c — C tests of core/hub without a network: SHA-256 against the
 * NIST FIPS 180-4 / CAVP vectors, the SHA-NI and portable block functions
 * agreeing on every length and split, files hashed in one pass; URL
 * redaction; locks (exclusive, released, a dead holder's file taken over);
 * the file helpers; transfers refusing bad arguments and offline mode, and
 * a file:// download verified and renamed (no server needed). */
#include "check.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <torsh/torsh.h>

static void hex_of(const void *p, size_t n, char out[65]) { ts_sha256_hex_of(p, n, out); }

static void test_sha256_nist_vectors(void)
{
    char hex[65];
    hex_of("", 0, hex);
    CHECK(!strcmp(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
    hex_of("abc", 3, hex);
    CHECK(!strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    hex_of(two, strlen(two), hex);
    CHECK(!strcmp(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"));
    const char *four = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";
    hex_of(four, strlen(four), hex);
    CHECK(!strcmp(hex, "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"));
    /* one million 'a', fed in uneven pieces */
    char *a = malloc(1000000);
    memset(a, 'a', 1000000);
    ts_sha256 s;
    ts_sha256_init(&s);
    size_t off = 0, step = 1;
    while (off < 1000000) {
        size_t n = step < 1000000 - off ? step : 1000000 - off;
        ts_sha256_update(&s, a + off, n);
        off += n;
        step = step * 3 + 1;
    }
    uint8_t d[32];
    ts_sha256_final(&s, d);
    ts_sha256_hex(d, hex);
    CHECK(!strcmp(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"));
    free(a);
    /* CAVP SHA256ShortMsg: Len = 8, Msg = d3 */
    hex_of("\xd3", 1, hex);
    CHECK(!strcmp(hex, "28969cdfa74a12c82f3bad960b0b000aca2ac329deea5c2328ebc6f2ba9802c1"));
    /* Len = 16, Msg = 11af */
    hex_of("\x11\xaf", 2, hex);
    CHECK(!strcmp(hex, "5ca7133fa735326081558ac312c620eeca9970d1e70a4b95533d956f072d1f98"));
}

static void test_sha256_impls_agree(void)
{
    enum { N = 4099 };
    uint8_t *buf = malloc(N);
    uint32_t x = 12345;
    for (int i = 0; i < N; i++) { x = x * 1103515245u + 12345u; buf[i] = (uint8_t)(x >> 16); }
    const char *accel = ts_sha256_impl();
    for (size_t len = 0; len <= N; len += len < 200 ? 1 : 97) {
        char a[65], b[65];
        ts_sha256_select(false);
        CHECK(!strcmp(ts_sha256_impl(), "portable"));
        hex_of(buf, len, a);
        ts_sha256_select(true);
        /* the accelerated one, fed in two pieces split at len / 3 */
        ts_sha256 s;
        uint8_t d[32];
        ts_sha256_init(&s);
        ts_sha256_update(&s, buf, len / 3);
        ts_sha256_update(&s, buf + len / 3, len - len / 3);
        ts_sha256_final(&s, d);
        ts_sha256_hex(d, b);
        if (strcmp(a, b)) { CHECK(!"portable and accelerated SHA-256 differ"); fprintf(stderr, "  at length %zu\n", len); break; }
    }
    CHECK(!strcmp(ts_sha256_impl(), accel));
    printf("  sha256 block function: %s\n", accel);
    free(buf);
}

static void test_sha256_file(void)
{
    char path[] = "/tmp/torsh_hub_test_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    CHECK(write(fd, "abc", 3) == 3);
    close(fd);
    char hex[65];
    int64_t size = -1;
    CHECK(ts_sha256_file(path, hex, &size) == TS_OK);
    CHECK(size == 3 && !strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
    unlink(path);
    CHECK(ts_sha256_file(path, hex, &size) == TS_ERR_IO);
    CHECK(strstr(ts_last_error(), "cannot open") != NULL);
}

static void test_redact(void)
{
    char buf[256];
    ts_hub_redact_url("https://user:pass@host.org/a/b?token=abc&x=1&Signature=zz&X-Amz-Credential=k#frag", buf, sizeof buf);
    CHECK(!strcmp(buf, "https://***@host.org/a/b?token=***&x=1&Signature=***&X-Amz-Credential=***#frag"));
    ts_hub_redact_url("http://127.0.0.1:8080/f/-/data.bin", buf, sizeof buf);
    CHECK(!strcmp(buf, "http://127.0.0.1:8080/f/-/data.bin"));
    ts_hub_redact_url("https://h/x?access_token=s3cr3t", buf, 12);     /* truncated, still terminated */
    CHECK(strlen(buf) == 11 && !strstr(buf, "s3cr3t"));
}

static void test_locks(void)
{
    char dir[] = "/tmp/torsh_hub_lock_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[256];
    snprintf(path, sizeof path, "%s/x.lock", dir);
    bool took = true;
    ts_hub_lock *a = ts_hub_lock_acquire(path, 0, &took);
    CHECK(a != NULL && !took);
    char holder[320];
    ts_hub_lock_holder(path, holder, sizeof holder);
    CHECK(atol(holder) == (long)getpid());
    /* a second taker (another open file description) waits and times out */
    ts_hub_lock *b = ts_hub_lock_acquire(path, 0.1, NULL);
    CHECK(b == NULL && strstr(ts_last_error(), "is held by pid") != NULL);
    ts_hub_lock_release(a);
    struct stat sb;
    CHECK(stat(path, &sb) != 0);                 /* release removes the file */
    /* a lock file left by a process that died holding it: taken over */
    pid_t child = fork();
    if (child == 0) {
        ts_hub_lock *c = ts_hub_lock_acquire(path, 0, NULL);
        _exit(c ? 0 : 1);                        /* exits without releasing */
    }
    int status = 0;
    waitpid(child, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK(stat(path, &sb) == 0);
    took = false;
    a = ts_hub_lock_acquire(path, 1, &took);
    CHECK(a != NULL && took);
    ts_hub_lock_release(a);
    ts_hub_lock_release(NULL);
    CHECK(ts_hub_remove_tree(dir) == TS_OK);
}

static void test_files(void)
{
    char dir[] = "/tmp/torsh_hub_fs_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char p[512], q[512];
    snprintf(p, sizeof p, "%s/a/b/c", dir);
    CHECK(ts_hub_mkdirs(p) == TS_OK);
    CHECK(ts_hub_mkdirs(p) == TS_OK);
    snprintf(p, sizeof p, "%s/a/file", dir);
    FILE *f = fopen(p, "w");
    fputs("hello", f);
    fclose(f);
    snprintf(q, sizeof q, "%s/a/b/link", dir);
    CHECK(ts_hub_symlink("../file", q) == TS_OK);
    CHECK(ts_hub_symlink("../file", q) == TS_OK);   /* replacing works */
    ts_hub_stat st;
    CHECK(ts_hub_stat_path(q, &st) == TS_OK && st.type == TS_HUB_LINK && st.target == TS_HUB_FILE);
    char target[64];
    CHECK(ts_hub_readlink(q, target, sizeof target) == TS_OK && !strcmp(target, "../file"));
    snprintf(q, sizeof q, "%s/a", dir);
    size_t n = 0;
    char *names = ts_hub_listdir(q, &n);
    CHECK(names && n == 2 && !strcmp(names, "b") && !strcmp(names + 2, "file"));
    free(names);
    snprintf(q, sizeof q, "%s/copy", dir);
    CHECK(ts_hub_copy_file(p, q) == TS_OK);
    char hex[65];
    CHECK(ts_sha256_file(q, hex, NULL) == TS_OK);
    CHECK(!strcmp(hex, "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"));
    CHECK(ts_hub_stat_path("/nonexistent/x", &st) == TS_OK && st.type == TS_HUB_NONE);
    CHECK(ts_hub_listdir("/nonexistent/x", &n) == NULL && strstr(ts_last_error(), "listdir") != NULL);
    CHECK(ts_hub_remove_tree(dir) == TS_OK);
    CHECK(ts_hub_stat_path(dir, &st) == TS_OK && st.type == TS_HUB_NONE);
}

static void test_download_args_and_offline(void)
{
    ts_hub_result res;
    ts_hub_request rq = { .url = "http://127.0.0.1:9/x" };
    CHECK(ts_hub_download(&rq, &res) == TS_ERR_ARG && !strcmp(res.reason, "arg"));
    rq.dest = "/tmp/torsh_hub_never";
    rq.sha256 = "abc";
    CHECK(ts_hub_download(&rq, &res) == TS_ERR_ARG && strstr(ts_last_error(), "64 hex digits"));
    rq.sha256 = NULL;
    setenv("TORSH_OFFLINE", "1", 1);
    CHECK(ts_hub_download(&rq, &res) == TS_ERR_IO && !strcmp(res.reason, "offline"));
    CHECK(strstr(ts_last_error(), "offline mode") != NULL);
    ts_hub_options o = {0};
    char *body = NULL;
    size_t len = 0;
    CHECK(ts_hub_fetch("https://example.org/index.json", &o, 0, &body, &len, &res) == TS_ERR_IO && body == NULL);
    CHECK(ts_hub_head("https://example.org/", &o, &res) == TS_ERR_IO && !strcmp(res.reason, "offline"));
    unsetenv("TORSH_OFFLINE");
    struct stat sb;
    CHECK(stat("/tmp/torsh_hub_never.incomplete", &sb) != 0);
}

static void test_file_url_download(void)
{
    char dir[] = "/tmp/torsh_hub_dl_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char src[512], dest[512], url[600];
    snprintf(src, sizeof src, "%s/src.bin", dir);
    snprintf(dest, sizeof dest, "%s/dest.bin", dir);
    snprintf(url, sizeof url, "file://%s", src);
    enum { N = 3 << 20 };
    uint8_t *data = malloc(N);
    for (int i = 0; i < N; i++) data[i] = (uint8_t)(i * 7 + (i >> 10));
    FILE *f = fopen(src, "wb");
    fwrite(data, 1, N, f);
    fclose(f);
    char want[65];
    hex_of(data, N, want);
    free(data);
    ts_hub_result res;
    ts_hub_request rq = { .url = url, .dest = dest, .sha256 = want, .size = N };
    CHECK(ts_hub_download(&rq, &res) == TS_OK);
    CHECK(!strcmp(res.sha256, want) && res.size == N && !strcmp(res.path, dest));
    char got[65];
    CHECK(ts_sha256_file(dest, got, NULL) == TS_OK && !strcmp(got, want));
    char partial[600];
    snprintf(partial, sizeof partial, "%s.incomplete", dest);
    struct stat sb;
    CHECK(stat(partial, &sb) != 0);
    /* a wrong digest: an error naming both, and no file left */
    char wrong[65];
    memcpy(wrong, want, 65);
    wrong[0] = wrong[0] == '0' ? '1' : '0';
    snprintf(dest, sizeof dest, "%s/bad.bin", dir);
    ts_hub_request bad = { .url = url, .dest = dest, .sha256 = wrong };
    CHECK(ts_hub_download(&bad, &res) == TS_ERR_FORMAT && !strcmp(res.reason, "checksum"));
    CHECK(strstr(ts_last_error(), wrong) && strstr(ts_last_error(), want));
    CHECK(stat(dest, &sb) != 0);
    snprintf(partial, sizeof partial, "%s.incomplete", dest);
    CHECK(stat(partial, &sb) != 0);
    /* dest_dir: named by the digest */
    ts_hub_request byhash = { .url = url, .dest_dir = dir, .partial = partial };
    CHECK(ts_hub_download(&byhash, &res) == TS_OK);
    char named[700];
    snprintf(named, sizeof named, "%s/%s", dir, want);
    CHECK(!strcmp(res.path, named) && stat(named, &sb) == 0);
    CHECK(ts_hub_remove_tree(dir) == TS_OK);
}

int main(void)
{
    RUN(test_sha256_nist_vectors);
    RUN(test_sha256_impls_agree);
    RUN(test_sha256_file);
    RUN(test_redact);
    RUN(test_locks);
    RUN(test_files);
    RUN(test_download_args_and_offline);
    RUN(test_file_url_download);
    return check_finish("hub");
}
