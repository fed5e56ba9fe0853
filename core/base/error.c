/* error.c — the thread-local error buffer behind ts_last_error().
 * Provides ts_fail, ts_fail_null, ts_last_error, ts_last_status. */
#include "torsh/base.h"

#include <stdarg.h>
#include <stdio.h>

static _Thread_local char err_msg[4096];   /* room for "supported ops: ..." lists */
static _Thread_local ts_status err_code;

static void set_error(ts_status code, const char *fmt, va_list ap)
{
    vsnprintf(err_msg, sizeof err_msg, fmt, ap);
    err_code = code;
}

ts_status ts_fail(ts_status code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_error(code, fmt, ap);
    va_end(ap);
    return code;
}

void *ts_fail_null(ts_status code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_error(code, fmt, ap);
    va_end(ap);
    return NULL;
}

const char *ts_last_error(void) { return err_msg; }
ts_status ts_last_status(void) { return err_code; }
void ts_clear_error(void) { err_msg[0] = '\0'; err_code = TS_OK; }
