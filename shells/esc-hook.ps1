# esc-hook for PowerShell 7. Install with, in $PROFILE:
#   Invoke-Expression (& esc-hook init pwsh | Out-String)
# Loads a project's Pulumi ESC environment while you are inside it.
#
# The binary answers in JSON and this hook applies it: values never pass through PowerShell's
# parser, and native output line splitting cannot rewrite a CR LF inside a value (JSON escapes
# every line break, so each answer is exactly one line).

$global:__EscHookBinary = @ESC_HOOK@
# Set before any read: StrictMode refuses variables that were never assigned.
$global:__EscHookWatch = $null
# Lets `esc-hook doctor` tell that the hook runs in this very shell.
$env:ESC_HOOK_SHELL = "pwsh $PID"

# True when nothing the binary would react to has changed since it last ran: the directory,
# the state, an .escrc appearing on the way up, the one in force changing or going, a trust
# record, or the refresh time. Everything here runs in-process: no process is spawned.
function global:__EscHookUnchanged {
    $watch = $global:__EscHookWatch
    if ($null -eq $watch) { return $false }
    if ($PWD.ProviderPath -ne $watch.pwd) { return $false }
    if ("$env:ESC_HOOK_STATE" -ne $watch.state) { return $false }
    if (-not (Test-Path -LiteralPath $watch.file)) { return $false }
    $since = (Get-Item -LiteralPath $watch.file -Force).LastWriteTimeUtc
    foreach ($file in $watch.absent) {
        if (Test-Path -LiteralPath $file) { return $false }
    }
    # Every file of the project (more than one when it builds on its parents), unchanged.
    $index = 0
    foreach ($file in @($watch.present)) {
        if (-not (Test-Path -LiteralPath $file)) { return $false }
        $item = Get-Item -LiteralPath $file -Force
        if ($item.LastWriteTimeUtc -gt $since) { return $false }
        # An edit may keep an old mtime (cp -p, tar x): compare the text too.
        # (A file the binary could not read has no text to compare: it is not read here either.)
        $text = if ($null -ne $watch.present_text) { @($watch.present_text)[$index] } else { $null }
        if ($text -and [System.IO.File]::ReadAllText($file) -cne $text) { return $false }
        $index++
    }
    foreach ($dir in $watch.newer) {
        if ((Test-Path -LiteralPath $dir) -and (Get-Item -LiteralPath $dir -Force).LastWriteTimeUtc -gt $since) { return $false }
    }
    if ($watch.due -gt 0 -and [DateTimeOffset]::UtcNow.ToUnixTimeSeconds() -ge $watch.due) { return $false }
    return $true
}

function global:__EscHookApply {
    if (__EscHookUnchanged) { return }
    $previousExitCode = $global:LASTEXITCODE
    $previousEncoding = [Console]::OutputEncoding
    try {
        [Console]::OutputEncoding = [System.Text.UTF8Encoding]::new($false)
        # PowerShell does not maintain $env:PWD; the binary reads it to keep symlinked paths.
        $env:PWD = $PWD.ProviderPath
        # Two JSON lines: the changes, then what to watch.
        $lines = @(& $global:__EscHookBinary export json-hook --shell-pid $PID)
        $next = if ($lines.Count -gt 1) { $lines[1] | ConvertFrom-Json } else { $null }
        # The files' texts come only when something changed: keep the ones this hook has.
        $previous = $global:__EscHookWatch
        if ($null -ne $next -and $null -eq $next.present_text -and $null -ne $previous -and
            ((@($next.present) -join "`n") -ceq (@($previous.present) -join "`n"))) {
            $next.present_text = $previous.present_text
        }
        $global:__EscHookWatch = $next
        $json = $lines[0]
        if ($json) {
            $changes = $json | ConvertFrom-Json -AsHashtable
            foreach ($name in $changes.Keys) {
                if ($null -eq $changes[$name]) {
                    Remove-Item -LiteralPath "env:/$name" -ErrorAction SilentlyContinue
                } else {
                    Set-Item -LiteralPath "env:/$name" -Value $changes[$name]
                }
            }
        }
    } finally {
        [Console]::OutputEncoding = $previousEncoding
        $global:LASTEXITCODE = $previousExitCode
    }
}

if (-not (Test-Path -LiteralPath 'variable:global:__EscHookInstalled')) {
    $global:__EscHookInstalled = $true
    # Prompt replacers (oh-my-posh, starship) redefine prompt later; LocationChangedAction
    # still fires on every cd, and the prompt wrapper catches everything else.
    $global:__EscHookPreviousPrompt = $function:prompt
    function global:prompt {
        __EscHookApply
        & $global:__EscHookPreviousPrompt
    }
    $global:__EscHookPreviousLocationAction = $ExecutionContext.SessionState.InvokeCommand.LocationChangedAction
    $ExecutionContext.SessionState.InvokeCommand.LocationChangedAction = {
        param($source, $locationArgs)
        if ($global:__EscHookPreviousLocationAction) {
            & $global:__EscHookPreviousLocationAction $source $locationArgs
        }
        __EscHookApply
    }
}

# A shell started inside a project has the environment before its first command.
__EscHookApply
