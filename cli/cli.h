/* cli: sub-commands of the keywarden binary. Each takes the arguments after
 * its name (argv[0] is the sub-command) and returns the process exit code:
 * 0 success, 1 runtime failure, 2 bad usage, config or rules. */
#ifndef KW_CLI_H
#define KW_CLI_H

int cmd_run(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_fingerprint(int argc, char **argv);
int cmd_streams(int argc, char **argv);
int cmd_baseline(int argc, char **argv);
int cmd_audit(int argc, char **argv);
int cmd_alerts(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_judge(int argc, char **argv);
int cmd_db(int argc, char **argv);
int cmd_openapi(int argc, char **argv);
int cmd_rules(int argc, char **argv);

#endif
