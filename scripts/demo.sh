#!/usr/bin/env bash
# Quick start: installs what is needed, builds keywarden, makes a small
# capture of a simulated company (contractors, employees, services, with a
# few incidents mixed in) and runs keywarden on it with the rules the
# simulator wrote for that world. One line per step (apt and compiler
# output go to build-logs/demo.log, shown only when a step fails); then the
# alerts as keywarden prints them. EVE records, the SQLite database and an
# HTML report land in ./demo-out/.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/steps.sh

out=demo-out
step "packages (scripts/setup.sh)" scripts/setup.sh
step "build (build/)" bash -c "cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo && cmake --build build -j$(nproc) --target keywarden kwsim"
step "simulate a small company (kwsim -> $out/capture.pcap)" bash -c \
  "rm -rf $out && ./build/kwsim gen --world tests/sim/worlds/demo.yaml --seed 1 -o $out"
echo
echo "== keywarden run -c $out/keywarden.yaml -r $out/capture.pcap"
./build/cli/keywarden run -c "$out/keywarden.yaml" -r "$out/capture.pcap" --no-progress
echo
step "report ($out/report.html)" ./build/cli/keywarden report -c "$out/keywarden.yaml" -o "$out/report.html"
echo
echo "Next: open $out/report.html                                   (who did what: heat maps, scope, alerts)"
echo "      jq . $out/eve.json | less                               (http, alert, flow, stats records)"
echo "      ./build/cli/keywarden audit -c $out/keywarden.yaml --identity c01   (what c01 did)"
echo "      ./build/cli/keywarden baseline show -c $out/keywarden.yaml          (learned habits)"
echo "      cat $out/incidents.jsonl                                      (what the simulator staged)"
