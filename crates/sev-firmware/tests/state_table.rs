//! Every (platform state, guest state, command) against the reference's
//! tables (§1.4 platform states, §1.5 guest states), through `execute()`.
//!
//! Rows are the states the firmware can be in; a guest exists only in
//! WORKING (INIT -> WORKING at LAUNCH_START, back to INIT when the last
//! guest is decommissioned, SHUTDOWN removes all), so UNINIT and INIT have
//! only "no guest", and WORKING has a command addressed to a handle that
//! names no guest ("none") as well as to a guest in LUPDATE, LSECRET and
//! RUNNING. Every guest was ACTIVATEd (as KVM does right after
//! LAUNCH_START). Each cell runs on a fresh firmware with a well-formed
//! buffer, so the status is the one the states decide.

mod common;

use common::*;
use sev_abi::commands::*;
use sev_abi::legacy_cert::{Algorithm, KeyUsage, SevCert};
use sev_abi::policy::GuestPolicy;
use sev_abi::session::PacketHeader;
use sev_abi::status::FirmwareStatus;
use sev_crypto::ecdsa::P384SigningKey;
use sev_crypto::packet::seal_secret;
use sev_crypto::session::{Tek, Tik};
use sev_firmware::{Firmware, GuestState, PlatformState, SystemMemory, VecMemory};
use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromBytes, FromZeros, IntoBytes};

const OK: FirmwareStatus = FirmwareStatus::SUCCESS;
const IPS: FirmwareStatus = FirmwareStatus::INVALID_PLATFORM_STATE;
const IGS: FirmwareStatus = FirmwareStatus::INVALID_GUEST_STATE;
const IG: FirmwareStatus = FirmwareStatus::INVALID_GUEST;
const ACT: FirmwareStatus = FirmwareStatus::ACTIVE;
const UNS: FirmwareStatus = FirmwareStatus::UNSUPPORTED;
const BADCMD: FirmwareStatus = FirmwareStatus::INVALID_COMMAND;

/// The rows: (platform state, guest state of the addressed handle).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Row {
    Uninit,
    Init,
    WorkingNone,
    WorkingLUpdate,
    WorkingLSecret,
    WorkingRunning,
}

const ROWS: [Row; 6] = [
    Row::Uninit,
    Row::Init,
    Row::WorkingNone,
    Row::WorkingLUpdate,
    Row::WorkingLSecret,
    Row::WorkingRunning,
];

