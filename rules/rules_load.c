/* rules_load: reading keywarden.yaml and the rules folder into a model, the
 * model's lifetime (reference counted), and the reload handle. The one
 * thing to know: libfyaml's own diagnostics (syntax errors, duplicate
 * keys) are collected, not printed, and copied into our rules_diag with
 * their 1-based line:col, so nothing reaches stderr behind our back. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kw_json.h"
#include "kw_yaml.h"
#include "rules_int.h"

#define RULES_FILE_MAX (16u << 20)

/* ---- model lifetime ------------------------------------------------- */

static const char *intern_file(struct rules_model *m, const char *name)
{
    char **f = realloc(m->files, (m->n_files + 1) * sizeof *f);
    if (!f) return "(out of memory)";
    m->files = f;
    f[m->n_files] = strdup(name);
    return f[m->n_files] ? f[m->n_files++] : "(out of memory)";
}

static struct rules_model *model_new(void)
{
    struct rules_model *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->refs = 1;
    static _Atomic uint64_t serials;
    m->serial = atomic_fetch_add(&serials, 1) + 1;
    m->index = rules_index_new(64);
    m->tzs = calloc(1, sizeof *m->tzs);
    if (m->tzs) m->tzs[0] = kw_tz_utc();
    if (!m->index || !m->tzs || !m->tzs[0]) {
        rules_index_free(m->index);
        if (m->tzs) kw_tz_free(m->tzs[0]);
        free(m->tzs);
        free(m);
        return NULL;
    }
    m->n_tzs = 1;
    rl_config_defaults(m);
    return m;
}

static void model_destroy(struct rules_model *m)
{
    rl_config_free(&m->config);
    for (size_t i = 0; i < m->n_identities; i++)
        rl_identity_free(&m->identities[i]);
    free(m->identities);
    rl_scopes_free(m);
    rules_index_free(m->index);
    for (size_t i = 0; i < m->n_tzs; i++)
        kw_tz_free(m->tzs[i]);
    free(m->tzs);
    for (size_t i = 0; i < m->n_files; i++)
        free(m->files[i]);
    free(m->files);
    free(m);
}

struct rules_model *rules_model_ref(struct rules_model *m)
{
    if (m) __atomic_add_fetch(&m->refs, 1, __ATOMIC_RELAXED);
    return m;
}

void rules_model_unref(struct rules_model *m)
{
    if (m && __atomic_sub_fetch(&m->refs, 1, __ATOMIC_ACQ_REL) == 0) model_destroy(m);
}

void rules_model_free(struct rules_model *m)
{
    rules_model_unref(m);
}

/* ---- parsing -------------------------------------------------------- */

static const char *yaml_hint(const char *msg)
{
    if (strstr(msg, "duplicate key"))
        return "each key may appear once in a mapping; remove or merge the repeated key";
    if (strstr(msg, "tab")) return "indent with spaces, not tabs";
    return "check the YAML syntax around this position";
}

/* YAML streams are Unicode (YAML 1.2 §5.2); a file that is not valid
 * UTF-8 (or holds a NUL) is refused here, with the position of the first
 * bad byte, before libfyaml sees it: libfyaml 0.7.12 loops forever on a
 * directive holding an invalid byte ("%\xe9", found by fuzz_rules), and a
 * hang on SIGHUP would stop the packet thread. */
