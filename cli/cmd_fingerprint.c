/* keywarden fingerprint: prints the "sha256:<hex>" fingerprint of a secret
 * read on stdin, so rule files can name a key or token without containing
 * it:  printf %s "$KEY" | keywarden fingerprint
 *
 * The one thing to know: the secret is read into one bounded buffer that is
 * wiped (OPENSSL_cleanse) before exit, never echoed (terminal echo is off
 * when stdin is a terminal), never logged, and never put on the command
 * line (argv is visible in ps). Only a Basic user name, which is not a
 * secret, may be given as an argument. */
#include <openssl/crypto.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "cli.h"
#include "cred.h"

/* Longer than any token, key or JWT we fingerprint on the wire. */
#define FP_MAX_SECRET (1024 * 1024)

static void fp_usage(FILE *f)
{
    fprintf(f, "usage: keywarden fingerprint                 (secret on stdin)\n"
               "       keywarden fingerprint --basic-user NAME\n"
               "\n"
               "Prints the fingerprint keywarden gives a credential, for rule files:\n"
               "  credentials: [ { sha256: \"<hex>\" } ]\n"
               "\n"
               "The secret is read from stdin exactly as a client sends it (the token\n"
               "after \"Bearer \", the API key, the decoded query value); ONE trailing\n"
               "newline (LF or CRLF) is removed, nothing else. Pipe it, do not type it\n"
               "on the command line:\n"
               "  printf %%s \"$KEY\" | keywarden fingerprint\n"
               "--basic-user NAME prints the fingerprint of a Basic user name (Basic\n"
               "credentials are identified by the user name; the password is never used).\n"
               "Exit: 0 printed, 1 read error, 2 usage or empty input.\n");
}

/* Reads all of stdin into buf; returns bytes read or -1 (error) / -2 (too
 * long). On a terminal, echo is off and one line is read. */
static long read_secret(uint8_t *buf, size_t cap)
{
    struct termios old, quiet;
    bool tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &old) == 0;
    if (tty) {
        fprintf(stderr, "secret (not echoed), then Enter: ");
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        (void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    }
    size_t n = 0;
    long rc = 0;
    for (;;) {
        if (n == cap) {
            rc = -2;
            break;
        }
        ssize_t r = read(STDIN_FILENO, buf + n, cap - n);
        if (r < 0) {
            rc = -1;
            break;
        }
        if (r == 0) break;
        n += (size_t)r;
        if (tty && buf[n - 1] == '\n') break;
    }
    if (tty) {
        (void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
        fputc('\n', stderr);
    }
    return rc < 0 ? rc : (long)n;
}

int cmd_fingerprint(int argc, char **argv)
{
    char fp[72];
    if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        fp_usage(stdout);
        return 0;
    }
    if (argc == 3 && !strcmp(argv[1], "--basic-user")) {
        size_t len = strlen(argv[2]);
        if (len == 0) {
            fprintf(stderr, "keywarden fingerprint: --basic-user needs a non-empty NAME\n");
            return 2;
        }
        cred_fingerprint((const uint8_t *)argv[2], len, fp);
        printf("%s\n", fp);
        return 0;
    }
    if (argc != 1) {
        fprintf(stderr,
                "keywarden fingerprint: unexpected argument \"%s\"; the secret is read "
                "from stdin, e.g. printf %%s \"$KEY\" | keywarden fingerprint\n",
                argv[1]);
        fp_usage(stderr);
        return 2;
    }
    uint8_t *buf = malloc(FP_MAX_SECRET);
    if (!buf) {
        fprintf(stderr, "keywarden fingerprint: out of memory\n");
        return 1;
    }
    long n = read_secret(buf, FP_MAX_SECRET);
    int rc = 0;
    if (n == -1) {
        fprintf(stderr, "keywarden fingerprint: cannot read stdin\n");
        rc = 1;
    } else if (n == -2) {
        fprintf(stderr, "keywarden fingerprint: input over %d bytes; is this really a secret?\n",
                FP_MAX_SECRET);
        rc = 2;
    } else {
        size_t len = (size_t)n;
        if (len && buf[len - 1] == '\n') /* exactly one LF or CRLF */
            len -= len >= 2 && buf[len - 2] == '\r' ? 2 : 1;
        if (len == 0) {
            fprintf(stderr, "keywarden fingerprint: empty input; pipe the secret on stdin, "
                            "e.g. printf %%s \"$KEY\" | keywarden fingerprint\n");
            rc = 2;
        } else {
            cred_fingerprint(buf, len, fp);
            if (printf("%s\n", fp) < 0 || fflush(stdout) != 0) rc = 1;
        }
    }
    OPENSSL_cleanse(buf, FP_MAX_SECRET);
    free(buf);
    return rc;
}
