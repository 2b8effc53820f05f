//! The SNP platform's persistent state (`snp.sevfw`): what SNP_CONFIG
//! (reported TCB, MASK_CHIP_ID, MASK_CHIP_KEY) and SNP_COMMIT (committed
//! TCB) set survives a restart of the firmware, the committed TCB refuses a
//! rollback of the current one, damaged files are refused, and nothing is
//! written without a state directory. Every command goes through
//! `Firmware::execute` with real command buffers.

mod common;

use std::path::Path;

use common::chip;
use sev_abi::commands::{
    SnpCommand, SnpCommitBuffer, SnpConfigBuffer, SnpDbgBuffer, SnpGuestRequestBuffer,
    SnpLaunchFinishBuffer, SnpPlatformStatus, SnpPlatformStatusBuffer, SnpShutdownExBuffer,
    SNP_COMMIT_LENGTH, SNP_CONFIG_MASK_CHIP_ID, SNP_CONFIG_MASK_CHIP_KEY, SNP_SHUTDOWN_EX_LENGTH,
    SNP_STATUS_MASK_CHIP_ID, SNP_STATUS_MASK_CHIP_KEY,
};
use sev_abi::guest_msg::KeySelect;
use sev_abi::policy::SnpPolicy;
use sev_abi::product::{Product, TcbVersion};
use sev_abi::report::AttestationReport;
use sev_abi::secrets_page::SecretsPage;
use sev_abi::snp_launch::PageType;
use sev_abi::status::FirmwareStatus as S;
use sev_crypto::report::verify_report_signature;
use sev_firmware::snp::keys::{ChipEndorsementKeys, EndorsementKeys};
use sev_firmware::snp::platform::{default_tcb, SnpPlatformState};
use sev_firmware::store::{self, StateKind};
use sev_firmware::{Firmware, FirmwareConfig, FirmwareError, StoreError, SystemMemory, VecMemory};
use sevkit_testkit::snp;
use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromBytes, FromZeros, IntoBytes};

const GCTX: u64 = 0x10_0000;
const PAGE: u64 = 0x40_0000;
const RSP: u64 = 0x41_0000;
const OUT: u64 = 0x80_0000;
const REQ: u64 = 0x81_0000;
const ASID: u32 = 1;
const POLICY: u64 = SnpPolicy::DEFAULT_RAW | SnpPolicy::DEBUG;
const SNP_FILE: &str = "snp.sevfw";

/// Genoa's default TCB: BL 7, TEE 0, SNP 0x16, microcode 0x54.
fn t1() -> TcbVersion {
    default_tcb(Product::Genoa)
}

/// A newer firmware than [`t1`]: SNP 0x17.
fn t2() -> TcbVersion {
    TcbVersion::from_le_bytes([7, 0, 0, 0, 0, 0, 0x17, 0x54])
}

/// Older in every component than [`t1`] (a reported TCB SNP_CONFIG allows).
fn t0() -> TcbVersion {
    TcbVersion::from_le_bytes([6, 0, 0, 0, 0, 0, 0x15, 0x54])
}

fn config(dir: &Path, snp_tcb: Option<TcbVersion>) -> FirmwareConfig {
    FirmwareConfig {
        state_dir: Some(dir.to_owned()),
        seed: Some([0x31; 32]),
        snp_tcb,
        ..FirmwareConfig::default()
    }
}

fn open(dir: &Path, snp_tcb: Option<TcbVersion>) -> Result<Firmware, FirmwareError> {
    Firmware::open_with_chip(config(dir, snp_tcb), chip())
}

fn snp_config(fw: &mut Firmware, mem: &mut VecMemory, reported: TcbVersion, flags: u32) -> S {
    let mut b = SnpConfigBuffer::new_zeroed();
    b.reported_tcb = U64::new(reported.raw());
    b.flags = U32::new(flags);
    fw.call(SnpCommand::SnpConfig, &mut b, mem)
}

fn snp_commit(fw: &mut Firmware, mem: &mut VecMemory) -> S {
    let mut b = SnpCommitBuffer {
        length: U32::new(SNP_COMMIT_LENGTH),
    };
    fw.call(SnpCommand::SnpCommit, &mut b, mem)
}

