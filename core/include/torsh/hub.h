/* torsh/hub.h — the byte-moving half of the model hub: SHA-256, file locks
 * between processes, and HTTP(S) transfers over libcurl that resume, retry
 * and verify. Policy (mirrors, the cache layout, registries, versions) lives
 * in Lua (stdlib/torsh/hub*.lua); this layer touches every byte or the
 * network and nothing else.
 *
 * A download, start to end:
 *
 *     ts_hub_lock *lk = ts_hub_lock_acquire("/cache/blobs/ab12...lock", 600, NULL);
 *     if (!lk) { fprintf(stderr, "%s\n", ts_last_error()); return; }
 *     ts_hub_request rq = { .url = "https://host/model.bin",
 *                           .dest = "/cache/blobs/ab12...",   // final name
 *                           .sha256 = "ab12..." };            // optional
 *     ts_hub_result res;
 *     if (ts_hub_download(&rq, &res) != TS_OK)
 *         fprintf(stderr, "%s (%s)\n", ts_last_error(), res.reason);
 *     ts_hub_lock_release(lk);
 *
 * The data goes to `<dest>.incomplete` with a sidecar `<dest>.incomplete.meta`
 * (URL digest, ETag, Last-Modified, sizes). A later call, from any process,
 * continues with a Range request when the server still has the same
 * version (If-Range), and starts over cleanly when it does not. The SHA-256
 * is computed while the bytes stream in (no second pass); on success the
 * file is fsync'ed and renamed to `dest`; on a digest mismatch it is deleted
 * and the error says expected vs got. Nothing reaches `dest` unverified.
 *
 * Errors: TS_OK or a code, the message in ts_last_error() (URLs in messages
 * have credentials and token-like query values masked; the auth token never
 * appears anywhere), and ts_hub_result.reason a short word for programs:
 * "http", "network", "timeout", "checksum", "size", "io", "offline",
 * "cancelled", "lock", "arg".
 *
 * Threads: every function may be called from any thread; nothing here keeps
 * process-wide mutable state apart from libcurl's one-time global init.
 */
#ifndef TORSH_HUB_H
#define TORSH_HUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "torsh/base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- SHA-256 (FIPS 180-4) ------------------------------------------------ */

typedef struct ts_sha256 {
    uint32_t h[8];
    uint64_t nbytes;     /* message bytes so far */
    uint8_t buf[64];     /* partial block */
    size_t nbuf;
} ts_sha256;

void ts_sha256_init(ts_sha256 *s);
void ts_sha256_update(ts_sha256 *s, const void *data, size_t n);
/* Writes the 32-byte digest; `s` must be initialised again before reuse. */
void ts_sha256_final(ts_sha256 *s, uint8_t digest[32]);
/* Lower-case hex of a digest, NUL-terminated (65 bytes). */
void ts_sha256_hex(const uint8_t digest[32], char hex[65]);
/* Hex digest of `n` bytes at `data`. */
void ts_sha256_hex_of(const void *data, size_t n, char hex[65]);
/* Hex digest and size of a whole file. */
ts_status ts_sha256_file(const char *path, char hex[65], int64_t *size);
/* The block function in use: "sha-ni" (x86 SHA extensions) or "portable". */
const char *ts_sha256_impl(void);
/* For tests and benchmarks: use the accelerated block function when the CPU
 * has one (true, the default) or the portable one (false). Not thread-safe
 * with hashing in flight. */
void ts_sha256_select(bool accelerated);

/* ---- locks between processes ------------------------------------------- */

/* An exclusive lock on a lock file (flock), holding "pid hostname". */
typedef struct ts_hub_lock ts_hub_lock;

/* Takes the lock at `path` (created if missing), waiting up to timeout_s
 * seconds (< 0: forever). A lock file left by a killed process is taken
 * over at once (the OS dropped its lock); a lock still held by an open file
 * whose recorded holder is a dead process on this host (a leftover child
 * kept the descriptor) is broken and taken over too. *took_over (may be
 * NULL) says whether a dead holder's lock was taken over. Returns NULL with
 * a message naming the holder on timeout. Release with ts_hub_lock_release. */
ts_hub_lock *ts_hub_lock_acquire(const char *path, double timeout_s, bool *took_over);
/* Removes the lock file and drops the lock. NULL is fine. */
void ts_hub_lock_release(ts_hub_lock *lock);
/* "pid host" of the process the lock file names, into buf ("" if none). */
void ts_hub_lock_holder(const char *path, char *buf, size_t n);

/* ---- transfers ------------------------------------------------------------- */

/* Progress: bytes in place so far (a resumed part included) and the total
 * (-1 when unknown). Called at most ~10 times a second, also while waiting
 * between attempts; return non-zero to cancel (the call then fails with
 * reason "cancelled", keeping the partial file for a later resume). */
typedef int (*ts_hub_progress_fn)(int64_t done, int64_t total, void *user);

