/* shape: segment shapes (see shape.h and docs/shapes.md).
 *
 * The one thing to know: every rule asks for more than a route word can
 * have by accident. A digit alone does not make an id (oauth2, v2, x509,
 * word2vec are route words); an id needs a run of digits, or letters and
 * digits interleaved the way generated ids are, or mixed case that
 * changes as often as random base62 does. */
#include "shape.h"

#include <string.h>

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}
static bool is_lower(char c)
{
    return c >= 'a' && c <= 'z';
}
static bool is_upper(char c)
{
    return c >= 'A' && c <= 'Z';
}
static bool is_alpha(char c)
{
    return is_lower(c) || is_upper(c);
}
static bool is_alnum(char c)
{
    return is_alpha(c) || is_digit(c);
}
static bool is_hex(char c)
{
    return is_digit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f');
}
static bool is_sep(char c)
{
    return c == '-' || c == '_' || c == '.' || c == ':' || c == '~';
}

/* 0 digit, 1 lower, 2 upper */
static int cls(char c)
{
    return is_digit(c) ? 0 : is_lower(c) ? 1 : 2;
}

static bool is_vowel(char c)
{
    return strchr("aeiouyAEIOUY", c) != NULL;
}

/* Reads as words: split where a lower-case letter meets an upper-case one
 * or a digit (SetLockState, getHTTPSProxy, XMLHttpRequest2), every piece
 * of letters has a vowel. Random text rarely does (IPr|HOVg|Qm|...). */
static bool wordlike(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        if (is_digit(s[i])) {
            i++;
            continue;
        }
        size_t j = i + 1;
        while (j < n && is_alpha(s[j]) && !(is_lower(s[j - 1]) && is_upper(s[j])))
            j++;
        bool v = false;
        for (size_t k = i; k < j; k++)
            v = v || is_vowel(s[k]);
        if (!v) return false;
        i = j;
    }
    return true;
}

/* Does one alphanumeric run look minted rather than written? */
static bool idish(const char *s, size_t n)
{
    size_t d = 0, lo = 0, up = 0, ld = 0, changes = 0;
    for (size_t i = 0; i < n; i++) {
        if (!is_alnum(s[i])) return false;
        d += is_digit(s[i]);
        lo += is_lower(s[i]);
        up += is_upper(s[i]);
        if (i) {
            changes += cls(s[i]) != cls(s[i - 1]);
            ld += is_digit(s[i]) != is_digit(s[i - 1]);
        }
    }
    size_t letters = lo + up;
    if (n >= 2 && d == n) return true;                            /* 2026, 754865 */
    if (d >= 4 && letters >= 1) return true;                      /* ORD12345, A1234567 */
    if (n >= 8 && d >= 2 && letters >= 2 && ld >= 2) return true; /* base36: k3j9x8q2 */
    if (n < 10 || wordlike(s, n)) return false;
    /* base62: random mixed case changes class about every other char;
     * camelCase route words (scoreboardV2, getIamPolicy) once per word */
    if (d >= 1 && lo >= 1 && up >= 1 && changes * 3 >= n) return true;
    if (lo >= 2 && up >= 2 && changes * 5 >= n * 2) return true;
    /* random letters have few vowels (12 of 52 with y, 23 %; words about
     * 40 %) and long runs of lower-case consonants:
     * fil_mozbgXSHLqzdppjQGk is minted */
    size_t vow = 0, run = 0, maxrun = 0;
    for (size_t i = 0; i < n; i++) {
        bool v = strchr("aeiouyAEIOUY", s[i]) != NULL;
        vow += v;
        run = is_lower(s[i]) && !v ? run + 1 : 0;
        if (run > maxrun) maxrun = run;
    }
    return n >= 12 && letters >= 10 && ((lo && up) || d) && (vow * 6 < letters || maxrun >= 5);
}

/* The id part of a prefixed id (cus_..., ope_...): after a short prefix
 * and a separator, ten or more mixed-case letters that do not read as
 * words are minted even when they change case rarely; fourteen or more
 * that change class (lower, upper, digit) every third character are
 * minted even when each piece happens to hold a vowel
 * (cer_uxQkwxumqVaen9OZAS: ux|Qkwxumq|Vaen|9|OZAS reads as words). */
static bool minted_part(const char *s, size_t n)
{
    size_t lo = 0, up = 0, changes = 0;
    for (size_t i = 0; i < n; i++) {
        lo += is_lower(s[i]);
        up += is_upper(s[i]);
        changes += i && cls(s[i]) != cls(s[i - 1]);
    }
    return n >= 10 && lo && up && (!wordlike(s, n) || (n >= 14 && changes * 3 >= n));
}

