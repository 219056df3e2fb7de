/* priv: switching user and dropping capabilities after the capture and
 * files are open (see priv.h). Steps run in the order the kernel needs:
 * the bounding set needs CAP_SETPCAP and groups need CAP_SETGID, both gone
 * once the uid is no longer 0 (capabilities(7), "Effect of user ID changes
 * on capabilities"). */
#include "priv.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#define PRIV_DEFAULT_USER "keywarden"

enum kw_err priv_resolve(const char *user, bool live, struct priv_target *t, char *err,
                         size_t errlen)
{
    memset(t, 0, sizeof *t);
    if (geteuid() != 0) return KW_E_OK; /* an ordinary user: only capabilities to give up */
    if (!user && !live)
        return KW_E_OK; /* a replay as root drops only when told to (run.user, -Z) */
    const char *name = user ? user : PRIV_DEFAULT_USER;
    if (!strcmp(name, "root")) {
        t->stay_root = true;
        return KW_E_OK;
    }
    errno = 0;
    struct passwd *pw = getpwnam(name);
    if (!pw) {
        if (!user)
            return KW_E_OK; /* no default user on this machine: stay root (priv_drop says so) */
        snprintf(err, errlen,
                 "run.user: no user \"%s\" on this machine; create it (the keywarden "
                 "package does) or write run: { user: root } to stay root",
                 name);
        return KW_E_CONFIG;
    }
    if (pw->pw_uid == 0) {
        snprintf(err, errlen, "run.user: \"%s\" has uid 0; that is root, not a drop", name);
        return KW_E_CONFIG;
    }
    t->switch_user = true;
    t->uid = pw->pw_uid;
    t->gid = pw->pw_gid;
    snprintf(t->name, sizeof t->name, "%s", name);
    return KW_E_OK;
}

void priv_prepare_path(const struct priv_target *t, const char *file_path)
{
    if (!t->switch_user || !file_path || !strcmp(file_path, "-")) return;
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", file_path);
    char *slash = strrchr(buf, '/');
    if (slash && slash != buf) {
        *slash = 0;
        /* Every missing component from the top, each given to the user. */
        for (char *p = buf + 1;; p++) {
            if (*p == '/' || !*p) {
                char c = *p;
                *p = 0;
                if (mkdir(buf, 0700) == 0 && chown(buf, t->uid, t->gid) != 0)
                    fprintf(stderr, "keywarden: cannot give %s to %s: %s\n", buf, t->name,
                            strerror(errno));
                *p = c;
                if (!c) break;
            }
        }
    }
    struct stat st;
    if (stat(file_path, &st) == 0 && st.st_uid != t->uid)
        fprintf(stderr,
                "keywarden: warning: %s belongs to uid %u; after the drop to %s it may not "
                "be writable (chown %s %s)\n",
                file_path, (unsigned)st.st_uid, t->name, t->name, file_path);
}

bool priv_share_with_group(const struct priv_target *t, const char *file_path, const char *group,
                           char *err, size_t errlen)
{
    struct group *g = getgrnam(group);
    if (!g) {
        snprintf(err, errlen, "storage.group: no group \"%s\" on this machine", group);
        return false;
    }
    uid_t uid = t->switch_user ? t->uid : (uid_t)-1;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", file_path);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir)
        *slash = 0;
    else
        snprintf(dir, sizeof dir, ".");
    const char *what = dir;
    if (chown(dir, uid, g->gr_gid) != 0 || chmod(dir, 02750) != 0) goto fail;
    what = file_path;
    int fd = open(file_path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) goto fail;
    bool ok = fchown(fd, uid, g->gr_gid) == 0 && fchmod(fd, 0640) == 0;
    close(fd);
    if (ok) return true;
fail:
    snprintf(err, errlen, "storage.group %s: cannot give %s to the group: %s", group, what,
             strerror(errno));
    return false;
}

/* Empties the bounding set when CAP_SETPCAP allows; returns how many
 * capabilities are left in it. */
