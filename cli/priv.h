/* priv: least privilege for `keywarden run`, in the manner of tcpdump -Z.
 * Started as root, run opens the capture and readies the output folders,
 * then switches to run.user (default "keywarden" when that user
 * exists) and gives up every capability, bounding set included. Started
 * as an ordinary user with CAP_NET_RAW (+CAP_NET_ADMIN), it gives those up
 * once the capture is open.
 *
 * The one thing to know: Linux capabilities belong to each thread, and a
 * thread inherits its creator's. priv_drop must run before any thread is
 * started (audit writer, delivery, baseline saver, workers, metrics), or
 * those threads keep what the main thread dropped. */
#ifndef KW_PRIV_H
#define KW_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "kw_err.h"

struct priv_target {
    bool switch_user; /* root and a user to become */
    bool stay_root;   /* run.user: root, said on purpose */
    uid_t uid;
    gid_t gid;
    char name[64];
};

/* Decides whom run becomes. user: run.user of the config or -Z (NULL =
 * the default "keywarden" if it exists, for a live capture; a replay of
 * files as root switches only when told); "root" = stay root. Not root:
 * no switch. KW_E_CONFIG (and a message in err) when a named user does
 * not exist. */
KW_WUR enum kw_err priv_resolve(const char *user, bool live, struct priv_target *t, char *err,
                                size_t errlen);

/* Before the drop, as root: creates the missing folders above file_path
 * (0700) and gives the ones it created to the target user, so the user
 * can create the file and SQLite its -wal and -shm beside it. A file that
 * existed before and is root's stays root's (a warning says so). */
void priv_prepare_path(const struct priv_target *t, const char *file_path);

/* storage.group: the file (created if missing) becomes 0640 and the
 * group's, and its folder 2750 (setgid: the -wal and -shm SQLite creates
 * beside a database, and rotated EVE files, take the group too); owned by
 * the target user when run switches to one. Before the drop. false with a
 * message in err when the group does not exist or the kernel refuses. */
bool priv_share_with_group(const struct priv_target *t, const char *file_path, const char *group,
                           char *err, size_t errlen);

/* Switches user (when t->switch_user) and clears every capability:
 * effective, permitted, inheritable, ambient, and the bounding set where
 * CAP_SETPCAP allows; sets no_new_privs. line gets the one sentence to
 * print ("" when there was nothing to give up). KW_E_IO when the kernel
 * refused a step (msg says which): run must not go on half-privileged. */
KW_WUR enum kw_err priv_drop(const struct priv_target *t, char *line, size_t linelen);

/* Root that stays root for want of a user keywarden (not run.user: root,
 * which is a choice). */
bool priv_still_root(const struct priv_target *t);

/* No core dumps (issue 15): a core of `run` would hold request heads,
 * TLS session secrets from key logs and sink secrets. RLIMIT_CORE 0 (soft
 * and hard) and PR_SET_DUMPABLE 0, which also keeps other processes of
 * the same user from ptrace-attaching and reading /proc/PID/mem. A user
 * switch resets "dumpable" to fs.suid_dumpable, so priv_drop calls it
 * again. Returns KW_E_IO (errno kept) when either call fails. */
KW_WUR enum kw_err priv_no_core_dumps(void);

/* After a switch of user: can it create files in the folder of path? false
 * with a message naming the folder and the fix. */
bool priv_can_write_dir(const struct priv_target *t, const char *path, char *err, size_t errlen);

#endif
