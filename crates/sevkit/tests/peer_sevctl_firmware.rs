//! Full legacy launches on the software AMD-SP with sevctl (crates.io
//! 0.6.2) as the guest owner: issue #4's end-to-end proof.
//!
//! For SEV (policy 0x0) and SEV-ES (policy 0x4, four EPYC-Milan vCPUs), both
//! with NODBG off so DBG_DECRYPT can show what LAUNCH_SECRET wrote, through
//! the in-process firmware and through `sevkit firmware serve`, with the
//! launch session made by `sevctl session` and by `sevkit session` for the
//! PDH that `sevkit firmware export` wrote:
//!
//! 1. The VMM's launch (`sev_vmm::plan`, as `sevkit launch` runs it):
//!    LAUNCH_START with the tool's GODH and session blob, ACTIVATE,
//!    LAUNCH_UPDATE_DATA over `OVMF.amdsev.fd`, LAUNCH_UPDATE_VMSA per vCPU,
//!    LAUNCH_MEASURE. The VMSAs are the VMM's for the VM type: the legacy
//!    type's (pre-KVM_SEV_INIT2) in the sevctl launches, whose
//!    sev-measure counterparts are checked byte for byte against `sevctl
//!    vmsa build`, KVM_SEV_INIT2's in the sevkit launches; the owners'
//!    tools accepting the blob shows the VMM measured those.
//! 2. The blob verifies with `sevctl measurement build` (which does not
//!    compare: it prints the blob it computes, and that must be the
//!    firmware's) and with `sevkit measure sev-launch --launch-measure-blob`
//!    (exit 0); with one bit flipped in the MAC (or, in the sevctl launches,
//!    in the nonce) sevctl computes another blob and sevkit exits 1.
//! 3. `sevkit secret build`, then `sevctl secret build`, for that blob:
//!    LAUNCH_SECRET at OVMF's SEV secret area (from the image's footer
//!    table) succeeds, and DBG_DECRYPT of the area shows OVMF's secret table
//!    (GUID 1e74f542-…) with the owner's secret. LAUNCH_FINISH succeeds.
//! 4. Refusals, in the sevctl launches (each kind, each firmware path): a
//!    session blob with a flipped byte (in the wrapped keys, in the policy
//!    MAC) and the session of another policy at LAUNCH_START; a secret whose
//!    header MAC or payload was flipped, or that sevctl built for a tampered
//!    measurement, at LAUNCH_SECRET: all BAD_MEASUREMENT (0x0b).

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use base64::Engine as _;
use sev_abi::commands::SevCommand;
use sev_abi::legacy_cert::SevCert;
use sev_abi::policy::GuestPolicy;
use sev_abi::session::{PacketHeader, SessionBlob};
use sev_abi::status::FirmwareStatus;
use sev_firmware::{Firmware, FirmwareConfig};
use sev_measure::ovmf::TableArea;
use sev_measure::{cpu_signature, measure, vcpu_type, FpuState, MeasureParams, Mode, OvmfImage};
use sev_owner::secret::{SecretTable, SECRET_TABLE_GUID};
use sev_owner::session::{decode_godh, decode_session};
use sev_vmm::debug::{Access, EncryptedDebug, MemoryDebugOps};
use sev_vmm::host::{Host, HostError, PlatformStatus};
use sev_vmm::launch::{LaunchError, Measured, OwnerSession, SevLaunch, SevSpec, Updating};
use sev_vmm::plan::{MachineError, MachinePlan, PlannedGuest, StartedLaunch};
use sev_vmm::GuestMemory;
use sevkit_testkit::launch;
use zerocopy::IntoBytes;

mod common;

use common::{chip_file, ok, run, s, Daemon, CHIP_FILE, SEVKIT};

const B64: base64::engine::general_purpose::GeneralPurpose =
    base64::engine::general_purpose::STANDARD;