static int drop_bounding(void)
{
    int left = 0;
    for (cap_value_t c = 0; c <= CAP_LAST_CAP + 8; c++) {
        int in = cap_get_bound(c);
        if (in < 0) break; /* past the kernel's last capability */
        if (in && cap_drop_bound(c) != 0) left++;
    }
    return left;
}

static bool holds_any(void)
{
    cap_t now = cap_get_proc();
    if (!now) return true;
    cap_t none = cap_init();
    bool any = none && cap_compare(now, none) != 0;
    cap_free(none);
    cap_free(now);
    return any;
}

static enum kw_err switch_user(const struct priv_target *t, char *line, size_t len)
{
    if (initgroups(t->name, t->gid) != 0 || setresgid(t->gid, t->gid, t->gid) != 0 ||
        setresuid(t->uid, t->uid, t->uid) != 0) {
        snprintf(line, len, "cannot switch to user %s: %s", t->name, strerror(errno));
        return KW_E_IO;
    }
    if (setuid(0) == 0) { /* a way back would mean the switch did not happen */
        snprintf(line, len, "switched to %s but could become root again; stopping", t->name);
        return KW_E_IO;
    }
    return KW_E_OK;
}

enum kw_err priv_no_core_dumps(void)
{
    struct rlimit none = {0, 0};
    if (setrlimit(RLIMIT_CORE, &none) != 0) return KW_E_IO;
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) return KW_E_IO;
    return KW_E_OK;
}

enum kw_err priv_drop(const struct priv_target *t, char *line, size_t len)
{
    line[0] = 0;
    bool root = geteuid() == 0, had = holds_any();
    if (root && !t->switch_user)
        return KW_E_OK; /* run.user: root, or no user keywarden: priv_still_root */
    int bound_left = drop_bounding();
    if (t->switch_user) {
        enum kw_err e = switch_user(t, line, len);
        if (e != KW_E_OK) return e;
        if (priv_no_core_dumps() != KW_E_OK) { /* the switch reset "dumpable" */
            snprintf(line, len, "cannot turn core dumps off: %s", strerror(errno));
            return KW_E_IO;
        }
    }
    cap_t none = cap_init();
    if (!none || cap_reset_ambient() != 0 || cap_set_proc(none) != 0) {
        snprintf(line, len, "cannot clear capabilities: %s", strerror(errno));
        cap_free(none);
        return KW_E_IO;
    }
    cap_free(none);
    /* No exec'd program (none is planned) could regain anything either. */
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
        snprintf(line, len, "cannot set no_new_privs: %s", strerror(errno));
        return KW_E_IO;
    }
    if (holds_any()) {
        snprintf(line, len, "capabilities still held after clearing them; stopping");
        return KW_E_IO;
    }
    char bound[64] = "";
    if (bound_left)
        snprintf(bound, sizeof bound, " (%d left in the bounding set: no CAP_SETPCAP)", bound_left);
    if (t->switch_user)
        snprintf(line, len, "running as %s (uid %u, gid %u) with no capabilities%s", t->name,
                 (unsigned)t->uid, (unsigned)t->gid, bound);
    else if (had)
        snprintf(line, len, "capabilities given up after opening the capture; uid %u has none%s",
                 (unsigned)getuid(), bound);
    return KW_E_OK;
}

bool priv_still_root(const struct priv_target *t)
{
    return !t->switch_user && !t->stay_root && geteuid() == 0;
}

bool priv_can_write_dir(const struct priv_target *t, const char *path, char *err, size_t errlen)
{
    if (!t->switch_user || !path || !strcmp(path, "-"))
        return true; /* not switching: the folders are made later, as now */
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == dir)
        dir[1] = 0;
    else
        *slash = 0;
    if (access(dir, W_OK | X_OK) == 0) return true;
    snprintf(err, errlen,
             "%s: not writable by %s after the privilege drop (%s); give it to that user "
             "(chown) or choose a folder it owns",
             dir, t->name, strerror(errno));
    return false;
}
