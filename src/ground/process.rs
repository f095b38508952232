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