/// The secret's GUID (sevctl's test GUID).
const SECRET_GUID: &str = "736869e5-84f0-4973-92ec-06879ce3da0b";
/// OVMF's secret table GUID.
const TABLE_GUID: &str = "1e74f542-71dd-4d66-963e-ef4287ff173b";
const ES_VCPUS: u32 = 4;
const VCPU_TYPE: &str = "EPYC-Milan";
/// Its family, model and stepping (for `sevctl vmsa build`).
const VCPU_FMS: (u32, u32, u32) = (25, 1, 1);

/// The launches: SEV and SEV-ES, debugging allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Sev,
    SevEs,
}

impl Kind {
    fn policy(self) -> u32 {
        match self {
            Kind::Sev => 0x0,
            Kind::SevEs => 0x4,
        }
    }
}

/// Who made the launch session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tool {
    Sevctl,
    Sevkit,
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// SEV-ES VMSAs for [`ES_VCPUS`] vCPUs of type [`VCPU_TYPE`] under QEMU.
struct EsVmsas {
    /// vCPU 0's and vCPU 1's page as files, for `sevctl measurement build`.
    files: [PathBuf; 2],
    /// The pre-KVM_SEV_INIT2 x87/SSE reset state (`--legacy-fpu`).
    legacy_fpu: bool,
}

/// The image, what the owner predicts for it, and where its secret goes.
struct Fixture {
    ovmf_path: PathBuf,
    ovmf: Vec<u8>,
    secret_area: TableArea,
    /// KVM_SEV_INIT2 VMSAs (sev-measure's default), and the legacy ones,
    /// which are exactly what `sevctl vmsa build` writes.
    init2: EsVmsas,
    legacy: EsVmsas,
    _dir: tempfile::TempDir,
}

impl Fixture {
    fn load() -> Self {
        let dir = env!("SEVKIT_VECTORS_DIR");
        assert!(!dir.is_empty(), "shared/vectors not found at build time");
        let ovmf_path = Path::new(dir).join("firmware/OVMF.amdsev.fd");
        let ovmf = std::fs::read(&ovmf_path).unwrap();
        let secret_area = OvmfImage::parse(&ovmf)
            .unwrap()
            .secret_area()
            .unwrap()
            .expect("OVMF.amdsev.fd has a SEV secret block");
        let size = u64::from(secret_area.size);
        let base = u64::from(secret_area.base);
        assert!(size > 0 && size.is_multiple_of(16) && base.is_multiple_of(16));
        // The area is guest RAM of the launches' machine, below the image.
        let layout = plan(&ovmf, 0, Tool::Sevkit, None).layout;
        assert!(layout.is_guest(base, size));
        assert!(base + size <= layout.firmware_gpa.unwrap());

        let tmp = tempfile::tempdir().unwrap();
        let vmsas = |fpu: FpuState| -> Vec<Vec<u8>> {
            let mut params = MeasureParams::new(Mode::SevEs, &ovmf);
            params.vcpus = ES_VCPUS;
            params.vcpu_sig = vcpu_type(VCPU_TYPE).unwrap().signature();
            params.fpu = fpu;
            let es = measure(&params).unwrap();
            let pages: Vec<Vec<u8>> = (0..ES_VCPUS)
                .map(|i| es.vmsa_page(i).unwrap().to_vec())
                .collect();
            assert_eq!(pages[1], pages[ES_VCPUS as usize - 1], "APs share a VMSA");
            pages
        };
        let pages = vmsas(FpuState::Init2);
        let files = [0, 1].map(|i| {
            let path = tmp.path().join(format!("init2_vmsa{i}.bin"));
            std::fs::write(&path, &pages[i]).unwrap();
            path
        });
        let init2 = EsVmsas {
            files,
            legacy_fpu: false,
        };
        // sevctl's own VMSAs for the same vCPUs are sev-measure's legacy ones.
        let (family, model, stepping) = VCPU_FMS;
        assert_eq!(
            cpu_signature(family, model, stepping),
            vcpu_type(VCPU_TYPE).unwrap().signature()
        );
        let pages = vmsas(FpuState::Legacy);
        let files = [0u32, 1].map(|cpu| {
            let path = tmp.path().join(format!("sevctl_vmsa{cpu}.bin"));
            ok(
                "sevctl",
                &[
                    "vmsa",
                    "build",
                    s(&path),
                    "--cpu",
                    &cpu.to_string(),
                    "--family",
                    &family.to_string(),
                    "--model",
                    &model.to_string(),
                    "--stepping",
                    &stepping.to_string(),
                    "--firmware",
                    s(&ovmf_path),
                    "--userspace",
                    "qemu",
                ],
                tmp.path(),
            );
            assert!(
                std::fs::read(&path).unwrap() == pages[cpu as usize],
                "sevctl vmsa build --cpu {cpu} differs from sev-measure's legacy-FPU VMSA"
            );
            path
        });
        let legacy = EsVmsas {
            files,
            legacy_fpu: true,
        };
        Self {
            ovmf_path,
            ovmf,
            secret_area,
            init2,
            legacy,
            _dir: tmp,
        }
    }

