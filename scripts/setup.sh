#!/usr/bin/env bash
# Installs every Debian 12 package keywarden needs to build, test and
# benchmark. Idempotent; needs root (or sudo). Set KW_SKIP_APT=1 to skip.
set -euo pipefail

PKGS=(
  # build
  build-essential cmake pkg-config clang libclang-rt-14-dev
  # libraries
  libpcap-dev libndpi-dev libsqlite3-dev libcurl4-openssl-dev libfyaml-dev
  libjansson-dev libssl-dev zlib1g-dev libcap-dev libmicrohttpd-dev
  libnghttp2-dev  # HTTP/2: HPACK inflater
  # packaging: man pages, .deb (dpkg-shlibdeps), privilege tests
  scdoc dpkg-dev groff-base util-linux libcap2-bin
  # tests: unit framework, differential oracle, peers and test rig (tcpreplay:
  # e2e_live_lo on lo, e2e_fanout over a veth pair between namespaces)
  libcmocka-dev libhtp-dev tshark tcpdump tcpreplay tcpflow httpry
  # HTTP/2 tests: real servers and clients (nghttpd, nghttp, nghttpx for
  # h2c), a gRPC service and client
  nghttp2-server nghttp2-client nghttp2-proxy python3-grpcio python3-grpc-tools
  # TLS tests: HAProxy terminating TLS (its key log), schema check of EVE records
  haproxy python3-jsonschema
  python3 python3-scapy python3-yaml python3-hpack sqlite3 iproute2 procps
  # metrics scrape test (Prometheus server, promtool); report rendering test
  prometheus chromium
  # fleet: sensors and judges over NATS JetStream (C client; the server for tests)
  libnats-dev nats-server
  # bench/h2.sh: offloads off on the veth it records (1500-byte frames)
  ethtool
  # backend personalities: the evasion suite through real reverse proxies
  # (tests/e2e_proxies.py), curl as the client
  nginx apache2 curl
  # and against real frameworks (tests/e2e_frameworks.py): Express, Django,
  # Flask, Spring MVC 4.3 on an embedded Tomcat 9 (compiled by the ECJ that
  # libtomcat9-java pulls; the JRE is ~44 MB to fetch, ~190 MB installed)
  node-express python3-django python3-flask default-jre-headless libspring-web-servlet-java libtomcat9-java
)

if [ "${KW_SKIP_APT:-0}" = 1 ]; then
  exit 0
fi

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#PKGS[@]} packages present"
  exit 0
fi

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
echo "setup: installing ${missing[*]}"
# tshark asks whether non-root users may capture; answer no, non-interactively.
echo "wireshark-common wireshark-common/install-setuid boolean false" | $SUDO debconf-set-selections
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
