/* cli_specs: the OpenAPI documents a run matches requests against: those
 * imported into the database (`keywarden openapi import`) and those of
 * `services[].openapi` in the config. `run` (at start and on SIGHUP),
 * `judge` and `check` load them the same way. */
#ifndef KW_CLI_SPECS_H
#define KW_CLI_SPECS_H

#include <stddef.h>

#include "openapi.h"
#include "rules.h"

/* A set (possibly empty) in *out; on a broken document KW_E_CONFIG with
 * "file:line:col: error: ..." in err, and nothing in *out. */
enum kw_err cli_specs_load(const struct rules_model *m, const char *db_path, struct oas_set **out,
                           char *err, size_t errlen) KW_WUR;

#endif
