# esc-hook for zsh. Install with, in ~/.zshrc:  eval "$(esc-hook init zsh)"
# Loads a project's Pulumi ESC environment while you are inside it.

_esc_hook() {
  local __esc_hook_script
  __esc_hook_script="$(@ESC_HOOK@ export zsh)" && builtin eval "$__esc_hook_script"
}

_esc_hook_precmd() {
  local __esc_hook_status=$?
  # A `cd` fires chpwd and then precmd: the chpwd run already did the work.
  if [[ -n "${_esc_hook_after_chpwd-}" ]]; then
    unset _esc_hook_after_chpwd
  else
    _esc_hook
  fi
  return $__esc_hook_status
}

_esc_hook_chpwd() {
  # Completion functions cd inside subshells; a load there would be lost and slow the widget.
  (( ZSH_SUBSHELL )) && return 0
  _esc_hook
  _esc_hook_after_chpwd=1
}

# Lets `esc-hook doctor` tell that the hook runs in this very shell.
export ESC_HOOK_SHELL="zsh $$"

autoload -Uz add-zsh-hook
# add-zsh-hook never adds a function twice, so re-sourcing is harmless.
add-zsh-hook precmd _esc_hook_precmd
add-zsh-hook chpwd _esc_hook_chpwd

# A shell started inside a project has the environment before its first command.
_esc_hook
