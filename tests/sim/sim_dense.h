/* sim_dense: a capture of any size, as fast as possible, for benchmarks. */
#ifndef SIM_DENSE_H
#define SIM_DENSE_H

#include <stdbool.h>
#include <stdint.h>

struct sim_dense_cfg {
    const char *out; /* file name, or "-" for stdout */
    uint64_t size;   /* bytes to write (pcap file size, approximately) */
    uint64_t seed;
    int conns; /* concurrent keep-alive connections */
    /* The small-API mix (issue 13): 1-3 KB transactions (GET and POST with
     * JSON bodies, 500 B-2 KB responses, some gzip and chunked), one batch of
     * requests in eight pipelined (2-3 requests before the first answer). */
    bool small;
    int64_t start_us;
};

/* Writes the file; fills *bytes and *packets. Returns 0 or -1. */
int sim_dense_run(const struct sim_dense_cfg *c, uint64_t *bytes, uint64_t *packets);

#endif