fn snp_shutdown(fw: &mut Firmware, mem: &mut VecMemory) -> S {
    let mut b = SnpShutdownExBuffer::new_zeroed();
    b.length = U32::new(SNP_SHUTDOWN_EX_LENGTH);
    fw.call(SnpCommand::SnpShutdownEx, &mut b, mem)
}

fn status(fw: &mut Firmware, mem: &mut VecMemory) -> SnpPlatformStatus {
    let mut b = SnpPlatformStatusBuffer {
        status_paddr: U64::new(OUT),
    };
    assert_eq!(
        fw.call(SnpCommand::SnpPlatformStatus, &mut b, mem),
        S::SUCCESS
    );
    SnpPlatformStatus::read_from_bytes(&mem.read_vec(OUT, 0x20).unwrap()).unwrap()
}

fn mask_flags(st: &SnpPlatformStatus) -> u32 {
    st.flags.get() & (SNP_STATUS_MASK_CHIP_ID | SNP_STATUS_MASK_CHIP_KEY)
}

/// Launches a guest with a secrets page (SNP must be INIT) and asks for a
/// VCEK-signed report through SNP_GUEST_REQUEST, as the guest does.
fn guest_report(fw: &mut Firmware, mem: &mut VecMemory) -> (AttestationReport, Vec<u8>) {
    snp::firmware_page(fw, GCTX);
    snp::start_snp_guest(fw, mem, GCTX, POLICY, ASID);
    snp::pre_guest(fw, PAGE, 0x5000, ASID);
    assert_eq!(
        snp::launch_update(fw, mem, GCTX, PAGE, PageType::Secrets),
        S::SUCCESS
    );
    let mut fin = SnpLaunchFinishBuffer::new_zeroed();
    fin.gctx_paddr = U64::new(GCTX);
    assert_eq!(
        fw.call(SnpCommand::SnpLaunchFinish, &mut fin, mem),
        S::SUCCESS
    );
    let mut dbg = SnpDbgBuffer {
        gctx_paddr: U64::new(GCTX),
        src_paddr: U64::new(PAGE),
        dst_paddr: U64::new(OUT),
    };
    assert_eq!(
        fw.call(SnpCommand::SnpDbgDecrypt, &mut dbg, mem),
        S::SUCCESS
    );
    let secrets = SecretsPage::read_from_bytes(&mem.read_vec(OUT, 4096).unwrap()).unwrap();
    let mut channel = sev_guest::GuestChannel::from_secrets_page(&secrets, 0).unwrap();
    let request = channel
        .request_report([0x42; 64], 0, KeySelect::Vcek)
        .unwrap();
    mem.write(REQ, &request).unwrap();
    snp::firmware_page(fw, RSP);
    let mut req = SnpGuestRequestBuffer {
        gctx_paddr: U64::new(GCTX),
        req_paddr: U64::new(REQ),
        rsp_paddr: U64::new(RSP),
    };
    assert_eq!(
        fw.call(SnpCommand::SnpGuestRequest, &mut req, mem),
        S::SUCCESS
    );
    let report = channel
        .open_report_response(&mem.read_vec(RSP, 4096).unwrap())
        .unwrap();
    let bytes = report.as_bytes().to_vec();
    (report, bytes)
}

/// The report verifies with the VCEK of `tcb` (and only with that one).
fn signed_by_vcek_of(report: &[u8], tcb: TcbVersion) -> bool {
    let keys = ChipEndorsementKeys::new(&chip());
    let vcek = keys.vcek(tcb).unwrap();
    verify_report_signature(report, vcek.public_key_ref()).is_ok()
}

