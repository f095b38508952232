# esc-hook for nushell. nushell cannot evaluate generated code, so save the hook once and
# source it from config.nu:
#   esc-hook init nu | save --force ($nu.default-config-dir | path join esc-hook.nu)
#   source esc-hook.nu                     # in config.nu
# Loads a project's Pulumi ESC environment while you are inside it. The binary answers in
# JSON and this hook applies it with load-env and hide-env: no code is generated or evaluated.

$env.ESC_HOOK_SHELL = $"nu ($nu.pid)"
# What the binary said to watch (a record: nushell does not pass it to external commands).
$env.__esc_hook_watch = null

# The modification time of a path (its own, for a link), or null when there is none.
def __esc_hook_mtime [path: string] {
    try { ls --directory $path | get 0.modified } catch { null }
}

# True when nothing the binary would react to has changed since it last ran: the directory,
# the state, an .escrc appearing on the way up, the one in force changing or going, a trust
# record, or the refresh time. Builtins only: an unchanged prompt spawns no process.
def __esc_hook_unchanged []: nothing -> bool {
    let watch = $env.__esc_hook_watch
    if $watch == null { return false }
    if $env.PWD != $watch.pwd { return false }
    if ($env.ESC_HOOK_STATE? | default "") != $watch.state { return false }
    let since = (__esc_hook_mtime $watch.file)
    if $since == null { return false }
    for file in $watch.absent {
        # `path type` sees a link, even a broken one.
        if ($file | path type) != null { return false }
    }
    # Every file of the project (more than one when it builds on its parents), unchanged.
    for entry in ($watch.present | enumerate) {
        let file = $entry.item
        let changed = (__esc_hook_mtime $file)
        if $changed == null or $changed > $since { return false }
        # An edit may keep an old mtime (cp -p, tar x): compare the text too.
        if $watch.present_text != null {
            if ($file | path type) != "file" { return false }
            let text = (try { open --raw $file | decode utf-8 } catch { null })
            if $text != ($watch.present_text | get $entry.index) { return false }
        }
    }
    for dir in $watch.newer {
        let changed = (__esc_hook_mtime $dir)
        if $changed != null and $changed > $since { return false }
    }
    if $watch.due > 0 and ((date now | into int) // 1_000_000_000) >= $watch.due { return false }
    # After a login failed: the login variables as they were then (kept in the watch record,
    # which nushell does not hand to other programs).
    if ($watch.login? | default false) and (__esc_hook_login) != $watch.login_seen { return false }
    true
}

# The Pulumi login variables, as one text.
def __esc_hook_login []: nothing -> string {
    $"($env.PULUMI_ACCESS_TOKEN? | default "")|($env.PULUMI_BACKEND_URL? | default "")"
}

let esc_hook_apply = {||
    if (__esc_hook_unchanged) { return }
    # Two JSON lines: the changes, then what to watch.
    let answer = (^@ESC_HOOK@ export json-hook --shell-pid $nu.pid | lines)
    let next = (if ($answer | length) > 1 { $answer | get 1 | from json } else { null })
    # The files' texts come only when something changed: keep the ones this hook has.
    let previous = $env.__esc_hook_watch
    $env.__esc_hook_watch = (if $next != null and $next.present_text == null and $previous != null and $previous.present == $next.present {
        $next | upsert present_text $previous.present_text
    } else { $next })
    let changes = ($answer | get 0? | default "{}" | from json)
    let gone = ($changes | items {|name, value| if $value == null { $name } } | compact)
    let set = ($changes | items {|name, value| {name: $name, value: $value} } | where value != null | reduce --fold {} {|it, acc| $acc | insert $it.name $it.value })
    if ($gone | is-not-empty) { hide-env --ignore-errors ...$gone }
    load-env $set
    if $env.__esc_hook_watch != null and ($env.__esc_hook_watch.login? | default false) {
        $env.__esc_hook_watch = ($env.__esc_hook_watch | upsert login_seen (__esc_hook_login))
    }
}

$env.config = ($env.config | upsert hooks.pre_prompt (($env.config.hooks.pre_prompt? | default []) | append $esc_hook_apply))
$env.config = ($env.config | upsert hooks.env_change.PWD (($env.config.hooks.env_change.PWD? | default []) | append {|before, after| do --env $esc_hook_apply }))

# A shell started inside a project has the environment before its first command.
do --env $esc_hook_apply
