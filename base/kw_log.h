/* kw_log: diagnostics to stderr. Never logs secrets: callers pass only
 * fingerprints and hints. Level is process-wide configuration set once at
 * start-up (the only global, read-only after main() sets it). */
#ifndef KW_LOG_H
#define KW_LOG_H

enum kw_log_level { KW_LOG_ERROR, KW_LOG_WARN, KW_LOG_INFO, KW_LOG_DEBUG };

void kw_log_set_level(enum kw_log_level lvl);
void kw_log(enum kw_log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define kw_err_log(...) kw_log(KW_LOG_ERROR, __VA_ARGS__)
#define kw_warn(...) kw_log(KW_LOG_WARN, __VA_ARGS__)
#define kw_info(...) kw_log(KW_LOG_INFO, __VA_ARGS__)
#define kw_debug(...) kw_log(KW_LOG_DEBUG, __VA_ARGS__)

#endif