#[test]
fn snp_config_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(SNP_FILE);
    let mut mem = common::memory();
    {
        let mut fw = open(dir.path(), None).unwrap();
        snp::snp_init(&mut fw, &mut mem);
        let st = status(&mut fw, &mut mem);
        assert_eq!(st.reported_tcb.get(), t1().raw());
        assert!(!file.exists(), "nothing persisted before SNP_CONFIG");
        // A refused SNP_CONFIG writes nothing.
        assert_eq!(snp_config(&mut fw, &mut mem, t2(), 0), S::INVALID_CONFIG);
        assert!(!file.exists());
        assert_eq!(
            snp_config(&mut fw, &mut mem, t0(), SNP_CONFIG_MASK_CHIP_ID),
            S::SUCCESS
        );
        assert!(file.exists());
    }

    // Restart: SNP is UNINIT again, the configuration is kept.
    let mut fw = open(dir.path(), None).unwrap();
    assert_eq!(fw.snp_platform_state(), SnpPlatformState::Uninit);
    let st = status(&mut fw, &mut mem);
    assert_eq!(st.current_tcb.get(), t1().raw());
    assert_eq!(st.reported_tcb.get(), t0().raw());
    assert_eq!(mask_flags(&st), SNP_STATUS_MASK_CHIP_ID);
    let view = fw.snp_platform_view();
    assert_eq!((view.reported_tcb, view.committed_tcb), (t0(), t1()));
    assert!(view.mask_chip_id && !view.mask_chip_key);

    // A new report carries the reported TCB, a zero chip id, and is signed
    // by the VCEK derived for the reported TCB.
    snp::snp_init(&mut fw, &mut mem);
    let (report, bytes) = guest_report(&mut fw, &mut mem);
    assert_eq!(report.reported_tcb(), t0());
    assert_eq!(report.current_tcb(), t1());
    assert_eq!(report.chip_id, [0; 64]);
    assert!(signed_by_vcek_of(&bytes, t0()));
    assert!(!signed_by_vcek_of(&bytes, t1()));

    // A new SNP_CONFIG replaces the persisted one.
    assert_eq!(
        snp_config(&mut fw, &mut mem, t1(), SNP_CONFIG_MASK_CHIP_KEY),
        S::SUCCESS
    );
    drop(fw);
    let mut fw = open(dir.path(), None).unwrap();
    let st = status(&mut fw, &mut mem);
    assert_eq!(st.reported_tcb.get(), t1().raw());
    assert_eq!(mask_flags(&st), SNP_STATUS_MASK_CHIP_KEY);

    // SNP_SHUTDOWN resets the configuration, and the reset persists.
    snp::snp_init(&mut fw, &mut mem);
    assert_eq!(snp_shutdown(&mut fw, &mut mem), S::SUCCESS);
    let st = status(&mut fw, &mut mem);
    assert_eq!((st.reported_tcb.get(), mask_flags(&st)), (t1().raw(), 0));
    drop(fw);
    let mut fw = open(dir.path(), None).unwrap();
    let st = status(&mut fw, &mut mem);
    assert_eq!((st.reported_tcb.get(), mask_flags(&st)), (t1().raw(), 0));

    // Without a mask, reports carry the chip id again.
    snp::snp_init(&mut fw, &mut mem);
    let (report, bytes) = guest_report(&mut fw, &mut mem);
    assert_eq!(report.chip_id, *chip().chip_id());
    assert!(signed_by_vcek_of(&bytes, t1()));
}

