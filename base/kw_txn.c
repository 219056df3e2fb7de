/* kw_txn: names of transaction flags (see kw_txn.h). */
#include "kw_txn.h"

#include <stddef.h>

static const char *const flag_names[] = {
#define KW_TXN_FLAG_NAME(n, s) s,
    KW_TXN_FLAGS(KW_TXN_FLAG_NAME)
#undef KW_TXN_FLAG_NAME
};

const char *kw_txn_flag_name(unsigned bit)
{
    return bit < KW_TXN_BIT__COUNT ? flag_names[bit] : NULL;
}
