//! The firmware daemon's request stream from two clients at once, as the
//! server runs it: every command frame goes to `Firmware::execute_for`
//! with the connection's client id and memory. Commands are AMD's (SEV and
//! SNP) and sevkit's host-instruction pseudo-commands, with arbitrary
//! buffers, handles, guest contexts, ASIDs and tokens.
//!
//! Before the stream, client 1 launches an SEV guest with NODBG and NOKS (handle
//! and ASID known to the fuzzer: they are in its dictionary of values)
//! whose first page holds a secret, and an SNP guest without DEBUG whose
//! page holds another. Invariants after every command: no panic, the
//! buffer keeps its length, and neither secret's plaintext appears in any
//! client's memory (client 2 cannot reach client 1's guests; client 1's own
//! host cannot read them past the policy; the guest principal's token is
//! random and never handed to the stream). At the end, client 1 is
//! released (its connection closed) and client 2 still gets answers.
//!
//! Input: records of `[client: u8][command: u8][len: u8][patch: u8]
//! [bytes; len]`. `command` picks one of every known command id (or, past
//! the list, the raw id 0x5E5E_00xx); `patch` writes a known value (client
//! 1's handle, ASID, guest context page, guest page) at a buffer offset.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sev_abi::commands::{
    ActivateBuffer, InitBuffer, LaunchStartBuffer, LaunchUpdateBuffer, SevCommand,
    SnpActivateBuffer, SnpCommand, SnpLaunchStartBuffer, SnpLaunchUpdateBuffer, SnpPaddrBuffer,
};
use sev_abi::host_ops::{HostOp, RmpUpdateOp, RMP_ASSIGNED, RMP_IMMUTABLE};
use sev_abi::snp_launch::PageType;
use sev_abi::status::FirmwareStatus;
use sev_firmware::{ChipIdentity, ClientId, Firmware, FirmwareConfig, SystemMemory, VecMemory};
use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromZeros, IntoBytes};

/// Small memories keep the check after every command cheap (the secrets
/// are searched for in both, whole).
const MEM_SIZE: u64 = 256 << 10;
const SEV_PAGE: u64 = 0x1_0000;
const SNP_PAGE: u64 = 0x2_0000;
const GCTX: u64 = 0x3_0000;
const SNP_ASID: u32 = 1;
const SEV_ASID: u32 = 5;
const SEV_SECRET: [u8; 32] = *b"sev guest secret, never for host";
const SNP_SECRET: [u8; 32] = *b"snp guest secret, never for host";
const OWNER: ClientId = ClientId(1);
const OTHER: ClientId = ClientId(2);

fn config() -> FirmwareConfig {
    FirmwareConfig {
        seed: Some([3; 32]),
        ..FirmwareConfig::default()
    }
}

/// The chip, minted once and cached under the (ignored) `fuzz/target`.
fn chip() -> ChipIdentity {
    static CHIP: OnceLock<ChipIdentity> = OnceLock::new();
    CHIP.get_or_init(|| {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/daemon_clients-chip");
        let cached = std::fs::create_dir_all(&dir).ok().and_then(|()| {
            Firmware::open(FirmwareConfig {
                state_dir: Some(dir),
                ..config()
            })
            .ok()
        });
        match cached {
            Some(fw) => fw.chip().clone(),
            None => Firmware::open(config()).unwrap().chip().clone(),
        }
    })
    .clone()
}

fn run(fw: &mut Firmware, id: u32, buf: &mut [u8], mem: &mut VecMemory) {
    assert_eq!(
        fw.execute_for(OWNER, id, buf, mem),
        FirmwareStatus::SUCCESS,
        "setup command {id:#x}"
    );
}

