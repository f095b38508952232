//! Reading files that others may have written, safely; file stamps; paths as messages show them.
//!
//! Every file from outside (an `.escrc`, the config file) is read through [`read_small`]: one
//! open, without blocking, and everything checked is learnt from that open file, so what is
//! checked is what is read.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

/// A small file as read: its bytes, and the owner and mode of the very file they came from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SmallFile {
    pub content: Vec<u8>,
    pub uid: u32,
    pub mode: u32,
    /// When the path is a symbolic link: the link's own owner (who decides where it points).
    pub link_uid: Option<u32>,
    /// The very file read.
    pub id: FileId,
}

impl std::ops::Deref for SmallFile {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.content
    }
}

/// Reads the file, refusing anything that is not a regular file of at most `max_size` bytes.
/// It is opened once, without blocking (a FIFO or device put there, even between two looks,
/// cannot hold up the prompt), and everything else is learnt from the open file itself. The
/// error is the reason alone (`is not a regular file`), for a message that names the file.
pub fn read_small(path: &Path, max_size: u64) -> Result<SmallFile, String> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| format!("could not read: {}", io_reason(&e)))?;
    let link_uid = || {
        fs::symlink_metadata(path)
            .ok()
            .filter(|m| m.file_type().is_symlink())
            .map(|m| m.uid())
    };
    read_opened(file, max_size, link_uid)
}

/// The checks and the bounded read of [`read_small`], on a file already opened.
fn read_opened(
    file: fs::File,
    max_size: u64,
    link_uid: impl FnOnce() -> Option<u32>,
) -> Result<SmallFile, String> {
    use std::os::unix::fs::MetadataExt;
    let meta = file
        .metadata()
        .map_err(|e| format!("could not read: {}", io_reason(&e)))?;
    if !meta.is_file() {
        return Err("is not a regular file".into());
    }
    let too_large = || format!("is larger than {} KiB", max_size / 1024);
    if meta.len() > max_size {
        return Err(too_large());
    }
    let mut content = Vec::with_capacity(meta.len() as usize);
    file.take(max_size + 1)
        .read_to_end(&mut content)
        .map_err(|e| format!("could not read: {}", io_reason(&e)))?;
    if content.len() as u64 > max_size {
        return Err(too_large());
    }
    Ok(SmallFile {
        content,
        uid: meta.uid(),
        mode: meta.mode(),
        link_uid: link_uid(),
        id: FileId {
            dev: meta.dev(),
            ino: meta.ino(),
        },
    })
}

/// Which file, on which device: what a check was made for, to find the same file again.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FileId {
    pub dev: u64,
    pub ino: u64,
}

/// A directory opened once, and known to hold the very file a check was made for (a project's
/// `.escrc`, allowed): what is read or run "in the project" uses this handle, never the path
/// again, so renaming a directory above it (another user who may rename entries there) cannot
/// swap in another directory after the check.
pub struct HeldDir {
    fd: std::os::fd::OwnedFd,
}