static bool valid_utf8(struct rl_ctx *c)
{
    int line = 1, col = 1;
    const uint8_t *p = (const uint8_t *)c->text;
    for (size_t i = 0; i < c->len;) {
        size_t k = p[i] == '\n' || p[i] == '\t' || p[i] == '\r' ? 1 : kw_utf8_seq(p + i, c->len - i);
        if (!k) {
            rules_diag_add(c->diag, RULES_DIAG_ERROR, c->file, line, col, NULL,
                           "save the file as UTF-8", "byte 0x%02x is not valid UTF-8", p[i]);
            return false;
        }
        if (p[i] == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
        i += k;
    }
    return true;
}

/* Parses text into a document; YAML errors go to c->diag. */
static struct fy_document *parse_yaml(struct rl_ctx *c)
{
    if (!valid_utf8(c)) return NULL;
    struct fy_diag_cfg dc;
    fy_diag_cfg_default(&dc);
    dc.fp = NULL;
    dc.colorize = false;
    struct fy_diag *fd = fy_diag_create(&dc);
    if (!fd) return NULL;
    fy_diag_set_collect_errors(fd, true);
    struct kw_yaml_fault fault;
    struct fy_document *doc = kw_yaml_parse(c->text, c->len, fd, 0, &fault);
    size_t before = c->diag->errors;
    if (kw_yaml_fault_crashed(&fault)) {
        char msg[200];
        rules_diag_add(c->diag, RULES_DIAG_ERROR, c->file, fault.line, 1, NULL,
                       "a tab used as indentation after '-', '?' or ':' at or just before this line "
                       "is the known trigger (libfyaml 0.7 bug): use spaces",
                       "%s", kw_yaml_fault_text(&fault, msg, sizeof msg));
        fy_diag_destroy(fd);
        return NULL;
    }
    void *it = NULL;
    struct fy_diag_error *e;
    while ((e = fy_diag_errors_iterate(fd, &it))) {
        if (e->type < FYET_ERROR) continue;
        char *line = NULL;
        const char *p = c->text, *end = c->text + c->len;
        for (int l = 1; l < e->line && p && p < end; l++) {
            p = memchr(p, '\n', (size_t)(end - p));
            p = p ? p + 1 : NULL;
        }
        if (p && p <= end) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            size_t n = (size_t)((nl ? nl : end) - p);
            line = strndup(p, n > 200 ? 200 : n);
        }
        rules_diag_add(c->diag, RULES_DIAG_ERROR, c->file, e->line, e->column, line,
                       yaml_hint(e->msg ? e->msg : ""), "%s", e->msg ? e->msg : "YAML error");
        free(line);
    }
    if (!doc && c->diag->errors == before)
        rules_diag_add(c->diag, RULES_DIAG_ERROR, c->file, 0, 0, NULL, NULL,
                       "not a valid YAML document");
    fy_diag_destroy(fd);
    return doc;
}

/* Who else can read or change the file: a rules file anyone may edit
 * decides what keywarden allows, and a secret in a file anyone may read
 * is not a secret. Warnings: the file still loads. Loads from memory have
 * no file to look at. */
static void check_file_mode(struct rl_ctx *c)
{
    struct stat st;
    if (stat(c->file, &st) != 0 || !S_ISREG(st.st_mode)) return;
    unsigned mode = (unsigned)st.st_mode & 07777;
    if (st.st_mode & S_IWOTH)
        rules_diag_add(c->diag, RULES_DIAG_WARNING, c->file, 0, 0, NULL, "chmod o-w the file",
                       "writable by every user (mode %04o): anyone can change what keywarden "
                       "allows", mode);
    if (c->literal_secret && (st.st_mode & S_IROTH))
        rules_diag_add(c->diag, RULES_DIAG_WARNING, c->file, 0, 0, NULL,
                       "chmod o-r the file (the package installs it root:keywarden 0640), or "
                       "write the secret as env:NAME",
                       "holds a secret and is readable by every user (mode %04o)", mode);
}

static void load_text(struct rules_model *m, struct rules_diag *d, const char *name,
                      const char *text, size_t len, bool rules_file, const char *dir)
{
    struct rl_ctx c = {.m = m, .diag = d, .text = text, .len = len, .is_rules_file = rules_file};
    c.file = intern_file(m, name);
    d->files++;
    if (memchr(text, 0, len)) {
        rules_diag_add(d, RULES_DIAG_ERROR, c.file, 0, 0, NULL, NULL,
                       "file contains a NUL byte; is it a YAML text file?");
        return;
    }
    struct fy_document *doc = parse_yaml(&c);
    if (!doc) return;
    struct fy_node *root = fy_document_root(doc);
    if (rules_file)
        rl_rules_root(&c, root);
    else
        rl_config_root(&c, root, dir);
    fy_document_destroy(doc);
    check_file_mode(&c);
}

