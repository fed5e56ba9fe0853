/* embed.c — a C program that uses libtorsh alone (no Lua): builds two
 * tensors, multiplies them, reduces, and prints the result. Shows the life
 * cycle: every ts_ function that returns a tensor returns a new reference,
 * released with ts_tensor_release; failures leave a message in ts_last_error. */
#include <stdio.h>
#include <torsh/torsh.h>

int main(void)
{
    int64_t shape[2] = { 2, 3 };
    ts_tensor *a = ts_tensor_full(shape, 2, TS_F32, 2.0);
    ts_tensor *b = ts_arange(0, 6, 1, TS_F32);
    ts_tensor *b2 = b ? ts_view(b, shape, 2) : NULL;
    ts_tensor *c = (a && b2) ? ts_binary(TS_MUL, a, b2) : NULL;
    ts_tensor *bad = c ? ts_matmul(c, c) : NULL;        /* [2,3] @ [2,3]: must fail */
    int rc = 0;
    if (!c) {
        fprintf(stderr, "embed: %s\n", ts_last_error());
        rc = 1;
    } else {
        double sum = 0;
        for (int64_t i = 0; i < ts_tensor_numel(c); i++) sum += ts_tensor_item_at(c, i);
        printf("sum = %g\n", sum);                       /* 2 * (0+1+...+5) = 30 */
        printf("matmul error: %s\n", bad ? "none" : ts_last_error());
        if (bad) rc = 1;
    }
    ts_tensor_release(bad);
    ts_tensor_release(c);
    ts_tensor_release(b2);
    ts_tensor_release(b);
    ts_tensor_release(a);
    return rc;
}