    /// The VMSAs of a SEV-ES launch whose owner used `tool`: sevctl's for
    /// sevctl, sev-measure's current ones for sevkit.
    fn vmsas(&self, tool: Tool) -> &EsVmsas {
        match tool {
            Tool::Sevctl => &self.legacy,
            Tool::Sevkit => &self.init2,
        }
    }
}

/// The machine of a launch: `OVMF.amdsev.fd`, [`ES_VCPUS`] vCPUs of
/// [`VCPU_TYPE`], an `sev-guest` of `policy` with the owner's session; the
/// legacy KVM VM type for sevctl's owners (whose VMSAs are the pre-KVM_SEV_INIT2
/// ones), KVM_SEV_INIT2's for sevkit's.
fn plan(
    ovmf: &[u8],
    policy: u32,
    tool: Tool,
    session: Option<(&SevCert, &SessionBlob)>,
) -> MachinePlan {
    launch::plan_with(
        ovmf,
        ES_VCPUS,
        VCPU_TYPE,
        PlannedGuest::Sev(SevSpec {
            policy: GuestPolicy::from_raw(policy),
            handle: 0,
            session: session.map(|(godh, blob)| OwnerSession {
                dh_cert: godh.as_bytes().to_vec(),
                session: blob.as_bytes().to_vec(),
            }),
            legacy_vm_type: tool == Tool::Sevctl,
        }),
    )
}

/// Starts `plan`'s launch (LAUNCH_START with the session, ACTIVATE,
/// LAUNCH_UPDATE_DATA of the image) on a host `connect` makes for its
/// memory.
fn start(
    connect: &mut dyn FnMut(GuestMemory) -> Host,
    plan: MachinePlan,
) -> Result<SevLaunch<Updating>, MachineError> {
    let host = connect(launch::memory(&plan));
    match plan.start(host)? {
        StartedLaunch::Sev(launch) => Ok(launch),
        StartedLaunch::Snp(..) => panic!("an SEV plan started an SNP launch"),
    }
}

/// A state directory with a platform (`sevkit firmware init`) and its
/// exported certificates (`sevkit firmware export`); returns it and the
/// exported PDH certificate file.
fn platform() -> (tempfile::TempDir, PathBuf) {
    let state = tempfile::tempdir().unwrap();
    std::fs::copy(chip_file(), state.path().join(CHIP_FILE)).unwrap();
    let st = s(state.path());
    ok(SEVKIT, &["firmware", "init", "--state", st], state.path());
    let certs = state.path().join("certs");
    ok(
        SEVKIT,
        &["firmware", "export", "--state", st, "--out", s(&certs)],
        state.path(),
    );
    let pdh = certs.join("pdh.cert");
    assert!(pdh.is_file());
    (state, pdh)
}

/// The files of one launch session.
struct Owner {
    godh: SevCert,
    session: SessionBlob,
    tek: PathBuf,
    tik: PathBuf,
}

