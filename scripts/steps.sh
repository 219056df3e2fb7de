# steps.sh: sourced by demo.sh and test.sh. `step NAME CMD...` prints one
# line per step and sends the command's output (apt, compiler, ctest) to
# $KW_LOG; the log is shown only when the step fails, so a quick start
# reads as a list of steps, and a failure still shows its cause.
KW_LOG=${KW_LOG:-$PWD/build-logs/$(basename "$0" .sh).log}
mkdir -p "$(dirname "$KW_LOG")"
: >"$KW_LOG"

step() {
  local name=$1 t0=$SECONDS rc=0
  shift
  printf '%s ... ' "$name"
  printf '\n===== %s: %s\n' "$name" "$*" >>"$KW_LOG"
  "$@" >>"$KW_LOG" 2>&1 || rc=$?
  if [ "$rc" -eq 0 ]; then
    echo "ok ($((SECONDS - t0)) s)"
    return 0
  fi
  echo "FAILED (exit $rc; full log: $KW_LOG)"
  # Everything this step printed, from its marker on.
  awk -v m="===== $name: " 'index($0, m) == 1 { p = 1; next } p' "$KW_LOG" | tail -n "${KW_LOG_TAIL:-150}"
  exit "$rc"
}
