//! Validated names: an environment variable name that can be emitted into any shell.

use std::fmt;

/// A variable name matching `[A-Za-z_][A-Za-z0-9_]*`: the only names every supported shell can
/// set and unset without quoting tricks. Anything else is refused before it reaches a shell.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VarName(String);

impl VarName {
    pub fn parse(name: &str) -> Option<VarName> {
        let mut bytes = name.bytes();
        let first_ok = matches!(bytes.next(), Some(b'A'..=b'Z' | b'a'..=b'z' | b'_'));
        let rest_ok = bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_');
        (first_ok && rest_ok).then(|| VarName(name.to_string()))
    }

    /// A name written in this program's source, such as the state variable's.
    pub fn constant(name: &'static str) -> VarName {
        debug_assert!(VarName::parse(name).is_some(), "{name}");
        VarName(name.to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for VarName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a valid name is still not exported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Read-only or special in a supported shell (assigning it fails, or means something
    /// else), or esc-hook's own: never exported.
    Reserved,
    /// Changes how a shell or the dynamic loader behaves (prompt and startup hooks, `LD_*`,
    /// `IFS`, `PATH`, …): exported only when the `.escrc` lists it under `allow-names`.
    Behaviour,
}

#[rustfmt::skip]
/// Names a shell reserves: bash, zsh, fish and nushell read-only or special parameters, whose
/// assignment fails (and aborts a `set -e` shell) or changes the shell itself.
const RESERVED: &[&str] = &[
    // bash
    "BASH", "BASHOPTS", "BASHPID", "BASH_ALIASES", "BASH_ARGC", "BASH_ARGV", "BASH_ARGV0",
    "BASH_CMDS", "BASH_COMMAND", "BASH_EXECUTION_STRING", "BASH_LINENO", "BASH_REMATCH",
    "BASH_SOURCE", "BASH_SUBSHELL", "BASH_VERSINFO", "BASH_VERSION", "COMP_CWORD", "COMP_KEY",
    "COMP_LINE", "COMP_POINT", "COMP_TYPE", "COMP_WORDBREAKS", "COMP_WORDS", "COPROC",
    "DIRSTACK", "EPOCHREALTIME", "EPOCHSECONDS", "EUID", "FUNCNAME", "GROUPS", "HISTCMD",
    "HOSTTYPE", "LINENO", "MACHTYPE", "OLDPWD", "OPTARG", "OPTERR", "OPTIND", "OSTYPE",
    "PIPESTATUS", "PPID", "PWD", "RANDOM", "READLINE_LINE", "READLINE_MARK", "READLINE_POINT",
    "REPLY", "SECONDS", "SHELLOPTS", "SHLVL", "SRANDOM", "UID", "_",
    // zsh
    "ARGC", "argv", "EGID", "GID", "USERNAME", "ERRNO", "TTY", "TTYIDLE", "ZSH_ARGZERO",
    "ZSH_EVAL_CONTEXT", "ZSH_EXECUTION_STRING", "ZSH_NAME", "ZSH_PATCHLEVEL", "ZSH_SCRIPT",
    "ZSH_SUBSHELL", "ZSH_VERSION", "status", "pipestatus", "signals", "options", "parameters",
    "commands", "functions", "aliases", "builtins", "modules", "jobstates", "jobtexts",
    "jobdirs", "nameddirs", "userdirs", "dirstack", "history", "historywords", "funcstack",
    "funcfiletrace", "funcsourcetrace", "functrace", "sysparams", "errnos", "widgets",
    "keymaps", "TRY_BLOCK_ERROR", "TRY_BLOCK_INTERRUPT", "MATCH", "MBEGIN", "MEND", "match",
    "mbegin", "mend", "reply", "HOST", "VENDOR", "CPUTYPE",
    // fish
    "version", "FISH_VERSION", "fish_pid", "hostname", "last_pid", "status_generation",
    "CMD_DURATION", "umask",
    // nushell
    "FILE_PWD", "CURRENT_FILE", "LAST_EXIT_CODE", "CMD_DURATION_MS", "NU_VERSION", "config",
    "DIRS_LIST", "DIRS_POSITION",
    // what stops a hook from running at all (bash and zsh: `FUNCNEST=1` forbids the hook's own
    // functions; zsh: `ARGV0` renames what the hook starts)
    "FUNCNEST", "ARGV0",
    // the locale: a multibyte one (GBK, Big5) re-pairs the bytes of quoted text, in fish's
    // quoting and in every other reader of the hook's script
    "LANG", "LC_*",
];

#[rustfmt::skip]
/// Names (and prefixes, ending in `*`) that change how a shell or the loader behaves.
const BEHAVIOUR: &[&str] = &[
    // prompts and hooks run code at every prompt
    "PROMPT_COMMAND", "PS0", "PS1", "PS2", "PS3", "PS4", "PROMPT", "PROMPT2", "PROMPT3",
    "PROMPT4", "RPROMPT", "RPROMPT2", "RPS1", "RPS2", "SPROMPT", "PROMPT_DIRTRIM",
    "PROMPT_EOL_MARK", "POSTEDIT", "prompt", "precmd_functions", "preexec_functions",
    "chpwd_functions", "periodic_functions", "zshaddhistory_functions", "zshexit_functions",
    "PERIOD", "PROMPT_*", "TRANSIENT_PROMPT_*", "fish_*", "FISH_*",
    // startup files of the next shell
    "BASH_ENV", "ENV", "ZDOTDIR", "INPUTRC", "HOME", "XDG_*", "SHELL", "NU_LIB_DIRS",
    "NU_PLUGIN_DIRS", "ENV_CONVERSIONS", "PSModulePath", "POWERSHELL_*",
    "PSExecutionPolicyPreference", "__PSLockdownPolicy",
    // how words, commands and history are read
    "IFS", "PATH", "path", "CDPATH", "cdpath", "FPATH", "fpath", "MODULE_PATH", "module_path",
    "GLOBIGNORE", "FIGNORE", "fignore", "EXECIGNORE", "HISTFILE", "HISTCONTROL", "HISTIGNORE",
    "SAVEHIST", "HISTSIZE", "HISTFILESIZE", "histchars", "HISTCHARS", "TMOUT", "STTY",
    "KEYTIMEOUT", "NULLCMD", "READNULLCMD", "WORDCHARS", "MAIL", "MAILPATH", "mailpath",
    "MAILCHECK", "POSIXLY_CORRECT", "BASH_COMPAT", "BASH_XTRACEFD", "BASH_LOADABLES_PATH",
    // the dynamic loader and libc
    "LD_*", "DYLD_*", "GCONV_PATH", "GLIBC_TUNABLES", "LOCPATH", "NLSPATH", "HOSTALIASES",
    "RESOLV_HOST_CONF", "RES_OPTIONS", "LOCALDOMAIN", "MALLOC_CHECK_", "MALLOC_PERTURB_",
    // terminal descriptions, read by every program that draws on the terminal
    "TERMINFO", "TERMINFO_DIRS", "TERMCAP",
    // code .NET (and so PowerShell) loads into every process it starts
    "DOTNET_STARTUP_HOOKS", "CORECLR_ENABLE_PROFILING", "CORECLR_PROFILER*", "COMPlus_*",
    "NU_*",
];

fn listed(list: &[&str], name: &str) -> bool {
    list.iter().any(|entry| match entry.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => name == *entry,
    })
}

/// Whether `name` may not be exported as it is, and why. esc-hook's own settings and state
/// (`ESC_HOOK_*`) are reserved: nothing an environment sets may configure esc-hook.
pub fn refusal(name: &str) -> Option<Refusal> {
    if name.starts_with("ESC_HOOK_") || listed(RESERVED, name) {
        Some(Refusal::Reserved)
    } else if listed(BEHAVIOUR, name) {
        Some(Refusal::Behaviour)
    } else {
        None
    }
}

/// Whether a variable's name says it holds a secret: AWS's static keys, and any name with
/// TOKEN, SECRET, PASSWORD, PASSWD, CREDENTIAL or PRIVATE in it, or ending in `_KEY` or
/// `_KEY_ID` (any case). A user's own value of such a name, when a project overrides it,
/// waits in the keyring, never in the state every program inherits.
pub fn is_secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    [
        "TOKEN",
        "SECRET",
        "PASSWORD",
        "PASSWD",
        "CREDENTIAL",
        "PRIVATE",
    ]
    .iter()
    .any(|word| upper.contains(word))
        || upper.ends_with("_KEY")
        || upper.ends_with("_KEY_ID")
}

/// Whether `text` can name an AWS region in a host name (`sts.{region}.amazonaws.com`): one
/// DNS label of lower-case letters, digits and inner hyphens. Nothing else is ever spliced into
/// a host.
pub fn is_region(text: &str) -> bool {
    (1..=63).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !text.starts_with('-')
        && !text.ends_with('-')
}

/// Text for the terminal with every control character escaped (`\n`, `\u{1b}`), however long:
/// directory names and server text in a message can neither move the cursor, recolour the
/// terminal, nor start a line of their own that looks like esc-hook's.
pub fn escape_controls(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(is_unseen) {
        return std::borrow::Cow::Borrowed(text);
    }
    std::borrow::Cow::Owned(
        text.chars()
            .map(|c| match is_unseen(c) {
                true => c.escape_default().to_string(),
                false => c.to_string(),
            })
            .collect(),
    )
}

/// A character that acts on the terminal or on how text around it reads, rather than showing
/// itself: control characters (Cc), and format characters (Unicode's Cf: right-to-left
/// overrides and isolates, zero-width joiners and spaces, the soft hyphen, tag characters),
/// with which a directory name could show one text and hold another.
fn is_unseen(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{ad}' | '\u{600}'..='\u{605}' | '\u{61c}' | '\u{6dd}' | '\u{70f}'
            | '\u{890}'..='\u{891}' | '\u{8e2}' | '\u{180e}' | '\u{200b}'..='\u{200f}'
            | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206f}'
            | '\u{feff}' | '\u{fff9}'..='\u{fffb}' | '\u{110bd}' | '\u{110cd}'
            | '\u{13430}'..='\u{1343f}' | '\u{1bca0}'..='\u{1bca3}'
            | '\u{1d173}'..='\u{1d17a}' | '\u{e0001}' | '\u{e0020}'..='\u{e007f}')
}

