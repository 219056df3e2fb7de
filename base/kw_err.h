/* kw_err: the one error enum of keywarden, generated with its strings.
 * Functions that can fail return enum kw_err and are KW_WUR, so a caller
 * cannot silently ignore a failure. "limit" (a configured ceiling was hit)
 * is distinct from "nomem" (the allocator failed). */
#ifndef KW_ERR_H
#define KW_ERR_H

#define KW_WUR __attribute__((warn_unused_result))

#define KW_ERR_MAP(X)                                                        \
    X(OK, "success")                                                         \
    X(NOMEM, "out of memory")                                                \
    X(LIMIT, "configured limit reached")                                     \
    X(INVAL, "invalid argument")                                             \
    X(MALFORMED, "malformed input")                                          \
    X(TRUNCATED, "truncated input")                                          \
    X(NEED_MORE, "need more input")                                          \
    X(IO, "input/output error")                                              \
    X(NOTFOUND, "not found")                                                 \
    X(UNSUPPORTED, "unsupported")                                            \
    X(CONFIG, "configuration error")                                         \
    X(DB, "database error")                                                  \
    X(AGAIN, "try again later")

enum kw_err {
#define KW_ERR_ENUM(name, str) KW_E_##name,
    KW_ERR_MAP(KW_ERR_ENUM)
#undef KW_ERR_ENUM
        KW_E__COUNT
};

/* Static string, lives forever. */
const char *kw_strerror(enum kw_err e);

#endif