/// Client 1's guests: an SEV guest with NODBG and an SNP guest without
/// DEBUG, each with a secret page. Returns the SEV handle.
fn owner_guests(fw: &mut Firmware, mem: &mut VecMemory) -> u32 {
    run(fw, SnpCommand::SnpInit.id(), &mut [], mem);
    let mut rmp = RmpUpdateOp {
        spa: U64::new(GCTX),
        flags: U32::new(RMP_ASSIGNED | RMP_IMMUTABLE),
        ..RmpUpdateOp::default()
    };
    run(fw, HostOp::RmpUpdate.id(), rmp.as_mut_bytes(), mem);
    let mut gctx = SnpPaddrBuffer {
        paddr: U64::new(GCTX),
    };
    run(fw, SnpCommand::SnpGctxCreate.id(), gctx.as_mut_bytes(), mem);
    let mut start = SnpLaunchStartBuffer::new_zeroed();
    start.gctx_paddr = U64::new(GCTX);
    start.policy = U64::new(0x30000);
    run(fw, SnpCommand::SnpLaunchStart.id(), start.as_mut_bytes(), mem);
    let mut act = SnpActivateBuffer {
        gctx_paddr: U64::new(GCTX),
        asid: U32::new(SNP_ASID),
    };
    run(fw, SnpCommand::SnpActivate.id(), act.as_mut_bytes(), mem);
    mem.write(SNP_PAGE, &SNP_SECRET).unwrap();
    let mut rmp = RmpUpdateOp {
        spa: U64::new(SNP_PAGE),
        gpa: U64::new(SNP_PAGE),
        asid: U32::new(SNP_ASID),
        flags: U32::new(RMP_ASSIGNED | RMP_IMMUTABLE),
        ..RmpUpdateOp::default()
    };
    run(fw, HostOp::RmpUpdate.id(), rmp.as_mut_bytes(), mem);
    let mut up = SnpLaunchUpdateBuffer::new_zeroed();
    up.gctx_paddr = U64::new(GCTX);
    up.page_paddr = U64::new(SNP_PAGE);
    up.flags = U32::new(SnpLaunchUpdateBuffer::flags_for(
        false,
        PageType::Normal.as_u8(),
        false,
    ));
    run(fw, SnpCommand::SnpLaunchUpdate.id(), up.as_mut_bytes(), mem);

    let mut init = InitBuffer::new_zeroed();
    run(fw, SevCommand::Init.id(), init.as_mut_bytes(), mem);
    // NODBG and NOKS: key sharing is the owner's to allow, and a guest
    // that allows it shares its key with whichever guest the host starts.
    let mut start = LaunchStartBuffer::new_zeroed();
    start.policy = U32::new(0x3);
    run(fw, SevCommand::LaunchStart.id(), start.as_mut_bytes(), mem);
    let mut act = ActivateBuffer {
        handle: start.handle,
        asid: U32::new(SEV_ASID),
    };
    run(fw, SevCommand::Activate.id(), act.as_mut_bytes(), mem);
    mem.write(SEV_PAGE, &SEV_SECRET).unwrap();
    let mut up = LaunchUpdateBuffer::new_zeroed();
    up.handle = start.handle;
    up.paddr = U64::new(SEV_PAGE);
    up.len = U32::new(4096);
    run(fw, SevCommand::LaunchUpdateData.id(), up.as_mut_bytes(), mem);
    start.handle.get()
}

/// Every command id the firmware knows, then the pseudo-command range.
fn command(selector: u8) -> u32 {
    let known: Vec<u32> = SevCommand::ALL
        .iter()
        .map(|c| c.id())
        .chain(SnpCommand::ALL.iter().map(|c| c.id()))
        .chain(HostOp::ALL.iter().map(|c| c.id()))
        .collect();
    known
        .get(usize::from(selector))
        .copied()
        .unwrap_or(0x5E5E_0000 | u32::from(selector & 0x0F))
}

fn holds(all: &[u8], secret: &[u8; 32]) -> bool {
    all.windows(secret.len())
        .any(|w| w[0] == secret[0] && w == secret)
}

fuzz_target!(|data: &[u8]| {
    let mut fw = Firmware::open_with_chip(config(), chip()).unwrap();
    let mut owner_mem = VecMemory::new(MEM_SIZE);
    let mut other_mem = VecMemory::new(MEM_SIZE);
    let handle = owner_guests(&mut fw, &mut owner_mem);
    let all = owner_mem.read_vec(0, MEM_SIZE as usize).unwrap();
    assert!(!holds(&all, &SEV_SECRET) && !holds(&all, &SNP_SECRET));
    let known: [u64; 6] = [
        u64::from(handle),
        u64::from(SEV_ASID),
        u64::from(SNP_ASID),
        GCTX,
        SNP_PAGE,
        SEV_PAGE,
    ];

    let mut rest = data;
    let mut commands = 0;
    while let [who, cmd, len, patch, tail @ ..] = rest {
        let len = usize::from(*len).min(tail.len());
        let mut buf = tail[..len].to_vec();
        rest = &tail[len..];
        // Patch a known value (little-endian) at an offset the byte picks.
        let value = known[usize::from(patch & 7) % known.len()];
        let at = usize::from(patch >> 3) * 4;
        if patch & 7 < 6 && at + 8 <= buf.len() {
            buf[at..at + 8].copy_from_slice(&value.to_le_bytes());
        }
        let (client, mem) = if who & 1 == 0 {
            (OWNER, &mut owner_mem)
        } else {
            (OTHER, &mut other_mem)
        };
        let id = command(*cmd);
        fw.execute_for(client, id, &mut buf, mem);
        assert_eq!(buf.len(), len, "{id:#x} changed its buffer's length");
        for (name, m) in [("owner", &owner_mem), ("other", &other_mem)] {
            let all = m.read_vec(0, MEM_SIZE as usize).unwrap();
            assert!(!holds(&all, &SEV_SECRET), "{id:#x}: SEV secret in the {name}'s memory");
            assert!(!holds(&all, &SNP_SECRET), "{id:#x}: SNP secret in the {name}'s memory");
        }
        commands += 1;
        if commands >= 64 {
            break;
        }
    }
    // Client 1 goes away; client 2 keeps being served.
    fw.release_client(OWNER);
    let mut status = [0u8; 12];
    assert_eq!(
        fw.execute_for(OTHER, SevCommand::PlatformStatus.id(), &mut status, &mut other_mem),
        FirmwareStatus::SUCCESS
    );
});