impl HeldDir {
    /// Opens `dir` and checks that its entry `name` is still the file `checked` (a link there
    /// must be the user's own, and point at it). The error is a reason, for a message that
    /// names the directory.
    pub fn open(dir: &Path, name: &str, checked: FileId) -> Result<HeldDir, String> {
        use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
        use std::os::unix::ffi::OsStrExt;
        let dir_c = std::ffi::CString::new(dir.as_os_str().as_bytes())
            .map_err(|_| "has a NUL byte in its name".to_string())?;
        // SAFETY: a valid C string; the descriptor returned is owned below.
        let fd = unsafe {
            libc::open(
                dir_c.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(format!(
                "could not open: {}",
                io_reason(&std::io::Error::last_os_error())
            ));
        }
        // SAFETY: `fd` was just opened and is owned by nothing else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let name_c = std::ffi::CString::new(name).map_err(|_| "bad file name".to_string())?;
        let stat_at = |flags: libc::c_int| {
            // SAFETY: an all-zero stat is a valid value to be overwritten.
            let mut st: libc::stat = unsafe { std::mem::zeroed() };
            // SAFETY: valid descriptor, C string and out pointer.
            let rc = unsafe { libc::fstatat(fd.as_raw_fd(), name_c.as_ptr(), &mut st, flags) };
            (rc == 0).then_some(st)
        };
        let changed = || format!("changed since its {name} was allowed");
        let own = stat_at(libc::AT_SYMLINK_NOFOLLOW).ok_or_else(changed)?;
        // SAFETY: geteuid has no preconditions.
        let me = unsafe { libc::geteuid() };
        if own.st_mode & libc::S_IFMT == libc::S_IFLNK && own.st_uid != me {
            return Err(changed());
        }
        let target = stat_at(0).ok_or_else(changed)?;
        // (st_dev is not u64 on every platform.)
        #[allow(clippy::unnecessary_cast)]
        let found = (target.st_dev as u64, target.st_ino as u64);
        if found != (checked.dev, checked.ino) {
            return Err(changed());
        }
        Ok(HeldDir { fd })
    }

    /// [`read_small`] of `rel` in this directory (an absolute path is read as it is).
    pub fn read_small(&self, rel: &Path, max_size: u64) -> Result<SmallFile, String> {
        use std::os::fd::{AsRawFd, FromRawFd};
        use std::os::unix::ffi::OsStrExt;
        let rel_c = std::ffi::CString::new(rel.as_os_str().as_bytes())
            .map_err(|_| "has a NUL byte in its name".to_string())?;
        // SAFETY: valid descriptor and C string; the descriptor returned is owned below.
        let fd = unsafe {
            libc::openat(
                self.fd.as_raw_fd(),
                rel_c.as_ptr(),
                libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(format!(
                "could not read: {}",
                io_reason(&std::io::Error::last_os_error())
            ));
        }
        // SAFETY: `fd` was just opened and is owned by nothing else.
        let file = unsafe { fs::File::from_raw_fd(fd) };
        read_opened(file, max_size, || None)
    }

    /// Makes `command` start in this directory (by its handle, not its path).
    pub fn start_in(&self, command: &mut std::process::Command) {
        use std::os::fd::AsRawFd;
        use std::os::unix::process::CommandExt;
        let fd = self.fd.as_raw_fd();
        // SAFETY: fchdir is async-signal-safe; the descriptor stays open in the child until
        // its exec (it is close-on-exec), and the parent keeps it open meanwhile.
        unsafe {
            command.pre_exec(move || match libc::fchdir(fd) {
                0 => Ok(()),
                _ => Err(std::io::Error::last_os_error()),
            });
        }
    }
}

/// The OS error text without the "(os error N)" suffix.
pub fn io_reason(error: &std::io::Error) -> String {
    let text = error.to_string();
    match text.find(" (os error") {
        Some(end) => text[..end].to_lowercase(),
        None => text,
    }
}

/// The file identity a decision was made for. Any write, chmod, chown or move changes it, and
/// so does another file in its place (a link re-pointed to one of the same size and times, on a
/// file system with coarse times): the device and inode are part of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileStamp {
    #[serde(with = "path_text")]
    pub path: PathBuf,
    pub size: u64,
    pub mtime_ns: i128,
    pub ctime_ns: i128,
    /// Absent in states written before these were recorded: such a stamp never matches.
    #[serde(default)]
    pub dev: u64,
    #[serde(default)]
    pub ino: u64,
}

impl FileStamp {
    pub fn of(path: &Path, meta: &fs::Metadata) -> FileStamp {
        use std::os::unix::fs::MetadataExt;
        FileStamp {
            path: path.to_path_buf(),
            size: meta.len(),
            mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
            ctime_ns: i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec()),
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }
}

/// Where the home directory that messages shorten to `~` comes from, set once by `main` from
/// the settings; asked at the first message only (without `HOME` it is a user-database lookup,
/// which an unchanged prompt never needs).
type HomeSource = Box<dyn Fn() -> Option<PathBuf> + Send + Sync>;
static HOME_SOURCE: OnceLock<HomeSource> = OnceLock::new();
static DISPLAY_HOME: OnceLock<Option<PathBuf>> = OnceLock::new();

/// Sets where [`home_relative`] finds the home directory; the first call wins.
pub fn set_display_home(home: impl Fn() -> Option<PathBuf> + Send + Sync + 'static) {
    let _ = HOME_SOURCE.set(Box::new(home));
}

/// `~/src/app/.escrc` rather than `/home/alice/src/app/.escrc`, for messages.
pub fn home_relative(path: &Path) -> String {
    let home = DISPLAY_HOME
        .get_or_init(|| HOME_SOURCE.get().and_then(|source| source()))
        .as_deref();
    match home.and_then(|home| path.strip_prefix(home).ok()) {
        Some(rest) => format!("~/{}", rest.display()),
        None => path.display().to_string(),
    }
}

/// Paths as JSON strings: UTF-8 paths as themselves, others (rare, but legal on Unix) as
/// `b64:` + base64 of the raw bytes. Absolute paths start with `/`, so the two never collide.
pub mod path_text {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use serde::{Deserialize, Deserializer, Serializer};
    use std::ffi::OsString;
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    use std::path::{Path, PathBuf};

    pub fn to_text(path: &Path) -> String {
        match path.to_str() {
            Some(text) => text.to_string(),
            None => format!(
                "b64:{}",
                URL_SAFE_NO_PAD.encode(path.as_os_str().as_bytes())
            ),
        }
    }

    pub fn from_text(text: &str) -> Option<PathBuf> {
        match text.strip_prefix("b64:") {
            Some(encoded) => URL_SAFE_NO_PAD
                .decode(encoded)
                .ok()
                .map(|bytes| PathBuf::from(OsString::from_vec(bytes))),
            None => Some(PathBuf::from(text)),
        }
    }

    pub fn serialize<S: Serializer>(path: &Path, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&to_text(path))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<PathBuf, D::Error> {
        let text = String::deserialize(d)?;
        from_text(&text).ok_or_else(|| serde::de::Error::custom("bad path"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where times are coarse, a file put in another's place can match its size and times: the
    /// stamp still tells them apart.
    #[test]
    fn another_file_with_the_same_size_and_times_is_another_stamp() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::write(&a, "values: {A: 1}\n").unwrap();
        std::fs::write(&b, "values: {B: 1}\n").unwrap();
        let link = dir.path().join(".escrc");
        std::os::unix::fs::symlink(&a, &link).unwrap();
        let before = FileStamp::of(&link, &std::fs::metadata(&link).unwrap());
        std::fs::remove_file(&link).unwrap();
        std::os::unix::fs::symlink(&b, &link).unwrap();
        let mut after = FileStamp::of(&link, &std::fs::metadata(&link).unwrap());
        // As a file system with one-second times would show them.
        after.mtime_ns = before.mtime_ns;
        after.ctime_ns = before.ctime_ns;
        assert_eq!(after.size, before.size);
        assert_ne!(after, before);
    }
}