/// `sevctl session --name X PDH POLICY` (in `dir`, where it writes) or
/// `sevkit session --pdh PDH --policy POLICY --name X --out DIR`.
fn owner_session(tool: Tool, pdh: &Path, policy: u32, dir: &Path) -> Owner {
    match tool {
        Tool::Sevctl => ok(
            "sevctl",
            &["session", "--name", "X", s(pdh), &policy.to_string()],
            dir,
        ),
        Tool::Sevkit => ok(
            SEVKIT,
            &[
                "session",
                "--pdh",
                s(pdh),
                "--policy",
                &format!("{policy:#x}"),
                "--name",
                "X",
                "--out",
                s(dir),
            ],
            dir,
        ),
    };
    let read = |suffix: &str| std::fs::read(dir.join(format!("X_{suffix}"))).unwrap();
    Owner {
        godh: decode_godh(&read("godh.b64")).unwrap(),
        session: decode_session(&read("session.b64")).unwrap(),
        tek: dir.join("X_tek.bin"),
        tik: dir.join("X_tik.bin"),
    }
}

/// The AMD-SP's status in a refusal, wherever the VMM reports it.
trait Refusal: std::fmt::Debug {
    fn firmware_status(&self) -> Option<FirmwareStatus>;
}

impl Refusal for HostError {
    fn firmware_status(&self) -> Option<FirmwareStatus> {
        match self {
            HostError::Firmware { status, .. } => Some(*status),
            _ => None,
        }
    }
}

impl Refusal for LaunchError {
    fn firmware_status(&self) -> Option<FirmwareStatus> {
        match self {
            LaunchError::Host(e) => e.firmware_status(),
            _ => None,
        }
    }
}

impl Refusal for MachineError {
    fn firmware_status(&self) -> Option<FirmwareStatus> {
        match self {
            MachineError::Launch(e) => e.firmware_status(),
            _ => None,
        }
    }
}

/// Asserts that a launch step was refused with `status`.
fn refused<T: std::fmt::Debug, E: Refusal>(r: Result<T, E>, status: FirmwareStatus, what: &str) {
    match r {
        Err(e) if e.firmware_status().is_some() => {
            let got = e.firmware_status().unwrap();
            assert_eq!(got, status, "{what}: {got:?}");
        }
        other => panic!("{what}: expected {status:?}, got {other:?}"),
    }
}

/// The two owner tools' verdicts on a LAUNCH_MEASURE blob: sevctl's
/// computed blob and sevkit's exit code.
fn check_blob(
    fx: &Fixture,
    kind: Kind,
    vmsas: &EsVmsas,
    tik: &Path,
    st: PlatformStatus,
    blob: &[u8; 48],
    dir: &Path,
) -> (String, Option<i32>, String) {
    let b64 = B64.encode(blob);
    let (major, minor, build) = (
        st.api_major.to_string(),
        st.api_minor.to_string(),
        st.build.to_string(),
    );
    let policy = format!("{:#x}", kind.policy());
    let vcpus = ES_VCPUS.to_string();
    let mut theirs = vec![
        "measurement",
        "build",
        "--api-major",
        &major,
        "--api-minor",
        &minor,
        "--build-id",
        &build,
        "--policy",
        &policy,
        "--tik",
        s(tik),
        "--launch-measure-blob",
        &b64,
        "--firmware",
        s(&fx.ovmf_path),
    ];
    let mut ours = vec![
        "measure",
        "sev-launch",
        "--tik",
        s(tik),
        "--api-major",
        &major,
        "--api-minor",
        &minor,
        "--build",
        &build,
        "--policy",
        &policy,
        "--ovmf",
        s(&fx.ovmf_path),
        "--launch-measure-blob",
        &b64,
    ];
    if kind == Kind::SevEs {
        theirs.extend([
            "--num-cpus",
            &vcpus,
            "--vmsa-cpu0",
            s(&vmsas.files[0]),
            "--vmsa-cpu1",
            s(&vmsas.files[1]),
        ]);
        ours.extend(["--vcpus", &vcpus, "--vcpu-type", VCPU_TYPE]);
        if vmsas.legacy_fpu {
            ours.push("--legacy-fpu");
        }
    }
    let sevctl = stdout(&ok("sevctl", &theirs, dir));
    let sevkit = run(SEVKIT, &ours, dir);
    (sevctl, sevkit.status.code(), stdout(&sevkit))
}

