#!/usr/bin/env python3
"""h2_grpc_peer: a gRPC service and its client (python3-grpcio), for e2e_h2.

Messages are raw bytes (generic handlers, no generated stubs), so nothing
but grpcio itself is needed; the HTTP/2 on the wire is grpcio's own (its C
core, chttp2).

  h2_grpc_peer.py server PORT TOKEN  serve acme.orders.v1.Orders until killed
  h2_grpc_peer.py client PORT TOKEN  make the calls below, print their codes

Service acme.orders.v1.Orders:
  GetOrder     unary; UNAUTHENTICATED without the right bearer token
  ListOrders   server streaming (3 messages)
  PutOrders    client streaming (4 messages in, 1 out)
  Chat         bidirectional (echo)
  DeleteAll    unary; always PERMISSION_DENIED
"""
import sys
import time
from concurrent import futures

import grpc

SERVICE = "acme.orders.v1.Orders"


def check(ctx, token):
    md = dict(ctx.invocation_metadata())
    if md.get("authorization") != f"Bearer {token}":
        ctx.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or bad token")


def serve(port, token):
    def get(req, ctx):
        check(ctx, token)
        return b"order:" + req

    def lst(req, ctx):
        check(ctx, token)
        for i in range(3):
            yield b"order-%d" % i

    def put(it, ctx):
        check(ctx, token)
        return b"stored %d" % sum(1 for _ in it)

    def chat(it, ctx):
        check(ctx, token)
        for m in it:
            yield b"echo:" + m

    def delete(req, ctx):
        ctx.abort(grpc.StatusCode.PERMISSION_DENIED, "contractors may not delete")

    handlers = {
        "GetOrder": grpc.unary_unary_rpc_method_handler(get),
        "ListOrders": grpc.unary_stream_rpc_method_handler(lst),
        "PutOrders": grpc.stream_unary_rpc_method_handler(put),
        "Chat": grpc.stream_stream_rpc_method_handler(chat),
        "DeleteAll": grpc.unary_unary_rpc_method_handler(delete),
    }
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    print("ready", flush=True)
    server.wait_for_termination()


def client(port, token):
    ch = grpc.insecure_channel(f"127.0.0.1:{port}")
    grpc.channel_ready_future(ch).result(timeout=10)
    md = (("authorization", f"Bearer {token}"),)
    m = lambda name: f"/{SERVICE}/{name}"  # noqa: E731
    codes = []

    def call(fn):
        try:
            fn()
            codes.append(0)
        except grpc.RpcError as e:
            codes.append(e.code().value[0])

    call(lambda: ch.unary_unary(m("GetOrder"))(b"42", metadata=md, timeout=10))
    call(lambda: list(ch.unary_stream(m("ListOrders"))(b"", metadata=md, timeout=10)))
    call(lambda: ch.stream_unary(m("PutOrders"))(iter([b"a", b"b", b"c", b"d"]), metadata=md,
                                                 timeout=10))
    call(lambda: list(ch.stream_stream(m("Chat"))(iter([b"x", b"y"]), metadata=md, timeout=10)))
    for _ in range(3):  # a wrong token: UNAUTHENTICATED
        call(lambda: ch.unary_unary(m("GetOrder"))(b"7", metadata=(("authorization",
                                                                    f"Bearer {token}x"),),
                                                    timeout=10))
    call(lambda: ch.unary_unary(m("DeleteAll"))(b"", metadata=md, timeout=10))
    ch.close()
    time.sleep(0.2)
    print(" ".join(str(c) for c in codes))


if __name__ == "__main__":
    if sys.argv[1] == "server":
        serve(int(sys.argv[2]), sys.argv[3])
    else:
        client(int(sys.argv[2]), sys.argv[3])