static bool all(const char *s, size_t n, bool (*f)(char))
{
    for (size_t i = 0; i < n; i++)
        if (!f(s[i])) return false;
    return true;
}

static int num(const char *s, size_t n)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!is_digit(s[i])) return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

static bool is_uuid(const char *s, size_t n)
{
    if (n != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-') return false;
    for (size_t i = 0; i < n; i++)
        if (i != 8 && i != 13 && i != 18 && i != 23 && !is_hex(s[i])) return false;
    return true;
}

/* YYYY-MM, YYYY-MM-DD, optionally THH:MM[:SS[.f+]][Z|+HH:MM|+HHMM]. */
static bool is_date(const char *s, size_t n)
{
    if (n < 7 || s[4] != '-') return false;
    int y = num(s, 4), m = num(s + 5, 2);
    if (y < 1900 || y > 2199 || m < 1 || m > 12) return false;
    if (n == 7) return true;
    if (n < 10 || s[7] != '-') return false;
    int d = num(s + 8, 2);
    if (d < 1 || d > 31) return false;
    if (n == 10) return true;
    if (s[10] != 'T' && s[10] != 't') return false;
    size_t i = 11;
    if (n < i + 5 || num(s + i, 2) < 0 || s[i + 2] != ':' || num(s + i + 3, 2) < 0) return false;
    i += 5;
    if (i + 3 <= n && s[i] == ':' && num(s + i + 1, 2) >= 0) i += 3;
    if (i < n && s[i] == '.') {
        size_t j = i + 1;
        while (j < n && is_digit(s[j]))
            j++;
        if (j == i + 1) return false;
        i = j;
    }
    if (i == n) return true;
    if ((s[i] == 'Z' || s[i] == 'z') && i + 1 == n) return true;
    if (s[i] != '+' && s[i] != '-') return false;
    size_t r = n - i - 1;
    return (r == 5 && s[i + 3] == ':' && num(s + i + 1, 2) >= 0 && num(s + i + 4, 2) >= 0) ||
           (r == 4 && num(s + i + 1, 4) >= 0);
}

/* local@domain.tld, '@' raw or as %40 (norm_path keeps it encoded). */
static bool is_email(const char *s, size_t n)
{
    /* nearly every segment has neither: two memchr instead of a test of
     * each byte (this was ~2 % of the packet thread, issue 13) */
    if (!memchr(s, '@', n) && !memchr(s, '%', n)) return false;
    size_t at = n, alen = 1;
    for (size_t i = 0; i < n; i++) {
        size_t l = s[i] == '@' ? 1 : (i + 3 <= n && !memcmp(s + i, "%40", 3)) ? 3 : 0;
        if (!l) continue;
        if (at != n) return false;
        at = i;
        alen = l;
    }
    if (at == n || at == 0) return false;
    for (size_t i = 0; i < at; i++)
        if (!is_alnum(s[i]) && !strchr("._+-", s[i])) return false;
    const char *d = s + at + alen;
    size_t dn = n - at - alen, dot = dn;
    for (size_t i = 0; i < dn; i++) {
        if (d[i] == '.')
            dot = i;
        else if (!is_alnum(d[i]) && d[i] != '-')
            return false;
    }
    return dot > 0 && dot + 3 <= dn && all(d + dot + 1, dn - dot - 1, is_alpha);
}

/* v1, v2.1, v1beta1, v1alpha, 2.0, 1.2.3 (at most three numbers). */
static bool is_version(const char *s, size_t n)
{
    size_t i = 0;
    bool v = n > 1 && (s[0] == 'v' || s[0] == 'V');
    if (v) i = 1;
    int parts = 0;
    while (i < n && is_digit(s[i])) {
        size_t j = i;
        while (j < n && is_digit(s[j]))
            j++;
        if (j - i > 4) return false;
        parts++;
        i = j;
        if (i < n && s[i] == '.' && i + 1 < n && is_digit(s[i + 1]))
            i++;
        else
            break;
    }
    if (!parts || parts > 3 || (!v && parts < 2)) return false;
    if (i == n) return true;
    if (!v) return false;
    size_t j = i; /* v1beta1, v2alpha */
    while (j < n && is_lower(s[j]))
        j++;
    if (j == i || j - i > 6) return false;
    while (j < n && is_digit(s[j]))
        j++;
    return j == n;
}

static bool is_ulid(const char *s, size_t n)
{
    if (n != 26 || s[0] < '0' || s[0] > '7') return false;
    size_t d = 0, up = 0, lo = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i], u = (char)(is_lower(c) ? c - 32 : c);
        if (!is_alnum(c) || u == 'I' || u == 'L' || u == 'O' || u == 'U') return false;
        d += is_digit(c);
        up += is_upper(c);
        lo += is_lower(c);
    }
    return d && (up || lo) && !(up && lo);
}

