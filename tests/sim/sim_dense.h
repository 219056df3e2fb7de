/* sim_dense: a capture of any size, as fast as possible, for benchmarks. */
#ifndef SIM_DENSE_H
#define SIM_DENSE_H

#include <stdint.h>

struct sim_dense_cfg {
    const char *out; /* file name, or "-" for stdout */
    uint64_t size;   /* bytes to write (pcap file size, approximately) */
    uint64_t seed;
    int conns; /* concurrent keep-alive connections */
    int64_t start_us;
};

/* Writes the file; fills *bytes and *packets. Returns 0 or -1. */
int sim_dense_run(const struct sim_dense_cfg *c, uint64_t *bytes, uint64_t *packets);

#endif
