/* kw_yaml: the one way keywarden turns YAML text into a libfyaml document.
 *
 * Debian 12's libfyaml (0.7.12) crashes on some malformed YAML: six bytes,
 * `? -:<TAB>-`, make it free a list entry twice while it cleans up after the
 * "cannot use tab for indentation" error (upstream pantoniou/libfyaml
 * issue 57 and its relatives 118, 188, fixed after the version Debian
 * ships). A config, rules file or OpenAPI document with such a typo would
 * take down `keywarden check` and, worse, a running sensor on SIGHUP, when
 * the contract is that a broken file is reported and the running rules
 * stay in force.
 *
 * So every parse is first tried in a short-lived child process (fork): the
 * child builds the document and reads every node the way our loaders do
 * (types, scalars, marks, mapping lookups), then exits. Only when the child
 * finished is the text parsed again in this process. A child that dies is
 * reported with the first line at which a prefix of the text already kills
 * the parser (found by bisection, a few more children), so the operator
 * gets file:line like any other YAML error. The cost is one fork per file
 * loaded (a page-table copy: about a millisecond for a sensor holding a
 * gigabyte), at start, on `check` and on reload, never per packet.
 *
 * If fork itself fails (no memory for the page tables, a process limit),
 * the text is parsed in this process as before: refusing a reload because
 * the machine is short of processes would be worse than the rare crash. */
#ifndef KW_YAML_H
#define KW_YAML_H

#include <stdbool.h>
#include <stddef.h>

struct fy_diag;
struct fy_document;

/* Why kw_yaml_parse returned no document without a YAML error of its own. */
struct kw_yaml_fault {
    int signo;      /* the signal that ended the parser child (0: none) */
    int exit_code;  /* or its exit status when it ended otherwise (e.g. a
                     * sanitizer's report), 0 when it finished */
    bool timed_out; /* the child ran past its time limit */
    int line;       /* 1-based line where the parser first fails, 0 unknown */
};

/* Parses text[0..len) with libfyaml (errors collected in diag, which may be
 * NULL; flags as fy_parse_cfg's, FYPCF_QUIET added). Returns the document,
 * or NULL: for a YAML error (diag holds it, fault->signo and exit_code 0),
 * or because the parser crashed in the child (fault says how and where;
 * this process never ran the parse). Like fy_document_build_from_string,
 * the document points into text: keep text until it is destroyed. */
struct fy_document *kw_yaml_parse(const char *text, size_t len, struct fy_diag *diag,
                                  unsigned flags, struct kw_yaml_fault *fault);

/* True when fault describes a parser crash. */
bool kw_yaml_fault_crashed(const struct kw_yaml_fault *fault);

/* A sentence for an operator, e.g. "the YAML parser (libfyaml) crashed on
 * this file (signal 11); keywarden did not load it". */
const char *kw_yaml_fault_text(const struct kw_yaml_fault *fault, char *buf, size_t cap);

/* Isolation on (the default) or off. The fuzz harnesses turn it off: the
 * fuzzer must see every crash in its own process, libfyaml's included. */
void kw_yaml_set_isolation(bool on);

#endif