/// The expected status of each command in each row
/// (UNINIT, INIT, WORKING/none, WORKING/LUPDATE, WORKING/LSECRET, WORKING/RUNNING).
/// `None` as the command id stands for an id that is no command.
#[rustfmt::skip]
const TABLE: &[(&str, u32, [FirmwareStatus; 6])] = &[
    //                                             U     I     W/-   W/LU  W/LS  W/RUN
    ("INIT",               0x01, [OK,  IPS,  IPS,  IPS,  IPS,  IPS]),
    ("SHUTDOWN",           0x02, [OK,  OK,   OK,   OK,   OK,   OK ]),
    ("PLATFORM_RESET",     0x03, [OK,  IPS,  IPS,  IPS,  IPS,  IPS]),
    ("PLATFORM_STATUS",    0x04, [OK,  OK,   OK,   OK,   OK,   OK ]),
    ("PEK_GEN",            0x05, [IPS, OK,   IPS,  IPS,  IPS,  IPS]),
    ("PEK_CSR",            0x06, [IPS, OK,   OK,   OK,   OK,   OK ]),
    ("PEK_CERT_IMPORT",    0x07, [IPS, OK,   IPS,  IPS,  IPS,  IPS]),
    ("PDH_CERT_EXPORT",    0x08, [IPS, OK,   OK,   OK,   OK,   OK ]),
    ("PDH_GEN",            0x09, [IPS, OK,   OK,   OK,   OK,   OK ]),
    ("DF_FLUSH",           0x0A, [IPS, OK,   OK,   OK,   OK,   OK ]),
    ("DOWNLOAD_FIRMWARE",  0x0B, [UNS, UNS,  UNS,  UNS,  UNS,  UNS]),
    ("GET_ID",             0x0C, [OK,  OK,   OK,   OK,   OK,   OK ]),
    ("INIT_EX",            0x0D, [OK,  IPS,  IPS,  IPS,  IPS,  IPS]),
    ("NOP",                0x0E, [OK,  OK,   OK,   OK,   OK,   OK ]),
    ("RING_BUFFER",        0x0F, [UNS, UNS,  UNS,  UNS,  UNS,  UNS]),
    // An active guest must be deactivated first.
    ("DECOMMISSION",       0x20, [IPS, IPS,  IG,   ACT,  ACT,  ACT]),
    // Already bound to an ASID.
    ("ACTIVATE",           0x21, [IPS, IPS,  IG,   ACT,  ACT,  ACT]),
    ("DEACTIVATE",         0x22, [IPS, IPS,  IG,   OK,   OK,   OK ]),
    ("GUEST_STATUS",       0x23, [IPS, IPS,  IG,   OK,   OK,   OK ]),
    ("COPY",               0x24, [UNS, UNS,  UNS,  UNS,  UNS,  UNS]),
    ("ACTIVATE_EX",        0x25, [IPS, IPS,  IG,   ACT,  ACT,  ACT]),
    ("LAUNCH_START",       0x30, [IPS, OK,   OK,   OK,   OK,   OK ]),
    ("LAUNCH_UPDATE_DATA", 0x31, [IPS, IPS,  IG,   OK,   IGS,  IGS]),
    // SEV-ES guest; for a plain SEV guest LUPDATE gives UNSUPPORTED (see below).
    ("LAUNCH_UPDATE_VMSA", 0x32, [IPS, IPS,  IG,   OK,   IGS,  IGS]),
    ("LAUNCH_MEASURE",     0x33, [IPS, IPS,  IG,   OK,   IGS,  IGS]),
    ("LAUNCH_SECRET",      0x34, [IPS, IPS,  IG,   IGS,  OK,   IGS]),
    ("LAUNCH_FINISH",      0x35, [IPS, IPS,  IG,   IGS,  OK,   IGS]),
    ("ATTESTATION",        0x36, [IPS, IPS,  IG,   IGS,  OK,   OK ]),
    ("SEND_START",         0x40, [UNS, UNS,  UNS,  UNS,  UNS,  UNS]),
    ("SEND_UPDATE_DATA",   0x41, [UNS, UNS,  UNS,  UNS,  UNS,  UNS]),
    ("SEND_UPDATE_VMSA",   0x42, [UNS, UNS,  UNS,  UNS,  UNS,  UNS]),
    ("SEND_FINISH",        0x43, [UNS, UNS,  UNS,  UNS,  UNS,  UNS]),
    ("SEND_CANCEL",        0x44, [UNS, UNS,  UNS,  UNS,  UNS,  UNS]),
    ("RECEIVE_START",      0x50, [UNS, UNS,  UNS,  UNS,  UNS,  UNS]),
    ("RECEIVE_UPDATE_DATA",0x51, [UNS, UNS,  UNS,  UNS,  UNS,  UNS]),
    ("RECEIVE_UPDATE_VMSA",0x52, [UNS, UNS,  UNS,  UNS,  UNS,  UNS]),
    ("RECEIVE_FINISH",     0x53, [UNS, UNS,  UNS,  UNS,  UNS,  UNS]),
    ("DBG_DECRYPT",        0x60, [IPS, IPS,  IG,   OK,   OK,   OK ]),
    ("DBG_ENCRYPT",        0x61, [IPS, IPS,  IG,   OK,   OK,   OK ]),
    ("SWAP_OUT",           0x70, [UNS, UNS,  UNS,  UNS,  UNS,  UNS]),
    ("SWAP_IN",            0x71, [UNS, UNS,  UNS,  UNS,  UNS,  UNS]),
    // SNP_INIT needs the legacy platform UNINIT; SNP guest commands need
    // SNP INIT (tests/snp_state_table.rs covers SNP); other ids are no
    // commands at all.
    ("SNP_INIT",           0x81, [OK,  IPS,  IPS,  IPS,  IPS,  IPS]),
    ("SNP_LAUNCH_START",   0xA0, [IPS, IPS,  IPS,  IPS,  IPS,  IPS]),
    ("SNP_GUEST_REQUEST",  0x94, [IPS, IPS,  IPS,  IPS,  IPS,  IPS]),
    ("(none) 0x00",        0x00, [BADCMD, BADCMD, BADCMD, BADCMD, BADCMD, BADCMD]),
    ("(none) 0x26",        0x26, [BADCMD, BADCMD, BADCMD, BADCMD, BADCMD, BADCMD]),
    ("(none) 0xFFFFFFFF",  0xFFFF_FFFF, [BADCMD, BADCMD, BADCMD, BADCMD, BADCMD, BADCMD]),
];

