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

# On a machine's first run: what needs no root is set up here (a Python virtualenv with the
# official ESC client, moto's STS server, boto3 and the AWS CLI; nushell from npm); what needs
# root is named in one line, with the command that installs it.
set_up() {
  local packages="pulumi-esc-sdk moto[server] awscli python-dotenv"
  if [[ "$(cat .venv/.esc-hook-packages 2>/dev/null)" != "$packages" ]] &&
      command -v python3 >/dev/null; then
    echo "tests/run.sh: setting up .venv ($packages)" >&2
    # shellcheck disable=SC2086  # one word per package
    if { [[ -x .venv/bin/python ]] || python3 -m venv .venv; } &&
        .venv/bin/pip install --quiet --disable-pip-version-check $packages >&2; then
      echo "$packages" > .venv/.esc-hook-packages
    else
      echo "tests/run.sh: could not set up .venv (python3-venv and network needed)" >&2
    fi
  fi
  if [[ ! -d .tools/node_modules/nushell ]] && command -v npm >/dev/null; then
    echo "tests/run.sh: installing nushell into .tools" >&2
    npm install --prefix .tools --no-audit --no-fund --silent nushell >&2 ||
      echo "tests/run.sh: could not install nushell (npm and network needed)" >&2
  fi
  local tool package missing=() packages=()
  for tool in zsh:zsh fish:fish tmux:tmux script:bsdutils shellcheck:shellcheck jq:jq \
      groff:groff-base dbus-run-session:dbus gnome-keyring-daemon:gnome-keyring \
      keyctl:keyutils secret-tool:libsecret-tools strace:strace; do
    package=${tool#*:}
    tool=${tool%%:*}
    command -v "$tool" >/dev/null || { missing+=("$tool"); packages+=("$package"); }
  done
  if (( ${#missing[@]} )); then
    echo "tests/run.sh: missing ${missing[*]}: sudo apt-get install ${packages[*]}" >&2
  fi
}

if [[ -z "${ESC_HOOK_TEST_KEYRINGS:-}" ]]; then
  set_up
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
