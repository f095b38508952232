# esc-hook for bash. Install with, in ~/.bashrc:  eval "$(esc-hook init bash)"
# Loads a project's Pulumi ESC environment while you are inside it.

_esc_hook() {
  # Keep the user's $? for their prompt, and every variable local: nothing of ours lingers.
  local __esc_hook_status=$? __esc_hook_script
  __esc_hook_script="$(@ESC_HOOK@ export bash)" && builtin eval "$__esc_hook_script"
  return $__esc_hook_status
}

# Lets `esc-hook doctor` tell that the hook runs in this very shell.
export ESC_HOOK_SHELL="bash $$"

if [[ -n "${__bp_imported:-}" ]]; then
  # bash-preexec rewrites PROMPT_COMMAND at its first prompt; its own list survives that.
  if [[ " ${precmd_functions[*]:-} " != *" _esc_hook "* ]]; then
    precmd_functions=(_esc_hook ${precmd_functions[@]+"${precmd_functions[@]}"})
  fi
elif [[ "$(builtin declare -p PROMPT_COMMAND 2>/dev/null)" == "declare -a"* ]]; then
  # bash >= 5.1 allows PROMPT_COMMAND to be an array.
  __esc_hook_installed=
  for __esc_hook_command in "${PROMPT_COMMAND[@]}"; do
    [[ "$__esc_hook_command" == "_esc_hook" ]] && __esc_hook_installed=1
  done
  [[ -n "$__esc_hook_installed" ]] || PROMPT_COMMAND=(_esc_hook "${PROMPT_COMMAND[@]}")
  unset __esc_hook_installed __esc_hook_command
elif [[ ";${PROMPT_COMMAND:-};" != *";_esc_hook;"* ]]; then
  # This branch only runs when PROMPT_COMMAND is a plain string.
  # shellcheck disable=SC2128,SC2178
  PROMPT_COMMAND="_esc_hook${PROMPT_COMMAND:+;$PROMPT_COMMAND}"
fi

# A shell started inside a project has the environment before its first command.
_esc_hook