struct Scenario {
    fw: Firmware,
    mem: VecMemory,
    /// The handle the command addresses.
    handle: u32,
    /// LAUNCH_MEASURE's measurement, when the guest was measured.
    measurement: [u8; 32],
}

const PLAIN_ASID: u32 = 5;
const ES_ASID: u32 = 1;

fn setup(row: Row, es: bool) -> Scenario {
    let mut fw = firmware(1);
    let mut mem = memory();
    let mut measurement = [0u8; 32];
    let mut handle = 1;
    if row != Row::Uninit {
        init(&mut fw, &mut mem, es);
    }
    if !matches!(row, Row::Uninit | Row::Init) {
        let policy = if es { GuestPolicy::ES } else { 0 };
        let h = launch_start_plain(&mut fw, &mut mem, policy);
        assert_eq!(h, 1);
        let asid = if es { ES_ASID } else { PLAIN_ASID };
        assert_eq!(activate(&mut fw, &mut mem, h, asid), OK);
        if matches!(row, Row::WorkingLSecret | Row::WorkingRunning) {
            mem.write(DATA, &[0xAB; 4096]).unwrap();
            assert_eq!(update(&mut fw, &mut mem, h, DATA, 4096, false), OK);
            measurement.copy_from_slice(&measure(&mut fw, &mut mem, h)[..32]);
        }
        if row == Row::WorkingRunning {
            let mut b = HandleBuffer {
                handle: U32::new(h),
            };
            assert_eq!(run(&mut fw, SevCommand::LaunchFinish, &mut b, &mut mem), OK);
        }
        if row == Row::WorkingNone {
            handle = 2;
        }
    }
    let expected_guest = match row {
        Row::WorkingLUpdate => Some(GuestState::LUpdate),
        Row::WorkingLSecret => Some(GuestState::LSecret),
        Row::WorkingRunning => Some(GuestState::Running),
        _ => None,
    };
    assert_eq!(fw.guest_state(handle), expected_guest, "{row:?}");
    let expected_platform = match row {
        Row::Uninit => PlatformState::Uninit,
        Row::Init => PlatformState::Init,
        _ => PlatformState::Working,
    };
    assert_eq!(fw.platform_state(), expected_platform);
    Scenario {
        fw,
        mem,
        handle,
        measurement,
    }
}

