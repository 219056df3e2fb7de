#!/bin/bash
# A contractor's day against RabbitMQ's management API (the real server,
# Debian's rabbitmq-server with rabbitmq_management, on 127.0.0.1:15672):
# vhosts, users, exchanges, queues and bindings created, read one by one,
# listed, some deleted. Used by record.sh; the capture it makes is
# tests/data/real/rabbitmq-mgmt.pcap.
set -eu
API=${API:-http://127.0.0.1:15672/api}
# CURL_OPTS: e.g. --http2-prior-knowledge (HTTP/2 without TLS, through nghttpx)
read -r -a OPTS <<<"${CURL_OPTS:-}"
c() { # METHOD PATH [JSON]
    if [ $# -ge 3 ]; then
        curl -s -o /dev/null "${OPTS[@]}" -u guest:guest -X "$1" \
            -H 'content-type: application/json' --data "$3" "$API$2"
    else
        curl -s -o /dev/null "${OPTS[@]}" -u guest:guest -X "$1" "$API$2"
    fi
}
VHOSTS="prod staging dev-eu"
QUEUES="orders invoices email-outbox retry.5m"
EXCH="orders-x events audit.log"
USERS="alice bob.smith ci-runner"
c GET /overview
c GET /whoami
c GET /nodes
for v in $VHOSTS; do c PUT "/vhosts/$v" '{"description":"kw test"}'; c GET "/vhosts/$v"; done
c GET /vhosts
for u in $USERS; do
    c PUT "/users/$u" '{"password":"not-a-secret","tags":""}'
    c GET "/users/$u"
done
c GET /users
c GET /users/without-permissions
for v in $VHOSTS; do
    for u in $USERS; do c PUT "/permissions/$v/$u" '{"configure":".*","write":".*","read":".*"}'; done
    c GET "/permissions/$v/alice"
    for e in $EXCH; do
        c PUT "/exchanges/$v/$e" '{"type":"topic","durable":true}'
        c GET "/exchanges/$v/$e"
    done
    c GET "/exchanges/$v"
    for q in $QUEUES; do
        c PUT "/queues/$v/$q" '{"durable":true}'
        c GET "/queues/$v/$q"
        c POST "/bindings/$v/e/orders-x/q/$q" '{"routing_key":"'"$q"'"}'
        c GET "/queues/$v/$q/bindings"
    done
    c GET "/queues/$v"
    c GET "/bindings/$v"
done
c GET /queues
c GET /exchanges
c GET /bindings
for v in $VHOSTS; do
    c POST "/exchanges/$v/orders-x/publish" \
        '{"properties":{},"routing_key":"orders","payload":"hello","payload_encoding":"string"}'
    c POST "/queues/$v/orders/get" '{"count":1,"ackmode":"ack_requeue_true","encoding":"auto"}'
    c GET "/aliveness-test/$v"
    c DELETE "/queues/$v/retry.5m"
    c DELETE "/queues/$v/orders/contents"
done
c GET /definitions
c DELETE /users/ci-runner