/* Settings shared by every transfer. Zero means the default. */
typedef struct ts_hub_options {
    const char *token;          /* sent as "Authorization: Bearer ..."; never logged */
    const char *user_agent;     /* default "torsh/<version>" */
    double connect_timeout_s;   /* default 10 */
    double low_speed_time_s;    /* abort an attempt that stays below */
    int64_t low_speed_bytes;    /*   low_speed_bytes/s for this long (defaults 30 s, 1 B/s) */
    double timeout_s;           /* whole-attempt limit; default none */
    int tries;                  /* attempts in a row without progress; default 5 */
    double backoff_s;           /* first wait between attempts; default 0.5, doubled each time, jittered */
    double max_backoff_s;       /* cap on a wait, Retry-After included; default 30 */
    ts_hub_progress_fn progress;
    void *progress_user;
} ts_hub_options;

typedef struct ts_hub_request {
    const char *url;            /* http, https or file */
    const char *dest;           /* final path; or NULL and dest_dir: */
    const char *dest_dir;       /*   final path is dest_dir/<sha256 hex> */
    const char *partial;        /* default "<dest>.incomplete" (required with dest_dir) */
    const char *sha256;         /* expected hex digest, or NULL */
    int64_t size;               /* expected size when > 0 */
    bool no_resume;             /* discard any partial data first */
    ts_hub_options opt;
} ts_hub_request;

typedef struct ts_hub_result {
    char path[4096];            /* final path (downloads) */
    char sha256[65];            /* digest of the data (downloads, uploads) */
    char etag[256];             /* validator of the last response */
    char reason[16];            /* "" on success, else a word (see top) */
    int64_t size;               /* bytes of the file / body / Content-Length (-1 unknown) */
    int64_t received;           /* body bytes received by this call, every attempt */
    int64_t resumed_from;       /* offset the first range request started at (0: none) */
    int attempts;
    bool restarted;             /* partial data was discarded on the way */
    long http_status;           /* of the last response (0: none) */
    double seconds;             /* wall time of the call (head: of the request) */
} ts_hub_result;

/* Downloads req->url to its final path as described at the top. Fills *res
 * (also on failure). Fails at once, with reason "offline", when
 * TORSH_OFFLINE is set to 1/true/yes and the URL is not a file:// URL. The
 * caller serialises processes with a ts_hub_lock. */
ts_status ts_hub_download(const ts_hub_request *req, ts_hub_result *res);

/* GET into memory (at most max_bytes; <= 0: 64 MiB), with the same retries.
 * *body is malloc'ed (NUL-terminated, *len bytes); free() it. */
ts_status ts_hub_fetch(const char *url, const ts_hub_options *opt, int64_t max_bytes,
                       char **body, size_t *len, ts_hub_result *res);

/* One HEAD request (no retries): status, size, ETag, latency in seconds. A
 * server answering at all (even 404) is TS_OK; res->http_status tells. */
ts_status ts_hub_head(const char *url, const ts_hub_options *opt, ts_hub_result *res);

/* HTTP PUT of the file at `path` to `url` with its SHA-256 in the headers
 * "X-Checksum-Sha256" (hex) and "Digest: sha-256=<base64>", with retries.
 * A 2xx answer is TS_OK. */
ts_status ts_hub_upload(const char *path, const char *url, const ts_hub_options *opt, ts_hub_result *res);

/* Copy of `url` with user:password and token-like query values
 * (token, key, sig, signature, auth, password, credential, X-Amz-*)
 * replaced by "***", for messages. Returns buf. */
char *ts_hub_redact_url(const char *url, char *buf, size_t n);

/* True when TORSH_OFFLINE asks for no network access. */
bool ts_hub_offline(void);

/* ---- files -------------------------------------------------------------------- */

typedef enum ts_hub_ftype { TS_HUB_NONE = 0, TS_HUB_FILE, TS_HUB_DIR, TS_HUB_LINK, TS_HUB_OTHER } ts_hub_ftype;

typedef struct ts_hub_stat {
    ts_hub_ftype type;          /* of the path itself (links are not followed) */
    int64_t size;
    double mtime;               /* seconds since the epoch */
    ts_hub_ftype target;        /* for links: the type of what it points to (NONE if dangling) */
} ts_hub_stat;

/* lstat; a missing path is TS_OK with type TS_HUB_NONE. */
ts_status ts_hub_stat_path(const char *path, ts_hub_stat *st);
/* Names in a directory (no "." or ".."), sorted, as one malloc'ed block of
 * NUL-terminated strings; *count names. free() it. */
char *ts_hub_listdir(const char *path, size_t *count);
/* mkdir -p (mode 0755). */
ts_status ts_hub_mkdirs(const char *path);
/* Makes `path` a symlink to `target`, replacing what is there atomically. */
ts_status ts_hub_symlink(const char *target, const char *path);
/* Target of a symlink into buf. */
ts_status ts_hub_readlink(const char *path, char *buf, size_t n);
/* rm -rf of one path (does not follow links). Missing is fine. */
ts_status ts_hub_remove_tree(const char *path);
/* Copies src to dst atomically (dst.tmp-<pid>, fsync, rename). */
ts_status ts_hub_copy_file(const char *src, const char *dst);
/* fsync of a directory, so a rename in it survives a crash. */
ts_status ts_hub_fsync_dir(const char *dir);

#ifdef __cplusplus
}
#endif
#endif