/// A well-formed command buffer for `id`, addressing `s.handle`, with any
/// input blobs written to memory.
#[allow(clippy::too_many_lines)] // one arm per command
fn buffer(id: u32, s: &mut Scenario) -> Vec<u8> {
    let handle = U32::new(s.handle);
    let Some(cmd) = SevCommand::from_u32(id) else {
        return vec![0u8; 0x100];
    };
    match cmd {
        SevCommand::Init => InitBuffer::new_zeroed().as_bytes().to_vec(),
        SevCommand::InitEx => {
            let mut b = InitExBuffer::new_zeroed();
            b.length = U32::new(INIT_EX_LENGTH);
            b.as_bytes().to_vec()
        }
        SevCommand::PlatformStatus => PlatformStatusBuffer::new_zeroed().as_bytes().to_vec(),
        SevCommand::PekCsr => PekCsrBuffer {
            paddr: U64::new(CSR_OUT),
            len: U32::new(0x824),
        }
        .as_bytes()
        .to_vec(),
        SevCommand::PekCertImport => {
            write_owner_certs(s);
            PekCertImportBuffer {
                pek_paddr: U64::new(BLOB_IN),
                pek_len: U32::new(0x824),
                reserved: U32::new(0),
                oca_paddr: U64::new(BLOB_IN2),
                oca_len: U32::new(0x824),
            }
            .as_bytes()
            .to_vec()
        }
        SevCommand::PdhCertExport => PdhCertExportBuffer {
            pdh_paddr: U64::new(PDH_OUT),
            pdh_len: U32::new(0x824),
            reserved: U32::new(0),
            chain_paddr: U64::new(CHAIN_OUT),
            chain_len: U32::new(3 * 0x824),
        }
        .as_bytes()
        .to_vec(),
        SevCommand::GetId => GetIdBuffer {
            paddr: U64::new(ID_OUT),
            len: U32::new(64),
        }
        .as_bytes()
        .to_vec(),
        SevCommand::Decommission
        | SevCommand::Deactivate
        | SevCommand::LaunchFinish
        | SevCommand::SendFinish
        | SevCommand::SendCancel
        | SevCommand::ReceiveFinish => HandleBuffer { handle }.as_bytes().to_vec(),
        SevCommand::Activate => ActivateBuffer {
            handle,
            asid: U32::new(6),
        }
        .as_bytes()
        .to_vec(),
        SevCommand::ActivateEx => ActivateExBuffer {
            ex_len: U32::new(ACTIVATE_EX_LENGTH),
            handle,
            asid: U32::new(6),
            numids: U32::new(0),
            ids_paddr: U64::new(0),
        }
        .as_bytes()
        .to_vec(),
        SevCommand::GuestStatus => {
            let mut b = GuestStatusBuffer::new_zeroed();
            b.handle = handle;
            b.as_bytes().to_vec()
        }
        SevCommand::LaunchStart => LaunchStartBuffer::new_zeroed().as_bytes().to_vec(),
        SevCommand::LaunchUpdateData | SevCommand::LaunchUpdateVmsa => {
            let vmsa = cmd == SevCommand::LaunchUpdateVmsa;
            LaunchUpdateBuffer {
                handle,
                reserved: U32::new(0),
                paddr: U64::new(if vmsa { VMSA } else { DATA }),
                len: U32::new(if vmsa { 4096 } else { 256 }),
            }
            .as_bytes()
            .to_vec()
        }
        SevCommand::LaunchMeasure => LaunchMeasureBuffer {
            handle,
            reserved: U32::new(0),
            paddr: U64::new(MEASURE_OUT),
            len: U32::new(48),
        }
        .as_bytes()
        .to_vec(),
        SevCommand::LaunchSecret => {
            let iv = [0x11u8; 16];
            let (ct, mac) = seal_secret(
                &Tek::new([0; 16]),
                &Tik::new([0; 16]),
                &iv,
                &s.measurement,
                &[0x5A; 32],
            );
            s.mem
                .write(SECRET_HDR, PacketHeader::new(0, iv, mac).as_bytes())
                .unwrap();
            s.mem.write(SECRET_TRANS, &ct).unwrap();
            let mut t = TransportBuffer::new_zeroed();
            t.handle = handle;
            t.hdr_paddr = U64::new(SECRET_HDR);
            t.hdr_len = U32::new(0x34);
            t.guest_paddr = U64::new(SECRET_DST);
            t.guest_len = U32::new(32);
            t.trans_paddr = U64::new(SECRET_TRANS);
            t.trans_len = U32::new(32);
            t.as_bytes().to_vec()
        }
        SevCommand::Attestation => {
            let mut b = AttestationBuffer::new_zeroed();
            b.handle = handle;
            b.paddr = U64::new(REPORT_OUT);
            b.len = U32::new(0xD0);
            b.as_bytes().to_vec()
        }
        SevCommand::DbgDecrypt => DbgBuffer {
            handle,
            reserved: U32::new(0),
            src_paddr: U64::new(DATA),
            dst_paddr: U64::new(HOST_BUF),
            len: U32::new(64),
        }
        .as_bytes()
        .to_vec(),
        SevCommand::DbgEncrypt => DbgBuffer {
            handle,
            reserved: U32::new(0),
            src_paddr: U64::new(HOST_BUF),
            dst_paddr: U64::new(DBG_DST_GUEST),
            len: U32::new(64),
        }
        .as_bytes()
        .to_vec(),
        // Commands without a modelled buffer: a generous zero buffer.
        _ => vec![0u8; 0x100],
    }
}

/// Writes an owner's OCA certificate and the PEK certificate it signed (from
/// PEK_CSR) at BLOB_IN2 / BLOB_IN. Only meaningful in INIT.
fn write_owner_certs(s: &mut Scenario) {
    let mut csr_buf = PekCsrBuffer {
        paddr: U64::new(CSR_OUT),
        len: U32::new(0x824),
    };
    if run(&mut s.fw, SevCommand::PekCsr, &mut csr_buf, &mut s.mem) != OK {
        return;
    }
    let (oca_cert, pek_cert) = owner_sign(&s.mem);
    s.mem.write(BLOB_IN, pek_cert.as_bytes()).unwrap();
    s.mem.write(BLOB_IN2, oca_cert.as_bytes()).unwrap();
}

