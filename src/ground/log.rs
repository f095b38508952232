//! Log lines on stderr, always prefixed `esc-hook:`. stdout belongs to the shell.
//! Lines name variables, never their values. `ESC_HOOK_QUIET=1` hides the informational ones;
//! warnings and errors always show, since they say why something did not load. Colour only on
//! a terminal, never with `NO_COLOR`; a spinner only on a terminal, when an open is slow.

use std::fmt::Display;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::ground::names::escape_controls;

/// What the user's settings say about the terminal, set once by `main`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Terminal {
    /// `TERM=dumb`: no escape sequences at all.
    pub dumb: bool,
    /// `NO_COLOR` or a dumb terminal: no colour.
    pub no_colour: bool,
}

static TERMINAL: OnceLock<Terminal> = OnceLock::new();

/// Where `quiet` comes from: asked at the first informational line only, since it may read the
/// config file, which an unchanged prompt never does.
type QuietSource = Box<dyn Fn() -> bool + Send + Sync>;
static QUIET_SOURCE: OnceLock<QuietSource> = OnceLock::new();
static QUIET: OnceLock<bool> = OnceLock::new();

/// Sets the log's switches from the user's settings; the first call wins.
pub fn configure(terminal: Terminal, quiet: impl Fn() -> bool + Send + Sync + 'static) {
    let _ = TERMINAL.set(terminal);
    let _ = QUIET_SOURCE.set(Box::new(quiet));
}

static VERBOSE: AtomicBool = AtomicBool::new(false);
static QUIET_FLAG: AtomicBool = AtomicBool::new(false);
static NO_COLOUR_FLAG: AtomicBool = AtomicBool::new(false);

/// The command line's `-v`, `-q` and `--no-color`, on top of the settings.
pub fn from_command_line(verbose: bool, quiet: bool, no_colour: bool) {
    if verbose {
        set_verbose();
    }
    QUIET_FLAG.fetch_or(quiet, Ordering::Relaxed);
    NO_COLOUR_FLAG.fetch_or(no_colour, Ordering::Relaxed);
}

/// `-v` or `ESC_HOOK_LOG=debug`: [`debug`] lines show.
pub fn set_verbose() {
    VERBOSE.store(true, Ordering::Relaxed);
}

/// What esc-hook looked at and decided (files, stores, requests), with `-v` only. Never a
/// value or a token: callers pass names, paths and URLs.
pub fn debug(message: impl Display) {
    if VERBOSE.load(Ordering::Relaxed) {
        line(&format!("debug: {message}"));
    }
}

fn terminal() -> Terminal {
    let mut terminal = TERMINAL.get().copied().unwrap_or_default();
    terminal.no_colour |= NO_COLOUR_FLAG.load(Ordering::Relaxed);
    terminal
}

pub fn quiet() -> bool {
    QUIET_FLAG.load(Ordering::Relaxed)
        || *QUIET.get_or_init(|| QUIET_SOURCE.get().is_some_and(|source| source()))
}

/// A terminal that can show escape sequences.
fn fancy_terminal() -> bool {
    std::io::stderr().is_terminal() && !terminal().dumb
}

fn colour() -> bool {
    fancy_terminal() && !terminal().no_colour && !holding()
}

pub fn info(message: impl Display) {
    if !quiet() {
        line(&message.to_string());
    }
}

/// Something did not load or will not work as asked (yellow on a terminal).
pub fn warn(message: impl Display) {
    coloured(YELLOW, &message.to_string());
}

/// A command failed (red on a terminal).
pub fn error(message: impl Display) {
    coloured(RED, &message.to_string());
}

const YELLOW: &str = "33";
const RED: &str = "31";
const GREEN: &str = "32";

fn coloured(colour_code: &str, message: &str) {
    let message = escape_controls(message);
    // The prefix stays plain text, so the line reads the same to people and to scripts.
    match colour() {
        true => write_line(&format!("\u{1b}[{colour_code}m{message}\u{1b}[0m")),
        false => write_line(&message),
    }
}

