# esc-hook for zsh. Install with, in ~/.zshrc:  eval "$(esc-hook init zsh)"
# Loads a project's Pulumi ESC environment while you are inside it.

zmodload -F zsh/datetime p:EPOCHSECONDS 2>/dev/null
zmodload -F zsh/stat b:zstat 2>/dev/null
typeset -ga _esc_hook_held

# Every function starts with `emulate -L zsh`: the user's options (extended_glob, ksh_arrays,
# nounset, err_exit, rc_quotes, …) cannot change what they do.
_esc_hook() {
  emulate -L zsh
  local __esc_hook_script
  if (( ${+__p9k_instant_prompt_active} )); then
    # powerlevel10k's instant prompt holds the terminal until it draws the real prompt, and
    # warns about anything written before: the binary hands its lines over instead, and they
    # are shown once p10k lets go.
    __esc_hook_script="$(@ESC_HOOK@ export zsh --shell-pid "$$" --hold-messages)" &&
      builtin eval "$__esc_hook_script"
    _esc_hook_show_held
  else
    __esc_hook_script="$(@ESC_HOOK@ export zsh --shell-pid "$$")" && builtin eval "$__esc_hook_script"
  fi
  # After a login failed, the binary asks for the login variables to be watched: a copy stays
  # in this shell (unexported), so that setting them is seen at the next prompt without a
  # process at the prompts in between.
  if [[ -n "${_esc_hook_watch_login-}" ]]; then
    typeset -g +x _esc_hook_login_seen="${PULUMI_ACCESS_TOKEN-}|${PULUMI_BACKEND_URL-}"
  else
    unset _esc_hook_login_seen
  fi
}

# Prints the held lines once powerlevel10k's instant prompt has let go of the terminal, which
# it does while expanding its first real prompt: from the line-init hook (zle is up, the prompt
# drawn), else at the next prompt.
_esc_hook_show_held() {
  emulate -L zsh
  (( ${#_esc_hook_held} )) || return 0
  (( ${+__p9k_instant_prompt_active} )) && return 0
  # Inside zle the prompt is on screen: have zle redraw it below the lines.
  builtin zle && builtin zle -I
  builtin print -rlu2 -- "${(@)_esc_hook_held}"
  _esc_hook_held=()
}

_esc_hook_line_init() {
  _esc_hook_show_held
}

# True when nothing the binary would react to has changed since it last ran: the directory,
# the state, an .escrc appearing on the way up, the one in force changing or going, a trust
# record, or the refresh time. The binary sets the _esc_hook_* variables after each run.
_esc_hook_unchanged() {
  emulate -L zsh
  [[ -n "${_esc_hook_watch-}" && "$PWD" == "${_esc_hook_seen_pwd-}" ]] || return 1
  [[ "${ESC_HOOK_STATE-}" == "${_esc_hook_seen_state-}" && -e "$_esc_hook_watch" ]] || return 1
  local __esc_hook_file
  local -i __esc_hook_index=0
  for __esc_hook_file in "${(@)_esc_hook_absent}"; do
    [[ -e "$__esc_hook_file" || -L "$__esc_hook_file" ]] && return 1
  done
  # Every file of the project (more than one when it builds on its parents), unchanged.
  for __esc_hook_file in "${(@)_esc_hook_present}"; do
    [[ -e "$__esc_hook_file" && ! "$__esc_hook_file" -nt "$_esc_hook_watch" ]] || return 1
    # Any change to the file (content, mode, owner, a replacement) moves its change time,
    # whatever its mtime says.
    # So does its identity: a link re-pointed to another file of the same times.
    (( __esc_hook_index += 1 ))
    if (( ${+builtins[zstat]} )); then
      local -A __esc_hook_file_stat
      local -a __esc_hook_since
      zstat -H __esc_hook_file_stat -- "$__esc_hook_file" 2>/dev/null || return 1
      zstat -A __esc_hook_since +mtime -- "$_esc_hook_watch" 2>/dev/null || return 1
      (( __esc_hook_file_stat[ctime] <= __esc_hook_since[1] )) || return 1
      [[ "$__esc_hook_file_stat[device]:$__esc_hook_file_stat[inode]" == "${_esc_hook_present_id[__esc_hook_index]-}" ]] || return 1
    fi
  done
  for __esc_hook_file in "${(@)_esc_hook_newer}"; do
    [[ "$__esc_hook_file" -nt "$_esc_hook_watch" ]] && return 1
  done
  if [[ -n "${_esc_hook_watch_login-}" ]]; then
    [[ "${PULUMI_ACCESS_TOKEN-}|${PULUMI_BACKEND_URL-}" == "${_esc_hook_login_seen-}" ]] || return 1
  fi
  [[ -n "${EPOCHSECONDS-}" ]] || return 1
  (( ${_esc_hook_due:-0} == 0 || EPOCHSECONDS < _esc_hook_due ))
}

_esc_hook_precmd() {
  local __esc_hook_status=$?
  emulate -L zsh
  # Also after a chpwd run: the same line may have gone on (`cd repo && esc-hook allow`).
  # An unchanged prompt is decided with builtins alone and spawns no process.
  _esc_hook_unchanged || _esc_hook
  (( ${#_esc_hook_held} )) && _esc_hook_show_held
  return $__esc_hook_status
}

_esc_hook_chpwd() {
  emulate -L zsh
  # Completion functions cd inside subshells; a load there would be lost and slow the widget.
  (( ZSH_SUBSHELL )) && return 0
  _esc_hook
}

# Lets `esc-hook doctor` tell that the hook runs in this very shell.
export ESC_HOOK_SHELL="zsh $$"

autoload -Uz add-zsh-hook
# add-zsh-hook never adds a function twice, so re-sourcing is harmless.
add-zsh-hook precmd _esc_hook_precmd
add-zsh-hook chpwd _esc_hook_chpwd
if (( ${+__p9k_instant_prompt_active} )); then
  autoload -Uz add-zle-hook-widget 2>/dev/null &&
    add-zle-hook-widget line-init _esc_hook_line_init 2>/dev/null
fi

# A shell started inside a project has the environment before its first command.
_esc_hook
