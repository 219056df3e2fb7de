/* kw_log: stderr diagnostics with a level filter (see kw_log.h). */
#include "kw_log.h"

#include <stdarg.h>
#include <stdio.h>

static enum kw_log_level g_level = KW_LOG_INFO;

void kw_log_set_level(enum kw_log_level lvl)
{
    g_level = lvl;
}

void kw_log(enum kw_log_level lvl, const char *fmt, ...)
{
    static const char *const names[] = {"error", "warning", "info", "debug"};
    if (lvl > g_level)
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "keywarden: %s: ", names[lvl]);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}
