#!/usr/bin/env bash
# Runs the whole test suite. When D-Bus, gnome-keyring and keyutils are here, it runs inside a
# private D-Bus session with a throwaway unlocked gnome-keyring (the Secret Service) and a fresh
# kernel session keyring, so both Linux keyring stores are exercised for real and the user's
# own keyrings are never touched. Without them the keyring tests SKIP loudly (never in CI).
set -euo pipefail
cd "$(dirname "$0")/.."

# Tests that could not run (a tool missing) list themselves here; cargo would hide their SKIP
# lines. Printed after the run; under CI=true such a test fails instead.
if [[ -z "${ESC_HOOK_TEST_SKIPS:-}" ]]; then
  export ESC_HOOK_TEST_SKIPS
  ESC_HOOK_TEST_SKIPS=$(mktemp)
fi
report_skips() {
  if [[ -s "$ESC_HOOK_TEST_SKIPS" ]]; then
    echo "SKIPPED ($(sort -u "$ESC_HOOK_TEST_SKIPS" | wc -l) tests did not run):" >&2
    sort -u "$ESC_HOOK_TEST_SKIPS" | sed 's/^/  SKIP /' >&2
  fi
  rm -f "$ESC_HOOK_TEST_SKIPS"
}

if [[ -z "${ESC_HOOK_TEST_KEYRINGS:-}" ]]; then
  if command -v dbus-run-session >/dev/null && command -v gnome-keyring-daemon >/dev/null \
     && command -v keyctl >/dev/null; then
    export ESC_HOOK_TEST_KEYRINGS=1
    exec dbus-run-session -- keyctl session - "$0" "$@"
  fi
  if [[ "${CI:-}" == true ]]; then
    echo "tests/run.sh: CI needs dbus-run-session, gnome-keyring-daemon and keyctl" >&2
    exit 1
  fi
  echo "SKIP: dbus-run-session, gnome-keyring-daemon or keyctl missing: keyring tests will not run" >&2
  status=0
  cargo test --locked "$@" || status=$?
  report_skips
  exit "$status"
fi

# Inside the private session: a keyring daemon with its own home, unlocked with a test password.
keyring_home=$(mktemp -d)
trap 'rm -rf "$keyring_home"; report_skips' EXIT
echo -n esc-hook-tests | HOME="$keyring_home" gnome-keyring-daemon --unlock --components=secrets >/dev/null
cargo test --locked "$@"
