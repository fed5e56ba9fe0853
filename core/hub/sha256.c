/* sha256.c — SHA-256 after FIPS 180-4: a portable block function and one
 * using the x86 SHA extensions (SHA-NI, ~4x faster), picked once from cpuid.
 * Provides ts_sha256_{init,update,final,hex,hex_of,file,impl,select}. */
#include "torsh/hub.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <immintrin.h>
#define TS_SHA_X86 1
#endif

typedef void (*blocks_fn)(uint32_t h[8], const uint8_t *data, size_t nblocks);

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static inline uint32_t rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }
static inline uint32_t load_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* FIPS 180-4 section 6.2.2, with the message schedule kept in 16 words. */
static void blocks_portable(uint32_t h[8], const uint8_t *data, size_t nblocks)
{
    for (; nblocks; nblocks--, data += 64) {
        uint32_t w[16];
        for (int t = 0; t < 16; t++) w[t] = load_be32(data + 4 * t);
        uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
        for (int t = 0; t < 64; t++) {
            if (t >= 16) {
                uint32_t w15 = w[(t - 15) & 15], w2 = w[(t - 2) & 15];
                uint32_t s0 = rotr(w15, 7) ^ rotr(w15, 18) ^ (w15 >> 3);
                uint32_t s1 = rotr(w2, 17) ^ rotr(w2, 19) ^ (w2 >> 10);
                w[t & 15] += s0 + w[(t - 7) & 15] + s1;
            }
            uint32_t t1 = hh + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[t] + w[t & 15];
            uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
            hh = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
        }
        h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
    }
}

#ifdef TS_SHA_X86
/* The same compression with SHA-NI: the state is kept as ABEF / CDGH,
 * sha256rnds2 does two rounds, sha256msg1/msg2 extend the schedule four
 * words at a time (W[t] = msg2(msg1(W[t-16], W[t-12]) + W[t-7], W[t-4])). */
__attribute__((target("sha,sse4.1,ssse3")))
static void blocks_shani(uint32_t h[8], const uint8_t *data, size_t nblocks)
{
    const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    __m128i tmp = _mm_loadu_si128((const __m128i *)&h[0]);      /* DCBA */
    __m128i st1 = _mm_loadu_si128((const __m128i *)&h[4]);      /* HGFE */
    tmp = _mm_shuffle_epi32(tmp, 0xB1);                          /* CDAB */
    st1 = _mm_shuffle_epi32(st1, 0x1B);                          /* EFGH */
    __m128i st0 = _mm_alignr_epi8(tmp, st1, 8);                  /* ABEF */
    st1 = _mm_blend_epi16(st1, tmp, 0xF0);                       /* CDGH */

    for (; nblocks; nblocks--, data += 64) {
        __m128i save0 = st0, save1 = st1;
        __m128i m[4];
#pragma GCC unroll 16
        for (int g = 0; g < 16; g++) {
            __m128i w;
            if (g < 4) {
                w = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(data + 16 * g)), bswap);
            } else {
                __m128i m4 = m[g & 3], m3 = m[(g + 1) & 3], m2 = m[(g + 2) & 3], m1 = m[(g + 3) & 3];
                w = _mm_sha256msg1_epu32(m4, m3);
                w = _mm_add_epi32(w, _mm_alignr_epi8(m1, m2, 4));
                w = _mm_sha256msg2_epu32(w, m1);
            }
            m[g & 3] = w;
            __m128i x = _mm_add_epi32(w, _mm_loadu_si128((const __m128i *)&K[4 * g]));
            st1 = _mm_sha256rnds2_epu32(st1, st0, x);
            x = _mm_shuffle_epi32(x, 0x0E);
            st0 = _mm_sha256rnds2_epu32(st0, st1, x);
        }
        st0 = _mm_add_epi32(st0, save0);
        st1 = _mm_add_epi32(st1, save1);
    }

    tmp = _mm_shuffle_epi32(st0, 0x1B);                          /* FEBA */
    st1 = _mm_shuffle_epi32(st1, 0xB1);                          /* DCHG */
    st0 = _mm_blend_epi16(tmp, st1, 0xF0);                       /* DCBA */
    st1 = _mm_alignr_epi8(st1, tmp, 8);                          /* HGFE */
    _mm_storeu_si128((__m128i *)&h[0], st0);
    _mm_storeu_si128((__m128i *)&h[4], st1);
}