/// `text` in green (`ok`) or red (`failed`) when stdout is a terminal that takes colour.
pub fn mark_for_stdout(text: &str, ok: bool) -> String {
    coloured_for_stdout(text, if ok { GREEN } else { RED })
}

/// A warning's mark, yellow on a terminal.
pub fn warning_mark_for_stdout(text: &str) -> String {
    coloured_for_stdout(text, YELLOW)
}

fn coloured_for_stdout(text: &str, colour: &str) -> String {
    let on_terminal = std::io::stdout().is_terminal() && !terminal().dumb && !terminal().no_colour;
    match on_terminal {
        true => format!("\u{1b}[{colour}m{text}\u{1b}[0m"),
        false => text.to_string(),
    }
}

/// Every message is one line: paths and server text in it are shown with their control
/// characters escaped, whoever built the message.
fn line(message: &str) {
    write_line(&escape_controls(message));
}

fn write_line(message: &str) {
    if let Some(held) = HELD.lock().ok().as_mut().and_then(|held| held.as_mut()) {
        held.push(format!("esc-hook: {message}"));
        return;
    }
    // A closed stderr must not turn into a panic in the middle of a prompt.
    let _ = writeln!(std::io::stderr().lock(), "esc-hook: {message}");
}

/// Lines held back instead of written, while holding (see [`hold`]).
static HELD: Mutex<Option<Vec<String>>> = Mutex::new(None);

/// From now on, lines are kept for [`take_held`] instead of written, and no spinner shows:
/// for a shell that must print them itself, later (zsh under powerlevel10k's instant prompt,
/// which captures the terminal until its first prompt and warns about any output).
pub fn hold() {
    if let Ok(mut held) = HELD.lock() {
        held.get_or_insert_with(Vec::new);
    }
}

/// The lines held back so far.
pub fn take_held() -> Vec<String> {
    HELD.lock()
        .ok()
        .and_then(|mut held| held.as_mut().map(std::mem::take))
        .unwrap_or_default()
}

/// Writes lines that were held back after all (for a shell that cannot take them).
pub fn write_held(lines: Vec<String>) {
    let mut stderr = std::io::stderr().lock();
    for line in lines {
        let _ = writeln!(stderr, "{line}");
    }
}

fn holding() -> bool {
    HELD.lock().is_ok_and(|held| held.is_some())
}

/// Shows `esc-hook: ⠋ <what>…` on the terminal while something slow runs, from 300 ms on;
/// erased when dropped. Does nothing when stderr is not a terminal or the user asked for quiet.
pub struct Spinner {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Spinner {
    pub fn start(what: String) -> Spinner {
        let what = escape_controls(&what).into_owned();
        let stop = Arc::new(AtomicBool::new(false));
        let thread = (fancy_terminal() && !quiet() && !holding())
            .then(|| {
                let stop = Arc::clone(&stop);
                std::thread::Builder::new()
                    .name("spinner".into())
                    .spawn(move || spin(&what, &stop))
                    .ok()
            })
            .flatten();
        Spinner { stop, thread }
    }
}

fn spin(what: &str, stop: &AtomicBool) {
    const FRAMES: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
    let tick = Duration::from_millis(20);
    for _ in 0..15 {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        std::thread::sleep(tick);
    }
    let mut frame = 0;
    while !stop.load(Ordering::SeqCst) {
        let _ = write!(
            std::io::stderr().lock(),
            "\r\u{1b}[2Kesc-hook: {} {what}…",
            FRAMES[frame % FRAMES.len()]
        );
        frame += 1;
        for _ in 0..5 {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            std::thread::sleep(tick);
        }
    }
    let _ = write!(std::io::stderr().lock(), "\r\u{1b}[2K");
}

impl Drop for Spinner {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
