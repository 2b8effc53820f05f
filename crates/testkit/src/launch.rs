//! Launches for tests, through sevkit's one launch driver: a
//! [`MachinePlan`] run through the VMM's launch typestate
//! ([`sev_vmm::launch`]) over any AMD-SP, the software firmware in this
//! process ([`in_process`]) or a firmware daemon through its socket
//! ([`through_daemon`]), on guest memory laid out as the VMM lays it out
//! ([`sev_vmm::machine::memory`]).
//!
//! * [`plan`], [`plan_with`], [`sev_guest`], [`snp_guest`]: a machine for
//!   an image the test holds (the built-in demo image, an OVMF), [`RAM`] of
//!   q35 RAM on a Genoa; [`memory`], [`in_process`], [`through_daemon`]:
//!   its guest memory and a host on either AMD-SP.
//! * [`owner_launch`]: a whole SEV / SEV-ES launch as a VMM and a guest
//!   owner perform it, the owner's check of the measurement included.
//! * [`pdh_and_chain`], [`platform_status`], [`launch_start`],
//!   [`activate`], [`launch_secret`], [`release`]: single AMD commands
//!   through the VMM's [`Host`], for tests that probe what the AMD-SP
//!   answers between (or after) the steps the driver runs in one go (a
//!   second guest's LAUNCH_START refused at a limit, an ASID still owned,
//!   LAUNCH_SECRET after LAUNCH_FINISH).
//!
//! Only for tests: a step a test relies on that fails panics, naming the
//! step; that is how a test reports it. The probes return the AMD-SP's
//! refusals as [`HostError::Firmware`] for the test to check.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sev_abi::commands::{
    ActivateBuffer, HandleBuffer, LaunchStartBuffer, PlatformStatusBuffer, SevCommand,
    TransportBuffer,
};
use sev_abi::legacy_cert::{SevCert, SEV_CERT_LEN};
use sev_abi::policy::{GuestPolicy, SnpPolicy};
use sev_abi::product::Product;
use sev_abi::session::PacketHeader;
use sev_abi::status::FirmwareStatus;
use sev_crypto::packet::{launch_measurement, seal_secret};
use sev_crypto::session::{build_launch_session, LaunchSession};
use sev_firmware::{Firmware, InProcess, SharedFirmware};
use sev_firmware_server::Client;
use sev_measure::{measure, FpuState, MeasureParams, Mode};
use sev_vmm::exits::certs::provider::CertsProvider;
use sev_vmm::host::{Host, HostError};
use sev_vmm::launch::{Launched, OwnerSession, SevSpec, SnpSpec};
use sev_vmm::machine::memory::host_area;
use sev_vmm::plan::{MachinePlan, PlannedGuest, StartedLaunch};
use sev_vmm::{GuestMemory, MemoryLayout};
use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromZeros, IntoBytes};

/// Guest RAM of a test machine: QEMU's default, 128 MiB.
pub const RAM: u64 = 128 << 20;

/// The vCPU model of a test machine.
pub const CPU_MODEL: &str = "EPYC-v4";

/// How long a daemon may take to answer one command in a test.
pub const DAEMON_TIMEOUT: Duration = Duration::from_secs(60);

/// An SEV (or, with the ES bit, SEV-ES) guest of `policy` without an owner
/// session, on the legacy KVM VM type (the VMSAs sevctl builds).
pub fn sev_guest(policy: u32) -> PlannedGuest {
    PlannedGuest::Sev(SevSpec {
        policy: GuestPolicy::from_raw(policy),
        handle: 0,
        session: None,
        legacy_vm_type: true,
    })
}

/// An SNP guest of `policy`, without ID block, host data or certificates.
pub fn snp_guest(policy: u64) -> PlannedGuest {
    PlannedGuest::Snp(
        SnpSpec {
            policy: SnpPolicy::from_raw(policy),
            gosvw: [0; 16],
            id: None,
            vcek_disabled: false,
            host_data: [0; 32],
        },
        CertsProvider::new(None),
    )
}

/// The machine of a test: `image` as the firmware, [`RAM`] of RAM,
/// `vcpus` [`CPU_MODEL`] vCPUs on a Genoa, `guest`.
///
/// # Panics
/// When q35 cannot map the image.
pub fn plan(image: &[u8], vcpus: u32, guest: PlannedGuest) -> MachinePlan {
    plan_with(image, vcpus, CPU_MODEL, guest)
}

/// [`plan`] with vCPUs of QEMU's model `cpu_model`.
///
/// # Panics
/// When q35 cannot map the image, or the model is unknown.
pub fn plan_with(image: &[u8], vcpus: u32, cpu_model: &str, guest: PlannedGuest) -> MachinePlan {
    MachinePlan::for_image(image.to_vec(), RAM, vcpus, cpu_model, Product::Genoa, guest)
        .unwrap_or_else(|e| panic!("a test machine plan: {e}"))
}

