//! The [`Vm`] behind the QMP server: each command mapped to the VM's
//! operation, with QEMU's answers and error texts.
//!
//! HMP (`human-monitor-command`) understands `xp` (through the debug API:
//! private pages via DBG_DECRYPT, refused when the policy forbids
//! debugging) and `info sev`; `x` needs a vCPU's CR3, which a VMM that runs
//! no vCPUs does not have, so it says so. Output lines end in `\r\n`, as
//! QEMU's monitor writes them. `x-sevkit-read-memory` ([`read_memory`]) is
//! `xp`'s binary form: the same debug API, the bytes instead of a dump.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;

use crate::debug::{Access, EncryptedDebug, MemoryDebugOps as _};
use crate::guest::FirmwareGuest;
use crate::guest::GuestReport;
use crate::monitor::hmp::hmp_xp;
use crate::monitor::qmp::{
    QmpBackend, QmpError, SevAttestationReport, SevCapability, SevInfo, SevLaunchMeasureInfo,
    StatusInfo, MAX_READ_MEMORY,
};
use crate::vm::{RunState, Vm, VmError};

/// A VM shared between the QMP server and its owner.
pub type SharedVm = Arc<Mutex<Vm>>;

/// The QMP backend of one VM.
#[derive(Debug, Clone)]
pub struct VmBackend {
    vm: SharedVm,
}

impl VmBackend {
    /// Serves `vm`.
    pub fn new(vm: SharedVm) -> Self {
        Self { vm }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Vm) -> Result<T, VmError>) -> Result<T, QmpError> {
        let mut vm = self
            .vm
            .lock()
            .map_err(|_| QmpError::generic("the VM is unusable (a command panicked)"))?;
        f(&mut vm).map_err(|e| QmpError::generic(e.desc))
    }
}

fn on_off(on: bool) -> &'static str {
    if on {
        "on"
    } else {
        "off"
    }
}

/// HMP's `info sev`.
fn info_sev(vm: &Vm) -> String {
    let status = vm.status();
    let p = status.platform;
    let mut out = String::new();
    let kind = if status.guest.is_snp() {
        "SEV-SNP"
    } else {
        "SEV"
    };
    let _ = writeln!(out, "SEV type: {kind}");
    let _ = writeln!(out, "state: {}", status.state.as_str());
    let _ = writeln!(out, "build: {}", p.build);
    let _ = writeln!(out, "api version: {}.{}", p.api_major, p.api_minor);
    match status.guest {
        FirmwareGuest::Legacy { handle, policy, .. } => {
            let _ = writeln!(out, "handle: {handle}");
            let _ = writeln!(out, "debug: {}", on_off(!policy.nodbg()));
            let _ = writeln!(out, "key-sharing: {}", on_off(!policy.noks()));
        }
        FirmwareGuest::Snp { policy, .. } => {
            let _ = writeln!(out, "debug: {}", on_off(policy.debug()));
            let _ = writeln!(out, "SMT allowed: {}", on_off(policy.smt()));
        }
    }
    out
}

/// Runs one HMP command line on `vm`.
pub fn hmp(vm: &mut Vm, command_line: &str) -> Result<String, VmError> {
    let line = command_line.trim();
    let (command, args) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
    let out = match command {
        "xp" => {
            let guest = vm.guest();
            let host = vm.host()?;
            let (sp, memory) = host.parts();
            let mut ops = EncryptedDebug::new(sp, memory, guest);
            match hmp_xp(&mut ops, args) {
                Ok(text) => text,
                Err(e) => format!("{e}\n"),
            }
        }
        "x" => "x needs a vCPU's page tables: sevkit's VMM runs no vCPUs; use xp with a \
                guest physical address\n"
            .to_owned(),
        "info" if args.trim() == "sev" => info_sev(vm),
        "" => String::new(),
        other => format!("unknown command: '{}'\n", sev_os::excerpt(other)),
    };
    Ok(out.replace('\n', "\r\n"))
}

