# esc-hook for bash. Install with, in ~/.bashrc:  eval "$(esc-hook init bash)"
# Loads a project's Pulumi ESC environment while you are inside it.

_esc_hook() {
  # Keep the user's $? for their prompt, and every variable local: nothing of ours lingers.
  local __esc_hook_status=$? __esc_hook_script
  # An unchanged prompt is decided with builtins alone and spawns no process.
  _esc_hook_unchanged && return $__esc_hook_status
  # A read-only name the shell refuses must not exit a `set -e` shell: that takes an `||`
  # list and `command eval` (with `builtin eval`, bash treats the error as fatal anyway).
  __esc_hook_script="$(@ESC_HOOK@ export bash --shell-pid "$$")" && command eval "$__esc_hook_script" || :
  _esc_hook_login_snapshot
  return $__esc_hook_status
}

# After a login failed, the binary asks for the login variables to be watched: a copy stays in
# this shell (unexported, even under `set -a`), so that setting them is seen at the next prompt
# without a process at the prompts in between.
_esc_hook_login_snapshot() {
  if [[ -n "${_esc_hook_watch_login-}" ]]; then
    _esc_hook_login_seen="${PULUMI_ACCESS_TOKEN-}|${PULUMI_BACKEND_URL-}"
    export -n _esc_hook_login_seen
  else
    unset _esc_hook_login_seen
  fi
}

# True when nothing the binary would react to has changed since it last ran: the directory,
# the state, an .escrc appearing on the way up, the one in force changing or going, a trust
# record, or the refresh time. The binary sets the _esc_hook_* variables after each run.
# shellcheck disable=SC2154  # the _esc_hook_* variables come from the binary's output
_esc_hook_unchanged() {
  # `[ = ]` compares bytes; `[[ == ]]` would follow the user's `shopt -s nocasematch`.
  [ -n "${_esc_hook_watch-}" ] && [ "$PWD" = "${_esc_hook_seen_pwd-}" ] || return 1
  [ "${ESC_HOOK_STATE-}" = "${_esc_hook_seen_state-}" ] && [[ -e "$_esc_hook_watch" ]] || return 1
  local __esc_hook_file
  for __esc_hook_file in ${_esc_hook_absent[@]+"${_esc_hook_absent[@]}"}; do
    [[ -e "$__esc_hook_file" || -L "$__esc_hook_file" ]] && return 1
  done
  # Every file of the project (more than one when it builds on its parents), unchanged.
  local __esc_hook_index=0 __esc_hook_text
  for __esc_hook_file in ${_esc_hook_present[@]+"${_esc_hook_present[@]}"}; do
    [[ -e "$__esc_hook_file" && ! "$__esc_hook_file" -nt "$_esc_hook_watch" ]] || return 1
    # bash cannot see a change time: compare the text (an edit may keep an old mtime).
    if [[ -n "${_esc_hook_present_text[__esc_hook_index]-}" ]]; then
      [[ -f "$__esc_hook_file" ]] || return 1
      __esc_hook_text=
      IFS= read -r -d '' __esc_hook_text < "$__esc_hook_file"
      [ "$__esc_hook_text" = "${_esc_hook_present_text[__esc_hook_index]}" ] || return 1
    fi
    __esc_hook_index=$((__esc_hook_index + 1))
  done
  for __esc_hook_file in ${_esc_hook_newer[@]+"${_esc_hook_newer[@]}"}; do
    [[ "$__esc_hook_file" -nt "$_esc_hook_watch" ]] && return 1
  done
  if [[ -n "${_esc_hook_watch_login-}" ]]; then
    [ "${PULUMI_ACCESS_TOKEN-}|${PULUMI_BACKEND_URL-}" = "${_esc_hook_login_seen-}" ] || return 1
  fi
  (( ${_esc_hook_due:-0} == 0 )) && return 0
  local __esc_hook_now=${EPOCHSECONDS-}
  # bash < 5 has no EPOCHSECONDS; from 4.2 its printf tells the time (else the binary decides).
  [[ -n "$__esc_hook_now" ]] || builtin printf -v __esc_hook_now '%(%s)T' -1 2>/dev/null || return 1
  (( __esc_hook_now < _esc_hook_due ))
}

# Lets `esc-hook doctor` tell that the hook runs in this very shell.
export ESC_HOOK_SHELL="bash $$"

# Whether the hook is already installed, wherever a framework moved it: re-sourcing ~/.bashrc
# must not install it twice (bash-preexec keeps PROMPT_COMMAND's entries on lines of their
# own, or in precmd_functions; starship moves them into STARSHIP_PROMPT_COMMAND).
_esc_hook_installed() {
  local __esc_hook_place
  for __esc_hook_place in ${PROMPT_COMMAND[@]+"${PROMPT_COMMAND[@]}"} \
      ${precmd_functions[@]+"${precmd_functions[@]}"} "${STARSHIP_PROMPT_COMMAND-}" \
      "${__bp_original_prompt_command-}"; do
    [[ "$__esc_hook_place" =~ (^|[^[:alnum:]_])_esc_hook($|[^[:alnum:]_]) ]] && return 0
  done
  return 1
}

if _esc_hook_installed; then
  :
elif [[ -n "${__bp_imported:-}" ]]; then
  # bash-preexec rewrites PROMPT_COMMAND at its first prompt; its own list survives that.
  precmd_functions=(_esc_hook ${precmd_functions[@]+"${precmd_functions[@]}"})
elif [[ "$(builtin declare -p PROMPT_COMMAND 2>/dev/null)" == "declare -a"* ]]; then
  # bash >= 5.1 allows PROMPT_COMMAND to be an array.
  PROMPT_COMMAND=(_esc_hook "${PROMPT_COMMAND[@]}")
else
  # This branch only runs when PROMPT_COMMAND is a plain string.
  # shellcheck disable=SC2128,SC2178
  PROMPT_COMMAND="_esc_hook${PROMPT_COMMAND:+;$PROMPT_COMMAND}"
fi

# A shell started inside a project has the environment before its first command.
_esc_hook