enum shape_kind shape_classify(const char *s, size_t n)
{
    if (n == 0) return SHAPE_WORD;
    if (all(s, n, is_digit)) return SHAPE_INT;
    if (is_uuid(s, n)) return SHAPE_UUID;
    if (is_date(s, n)) return SHAPE_DATE;
    if (is_version(s, n)) return SHAPE_VERSION;
    if (is_email(s, n)) return SHAPE_EMAIL;
    bool alnum = all(s, n, is_alnum);
    if (alnum) {
        if (is_ulid(s, n)) return SHAPE_ULID;
        size_t d = 0;
        for (size_t i = 0; i < n; i++)
            d += is_digit(s[i]);
        if (n >= 8 && d && all(s, n, is_hex)) return SHAPE_HEX;
        return idish(s, n) ? SHAPE_TOKEN : SHAPE_WORD;
    }
    /* parts joined by separators: one minted part makes the whole an id */
    size_t i = 0, parts = 0;
    bool any = false;
    while (i < n) {
        size_t j = i;
        while (j < n && is_alnum(s[j]))
            j++;
        if (j == i || (j < n && !is_sep(s[j]))) return SHAPE_WORD; /* "%20", "a--b" */
        parts++;
        /* the relaxed test only for the id after a short prefix: cus_...,
         * not Microsoft.DocumentDB */
        bool prefixed = parts == 2 && i >= 2 && i <= 6 && (s[i - 1] == '_' || s[i - 1] == '-') &&
                        all(s, i - 1, is_alpha) && j == n;
        any = any || idish(s + i, j - i) || (prefixed && minted_part(s + i, j - i));
        i = j + 1;
        if (j + 1 == n) return SHAPE_WORD; /* trailing separator */
    }
    return any && parts >= 2 ? SHAPE_PREFIXED : SHAPE_WORD;
}

bool shape_is_strong(enum shape_kind k)
{
    return k != SHAPE_WORD && k != SHAPE_VERSION && k != SHAPE_NAME && k < SHAPE__COUNT;
}

size_t shape_core(const char *s, size_t n)
{
    if (n < 3 || is_email(s, n) || is_date(s, n)) return n;
    for (size_t k = n; k-- > 1;) {
        char c = s[k];
        if (c == '.' || c == ':') {
            size_t sl = n - k - 1;
            if (sl == 0 || !is_alpha(s[k + 1])) return n;
            if (c == '.' && (sl > 5 || !all(s + k + 1, sl, is_alnum))) return n;
            if (c == ':' && !all(s + k + 1, sl, is_alpha)) return n;
            return k;
        }
        if (!is_alnum(c)) return n;
    }
    return n;
}

size_t shape_split(const char *s, size_t n, size_t *pre)
{
    *pre = 0;
    if (n >= 4 && s[n - 1] == ')' && is_alpha(s[0])) {
        size_t i = 1;
        while (i < n && (is_alnum(s[i]) || s[i] == '_' || s[i] == '.'))
            i++;
        if (i < n - 2 && s[i] == '(') {
            size_t b = i + 1, e = n - 1;
            if (s[b] == '\'' && s[e - 1] == '\'' && e - 1 > b + 1) {
                b++;
                e--;
            }
            if (e > b && !memchr(s + b, '(', e - b) && !memchr(s + b, ')', e - b)) {
                *pre = b;
                return e - b;
            }
        }
    }
    return shape_core(s, n);
}

const char *shape_kind_name(enum shape_kind k)
{
    static const char *const names[SHAPE__COUNT] = {
        [SHAPE_WORD] = "word",       [SHAPE_INT] = "int",           [SHAPE_UUID] = "uuid",
        [SHAPE_HEX] = "hex",         [SHAPE_ULID] = "ulid",         [SHAPE_DATE] = "date",
        [SHAPE_EMAIL] = "email",     [SHAPE_PREFIXED] = "prefixed", [SHAPE_TOKEN] = "token",
        [SHAPE_VERSION] = "version", [SHAPE_NAME] = "name",
    };
    return (unsigned)k < SHAPE__COUNT ? names[k] : "word";
}
