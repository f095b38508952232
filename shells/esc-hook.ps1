# esc-hook for PowerShell 7. Install with, in $PROFILE:
#   Invoke-Expression (& esc-hook init pwsh | Out-String)
# Loads a project's Pulumi ESC environment while you are inside it.
#
# The binary answers in JSON and this hook applies it: values never pass through PowerShell's
# parser, and native output line splitting cannot rewrite a CR LF inside a value.

$global:__EscHookBinary = @ESC_HOOK@
# Lets `esc-hook doctor` tell that the hook runs in this very shell.
$env:ESC_HOOK_SHELL = "pwsh $PID"

function global:__EscHookApply {
    $previousExitCode = $global:LASTEXITCODE
    $previousEncoding = [Console]::OutputEncoding
    try {
        [Console]::OutputEncoding = [System.Text.UTF8Encoding]::new($false)
        $json = (& $global:__EscHookBinary export json) -join ''
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