static const char *file_type_name(mode_t m)
{
    return S_ISDIR(m)    ? "a directory"
           : S_ISFIFO(m) ? "a FIFO"
           : S_ISSOCK(m) ? "a socket"
           : S_ISCHR(m)  ? "a character device"
           : S_ISBLK(m)  ? "a block device"
                         : "not a regular file";
}

/* Config and rules files are read only when they are regular files: a
 * FIFO (or a device) in the rules folder would block open() or read()
 * forever, and a reload on SIGHUP runs on the capture thread. The type is
 * checked before opening (stat follows symlinks, as configmaps use them),
 * and again on the descriptor, opened O_NONBLOCK, in case the name was
 * replaced in between. */
static char *read_file(const char *path, size_t *len, struct rules_diag *d)
{
    struct stat st;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
        rules_diag_add(d, RULES_DIAG_ERROR, path, 0, 0, NULL,
                       "keywarden reads config and rules only from regular files; remove it or "
                       "move it out of the rules folder",
                       "not read: it is %s", file_type_name(st.st_mode));
        return NULL;
    }
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        if (fd >= 0)
            rules_diag_add(d, RULES_DIAG_ERROR, path, 0, 0, NULL, NULL, "not read: it is %s",
                           file_type_name(st.st_mode));
        else
            rules_diag_add(d, RULES_DIAG_ERROR, path, 0, 0, NULL, NULL, "cannot open: %s",
                           strerror(errno));
        if (fd >= 0) close(fd);
        return NULL;
    }
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        close(fd);
        return NULL;
    }
    char *buf = malloc(RULES_FILE_MAX + 1);
    size_t n = buf ? fread(buf, 1, RULES_FILE_MAX + 1, f) : 0;
    fclose(f);
    if (!buf) return NULL;
    if (n > RULES_FILE_MAX) {
        rules_diag_add(d, RULES_DIAG_ERROR, path, 0, 0, NULL, NULL, "file larger than %u MiB",
                       RULES_FILE_MAX >> 20);
        free(buf);
        return NULL;
    }
    buf[n] = 0;
    *len = n;
    return buf;
}

static void load_file(struct rules_model *m, struct rules_diag *d, const char *path,
                      bool rules_file)
{
    size_t len;
    char *text = read_file(path, &len, d);
    if (!text) return;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = 0;
    else
        dir[0] = 0;
    load_text(m, d, path, text, len, rules_file, dir);
    free(text);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool yaml_name(const char *n)
{
    size_t l = strlen(n);
    return n[0] != '.' &&
           ((l > 5 && !strcmp(n + l - 5, ".yaml")) || (l > 4 && !strcmp(n + l - 4, ".yml")));
}

static void load_rules_path(struct rules_model *m, struct rules_diag *d, const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        rules_diag_add(d, RULES_DIAG_ERROR, path, 0, 0, NULL,
                       "set `rules:` in the config or pass --rules PATH",
                       "rules path not found: %s", strerror(errno));
        return;
    }
    if (!S_ISDIR(st.st_mode)) {
        load_file(m, d, path, true);
        return;
    }
    DIR *dir = opendir(path);
    if (!dir) {
        rules_diag_add(d, RULES_DIAG_ERROR, path, 0, 0, NULL, NULL, "cannot open: %s",
                       strerror(errno));
        return;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(dir))) {
        if (!yaml_name(e->d_name)) continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            char **nn = realloc(names, cap * sizeof *nn);
            if (!nn) break;
            names = nn;
        }
        if ((names[n] = strdup(e->d_name))) n++;
    }
    closedir(dir);
    qsort(names, n, sizeof *names, cmp_str);
    if (!n)
        rules_diag_add(d, RULES_DIAG_WARNING, path, 0, 0, NULL,
                       "add a *.yaml file with identities:",
                       "no rules files in this folder; "
                       "every credential will be unknown");
    for (size_t i = 0; i < n; i++) {
        char full[4096];
        snprintf(full, sizeof full, "%s%s%s", path, path[strlen(path) - 1] == '/' ? "" : "/",
                 names[i]);
        load_file(m, d, full, true);
        free(names[i]);
    }
    free(names);
}

