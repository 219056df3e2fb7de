/* keywarden: entry point. Dispatches to the sub-commands of cli.h; the
 * command line is the contract of docs/cli.md (INTERFACES.md). */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "kw_thread.h"

struct command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *usage;
};

static const struct command commands[] = {
#ifdef KW_HAVE_CMD_RUN
    {"run", cmd_run,
     "run [-c CONFIG] (-i IFACE | -r FILE [-r FILE]...) [--rules PATH] [--eve PATH|-] "
     "[--db PATH] [BPF...]"},
#endif
#ifdef KW_HAVE_CMD_CHECK
    {"check", cmd_check, "check [-c CONFIG] [--rules PATH]"},
#endif
#ifdef KW_HAVE_CMD_FINGERPRINT
    {"fingerprint", cmd_fingerprint, "fingerprint            (secret on stdin)"},
#endif
#ifdef KW_HAVE_CMD_STREAMS
    {"streams", cmd_streams, "streams -r FILE -o DIR"},
#endif
#ifdef KW_HAVE_CMD_BASELINE
    {"baseline", cmd_baseline, "baseline (show|reset) [IDENTITY]"},
#endif
#ifdef KW_HAVE_CMD_AUDIT
    {"audit", cmd_audit, "audit [--identity ID] [--since T] [--json]"},
#endif
#ifdef KW_HAVE_CMD_REPORT
    {"report", cmd_report, "report [-c CONFIG] [--since 7d] [--identity ID] -o FILE.html"},
#endif
#ifdef KW_HAVE_CMD_ALERTS
    {"alerts", cmd_alerts, "alerts (test|flush)"},
#endif
#ifdef KW_HAVE_CMD_DB
    {"db", cmd_db, "db check [--db PATH]   (full integrity check, read-only)"},
#endif
#ifdef KW_HAVE_CMD_JUDGE
    {"judge", cmd_judge, "judge -c CONFIG [--partitions K,L]   (fleet: judge what sensors publish)"},
#endif
#ifdef KW_HAVE_CMD_OPENAPI
    {"openapi", cmd_openapi,
     "openapi (import FILE --host H | export [--identity ID] [--host H])   (API shapes)"},
    {"rules", cmd_rules, "rules suggest --identity ID   (scope, sources, hours from the audit trail)"},
#endif
    {NULL, NULL, NULL},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: keywarden COMMAND [OPTIONS]\n\ncommands:\n");
    for (size_t i = 0; commands[i].name; i++)
        fprintf(f, "  keywarden %s\n", commands[i].usage);
    fprintf(f, "\nkeywarden COMMAND --help for details. Exit codes: 0 ok, 1 runtime failure, "
               "2 usage/config/rules.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
        printf("keywarden %s\n", KW_VERSION);
        return 0;
    }
    kw_thread_main(); /* its CPU in the stats record (kw_thread.h) */
    for (size_t i = 0; commands[i].name; i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "keywarden: unknown command \"%s\"\n\n", argv[1]);
    usage(stderr);
    return 2;
}
