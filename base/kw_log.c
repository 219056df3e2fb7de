/* kw_log: stderr diagnostics with a level filter (see kw_log.h). */
#include "kw_log.h"

#include <stdarg.h>
#include <stdio.h>

#include "kw_term.h"

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
    /* messages quote hosts, paths and names from the wire: escaped, so
     * they can neither drive the terminal nor forge another log line */
    char msg[4096];
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "keywarden: %s: ", names[lvl]);
    kw_term_fputs(msg, stderr);
    fputc('\n', stderr);
}