static enum kw_err finish(struct rules_model *m, struct rules_diag *d, size_t errors_before,
                          struct rules_model **out)
{
    d->identities = m->n_identities;
    /* schedules without their own grace take detections.schedule.grace,
     * wherever in the rules it is written */
    for (size_t i = 0; i < m->n_identities; i++) {
        struct rules_schedule *s = &m->identities[i].schedule;
        if (s->set && !s->grace_set) s->grace_s = m->detections.schedule.grace_s;
    }
    if (d->errors > errors_before) {
        rules_model_unref(m);
        return KW_E_CONFIG;
    }
    *out = m;
    return KW_E_OK;
}

enum kw_err rules_load(const char *config_path, const char *rules_path_override,
                       struct rules_model **out, struct rules_diag *diag)
{
    *out = NULL;
    size_t e0 = diag->errors;
    diag->files = 0;
    struct rules_model *m = model_new();
    if (!m) return KW_E_NOMEM;
    if (config_path) load_file(m, diag, config_path, false);
    if (rules_path_override) {
        free(m->config.rules_path);
        m->config.rules_path = strdup(rules_path_override);
    }
    if (m->config.rules_path && diag->errors == e0) load_rules_path(m, diag, m->config.rules_path);
    return finish(m, diag, e0, out);
}

enum kw_err rules_load_mem(const char *config_name, const char *config_text, const char *rules_name,
                           const char *rules_text, struct rules_model **out,
                           struct rules_diag *diag)
{
    *out = NULL;
    size_t e0 = diag->errors;
    diag->files = 0;
    struct rules_model *m = model_new();
    if (!m) return KW_E_NOMEM;
    if (config_text)
        load_text(m, diag, config_name ? config_name : "keywarden.yaml", config_text,
                  strlen(config_text), false, "");
    if (rules_text)
        load_text(m, diag, rules_name ? rules_name : "rules.yaml", rules_text, strlen(rules_text),
                  true, "");
    return finish(m, diag, e0, out);
}

/* ---- reload handle -------------------------------------------------- */

struct rules_handle {
    pthread_mutex_t mu;
    struct rules_model *cur;
    char *config_path, *rules_override;
    uint64_t generation;
};

struct rules_handle *rules_handle_new(struct rules_model *m, const char *config_path,
                                      const char *rules_path_override)
{
    struct rules_handle *h = calloc(1, sizeof *h);
    if (!h) return NULL;
    pthread_mutex_init(&h->mu, NULL);
    h->cur = m;
    h->config_path = config_path ? strdup(config_path) : NULL;
    h->rules_override = rules_path_override ? strdup(rules_path_override) : NULL;
    return h;
}

void rules_handle_destroy(struct rules_handle *h)
{
    if (!h) return;
    rules_model_unref(h->cur);
    pthread_mutex_destroy(&h->mu);
    free(h->config_path);
    free(h->rules_override);
    free(h);
}

struct rules_model *rules_handle_get(struct rules_handle *h)
{
    pthread_mutex_lock(&h->mu);
    struct rules_model *m = rules_model_ref(h->cur);
    pthread_mutex_unlock(&h->mu);
    return m;
}

enum kw_err rules_handle_reload(struct rules_handle *h, struct rules_diag *diag)
{
    struct rules_model *m;
    enum kw_err e = rules_load(h->config_path, h->rules_override, &m, diag);
    if (e != KW_E_OK) return e;
    pthread_mutex_lock(&h->mu);
    struct rules_model *old = h->cur;
    h->cur = m;
    h->generation++;
    pthread_mutex_unlock(&h->mu);
    rules_model_unref(old);
    return KW_E_OK;
}

uint64_t rules_handle_generation(struct rules_handle *h)
{
    pthread_mutex_lock(&h->mu);
    uint64_t g = h->generation;
    pthread_mutex_unlock(&h->mu);
    return g;
}