/// Builds a secret packet for `blob` with `tool`'s `secret build`.
fn secret_build(
    tool: Tool,
    owner: &Owner,
    blob: &[u8; 48],
    secret: &Path,
    dir: &Path,
    tag: &str,
) -> (PacketHeader, Vec<u8>) {
    let header = dir.join(format!("{tag}_header.bin"));
    let payload = dir.join(format!("{tag}_payload.bin"));
    let b64 = B64.encode(blob);
    let spec = format!("{SECRET_GUID}:{}", s(secret));
    let mut args = vec![
        "secret",
        "build",
        "--tik",
        s(&owner.tik),
        "--tek",
        s(&owner.tek),
        "--launch-measure-blob",
        &b64,
        "--secret",
        &spec,
    ];
    match tool {
        Tool::Sevctl => {
            args.extend([s(&header), s(&payload)]);
            ok("sevctl", &args, dir);
        }
        Tool::Sevkit => {
            args.extend(["--header", s(&header), "--payload", s(&payload)]);
            ok(SEVKIT, &args, dir);
        }
    }
    let header = PacketHeader::from_bytes(&std::fs::read(header).unwrap()).unwrap();
    (header, std::fs::read(payload).unwrap())
}

/// DBG_DECRYPT of OVMF's secret area, through the VMM's debug API; returns
/// the plaintext.
fn decrypt_secret_area(launch: &mut SevLaunch<Measured>, area: TableArea) -> Vec<u8> {
    let guest = launch.guest();
    let (sp, memory) = launch.host().parts();
    let mut plain = vec![0u8; area.size as usize];
    EncryptedDebug::new(sp, memory, guest)
        .read(u64::from(area.base), &mut plain, Access::Private)
        .unwrap();
    plain
}

