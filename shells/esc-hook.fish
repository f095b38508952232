# esc-hook for fish. Install with, in ~/.config/fish/config.fish:  esc-hook init fish | source
# Loads a project's Pulumi ESC environment while you are inside it.

# Lets `esc-hook doctor` tell that the hook runs in this very shell.
set -gx ESC_HOOK_SHELL "fish $fish_pid"

function __esc_hook_export --on-event fish_prompt --description 'esc-hook: load the project environment'
    # An unchanged prompt is decided with builtins alone and spawns no process.
    __esc_hook_unchanged; and return
    @ESC_HOOK@ export fish --shell-pid $fish_pid | source
    # After a login failed, the binary asks for the login variables to be watched: a copy
    # stays in this shell (unexported), so that setting them is seen at the next prompt
    # without a process at the prompts in between.
    if test "$_esc_hook_watch_login" = 1
        set -gu _esc_hook_login_seen "$PULUMI_ACCESS_TOKEN|$PULUMI_BACKEND_URL"
    else
        set -e _esc_hook_login_seen
    end
    # `set` keeps the status before it: without this, sourcing the hook in config.fish fails.
    return 0
end

# True when nothing the binary would react to has changed since it last ran: the directory,
# the state, an .escrc appearing on the way up, the one in force changing or going, a trust
# record, or the refresh time. The binary sets the _esc_hook_* variables after each run;
# `path mtime` and `math` are builtins.
function __esc_hook_unchanged
    # fish before 3.5 has no `path` builtin: then the binary decides at every prompt.
    set -q __esc_hook_has_path; or set -g __esc_hook_has_path (type -q path; and echo 1; or echo 0)
    test "$__esc_hook_has_path" = 1; or return 1
    set -q _esc_hook_watch; and test "$PWD" = "$_esc_hook_seen_pwd"; or return 1
    test "$ESC_HOOK_STATE" = "$_esc_hook_seen_state"; and test -e "$_esc_hook_watch"; or return 1
    for file in $_esc_hook_absent
        if test -e $file; or test -L $file
            return 1
        end
    end
    set -l since (path mtime -- $_esc_hook_watch); or return 1
    # Every file of the project (more than one when it builds on its parents), unchanged.
    set -l index 0
    for file in $_esc_hook_present
        set index (math $index + 1)
        set -l changed (path mtime -- $file); or return 1
        test $changed -le $since; or return 1
        # fish cannot see a change time: compare the text (an edit may keep an old mtime).
        if test -n "$_esc_hook_present_text[$index]"
            test -f $file; or return 1
            read -z -l text < $file
            test "$text" = "$_esc_hook_present_text[$index]"; or return 1
        end
    end
    for dir in $_esc_hook_newer
        set -l changed (path mtime -- $dir); and test $changed -gt $since; and return 1
    end
    if test "$_esc_hook_watch_login" = 1
        test "$PULUMI_ACCESS_TOKEN|$PULUMI_BACKEND_URL" = "$_esc_hook_login_seen"; or return 1
    end
    if test "$_esc_hook_due" != 0
        set -l now (math $since + (path mtime --relative -- $_esc_hook_watch))
        test $now -lt $_esc_hook_due; or return 1
    end
    return 0
end

function __esc_hook_on_cd --on-variable PWD --description 'esc-hook: react to cd'
    # `cd` inside a command substitution changes nothing the user will see.
    status --is-command-substitution; and return
    @ESC_HOOK@ export fish --shell-pid $fish_pid | source
end

# A shell started inside a project has the environment before its first command.
__esc_hook_export