/// Guest memory for `plan` (a sparse memfd).
///
/// # Panics
/// When the memfd cannot be created.
pub fn memory(plan: &MachinePlan) -> GuestMemory {
    plan.memory()
        .unwrap_or_else(|e| panic!("test guest memory: {e}"))
}

/// Guest memory for a connection that launches nothing: [`RAM`] of q35
/// RAM, no firmware image.
///
/// # Panics
/// When the memfd cannot be created.
pub fn bare_memory() -> GuestMemory {
    MemoryLayout::q35(RAM, 0)
        .map_err(|e| e.to_string())
        .and_then(|layout| GuestMemory::new(layout).map_err(|e| e.to_string()))
        .unwrap_or_else(|e| panic!("test guest memory: {e}"))
}

/// A host whose AMD-SP is `fw`, in this process, sharing `memory`.
///
/// # Panics
/// When the memfd cannot be duplicated.
pub fn in_process(fw: &SharedFirmware, memory: GuestMemory) -> Host {
    let handle = memory
        .system_handle()
        .unwrap_or_else(|e| panic!("a second handle on guest memory: {e}"));
    Host::new(Box::new(InProcess::shared(Arc::clone(fw), handle)), memory)
}

/// [`in_process`] on a firmware of its own.
pub fn in_process_owned(fw: Firmware, memory: GuestMemory) -> Host {
    in_process(&Arc::new(Mutex::new(fw)), memory)
}

/// A host whose AMD-SP is the daemon at `socket` (guest memory passed as
/// the memfd when connecting).
///
/// # Panics
/// When the daemon cannot be reached.
pub fn through_daemon(socket: &Path, memory: GuestMemory) -> Host {
    let client = Client::connect_with_memory(socket, memory.system(), Some(DAEMON_TIMEOUT))
        .unwrap_or_else(|e| panic!("connecting to {}: {e}", socket.display()));
    Host::new(Box::new(client), memory)
}

/// PLATFORM_STATUS.
pub fn platform_status(host: &mut Host) -> Result<PlatformStatusBuffer, HostError> {
    let mut b = PlatformStatusBuffer::new_zeroed();
    host.run(SevCommand::PlatformStatus.id(), &mut b)?;
    Ok(b)
}

/// The platform's PDH and the chain `[PEK, OCA, CEK]` (PDH_CERT_EXPORT, as
/// the VMM issues it for `query-sev-capabilities`). The platform must be
/// up ([`Host::bring_up`]).
///
/// # Panics
/// When the AMD-SP returns a certificate that does not parse.
pub fn pdh_and_chain(host: &mut Host) -> Result<(SevCert, [SevCert; 3]), HostError> {
    let certs = host.platform_certificates()?;
    let cert = |bytes: &[u8]| {
        SevCert::from_bytes(bytes)
            .unwrap_or_else(|e| panic!("the AMD-SP returned a bad certificate: {e}"))
    };
    let chain = &certs.chain;
    Ok((
        cert(&certs.pdh),
        [
            cert(&chain[..SEV_CERT_LEN]),
            cert(&chain[SEV_CERT_LEN..2 * SEV_CERT_LEN]),
            cert(&chain[2 * SEV_CERT_LEN..]),
        ],
    ))
}

/// LAUNCH_START of a new guest of `policy` without an owner session;
/// returns its handle.
pub fn launch_start(host: &mut Host, policy: u32) -> Result<u32, HostError> {
    let mut b = LaunchStartBuffer::new_zeroed();
    b.policy = GuestPolicy::from_raw(policy);
    host.run(SevCommand::LaunchStart.id(), &mut b)?;
    Ok(b.handle.get())
}

/// ACTIVATE of guest `handle` on `asid`.
pub fn activate(host: &mut Host, handle: u32, asid: u32) -> Result<(), HostError> {
    let mut b = ActivateBuffer {
        handle: U32::new(handle),
        asid: U32::new(asid),
    };
    host.run(SevCommand::Activate.id(), &mut b)
}

/// LAUNCH_SECRET of an owner's packet (`header`, `payload`) into guest
/// `handle` at `gpa`, in whatever state the guest is (the VMM's launch
/// offers it only in the launch-secret window).
pub fn launch_secret(
    host: &mut Host,
    handle: u32,
    header: &PacketHeader,
    payload: &[u8],
    gpa: u64,
) -> Result<(), HostError> {
    let mut t = TransportBuffer::new_zeroed();
    t.handle = U32::new(handle);
    t.hdr_paddr = U64::new(host.put(host_area::SECRET_HEADER, header.as_bytes())?);
    t.hdr_len = U32::new(header.as_bytes().len() as u32);
    t.guest_paddr = U64::new(gpa);
    t.guest_len = U32::new(payload.len() as u32);
    t.trans_paddr = U64::new(host.put(host_area::SECRET_PAYLOAD, payload)?);
    t.trans_len = U32::new(payload.len() as u32);
    host.run(SevCommand::LaunchSecret.id(), &mut t)
}