static bool cpu_has_sha(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
    bool sha = (b >> 29) & 1;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
    bool sse41 = (c >> 19) & 1, ssse3 = (c >> 9) & 1;
    return sha && sse41 && ssse3;
}
#endif

/* Chosen once; ts_sha256_select may switch it (tests, benchmarks). */
static _Atomic(blocks_fn) chosen;

static blocks_fn pick(void)
{
    blocks_fn f = chosen;
    if (f) return f;
#ifdef TS_SHA_X86
    f = cpu_has_sha() ? blocks_shani : blocks_portable;
#else
    f = blocks_portable;
#endif
    chosen = f;
    return f;
}

const char *ts_sha256_impl(void)
{
#ifdef TS_SHA_X86
    if (pick() == blocks_shani) return "sha-ni";
#endif
    return "portable";
}

void ts_sha256_select(bool accelerated)
{
    chosen = NULL;
    if (!accelerated) chosen = blocks_portable;
    else pick();
}

void ts_sha256_init(ts_sha256 *s)
{
    static const uint32_t h0[8] = {
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
    };
    memcpy(s->h, h0, sizeof h0);
    s->nbytes = 0;
    s->nbuf = 0;
}

void ts_sha256_update(ts_sha256 *s, const void *data, size_t n)
{
    const uint8_t *p = data;
    blocks_fn blocks = pick();
    s->nbytes += n;
    if (s->nbuf) {
        size_t take = 64 - s->nbuf < n ? 64 - s->nbuf : n;
        memcpy(s->buf + s->nbuf, p, take);
        s->nbuf += take; p += take; n -= take;
        if (s->nbuf < 64) return;
        blocks(s->h, s->buf, 1);
        s->nbuf = 0;
    }
    if (n >= 64) {
        blocks(s->h, p, n / 64);
        p += n / 64 * 64;
        n %= 64;
    }
    if (n) {
        memcpy(s->buf, p, n);
        s->nbuf = n;
    }
}

void ts_sha256_final(ts_sha256 *s, uint8_t digest[32])
{
    uint64_t bits = s->nbytes * 8;
    uint8_t pad[72] = {0x80};
    size_t padlen = (s->nbuf < 56 ? 56 : 120) - s->nbuf;
    for (int i = 0; i < 8; i++) pad[padlen + i] = (uint8_t)(bits >> (56 - 8 * i));
    uint64_t keep = s->nbytes;
    ts_sha256_update(s, pad, padlen + 8);
    s->nbytes = keep;
    for (int i = 0; i < 8; i++) {
        digest[4 * i] = (uint8_t)(s->h[i] >> 24);
        digest[4 * i + 1] = (uint8_t)(s->h[i] >> 16);
        digest[4 * i + 2] = (uint8_t)(s->h[i] >> 8);
        digest[4 * i + 3] = (uint8_t)s->h[i];
    }
}

void ts_sha256_hex(const uint8_t digest[32], char hex[65])
{
    static const char xd[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        hex[2 * i] = xd[digest[i] >> 4];
        hex[2 * i + 1] = xd[digest[i] & 15];
    }
    hex[64] = '\0';
}

void ts_sha256_hex_of(const void *data, size_t n, char hex[65])
{
    ts_sha256 s;
    uint8_t d[32];
    ts_sha256_init(&s);
    ts_sha256_update(&s, data, n);
    ts_sha256_final(&s, d);
    ts_sha256_hex(d, hex);
}

ts_status ts_sha256_file(const char *path, char hex[65], int64_t *size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ts_fail(TS_ERR_IO, "sha256: cannot open '%s': %s", path, strerror(errno));
    enum { CHUNK = 1 << 20 };
    uint8_t *buf = malloc(CHUNK);
    if (!buf) { close(fd); return ts_fail(TS_ERR_MEMORY, "sha256: out of memory"); }
    posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    ts_sha256 s;
    ts_sha256_init(&s);
    int64_t total = 0;
    for (;;) {
        ssize_t got = read(fd, buf, CHUNK);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) {
            int e = errno;
            free(buf);
            close(fd);
            return ts_fail(TS_ERR_IO, "sha256: cannot read '%s': %s", path, strerror(e));
        }
        if (got == 0) break;
        ts_sha256_update(&s, buf, (size_t)got);
        total += got;
    }
    free(buf);
    close(fd);
    uint8_t d[32];
    ts_sha256_final(&s, d);
    ts_sha256_hex(d, hex);
    if (size) *size = total;
    return TS_OK;
}
