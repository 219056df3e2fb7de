/* alerts_state: the suppression windows as a blob and back, for a fleet
 * judge's checkpoint (docs/fleet.md): a judge that restarts from its last
 * commit must count repeats into the same windows, or a repeat would
 * become a new alert with a new id. The blob is this build's layout of
 * the used windows; it is refused (and the table left empty) for another
 * layout or table size.
 *
 * The blob comes from the database, which a local user with write access
 * may have changed: every window is checked before use (kind and severity
 * index tables, every string must end inside its field), and each is
 * placed by its key under this process's hash key, never at the slot the
 * saving process used (its key was another: a window left there would not
 * be found, and a repeat after a restart became a new alert). */
#include <stdlib.h>
#include <string.h>

#include "alerts_int.h"

enum kw_err alerts_state_save(struct alerts *a, uint8_t **blob, size_t *len)
{
    pthread_mutex_lock(&a->mu);
    struct aw_head h = {AW_MAGIC, sizeof(struct al_window), a->win_cap, 0, a->sweep_at};
    size_t cap = sizeof h + (size_t)a->win_used * (4 + sizeof(struct al_window));
    uint8_t *b = malloc(cap), *w = b + sizeof h;
    if (!b) {
        pthread_mutex_unlock(&a->mu);
        return KW_E_NOMEM;
    }
    for (uint32_t i = 0; i < a->win_hwm && h.used < a->win_used; i++) {
        if (!a->win[i].used) continue;
        memcpy(w, &i, 4);
        memcpy(w + 4, &a->win[i], sizeof a->win[i]);
        w += 4 + sizeof a->win[i];
        h.used++;
    }
    memcpy(b, &h, sizeof h);
    pthread_mutex_unlock(&a->mu);
    *blob = b;
    *len = (size_t)(w - b);
    return KW_E_OK;
}

#define ENDS(f) (memchr((f), 0, sizeof(f)) != NULL)

static bool window_valid(const struct al_window *w)
{
    return w->kind < ALERT__COUNT && w->severity >= 1 && w->severity <= 3 && ENDS(w->id) &&
           ENDS(w->who_key) && ENDS(w->who) && ENDS(w->subject) && ENDS(w->tz) &&
           ENDS(w->ident_id) && ENDS(w->ident_name) && ENDS(w->ident_kind) && ENDS(w->ident_via) &&
           ENDS(w->fp) && ENDS(w->hint);
}

enum kw_err alerts_state_load(struct alerts *a, const uint8_t *blob, size_t len)
{
    struct aw_head h;
    enum kw_err e = KW_E_OK;
    pthread_mutex_lock(&a->mu);
    al_win_clear(a);
    al_age_reset(a);
    if (len < sizeof h) {
        e = KW_E_UNSUPPORTED;
        goto out;
    }
    memcpy(&h, blob, sizeof h);
    if (h.magic != AW_MAGIC || h.win_size != sizeof(struct al_window) || h.win_cap != a->win_cap ||
        len != sizeof h + (size_t)h.used * (4 + sizeof(struct al_window)) || h.used > a->win_max) {
        e = KW_E_UNSUPPORTED;
        goto out;
    }
    const uint8_t *r = blob + sizeof h;
    for (uint32_t k = 0; k < h.used; k++, r += 4 + sizeof(struct al_window)) {
        struct al_window w;
        memcpy(&w, r + 4, sizeof w);
        if (!window_valid(&w) || al_win_find(a, w.key)) {
            al_win_clear(a);
            al_age_reset(a);
            e = KW_E_MALFORMED;
            goto out;
        }
        struct al_window *d = al_win_insert(a, w.key);
        *d = w;
        d->used = true;
        al_age_push(a, d);
    }
    a->sweep_at = h.sweep_at;
out:
    pthread_mutex_unlock(&a->mu);
    return e;
}
