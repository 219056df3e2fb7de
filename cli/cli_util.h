/* cli_util: what several sub-commands read from keywarden.yaml the same
 * way: the database path and the alert sinks. One place, so `run`,
 * `alerts`, `audit` and `baseline` always agree on which database and
 * which sinks a config means. */
#ifndef KW_CLI_UTIL_H
#define KW_CLI_UTIL_H

#include <jansson.h>

#include "alerts.h"
#include "rules.h"

#define CLI_DEFAULT_DB "./keywarden-state/keywarden.db"

/* storage.database of a config file, resolved as the loader resolves it
 * (relative to the file's folder); NULL when the file does not set it or
 * cannot be read. Reads only that key, so a typo elsewhere in the rules
 * does not stop `audit` or `baseline` during an incident. Free it. */
char *cli_config_db(const char *config_path);

/* Sinks, suppression window, drain timeout and syslog of a loaded config
 * into ac (after alerts_config_default). */
void cli_alerts_from_config(const struct rules_config *rc, struct alerts_config *ac);

/* The signals of a long-running command: SIGINT/SIGTERM call on_stop,
 * SIGHUP on_hup (SA_RESTART: a blocking read is not turned into an
 * error), SIGPIPE and SIGXFSZ ignored (a closed pipe or a file-size limit
 * is a write error the outputs count, not a kill). */
void cli_install_signals(void (*on_stop)(int), void (*on_hup)(int));

/* The stats record's "threads" section: CPU time so far by thread name, in
 * microseconds ({"main": {"cpu_us": 1934567, "threads": 1}, "kw-db": ...};
 * threads of one name summed), from kw_thread_cpu. */
json_t *cli_threads_json(void);

#endif
