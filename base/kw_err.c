/* kw_err: strings for the error enum (see kw_err.h). */
#include "kw_err.h"

static const char *const kw_err_str[] = {
#define KW_ERR_STR(name, str) str,
    KW_ERR_MAP(KW_ERR_STR)
#undef KW_ERR_STR
};

const char *kw_strerror(enum kw_err e)
{
    if ((unsigned)e >= KW_E__COUNT)
        return "unknown error";
    return kw_err_str[e];
}