/// One full launch with `tool`'s session, on hosts `connect` makes; the
/// refusals too when `tamper`. Returns the host of the launch, its guest
/// released.
#[allow(clippy::too_many_lines)] // one launch, step by step
fn full_launch(
    connect: &mut dyn FnMut(GuestMemory) -> Host,
    fx: &Fixture,
    pdh: &Path,
    kind: Kind,
    tool: Tool,
    tamper: bool,
) -> Host {
    let what = format!("{kind:?} with a {tool:?} session");
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let policy = kind.policy();
    let vmsas = fx.vmsas(tool);
    let owner = owner_session(tool, pdh, policy, dir);

    // LAUNCH_START: a tampered session or another policy is refused.
    if tamper {
        for byte in [0x10, 0x70] {
            let mut bytes = owner.session.as_bytes().to_vec();
            bytes[byte] ^= 0x01;
            let blob = SessionBlob::from_bytes(&bytes).unwrap();
            refused(
                start(
                    connect,
                    plan(&fx.ovmf, policy, tool, Some((&owner.godh, &blob))),
                ),
                FirmwareStatus::BAD_MEASUREMENT,
                &format!("{what}: session byte {byte:#x} flipped"),
            );
        }
        refused(
            start(
                connect,
                plan(
                    &fx.ovmf,
                    policy | 0x1,
                    tool,
                    Some((&owner.godh, &owner.session)),
                ),
            ),
            FirmwareStatus::BAD_MEASUREMENT,
            &format!("{what}: session for policy {policy:#x} used with NODBG"),
        );
    }
    // LAUNCH_START, ACTIVATE, LAUNCH_UPDATE_DATA over the image; for SEV-ES
    // LAUNCH_UPDATE_VMSA per vCPU (the VMM's, for the VM type); then
    // LAUNCH_MEASURE.
    let launch = start(
        connect,
        plan(&fx.ovmf, policy, tool, Some((&owner.godh, &owner.session))),
    )
    .unwrap_or_else(|e| panic!("{what}: {e}"));
    let handle = launch.handle().handle;
    let mut measured = launch.measure().unwrap_or_else(|e| panic!("{what}: {e}"));
    let blob = measured.measure_blob().to_bytes();
    let st = measured.platform();

    // Both owner tools accept the blob.
    let (sevctl, code, out) = check_blob(fx, kind, vmsas, &owner.tik, st, &blob, dir);
    assert_eq!(sevctl, B64.encode(blob), "{what}: sevctl measurement build");
    assert_eq!(code, Some(0), "{what}: sevkit measure sev-launch: {out}");
    assert!(out.starts_with("OK"), "{what}: {out}");
    // ... and both refuse it with a bit flipped in the MAC or the nonce.
    let mut bad_mac = blob;
    bad_mac[7] ^= 0x10;
    let mut bad_nonce = blob;
    bad_nonce[40] ^= 0x01;
    for (tampered, part) in [(bad_mac, "MAC"), (bad_nonce, "nonce")] {
        if !tamper && part == "nonce" {
            continue;
        }
        let (sevctl, code, out) = check_blob(fx, kind, vmsas, &owner.tik, st, &tampered, dir);
        assert_ne!(
            sevctl,
            B64.encode(tampered),
            "{what}: sevctl, {part} flipped"
        );
        if part == "MAC" {
            // Same nonce: sevctl recomputes the firmware's blob.
            assert_eq!(sevctl, B64.encode(blob));
        }
        assert_eq!(code, Some(1), "{what}: sevkit, {part} flipped: {out}");
        assert!(out.starts_with("FAILED"), "{what}: {out}");
    }

    // LAUNCH_SECRET into OVMF's secret area.
    let area = fx.secret_area;
    let base = u64::from(area.base);
    let secret = dir.join("secret.txt");
    let value = format!("{kind:?} {tool:?}: the disk passphrase");
    std::fs::write(&secret, &value).unwrap();
    let (header, payload) = secret_build(Tool::Sevctl, &owner, &blob, &secret, dir, "sevctl");
    assert_eq!(payload.len() % 16, 0);
    if tamper {
        let mut h = header;
        h.mac[3] ^= 0x01;
        refused(
            measured.inject_secret(h.as_bytes(), &payload, Some(base)),
            FirmwareStatus::BAD_MEASUREMENT,
            &format!("{what}: secret header MAC flipped"),
        );
        let mut p = payload.clone();
        p[20] ^= 0x80;
        refused(
            measured.inject_secret(header.as_bytes(), &p, Some(base)),
            FirmwareStatus::BAD_MEASUREMENT,
            &format!("{what}: secret payload flipped"),
        );
        let (h, p) = secret_build(Tool::Sevctl, &owner, &bad_mac, &secret, dir, "bad");
        refused(
            measured.inject_secret(h.as_bytes(), &p, Some(base)),
            FirmwareStatus::BAD_MEASUREMENT,
            &format!("{what}: secret for a tampered measurement"),
        );
    }
    // sevkit's packet first, then sevctl's over it: each lands decrypted.
    let ours_secret = dir.join("ours.txt");
    std::fs::write(&ours_secret, format!("{value}, from sevkit")).unwrap();
    let ours = secret_build(Tool::Sevkit, &owner, &blob, &ours_secret, dir, "sevkit");
    for ((header, payload), file) in [(ours, &ours_secret), ((header, payload.clone()), &secret)] {
        measured
            .inject_secret(header.as_bytes(), &payload, Some(base))
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        let plain = decrypt_secret_area(&mut measured, area);
        let plain = &plain[..payload.len()];
        assert_eq!(plain[..16], SECRET_TABLE_GUID.to_le_bytes());
        assert_eq!(SECRET_TABLE_GUID.to_string(), TABLE_GUID);
        let table = SecretTable::parse(plain).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(table.entries().len(), 1);
        assert_eq!(table.entries()[0].guid.to_string(), SECRET_GUID);
        assert_eq!(*table.entries()[0].data, std::fs::read(file).unwrap());
        // In guest memory it is encrypted with the guest's key.
        let memory = measured.host().memory().system();
        assert_ne!(memory.read_vec(base, payload.len()).unwrap(), plain);
    }
    let mut host = measured.finish().unwrap().host;
    refused(
        launch::launch_secret(&mut host, handle, &header, &payload, base),
        FirmwareStatus::INVALID_GUEST_STATE,
        &format!("{what}: LAUNCH_SECRET after LAUNCH_FINISH"),
    );
    // The guest's end, and the write-back flush that frees its ASID for
    // the next launch (as KVM issues it).
    launch::release(&mut host, handle).unwrap();
    assert_eq!(
        host.sp()
            .execute(SevCommand::DfFlush.id(), &mut [])
            .unwrap(),
        FirmwareStatus::SUCCESS
    );
    host
}

