#!/usr/bin/env bash
# Renders the screenshots of `keywarden report` kept in docs/img/ from the
# demo world (the same capture scripts/demo.sh makes): the overview of every
# identity, and the page of one contractor (c02: a deny rule reached, an
# expired token accepted). Needs build/ (keywarden, kwsim) and chromium.
# PNGs at 0.75 scale keep the files small and the text readable.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Run from a scratch folder holding "demo-out", so the pages name the files
# as a user of scripts/demo.sh sees them.
cd "$work"
"$root/build/kwsim" gen --world "$root/tests/sim/worlds/demo.yaml" --seed 1 -o demo-out 2>/dev/null
"$root/build/cli/keywarden" run -q -c demo-out/keywarden.yaml -r demo-out/capture.pcap --no-progress >/dev/null
"$root/build/cli/keywarden" report -c demo-out/keywarden.yaml -o all.html
"$root/build/cli/keywarden" report -c demo-out/keywarden.yaml --identity c02 -o c02.html
cd "$root"
shot() { # page width height out
  chromium --headless --no-sandbox --disable-gpu --no-first-run --disable-background-networking \
    --disable-component-update --disable-sync --user-data-dir="$work/profile" --hide-scrollbars \
    --force-device-scale-factor=0.75 --window-size="$2,$3" --screenshot="$4" "file://$1" 2>/dev/null
}
shot "$work/all.html" 1200 1000 docs/img/report-overview.png
shot "$work/c02.html" 1200 2120 docs/img/report-c02.png
ls -l docs/img/report-overview.png docs/img/report-c02.png
