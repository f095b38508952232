# esc-hook for fish. Install with, in ~/.config/fish/config.fish:  esc-hook init fish | source
# Loads a project's Pulumi ESC environment while you are inside it.

# Lets `esc-hook doctor` tell that the hook runs in this very shell.
set -gx ESC_HOOK_SHELL "fish $fish_pid"

function __esc_hook_export --on-event fish_prompt --description 'esc-hook: load the project environment'
    @ESC_HOOK@ export fish | source
end

function __esc_hook_on_cd --on-variable PWD --description 'esc-hook: react to cd'
    # `cd` inside a command substitution changes nothing the user will see.
    status --is-command-substitution; and return
    @ESC_HOOK@ export fish | source
end

# A shell started inside a project has the environment before its first command.
__esc_hook_export
