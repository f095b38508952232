//! What esc-hook asks of the kernel for its own process.

/// Keeps the process out of core dumps and out of reach of other processes of the user
/// (ptrace, `/proc/PID/mem` and `environ` become root's): it holds the Pulumi token and opened
/// credentials. The kernel resets this at `execve`, so a command `exec` starts is as dumpable
/// as ever. (Linux only; elsewhere nothing changes.)
pub fn keep_out_of_core_dumps() {
    #[cfg(target_os = "linux")]
    // SAFETY: a plain prctl on this process, no pointers involved.
    unsafe {
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #[test]
    fn the_process_is_not_dumpable_after() {
        super::keep_out_of_core_dumps();
        // SAFETY: reads this process's flag.
        assert_eq!(unsafe { libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0) }, 0);
    }
}

/// The name of a process's program (`zsh`, `bash`, `fish`): what a shell really is, whatever
/// the environment says. Linux (`/proc/PID/comm`) and macOS; none elsewhere.
pub fn program_name(pid: libc::pid_t) -> Option<String> {
    #[cfg(target_os = "linux")]
    {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
        Some(comm.trim_end().to_string())
    }
    #[cfg(target_os = "macos")]
    {
        let mut buffer = [0u8; 256];
        // SAFETY: the buffer and its length are valid; proc_name writes at most that much.
        let len = unsafe { libc::proc_name(pid, buffer.as_mut_ptr().cast(), buffer.len() as u32) };
        (len > 0).then(|| String::from_utf8_lossy(&buffer[..len as usize]).into_owned())
    }
    #[cfg(not(any(target_os = "linux", target_os = "macos")))]
    {
        let _ = pid;
        None
    }
}

/// The program name of this process's parent (see [`program_name`]).
pub fn parent_name() -> Option<String> {
    // SAFETY: getppid has no preconditions and cannot fail.
    program_name(unsafe { libc::getppid() })
}
