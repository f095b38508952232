#!/usr/bin/env bash
# Runs the whole test suite. When D-Bus, gnome-keyring and keyutils are here, it runs inside a
# private D-Bus session with a throwaway unlocked gnome-keyring (the Secret Service) and a fresh
# kernel session keyring, so both Linux keyring stores are exercised for real and the user's
# own keyrings are never touched. Without them the keyring tests SKIP loudly (never in CI).
set -euo pipefail
cd "$(dirname "$0")/.."

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
  exec cargo test --locked "$@"
fi

# Inside the private session: a keyring daemon with its own home, unlocked with a test password.
keyring_home=$(mktemp -d)
trap 'rm -rf "$keyring_home"' EXIT
echo -n esc-hook-tests | HOME="$keyring_home" gnome-keyring-daemon --unlock --components=secrets >/dev/null
cargo test --locked "$@"