/// An owner OCA, and the CSR at CSR_OUT signed by it.
fn owner_sign(mem: &VecMemory) -> (SevCert, SevCert) {
    let oca = P384SigningKey::from_be_scalar(&[0x0C; 48]).unwrap();
    let mut oca_cert = SevCert::new_ecc(
        1,
        55,
        KeyUsage::Oca,
        Algorithm::EcdsaSha256,
        &oca.public_key_ref().to_amd(),
    );
    let sig = oca.sign_sha256(oca_cert.signed_bytes()).unwrap();
    oca_cert
        .set_signature(
            0,
            KeyUsage::Oca,
            Algorithm::EcdsaSha256,
            &sig.as_bytes().try_into().unwrap(),
        )
        .unwrap();
    let mut pek = SevCert::read_from_bytes(&mem.read_vec(CSR_OUT, 0x824).unwrap()).unwrap();
    let sig = oca.sign_sha256(pek.signed_bytes()).unwrap();
    pek.set_signature(
        0,
        KeyUsage::Oca,
        Algorithm::EcdsaSha256,
        &sig.as_bytes().try_into().unwrap(),
    )
    .unwrap();
    (oca_cert, pek)
}

fn check_table(es: bool) {
    let mut failures = Vec::new();
    let mut cells = 0;
    for (name, id, expected) in TABLE {
        for (col, row) in ROWS.iter().enumerate() {
            let mut want = expected[col];
            if !es && *id == 0x32 && *row == Row::WorkingLUpdate {
                // A plain SEV guest has no VMSA to launch.
                want = UNS;
            }
            let mut s = setup(*row, es);
            let mut buf = buffer(*id, &mut s);
            let got = s.fw.execute(*id, &mut buf, &mut s.mem);
            cells += 1;
            if got != want {
                failures.push(format!(
                    "{name} in {row:?} (es={es}): expected {want:?}, got {got:?}"
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {cells} cells differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn state_table_sev() {
    check_table(false);
}

#[test]
fn state_table_sev_es() {
    check_table(true);
}

/// The transitions of §1.4/§1.5 that the table's successes imply.
#[test]
fn transitions() {
    let mut fw = firmware(2);
    let mut mem = memory();
    init(&mut fw, &mut mem, false);
    assert_eq!(fw.platform_state(), PlatformState::Init);
    let h = launch_start_plain(&mut fw, &mut mem, 0);
    assert_eq!(fw.platform_state(), PlatformState::Working);
    assert_eq!(fw.guest_state(h), Some(GuestState::LUpdate));
    assert_eq!(activate(&mut fw, &mut mem, h, 5), OK);
    measure(&mut fw, &mut mem, h);
    assert_eq!(fw.guest_state(h), Some(GuestState::LSecret));
    let mut b = HandleBuffer {
        handle: U32::new(h),
    };
    assert_eq!(run(&mut fw, SevCommand::LaunchFinish, &mut b, &mut mem), OK);
    assert_eq!(fw.guest_state(h), Some(GuestState::Running));
    // A second guest, then decommission both: WORKING until the last.
    let h2 = launch_start_plain(&mut fw, &mut mem, 0);
    assert_eq!(h2, 2);
    let mut b2 = HandleBuffer {
        handle: U32::new(h2),
    };
    assert_eq!(
        run(&mut fw, SevCommand::Decommission, &mut b2, &mut mem),
        OK
    );
    assert_eq!(fw.platform_state(), PlatformState::Working);
    assert_eq!(
        run(&mut fw, SevCommand::Decommission, &mut b, &mut mem),
        ACT
    );
    assert_eq!(run(&mut fw, SevCommand::Deactivate, &mut b, &mut mem), OK);
    assert_eq!(
        run(&mut fw, SevCommand::Deactivate, &mut b, &mut mem),
        FirmwareStatus::INACTIVE
    );
    assert_eq!(run(&mut fw, SevCommand::Decommission, &mut b, &mut mem), OK);
    assert_eq!(fw.platform_state(), PlatformState::Init);
    assert_eq!(fw.guest_state(h), None);
    // SHUTDOWN from WORKING removes every guest.
    launch_start_plain(&mut fw, &mut mem, 0);
    assert_eq!(fw.execute(0x02, &mut [], &mut mem), OK);
    assert_eq!(fw.platform_state(), PlatformState::Uninit);
    assert_eq!(fw.guest_state(1), None);
}