/// Renders untrusted text (a refused name, a server message) for a one-line log: control
/// characters and quotes escaped, length bounded, so it can never spoof or break a terminal line.
pub fn printable(text: &str, max_chars: usize) -> String {
    let mut out = String::new();
    for (count, c) in text.chars().enumerate() {
        if count == max_chars {
            out.push('…');
            break;
        }
        if is_unseen(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_names_are_told_by_their_words() {
        for name in [
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "AWS_CREDENTIAL_EXPIRATION",
            "GITHUB_TOKEN",
            "db_password",
            "SSH_PRIVATE_KEY_PATH",
            "STRIPE_API_KEY",
        ] {
            assert!(is_secret_name(name), "{name}");
        }
        for name in [
            "AWS_REGION",
            "AWS_PROFILE",
            "KUBECONFIG",
            "PATH",
            "KEYBOARD",
        ] {
            assert!(!is_secret_name(name), "{name}");
        }
    }

    #[test]
    fn accepts_shell_safe_names_only() {
        for good in ["A", "_", "AWS_REGION", "a1", "_x_9"] {
            assert!(VarName::parse(good).is_some(), "{good}");
        }
        for bad in ["", "1A", "A-B", "A B", "É", "A=B", "A\n", "$A", "a.b"] {
            assert!(VarName::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn refuses_what_changes_a_shell_and_nothing_else() {
        for reserved in [
            "UID",
            "EUID",
            "ARGC",
            "EGID",
            "status",
            "fish_pid",
            "ESC_HOOK_STATE",
            "ESC_HOOK_KEYRING",
            "_",
        ] {
            assert_eq!(refusal(reserved), Some(Refusal::Reserved), "{reserved}");
        }
        for behaviour in [
            "PROMPT_COMMAND",
            "BASH_ENV",
            "LD_PRELOAD",
            "DYLD_INSERT_LIBRARIES",
            "IFS",
            "PATH",
            "PS1",
            "ZDOTDIR",
            "XDG_DATA_HOME",
            "fish_user_paths",
            "PROMPT_INDICATOR",
            "MALLOC_CHECK_",
        ] {
            assert_eq!(refusal(behaviour), Some(Refusal::Behaviour), "{behaviour}");
        }
        for fine in [
            "AWS_ACCESS_KEY_ID",
            "AWS_REGION",
            "KUBECONFIG",
            "PULUMI_ACCESS_TOKEN",
            "LDAP_URL",
            "MALLOC",
            "PATHS",
            "X_",
        ] {
            assert_eq!(refusal(fine), None, "{fine}");
        }
    }

    #[test]
    fn printable_escapes_control_characters_and_bounds_length() {
        assert_eq!(printable("a\nb\x1b[31m", 50), "a\\nb\\u{1b}[31m");
        assert_eq!(printable("abcdef", 3), "abc…");
    }

    #[test]
    fn a_region_is_one_dns_label() {
        for region in ["eu-west-1", "us-gov-west-1", "cn-north-1", "a"] {
            assert!(is_region(region), "{region}");
        }
        for bad in [
            "",
            "x@127.0.0.1:8080/",
            "EU-WEST-1",
            "-eu",
            "eu-",
            "eu.west",
            "a/b",
            &"a".repeat(64),
        ] {
            assert!(!is_region(bad), "{bad}");
        }
    }

    #[test]
    fn format_characters_are_escaped_like_controls() {
        // "txt.exe" shown as "exe.txt" by a right-to-left override, a zero-width space, a tag.
        let shown = printable("a\u{202e}txt.exe\u{200b}\u{e0041}", 50);
        assert_eq!(shown, "a\\u{202e}txt.exe\\u{200b}\\u{e0041}");
        assert_eq!(escape_controls("x\u{2066}y"), "x\\u{2066}y");
        assert_eq!(escape_controls("naïve café 日本"), "naïve café 日本");
    }
}
