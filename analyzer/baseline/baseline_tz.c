/* baseline_tz: a bounded name -> zone cache over kw_tz (see baseline_tz.h). */
#include "baseline_tz.h"

#include <stdio.h>
#include <string.h>

bool bl_tz_offset(struct bl_tzcache *c, const char *name, int64_t t, int32_t *off)
{
    *off = 0;
    if (!name || !name[0] || !strcmp(name, "UTC") || !strcmp(name, "Etc/UTC")) return true;
    struct bl_zone *z = NULL;
    for (unsigned i = 0; i < c->n && !z; i++)
        if (!strcmp(c->z[i].name, name)) z = &c->z[i];
    if (!z) {
        if (c->n == BL_TZ_MAX) return false;
        z = &c->z[c->n++];
        snprintf(z->name, sizeof z->name, "%s", name);
        char err[128];
        if (kw_tz_load(name, &z->tz, err, sizeof err) != KW_E_OK) z->tz = NULL;
    }
    if (!z->tz) return false;
    *off = kw_tz_offset(z->tz, t);
    return true;
}

void bl_tz_free(struct bl_tzcache *c)
{
    for (unsigned i = 0; i < c->n; i++)
        kw_tz_free(c->z[i].tz);
    c->n = 0;
}
