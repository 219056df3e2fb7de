/* kw_yaml: libfyaml parses run first in a child process (see kw_yaml.h). */
#include "kw_yaml.h"

#include <errno.h>
#include <libfyaml.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/* Long enough for the largest document we accept (a 64 MB OpenAPI file
 * under a sanitizer), short enough that a parser stuck in a loop does not
 * hold a reload for ever. */
#define CHILD_SECONDS 120

/* Deeper than any of our loaders descends (they read known keys a few
 * levels down); past it the child stops walking, so a hostile nesting
 * depth cannot overflow the child's stack before the parse is judged. */
#define WALK_DEPTH 64

static bool isolate = true;

void kw_yaml_set_isolation(bool on)
{
    isolate = on;
}

/* Reads n the way our loaders read documents, so a crash in libfyaml's
 * text formatting (scalars with escapes, folded blocks) or its key
 * comparison happens here rather than later in the caller. */
static void touch(struct fy_node *n, int depth)
{
    if (!n || depth > WALK_DEPTH) return;
    (void)fy_node_is_alias(n);
    switch (fy_node_get_type(n)) {
    case FYNT_SCALAR: {
        (void)fy_node_get_scalar0(n);
        struct fy_token *t = fy_node_get_scalar_token(n);
        if (t) (void)fy_token_start_mark(t);
        break;
    }
    case FYNT_SEQUENCE: {
        void *it = NULL;
        struct fy_node *c;
        (void)fy_node_sequence_item_count(n);
        while ((c = fy_node_sequence_iterate(n, &it)))
            touch(c, depth + 1);
        break;
    }
    case FYNT_MAPPING: {
        void *it = NULL;
        struct fy_node_pair *p;
        (void)fy_node_mapping_item_count(n);
        (void)fy_node_mapping_lookup_by_string(n, "openapi", 7);
        while ((p = fy_node_mapping_iterate(n, &it))) {
            touch(fy_node_pair_key(p), depth + 1);
            touch(fy_node_pair_value(p), depth + 1);
        }
        break;
    }
    }
}

static struct fy_document *build(const char *text, size_t len, struct fy_diag *diag,
                                 unsigned flags)
{
    struct fy_parse_cfg pc = {0};
    pc.flags = (enum fy_parse_cfg_flags)(flags | FYPCF_QUIET);
    pc.diag = diag;
    return fy_document_build_from_string(&pc, text, len);
}

/* 0: the child parsed and walked text[0..len) and exited; 1: it died
 * (fault filled in); -1: no child could be run. */
static int try_in_child(const char *text, size_t len, struct fy_diag *diag, unsigned flags,
                        struct kw_yaml_fault *fault)
{
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        /* The parent may block signals (threads leave them to one handler)
         * or catch them: the child must die plainly of its own faults and
         * of the alarm, and leave no core file. */
        static const int fatal[] = {SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL, SIGALRM};
        sigset_t un;
        sigemptyset(&un);
        for (size_t i = 0; i < sizeof fatal / sizeof fatal[0]; i++) {
            signal(fatal[i], SIG_DFL);
            sigaddset(&un, fatal[i]);
        }
        sigprocmask(SIG_UNBLOCK, &un, NULL);
        struct rlimit none = {0, 0};
        setrlimit(RLIMIT_CORE, &none);
        alarm(CHILD_SECONDS);
        struct fy_document *d = build(text, len, diag, flags);
        if (d) touch(fy_document_root(d), 0);
        void *it = NULL;
        while (diag && fy_diag_errors_iterate(diag, &it))
            ;
        fy_document_destroy(d);
        _exit(0); /* no atexit handlers, no stdio flush of the parent's buffers */
    }
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) return -1;
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0) return 0;
    if (fault) {
        if (WIFSIGNALED(st)) {
            fault->signo = WTERMSIG(st);
            fault->timed_out = WTERMSIG(st) == SIGALRM;
        } else {
            fault->exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        }
    }
    return 1;
}

/* End of the first k lines of text (after their newline), or len. */
static size_t prefix_len(const char *text, size_t len, int k)
{
    const char *p = text, *end = text + len;
    for (int i = 0; i < k && p < end; i++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        p = nl ? nl + 1 : end;
    }
    return (size_t)(p - text);
}

/* The first line at which a prefix of the text already kills the parser:
 * bisection over line counts, a child per step. The parser reads forward,
 * so that line (or one just before it) is where the operator should look. */
static int crash_line(const char *text, size_t len, unsigned flags)
{
    int lines = 1;
    for (size_t i = 0; i + 1 < len; i++)
        lines += text[i] == '\n';
    int lo = 0, hi = lines; /* prefix(lo) parses, prefix(hi) dies */
    while (hi - lo > 1) {
        int mid = lo + (hi - lo) / 2;
        struct fy_diag_cfg dc;
        fy_diag_cfg_default(&dc);
        dc.fp = NULL;
        struct fy_diag *fd = fy_diag_create(&dc);
        if (fd) fy_diag_set_collect_errors(fd, true);
        int r = try_in_child(text, prefix_len(text, len, mid), fd, flags, NULL);
        if (fd) fy_diag_destroy(fd);
        if (r < 0) return 0;
        if (r)
            hi = mid;
        else
            lo = mid;
    }
    return hi;
}

struct fy_document *kw_yaml_parse(const char *text, size_t len, struct fy_diag *diag,
                                  unsigned flags, struct kw_yaml_fault *fault)
{
    struct kw_yaml_fault local;
    if (!fault) fault = &local;
    memset(fault, 0, sizeof *fault);
    if (isolate && try_in_child(text, len, diag, flags, fault) == 1) {
        fault->line = crash_line(text, len, flags);
        return NULL;
    }
    return build(text, len, diag, flags);
}

bool kw_yaml_fault_crashed(const struct kw_yaml_fault *f)
{
    return f && (f->signo || f->exit_code);
}

const char *kw_yaml_fault_text(const struct kw_yaml_fault *f, char *buf, size_t cap)
{
    if (f->timed_out)
        snprintf(buf, cap, "the YAML parser (libfyaml) did not finish within %d s; keywarden did "
                 "not load this file", CHILD_SECONDS);
    else if (f->signo)
        snprintf(buf, cap, "the YAML parser (libfyaml) crashed on this file (signal %d, %s); "
                 "keywarden did not load it", f->signo, strsignal(f->signo));
    else
        snprintf(buf, cap, "the YAML parser (libfyaml) failed on this file (exit status %d); "
                 "keywarden did not load it", f->exit_code);
    return buf;
}
