//! One module per command.

pub mod export;
pub mod init;
pub mod status;
pub mod trust;

use std::io::Write;

/// Writes all of `text` to stdout at once. A closed pipe (`esc-hook … | head -1`) is not an
/// error worth a message.
pub fn print(text: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}