/// Every combination over one firmware path: `connect` gives a host on an
/// AMD-SP acting on the guest memory it is given.
fn all_launches(
    path: &str,
    fx: &Fixture,
    pdh_file: &Path,
    connect: &mut dyn FnMut(GuestMemory) -> Host,
) {
    let exported = SevCert::from_bytes(&std::fs::read(pdh_file).unwrap()).unwrap();
    let mut first = true;
    for kind in [Kind::Sev, Kind::SevEs] {
        for tool in [Tool::Sevctl, Tool::Sevkit] {
            let started = Instant::now();
            if first {
                let mut host = connect(launch::bare_memory());
                host.bring_up(false).unwrap();
                let (pdh, _) = launch::pdh_and_chain(&mut host).unwrap();
                assert_eq!(pdh, exported, "the firmware serves the exported PDH");
            }
            // The refusals once per firmware path and kind.
            let tamper = tool == Tool::Sevctl;
            let mut host = full_launch(connect, fx, pdh_file, kind, tool, tamper);
            assert_eq!(
                launch::platform_status(&mut host)
                    .unwrap()
                    .guest_count
                    .get(),
                0
            );
            eprintln!(
                "{path}: {kind:?} launch with a {tool:?} session: measured, verified by both \
                 tools, secrets in, finished{}, in {:.1} s",
                if tamper { ", tampering refused" } else { "" },
                started.elapsed().as_secs_f64()
            );
            first = false;
        }
    }
}

#[test]
#[cfg_attr(
    not(all(sevkit_sevctl, sevkit_vectors)),
    ignore = "needs sevctl (cargo install sevctl) and shared/vectors; .ci/run installs them"
)]
fn sevctl_and_sevkit_owners_launch_on_the_in_process_firmware() {
    let fx = Fixture::load();
    let (state, pdh) = platform();
    let fw = Firmware::open(FirmwareConfig {
        state_dir: Some(state.path().to_owned()),
        ..FirmwareConfig::default()
    })
    .unwrap();
    let fw = Arc::new(Mutex::new(fw));
    all_launches("in-process", &fx, &pdh, &mut |memory| {
        launch::in_process(&fw, memory)
    });
}

#[test]
#[cfg_attr(
    not(all(sevkit_sevctl, sevkit_vectors)),
    ignore = "needs sevctl (cargo install sevctl) and shared/vectors; .ci/run installs them"
)]
fn sevctl_and_sevkit_owners_launch_through_the_daemon() {
    let fx = Fixture::load();
    let (state, pdh) = platform();
    let mut daemon = Daemon::start(state.path(), &[]);
    all_launches("daemon", &fx, &pdh, &mut |memory| {
        let client = daemon.connect(memory.system());
        Host::new(Box::new(client), memory)
    });
}