#[test]
fn snp_commit_survives_a_restart_and_refuses_rollback() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(SNP_FILE);
    let mut mem = common::memory();
    {
        let mut fw = open(dir.path(), Some(t1())).unwrap();
        snp::snp_init(&mut fw, &mut mem);
        assert_eq!(snp_commit(&mut fw, &mut mem), S::SUCCESS);
        assert!(file.exists());
    }

    // A firmware update (SNP SVN 0x16 → 0x17): the committed TCB is still
    // the old one, and so is the reported TCB (no SNP_CONFIG: reference
    // §2.10, "else committed TCB").
    let mut fw = open(dir.path(), Some(t2())).unwrap();
    let view = fw.snp_platform_view();
    assert_eq!(
        (view.current_tcb, view.committed_tcb, view.reported_tcb),
        (t2(), t1(), t1())
    );
    let st = status(&mut fw, &mut mem);
    assert_eq!(
        (st.current_tcb.get(), st.reported_tcb.get()),
        (t2().raw(), t1().raw())
    );
    snp::snp_init(&mut fw, &mut mem);
    let (report, bytes) = guest_report(&mut fw, &mut mem);
    assert_eq!(report.committed_tcb(), t1());
    assert_eq!(report.launch_tcb(), t1());
    assert_eq!(report.current_tcb(), t2());
    assert_eq!(report.reported_tcb(), t1());
    assert!(signed_by_vcek_of(&bytes, t1()));
    // Running the old firmware again is still allowed.
    drop(fw);
    drop(open(dir.path(), Some(t1())).unwrap());

    // SNP_COMMIT of the new firmware: committed and reported TCB move up.
    let mut fw = open(dir.path(), Some(t2())).unwrap();
    snp::snp_init(&mut fw, &mut mem);
    assert_eq!(snp_commit(&mut fw, &mut mem), S::SUCCESS);
    drop(fw);
    let mut fw = open(dir.path(), Some(t2())).unwrap();
    let view = fw.snp_platform_view();
    assert_eq!((view.committed_tcb, view.reported_tcb), (t2(), t2()));
    assert_eq!(status(&mut fw, &mut mem).reported_tcb.get(), t2().raw());
    drop(fw);

    // Rollback below the committed TCB: refused, the file left untouched.
    let saved = std::fs::read(&file).unwrap();
    let mixed = TcbVersion::from_le_bytes([8, 0, 0, 0, 0, 0, 0x16, 0x54]);
    for older in [Some(t1()), None, Some(mixed)] {
        let err = open(dir.path(), older).unwrap_err();
        match &err {
            FirmwareError::TcbRollback {
                committed, current, ..
            } => {
                assert_eq!(*committed, t2());
                assert_eq!(*current, older.unwrap_or_else(t1));
            }
            other => panic!("{older:?}: {other}"),
        }
        let msg = err.to_string();
        assert!(
            msg.contains("anti-rollback") && msg.contains(SNP_FILE),
            "{msg}"
        );
        assert_eq!(std::fs::read(&file).unwrap(), saved);
    }
    // A newer one is fine.
    let newer = TcbVersion::from_le_bytes([8, 0, 0, 0, 0, 0, 0x17, 0x55]);
    let fw = open(dir.path(), Some(newer)).unwrap();
    assert_eq!(fw.snp_platform_view().committed_tcb, t2());
}

