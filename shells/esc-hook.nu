# esc-hook for nushell. nushell cannot evaluate generated code, so save the hook once and
# source it from config.nu:
#   esc-hook init nu | save --force ($nu.default-config-dir | path join esc-hook.nu)
#   source esc-hook.nu                     # in config.nu
# Loads a project's Pulumi ESC environment while you are inside it. The binary answers in
# JSON and this hook applies it with load-env and hide-env: no code is generated or evaluated.

$env.ESC_HOOK_SHELL = $"nu ($nu.pid)"

let esc_hook_apply = {||
    let changes = (^@ESC_HOOK@ export json --shell-pid $nu.pid | from json)
    let gone = ($changes | items {|name, value| if $value == null { $name } } | compact)
    let set = ($changes | items {|name, value| {name: $name, value: $value} } | where value != null | reduce --fold {} {|it, acc| $acc | insert $it.name $it.value })
    if ($gone | is-not-empty) { hide-env --ignore-errors ...$gone }
    load-env $set
}

$env.config = ($env.config | upsert hooks.pre_prompt (($env.config.hooks.pre_prompt? | default []) | append $esc_hook_apply))
$env.config = ($env.config | upsert hooks.env_change.PWD (($env.config.hooks.env_change.PWD? | default []) | append {|before, after| do --env $esc_hook_apply }))

# A shell started inside a project has the environment before its first command.
do --env $esc_hook_apply