/// The guest's end, as KVM issues it: DEACTIVATE (an inactive guest is
/// fine) then DECOMMISSION.
pub fn release(host: &mut Host, handle: u32) -> Result<(), HostError> {
    let mut b = HandleBuffer {
        handle: U32::new(handle),
    };
    match host.status(SevCommand::Deactivate.id(), &mut b)? {
        FirmwareStatus::SUCCESS | FirmwareStatus::INACTIVE => {}
        status => {
            return Err(HostError::Firmware {
                command: "DEACTIVATE",
                status,
            })
        }
    }
    host.run(SevCommand::Decommission.id(), &mut b)
}

/// The guest owner's launch session for a platform's `pdh`, from a seeded
/// generator (the same session every run).
///
/// # Panics
/// When the PDH has no ECDH key.
pub fn owner_session(pdh: &SevCert, policy: u32, seed: [u8; 32]) -> LaunchSession {
    let key = pdh
        .ecc_key()
        .unwrap_or_else(|| panic!("the PDH has no ECDH key"));
    build_launch_session(
        key,
        GuestPolicy::from_raw(policy),
        &mut ChaCha20Rng::from_seed(seed),
    )
    .unwrap_or_else(|e| panic!("the owner's launch session: {e}"))
}

/// What an owner-checked launch produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// The guest's handle.
    pub handle: u32,
    /// LAUNCH_MEASURE's measurement.
    pub measurement: [u8; 32],
    /// LAUNCH_MEASURE's nonce.
    pub mnonce: [u8; 16],
}

/// A full SEV / SEV-ES launch as a VMM and a guest owner perform it. The
/// owner builds a session for the platform's `pdh` from `seed`; the VMM
/// launches `image` with it on `host` as `vcpus` [`CPU_MODEL`] vCPUs of
/// the legacy VM type (LAUNCH_START, ACTIVATE, LAUNCH_UPDATE_DATA, for
/// SEV-ES the VMSAs, LAUNCH_MEASURE); the owner checks the measurement
/// against its own prediction (sev-measure's launch digest, HMAC'd under
/// the TIK: asserted) and seals `secret` for it; the VMM injects it into
/// the image's secret area (LAUNCH_SECRET) and finishes (LAUNCH_FINISH).
/// The launched guest comes back with its host, for the next launch.
///
/// # Panics
/// When a step fails or the measurement is not the owner's.
pub fn owner_launch(
    host: Host,
    image: &[u8],
    vcpus: u32,
    policy: u32,
    pdh: &SevCert,
    seed: [u8; 32],
    secret: &[u8],
) -> (Launched, Outcome) {
    let session = owner_session(pdh, policy, seed);
    let mut plan = plan(image, vcpus, sev_guest(policy));
    let vcpu_sig = plan.spec.vcpu_sig;
    plan.guest = PlannedGuest::Sev(SevSpec {
        policy: GuestPolicy::from_raw(policy),
        handle: 0,
        session: Some(OwnerSession {
            dh_cert: session.godh_cert.as_bytes().to_vec(),
            session: session.session.as_bytes().to_vec(),
        }),
        legacy_vm_type: true,
    });
    let StartedLaunch::Sev(launch) = plan
        .start(host)
        .unwrap_or_else(|e| panic!("launch start (policy {policy:#x}): {e}"))
    else {
        panic!("an SEV plan started another launch")
    };
    let handle = launch.handle().handle;
    let mut measured = launch
        .measure()
        .unwrap_or_else(|e| panic!("LAUNCH_MEASURE of guest {handle}: {e}"));
    let blob = measured.measure_blob();
    let (measurement, mnonce) = (blob.measurement, blob.mnonce);

    // The owner's side: the predicted digest, HMAC'd under TIK.
    let es = GuestPolicy::from_raw(policy).es();
    let mut params = MeasureParams::new(if es { Mode::SevEs } else { Mode::Sev }, image);
    params.vcpus = vcpus;
    params.vcpu_sig = vcpu_sig;
    params.fpu = FpuState::Legacy;
    let predicted = measure(&params).unwrap_or_else(|e| panic!("the owner's prediction: {e}"));
    let digest = *predicted
        .digest
        .sev()
        .expect("an SEV / SEV-ES prediction is an SEV launch digest");
    let platform = measured.platform();
    let expected = launch_measurement(
        &session.tik,
        platform.api_major,
        platform.api_minor,
        platform.build,
        GuestPolicy::from_raw(policy),
        &digest,
        &mnonce,
    );
    assert_eq!(measurement, expected, "measurement of guest {handle}");

    let iv = [0x42u8; 16];
    let (ct, mac) = seal_secret(&session.tek, &session.tik, &iv, &measurement, secret);
    measured
        .inject_secret(PacketHeader::new(0, iv, mac).as_bytes(), &ct, None)
        .unwrap_or_else(|e| panic!("LAUNCH_SECRET into guest {handle}: {e}"));
    let launched = measured
        .finish()
        .unwrap_or_else(|e| panic!("LAUNCH_FINISH of guest {handle}: {e}"));
    (
        launched,
        Outcome {
            handle,
            measurement,
            mnonce,
        },
    )
}
