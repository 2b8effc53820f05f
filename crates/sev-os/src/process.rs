//! Process-wide protections for processes that hold private keys.

use rustix::process::{DumpableBehavior, Resource, Rlimit};

use crate::OsError;

/// Keeps the process's memory out of core files and away from same-user
/// debuggers: `RLIMIT_CORE` 0 and `PR_SET_DUMPABLE` 0 (which also makes
/// `/proc/PID/mem` and `ptrace` root-only). Called first thing by every
/// sevkit command that holds private keys (the software AMD-SP's CUK, PEK,
/// PDH, ARK/ASK; guests' TEK, TIK and VMPCKs).
pub fn disable_core_dumps() -> Result<(), OsError> {
    let here = || std::path::PathBuf::from("/proc/self");
    rustix::process::setrlimit(
        Resource::Core,
        Rlimit {
            current: Some(0),
            maximum: Some(0),
        },
    )
    .map_err(|e| OsError::errno(here(), "setrlimit(RLIMIT_CORE, 0)", e))?;
    rustix::process::set_dumpable_behavior(DumpableBehavior::NotDumpable)
        .map_err(|e| OsError::errno(here(), "prctl(PR_SET_DUMPABLE, 0)", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs in a child process (the test harness's own process must stay
    /// dumpable for other tests): the child disables dumps and reports what
    /// the kernel says.
    #[test]
    fn dumps_are_off_in_the_calling_process() {
        if std::env::var_os("SEV_OS_DUMPABLE_CHILD").is_some() {
            disable_core_dumps().unwrap();
            let dumpable = rustix::process::dumpable_behavior().unwrap();
            let core = rustix::process::getrlimit(Resource::Core);
            println!(
                "dumpable={} core={:?}/{:?}",
                dumpable == DumpableBehavior::NotDumpable,
                core.current,
                core.maximum
            );
            return;
        }
        let exe = std::env::current_exe().unwrap();
        let out = std::process::Command::new(exe)
            .args([
                "--exact",
                "process::tests::dumps_are_off_in_the_calling_process",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("SEV_OS_DUMPABLE_CHILD", "1")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{stdout}");
        assert!(
            stdout.contains("dumpable=true core=Some(0)/Some(0)"),
            "{stdout}"
        );
        // The parent is untouched.
        assert_eq!(
            rustix::process::dumpable_behavior().unwrap(),
            DumpableBehavior::Dumpable
        );
    }
}