/// Reads `size` bytes of `vm`'s guest physical memory at `gpa` through the
/// debug API, each page as its state says (private pages through
/// DBG_DECRYPT / SNP_DBG_DECRYPT, shared pages as they are), as HMP `xp`
/// reads them.
///
/// # Errors
/// `size` over [`MAX_READ_MEMORY`], a VM whose launch failed, or the debug
/// API's refusal in its words: the policy bit that forbids debugging and
/// the remedy, or the range that is not guest memory.
pub fn read_memory(vm: &mut Vm, gpa: u64, size: u64) -> Result<Vec<u8>, VmError> {
    if size > MAX_READ_MEMORY {
        return Err(VmError {
            desc: format!(
                "a memory read of {size} bytes exceeds the limit of {MAX_READ_MEMORY} bytes: \
                 read larger ranges in parts"
            ),
        });
    }
    let guest = vm.guest();
    let host = vm.host()?;
    let (sp, memory) = host.parts();
    let mut ops = EncryptedDebug::new(sp, memory, guest);
    let mut data = vec![0u8; size as usize];
    ops.read(gpa, &mut data, Access::ByPageState)
        .map_err(|e| VmError {
            desc: e.to_string(),
        })?;
    Ok(data)
}

impl QmpBackend for VmBackend {
    fn query_status(&mut self) -> StatusInfo {
        let state = self
            .vm
            .lock()
            .map_or(RunState::Shutdown, |vm| vm.run_state());
        StatusInfo::new(state)
    }

    fn query_sev(&mut self) -> Result<SevInfo, QmpError> {
        self.with(|vm| {
            let s = vm.status();
            let p = s.platform;
            let state = s.state;
            Ok(match s.guest {
                FirmwareGuest::Legacy { handle, policy, .. } => SevInfo::sev(
                    p.api_major,
                    p.api_minor,
                    p.build,
                    state,
                    policy.raw(),
                    handle,
                ),
                FirmwareGuest::Snp { policy, .. } => {
                    SevInfo::sev_snp(p.api_major, p.api_minor, p.build, state, policy.raw())
                }
            })
        })
    }

    fn query_sev_launch_measure(&mut self) -> Result<SevLaunchMeasureInfo, QmpError> {
        self.with(|vm| vm.launch_measure().map(SevLaunchMeasureInfo::new))
    }

    fn query_sev_capabilities(&mut self) -> Result<SevCapability, QmpError> {
        self.with(|vm| {
            let c = vm.capabilities()?;
            Ok(SevCapability::new(
                B64.encode(&c.certificates.pdh),
                B64.encode(&c.certificates.chain),
                B64.encode(&c.certificates.chip_id),
                i64::from(c.cbitpos),
                i64::from(c.reduced_phys_bits),
            ))
        })
    }

    fn sev_inject_launch_secret(
        &mut self,
        packet_header: &str,
        secret: &str,
        gpa: Option<u64>,
    ) -> Result<(), QmpError> {
        self.with(|vm| vm.inject_launch_secret(packet_header, secret, gpa))
    }

    fn query_sev_attestation_report(
        &mut self,
        mnonce: &str,
    ) -> Result<SevAttestationReport, QmpError> {
        self.with(|vm| vm.attestation_report(mnonce).map(SevAttestationReport::new))
    }

    fn cont(&mut self) -> Result<(), QmpError> {
        self.with(Vm::cont)
    }

    fn stop(&mut self) -> Result<(), QmpError> {
        self.with(|vm| {
            vm.stop();
            Ok(())
        })
    }

    fn quit(&mut self) {
        if let Ok(mut vm) = self.vm.lock() {
            vm.quit();
        }
    }

    fn human_monitor_command(
        &mut self,
        command_line: &str,
        _cpu_index: Option<i64>,
    ) -> Result<String, QmpError> {
        self.with(|vm| hmp(vm, command_line))
    }

    fn query_sev_launch_log(&mut self) -> Result<serde_json::Value, QmpError> {
        self.with(|vm| {
            let log = vm.launch_log()?;
            serde_json::to_value(&log).map_err(|e| VmError {
                desc: e.to_string(),
            })
        })
    }

    fn guest_report(
        &mut self,
        report_data: Option<&str>,
        certs_pages: Option<u64>,
    ) -> Result<GuestReport, QmpError> {
        let mut data = [0u8; 64];
        if let Some(text) = report_data {
            let bytes = B64
                .decode(text.trim())
                .map_err(|_| QmpError::generic("report-data is not base64"))?;
            let n = bytes.len().min(64);
            data[..n].copy_from_slice(&bytes[..n]);
        }
        self.with(|vm| vm.guest_report(data, certs_pages))
    }

    fn read_memory(&mut self, gpa: u64, size: u64) -> Result<Vec<u8>, QmpError> {
        self.with(|vm| read_memory(vm, gpa, size))
    }
}
