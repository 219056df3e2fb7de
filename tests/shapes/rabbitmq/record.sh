#!/bin/bash
# Records tests/data/real/rabbitmq-mgmt.pcap: the real RabbitMQ management
# API (Debian 12's rabbitmq-server 3.10, plugin rabbitmq_management) on
# 127.0.0.1:15672, called by curl (workload.sh), captured by tcpdump on lo;
# rabbitmq-mgmt-h2.pcap: the same workload over HTTP/2 without TLS, curl
# --http2-prior-knowledge to nghttpx (Debian's nghttp2-proxy) on
# 127.0.0.1:15673 in front of the same server; and routes.txt, the API's
# documented routes, from the server's /api/index.html. Needs root
# (tcpdump), `apt-get install rabbitmq-server nghttp2-proxy`; not run by
# the test suite, which reads the recorded files (see README.md here).
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${1:-$HERE/../../data/real/rabbitmq-mgmt.pcap}
OUT2=${OUT%.pcap}-h2.pcap
W=$(mktemp -d)
TCPD= NGX=
trap 'kill $(cat $W/pid 2>/dev/null) $TCPD $NGX 2>/dev/null || true; sleep 1; rm -rf $W' EXIT
cat >"$W/rabbitmq.conf" <<CONF
listeners.tcp.default = 127.0.0.1:5672
management.tcp.ip = 127.0.0.1
management.tcp.port = 15672
loopback_users = none
CONF
echo "[rabbitmq_management]." >"$W/enabled_plugins"
export RABBITMQ_CONFIG_FILE=$W/rabbitmq RABBITMQ_ENABLED_PLUGINS_FILE=$W/enabled_plugins \
    RABBITMQ_MNESIA_BASE=$W/mnesia RABBITMQ_LOG_BASE=$W/log RABBITMQ_NODENAME=kwrec@localhost \
    RABBITMQ_PID_FILE=$W/pid
/usr/lib/rabbitmq/bin/rabbitmq-server >"$W/server.log" 2>&1 &
for _ in $(seq 60); do
    curl -sf -u guest:guest http://127.0.0.1:15672/api/overview >/dev/null && break
    sleep 1
done
curl -s -u guest:guest http://127.0.0.1:15672/api/index.html | python3 "$HERE/routes_of.py" >"$HERE/routes.txt"
tcpdump -i lo -w "$OUT" -s 0 'tcp port 15672' 2>"$W/tcpdump.log" &
TCPD=$!
sleep 2
bash "$HERE/workload.sh"
sleep 2
kill -INT $TCPD
wait $TCPD || true
# the same over HTTP/2 (h2c): nghttpx turns it into HTTP/1 for the server
nghttpx -f'127.0.0.1,15673;no-tls' -b'127.0.0.1,15672' --workers=1 --no-ocsp \
    --errorlog-file="$W/nghttpx.log" --accesslog-file=/dev/null &
NGX=$!
sleep 1
tcpdump -i lo -w "$OUT2" -s 0 'tcp port 15673' 2>"$W/tcpdump2.log" &
TCPD=$!
sleep 2
API=http://127.0.0.1:15673/api CURL_OPTS=--http2-prior-knowledge bash "$HERE/workload.sh"
sleep 2
kill -INT $TCPD
wait $TCPD || true
echo "wrote $OUT ($(wc -c <"$OUT") bytes), $OUT2 ($(wc -c <"$OUT2") bytes)," \
    "$HERE/routes.txt ($(wc -l <"$HERE/routes.txt") routes)"
