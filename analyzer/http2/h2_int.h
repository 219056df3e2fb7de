/* h2_int: the connection, direction and stream state shared by the files
 * of analyzer/http2 (h2.c frames, h2_hpack.c header blocks, h2_stream.c
 * streams and reporting). Not part of the module's contract. */
#ifndef KW_H2_INT_H
#define KW_H2_INT_H

#include <nghttp2/nghttp2.h>

#include "h2.h"

/* RFC 9113 §6 frame types and flags */
enum {
    H2_DATA = 0x0,
    H2_HEADERS = 0x1,
    H2_PRIORITY = 0x2,
    H2_RST_STREAM = 0x3,
    H2_SETTINGS = 0x4,
    H2_PUSH_PROMISE = 0x5,
    H2_PING = 0x6,
    H2_GOAWAY = 0x7,
    H2_WINDOW_UPDATE = 0x8,
    H2_CONTINUATION = 0x9,
};
enum {
    H2F_END_STREAM = 0x1, /* also ACK on SETTINGS/PING */
    H2F_END_HEADERS = 0x4,
    H2F_PADDED = 0x8,
    H2F_PRIORITY = 0x20,
};
#define H2_FRAME_HEADER 9
#define H2_DEFAULT_MAX_FRAME 16384u
#define H2_PREFACE_LEN 24

/* What a header block being decoded is for. */
enum h2_part {
    PART_NONE = 0,  /* decoded for the table only (unfollowed stream) */
    PART_REQ,       /* request headers (client HEADERS, PUSH_PROMISE) */
    PART_REQ_TRAIL, /* request trailers */
    PART_RESP,      /* response headers (1xx interim or final) */
    PART_RESP_TRAIL /* response trailers */
};

enum h2_dir_state {
    D_PREFACE, /* client: matching the connection preface */
    D_FH,      /* reading a frame header */
    D_PAYLOAD, /* inside a frame payload */
    D_RESYNC,  /* after loss: looking for a frame boundary */
};

struct h2_ref {
    uint32_t off, len;
};

struct h2_field {
    struct h2_ref name, value;
};

/* One followed stream; slots are reused with their grown buffers. */
struct h2_stream {
    uint32_t id; /* 0: slot free */
    bool req_seen, req_end, resp_final, resp_end;
    bool req_lost, resp_lost; /* a header block of that side was not decoded */
    bool grpc, has_grpc_status;
    bool interim_pending; /* the last response block was 1xx: the next is the answer */
    uint32_t flags;       /* KW_TXN_F(...) */
    int status;
    int grpc_status;
    uint8_t grpc_msg_len;
    char grpc_msg[127];
    kw_ts ts_req, ts_req_end, ts_resp, ts_resp_end;
    uint64_t req_body, resp_body;
    /* request: pseudo-headers and fields, offsets into buf */
    struct h2_ref method, path, authority, scheme, host;
    struct h2_field *fields;
    uint32_t nfields, fields_cap;
    char *buf;
    uint32_t blen, bcap;
    uint32_t list_bytes; /* RFC 9113 §6.5.2 size of the request list so far */
    /* the answer's body start for echo.h (h1_echo.c): JSON, its coding */
    bool resp_json;
    uint8_t resp_coding; /* 1 + enum echo_coding of its Content-Encoding; 0: none sent */
    struct h1_echo echo;
};

/* One direction of the connection. */
struct h2_dir {
    nghttp2_hd_inflater *inf;
    uint8_t st;      /* enum h2_dir_state */
    bool recovering; /* the table was lost: fresh inflater, refusals expected */
    uint8_t fh[H2_FRAME_HEADER];
    uint8_t fhn;
    kw_ts fh_ts; /* when the frame header's first byte was seen */
    uint32_t preface_got;
    /* the frame being read */
    uint8_t type, fflags;
    uint32_t sid, flen, off;
    uint32_t head_need;   /* pad length + fixed fields before the content */
    uint32_t content_end; /* payload offset where padding starts */
    uint8_t padlen;
    uint8_t pre[8]; /* fixed fields gathered (pad length, priority, promised id, ...) */
    uint8_t pren;
    bool frame_bad; /* content ignored (protocol error) */
    /* a header block spanning HEADERS/PUSH_PROMISE + CONTINUATION */
    bool in_block;
    bool blk_decode;     /* feed its bytes to the inflater */
    bool blk_end_stream; /* the HEADERS had END_STREAM */
    uint8_t blk_part;    /* enum h2_part */
    uint32_t blk_sid;    /* the stream the fields go to (the promised one for PUSH_PROMISE) */
    uint32_t blk_conts, blk_bytes, blk_fields;
    bool blk_cut; /* fields were dropped by a bound */
    kw_ts blk_ts;
    /* table sizes: what the peer's SETTINGS allows for this direction */
    uint32_t max_frame;     /* largest frame this direction may send */
    uint32_t pending_table; /* a smaller table size waiting for the ACK */
    bool has_pending_table;
    bool pending_ready; /* a larger size, or the ACK was seen */
    kw_ts ts_last;
};

struct h2_conn {
    struct h2_limits lim;
    struct h2_budget *budget;
    nghttp2_mem mem; /* charges the inflaters to the budget */
    h2_txn_cb cb;
    void *user;
    struct h2_dir d[2];
    struct h2_stream *streams;
    uint32_t nstreams_cap, nopen;
    uint32_t last_client_sid;
    int64_t reset_sec;
    uint32_t resets_in_sec;
    uint64_t mem_used;
    struct h2_counters ctr;
    /* scratch for the callback: the header array, views */
    struct kw_hdr *hdrs;
    uint32_t hdrs_cap;
    struct h1_echo_mem echo_mem; /* streams' echo buffers, charged as the rest */
};

/* ---- h2_hpack.c ---- */
bool h2i_inflater_new(struct h2_conn *c, struct h2_dir *d);
void h2i_table_lost(struct h2_conn *c, int dir);
void h2i_table_size(struct h2_conn *c, int dir, uint32_t size, bool now);
void h2i_table_apply(struct h2_conn *c, int dir);
void h2i_block_begin(struct h2_conn *c, int dir, uint8_t part, uint32_t sid, kw_ts ts);
void h2i_block_bytes(struct h2_conn *c, int dir, const uint8_t *p, size_t n, bool final);
void *h2i_alloc(struct h2_conn *c, void *old, size_t old_size, size_t size);
void h2i_free(struct h2_conn *c, void *p, size_t size);

/* ---- h2_stream.c ---- */
struct h2_stream *h2i_stream_find(struct h2_conn *c, uint32_t sid);
struct h2_stream *h2i_stream_open(struct h2_conn *c, uint32_t sid, kw_ts ts);
void h2i_stream_report(struct h2_conn *c, struct h2_stream *s, uint32_t flags, kw_ts ts);
void h2i_stream_end_half(struct h2_conn *c, struct h2_stream *s, int dir, kw_ts ts);
void h2i_stream_reset(struct h2_conn *c, struct h2_stream *s, int dir, kw_ts ts);
void h2i_field(struct h2_conn *c, int dir, const nghttp2_nv *nv);
void h2i_block_done(struct h2_conn *c, int dir, bool decoded, kw_ts ts);
void h2i_streams_free(struct h2_conn *c);

#endif