#[test]
fn snp_config_without_commit_does_not_bind_the_tcb() {
    let dir = tempfile::tempdir().unwrap();
    let mut mem = common::memory();
    {
        let mut fw = open(dir.path(), Some(t2())).unwrap();
        snp::snp_init(&mut fw, &mut mem);
        assert_eq!(snp_config(&mut fw, &mut mem, t1(), 0), S::SUCCESS);
    }
    // Nothing was committed: older firmware may run, as long as it is not
    // below the persisted reported TCB.
    let mut fw = open(dir.path(), Some(t1())).unwrap();
    assert_eq!(fw.snp_platform_view().committed_tcb, t1());
    assert_eq!(status(&mut fw, &mut mem).reported_tcb.get(), t1().raw());
    drop(fw);
    let err = open(dir.path(), Some(t0())).unwrap_err();
    assert!(
        matches!(err, FirmwareError::SnpStateMismatch { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("reported TCB"), "{err}");
}

#[test]
fn damaged_or_foreign_snp_state_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(SNP_FILE);
    let mut mem = common::memory();
    {
        let mut fw = open(dir.path(), None).unwrap();
        snp::snp_init(&mut fw, &mut mem);
        assert_eq!(
            snp_config(&mut fw, &mut mem, t0(), SNP_CONFIG_MASK_CHIP_ID),
            S::SUCCESS
        );
        assert_eq!(snp_commit(&mut fw, &mut mem), S::SUCCESS);
    }
    let good = std::fs::read(&file).unwrap();
    let expect_refused = |bytes: &[u8], what: &str| -> FirmwareError {
        std::fs::write(&file, bytes).unwrap();
        let err = open(dir.path(), None).unwrap_err();
        assert_eq!(
            std::fs::read(&file).unwrap(),
            bytes,
            "{what}: left untouched"
        );
        err
    };

    // A flipped bit anywhere in the payload or checksum.
    for at in [0x18, 0x18 + 0x44, 0x18 + 0x50, good.len() - 1] {
        let mut bad = good.clone();
        bad[at] ^= 0x20;
        let err = expect_refused(&bad, "flipped bit");
        assert!(
            matches!(err, FirmwareError::Store(StoreError::Corrupted { .. })),
            "byte {at}: {err}"
        );
        assert!(err.to_string().contains("corrupted"), "{err}");
    }
    let err = expect_refused(&good[..good.len() - 3], "truncated");
    assert!(
        matches!(err, FirmwareError::Store(StoreError::Corrupted { .. })),
        "{err}"
    );
    let err = expect_refused(b"reported_tcb = 0x1234\n", "foreign");
    assert!(
        matches!(err, FirmwareError::Store(StoreError::Foreign { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("not a sevkit firmware state file"));
    // Another kind of state file under this name.
    let err = expect_refused(&store::encode(StateKind::Platform, b"x"), "wrong kind");
    assert!(
        matches!(err, FirmwareError::Store(StoreError::WrongKind { .. })),
        "{err}"
    );
    // A well-formed file whose payload makes no sense.
    let err = expect_refused(&store::encode(StateKind::Snp, &[0; 0x58]), "zero payload");
    assert!(err.to_string().contains("product code"), "{err}");
    // Another format version.
    let mut bad = good.clone();
    bad[8] = 2;
    let err = expect_refused(&bad, "version");
    assert!(
        matches!(
            err,
            FirmwareError::Store(StoreError::UnsupportedVersion { .. })
        ),
        "{err}"
    );

    // The intact file under another product, or another chip, is refused.
    std::fs::write(&file, &good).unwrap();
    let err = Firmware::open_with_chip(
        FirmwareConfig {
            product: Product::Turin,
            ..config(dir.path(), None)
        },
        chip(),
    )
    .unwrap_err();
    assert!(
        matches!(err, FirmwareError::SnpStateMismatch { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("Turin"), "{err}");
    let other = tempfile::tempdir().unwrap();
    drop(Firmware::open_with_chip(config(other.path(), None), common::other_chip()).unwrap());
    std::fs::copy(&file, other.path().join(SNP_FILE)).unwrap();
    let err = Firmware::open(config(other.path(), None)).unwrap_err();
    assert!(err.to_string().contains("another chip"), "{err}");

    // An SNP state file without its chip is not silently given a new chip.
    let chip_file = dir.path().join("chip.sevfw");
    let saved_chip = std::fs::read(&chip_file).unwrap();
    std::fs::remove_file(&chip_file).unwrap();
    let err = open(dir.path(), None).unwrap_err();
    assert!(
        matches!(err, FirmwareError::Store(StoreError::Corrupted { .. })),
        "{err}"
    );
    assert!(err.to_string().contains(SNP_FILE), "{err}");
    assert!(!chip_file.exists(), "nothing minted over the orphan");
    std::fs::write(&chip_file, &saved_chip).unwrap();

    // A crash mid-write left a temporary file: ignored, then removed.
    let tmp = dir.path().join(format!(".{SNP_FILE}.tmp"));
    std::fs::write(&tmp, &good[..40]).unwrap();
    let mut fw = open(dir.path(), None).unwrap();
    assert!(!tmp.exists());
    let st = status(&mut fw, &mut mem);
    assert_eq!(st.reported_tcb.get(), t0().raw());
    assert_eq!(mask_flags(&st), SNP_STATUS_MASK_CHIP_ID);
}

#[test]
fn without_a_state_dir_nothing_is_written() {
    let mut mem = common::memory();
    let cwd = std::env::current_dir().unwrap();
    let mut fw = common::firmware(0x41);
    assert!(fw.config().state_dir.is_none());
    snp::snp_init(&mut fw, &mut mem);
    assert_eq!(
        snp_config(&mut fw, &mut mem, t0(), SNP_CONFIG_MASK_CHIP_ID),
        S::SUCCESS
    );
    assert_eq!(snp_commit(&mut fw, &mut mem), S::SUCCESS);
    let st = status(&mut fw, &mut mem);
    assert_eq!(st.reported_tcb.get(), t0().raw());
    assert!(!cwd.join(SNP_FILE).exists());
    assert!(!cwd.join(format!(".{SNP_FILE}.tmp")).exists());
    // Another in-memory firmware starts from the defaults.
    let mut fw = common::firmware(0x41);
    let st = status(&mut fw, &mut mem);
    assert_eq!((st.reported_tcb.get(), mask_flags(&st)), (t1().raw(), 0));

    // With a state directory, commands that change nothing persistent
    // write nothing either.
    let dir = tempfile::tempdir().unwrap();
    let mut fw = open(dir.path(), None).unwrap();
    snp::snp_init(&mut fw, &mut mem);
    let _ = status(&mut fw, &mut mem);
    assert_eq!(snp_shutdown(&mut fw, &mut mem), S::SUCCESS);
    let mut names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["chip.sevfw"]);
}

#[test]
fn a_failed_write_is_hwerror_platform_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(SNP_FILE);
    let mut mem = common::memory();
    let mut fw = open(dir.path(), Some(t2())).unwrap();
    snp::snp_init(&mut fw, &mut mem);
    // A non-empty directory where the file goes: every write fails at the
    // rename (even for root), and leaves no temporary file.
    let block = |path: &Path| {
        std::fs::create_dir(path).unwrap();
        std::fs::write(path.join("x"), b"x").unwrap();
    };
    let unblock = |path: &Path| std::fs::remove_dir_all(path).unwrap();
    let names = || {
        let mut names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    };
    block(&file);
    assert_eq!(
        snp_config(&mut fw, &mut mem, t1(), SNP_CONFIG_MASK_CHIP_ID),
        S::HWERROR_PLATFORM
    );
    assert!(fw.last_error().unwrap().contains(SNP_FILE));
    let st = status(&mut fw, &mut mem);
    assert_eq!((st.reported_tcb.get(), mask_flags(&st)), (t2().raw(), 0));
    assert_eq!(snp_commit(&mut fw, &mut mem), S::HWERROR_PLATFORM);
    assert_eq!(names(), ["chip.sevfw", SNP_FILE]);
    unblock(&file);
    assert!(!file.exists());

    // Writable again: both succeed; a failed SNP_SHUTDOWN leaves SNP INIT
    // with its configuration.
    assert_eq!(
        snp_config(&mut fw, &mut mem, t1(), SNP_CONFIG_MASK_CHIP_ID),
        S::SUCCESS
    );
    assert_eq!(snp_commit(&mut fw, &mut mem), S::SUCCESS);
    let saved = dir.path().join("saved");
    std::fs::rename(&file, &saved).unwrap();
    block(&file);
    assert_eq!(snp_shutdown(&mut fw, &mut mem), S::HWERROR_PLATFORM);
    assert_eq!(fw.snp_platform_state(), SnpPlatformState::Init);
    assert_eq!(
        mask_flags(&status(&mut fw, &mut mem)),
        SNP_STATUS_MASK_CHIP_ID
    );
    unblock(&file);
    std::fs::rename(&saved, &file).unwrap();
    drop(fw);
    let fw = open(dir.path(), Some(t2())).unwrap();
    let view = fw.snp_platform_view();
    assert_eq!((view.committed_tcb, view.reported_tcb), (t2(), t1()));
    assert!(view.mask_chip_id);
}

#[test]
fn platform_reset_keeps_the_snp_state() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(SNP_FILE);
    let mut mem = common::memory();
    let mut fw = open(dir.path(), None).unwrap();
    snp::snp_init(&mut fw, &mut mem);
    common::init(&mut fw, &mut mem, false);
    assert!(dir.path().join("platform.sevfw").exists());
    assert_eq!(
        snp_config(&mut fw, &mut mem, t0(), SNP_CONFIG_MASK_CHIP_ID),
        S::SUCCESS
    );
    assert_eq!(snp_commit(&mut fw, &mut mem), S::SUCCESS);
    let saved = std::fs::read(&file).unwrap();
    // Legacy SHUTDOWN, then PLATFORM_RESET: the legacy store (OCA/PEK/PDH)
    // goes, the SNP state stays (on disk and in force).
    assert_eq!(fw.execute(0x02, &mut [], &mut mem), S::SUCCESS);
    assert_eq!(fw.execute(0x03, &mut [], &mut mem), S::SUCCESS);
    assert!(!dir.path().join("platform.sevfw").exists());
    assert_eq!(std::fs::read(&file).unwrap(), saved);
    let st = status(&mut fw, &mut mem);
    assert_eq!(st.reported_tcb.get(), t0().raw());
    assert_eq!(mask_flags(&st), SNP_STATUS_MASK_CHIP_ID);
    drop(fw);
    let fw = open(dir.path(), None).unwrap();
    assert_eq!(fw.snp_platform_view().reported_tcb, t0());
}
