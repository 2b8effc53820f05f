//! The SNP launch steps as a VMM issues them to the software AMD-SP, one
//! call each. The commands return AMD's status for the test to check; the
//! RMPUPDATEs, which a test only sets up with, panic when refused.

use sev_abi::commands::{
    SnpActivateBuffer, SnpCommand, SnpLaunchStartBuffer, SnpLaunchUpdateBuffer, SnpPaddrBuffer,
};
use sev_abi::policy::SnpPolicy;
use sev_abi::snp_launch::PageType;
use sev_abi::status::FirmwareStatus;
use sev_firmware::snp::cpuid::{CpuidEntry, CpuidTable, CPUID_TABLE_LEN};
use sev_firmware::snp::rmp::RmpUpdate;
use sev_firmware::{Firmware, SystemMemory};
use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromZeros, IntoBytes};

/// RMPUPDATEs `spa` to a firmware page (what a guest context page must be
/// before SNP_GCTX_CREATE).
///
/// # Panics
/// When the RMPUPDATE fails.
pub fn firmware_page(fw: &mut Firmware, spa: u64) {
    fw.rmp_update(spa, &RmpUpdate::firmware_page())
        .unwrap_or_else(|e| panic!("RMPUPDATE of {spa:#x} to a firmware page: {e}"));
}

/// RMPUPDATEs `spa` to a 4 KiB page of the guest on `asid` at `gpa`,
/// assigned, immutable when `immutable` (PRE_GUEST for SNP_LAUNCH_UPDATE).
///
/// # Panics
/// When the RMPUPDATE fails.
pub fn guest_page(fw: &mut Firmware, spa: u64, gpa: u64, asid: u32, immutable: bool) {
    let update = RmpUpdate {
        immutable,
        ..RmpUpdate::pre_guest(gpa, asid)
    };
    fw.rmp_update(spa, &update)
        .unwrap_or_else(|e| panic!("RMPUPDATE of {spa:#x} to GPA {gpa:#x}: {e}"));
}

/// RMPUPDATEs `spa` to a PRE_GUEST page of the guest on `asid` at `gpa`.
///
/// # Panics
/// When the RMPUPDATE fails.
pub fn pre_guest(fw: &mut Firmware, spa: u64, gpa: u64, asid: u32) {
    guest_page(fw, spa, gpa, asid, true);
}

/// SNP_INIT.
///
/// # Panics
/// When it does not succeed.
pub fn snp_init(fw: &mut Firmware, mem: &mut dyn SystemMemory) {
    let status = fw.execute(SnpCommand::SnpInit.id(), &mut [], mem);
    assert_eq!(status, FirmwareStatus::SUCCESS, "SNP_INIT");
}

/// SNP_GCTX_CREATE of a context at `gctx`.
pub fn gctx_create(fw: &mut Firmware, mem: &mut dyn SystemMemory, gctx: u64) -> FirmwareStatus {
    let mut b = SnpPaddrBuffer {
        paddr: U64::new(gctx),
    };
    fw.call(SnpCommand::SnpGctxCreate, &mut b, mem)
}

/// SNP_LAUNCH_START of the guest at `gctx` with `policy`.
pub fn launch_start(
    fw: &mut Firmware,
    mem: &mut dyn SystemMemory,
    gctx: u64,
    policy: u64,
) -> FirmwareStatus {
    let mut b = SnpLaunchStartBuffer::new_zeroed();
    b.gctx_paddr = U64::new(gctx);
    b.policy = SnpPolicy::from_raw(policy);
    fw.call(SnpCommand::SnpLaunchStart, &mut b, mem)
}

/// SNP_ACTIVATE of the guest at `gctx` on `asid`.
pub fn activate(
    fw: &mut Firmware,
    mem: &mut dyn SystemMemory,
    gctx: u64,
    asid: u32,
) -> FirmwareStatus {
    let mut b = SnpActivateBuffer {
        gctx_paddr: U64::new(gctx),
        asid: U32::new(asid),
    };
    fw.call(SnpCommand::SnpActivate, &mut b, mem)
}

/// SNP_LAUNCH_UPDATE of the 4 KiB page at `spa` as `page_type` for the
/// guest at `gctx`.
pub fn launch_update(
    fw: &mut Firmware,
    mem: &mut dyn SystemMemory,
    gctx: u64,
    spa: u64,
    page_type: PageType,
) -> FirmwareStatus {
    let mut b = SnpLaunchUpdateBuffer::new_zeroed();
    b.gctx_paddr = U64::new(gctx);
    b.page_paddr = U64::new(spa);
    b.flags = U32::new(SnpLaunchUpdateBuffer::flags_for(
        false,
        page_type.as_u8(),
        false,
    ));
    fw.call(SnpCommand::SnpLaunchUpdate, &mut b, mem)
}

/// Starts an SNP guest whose context page `gctx` is already a FIRMWARE
/// page: SNP_GCTX_CREATE, SNP_LAUNCH_START with `policy`, SNP_ACTIVATE on
/// `asid`.
///
/// # Panics
/// When a step does not succeed (naming it).
pub fn start_snp_guest(
    fw: &mut Firmware,
    mem: &mut dyn SystemMemory,
    gctx: u64,
    policy: u64,
    asid: u32,
) {
    let status = gctx_create(fw, mem, gctx);
    assert_eq!(status, FirmwareStatus::SUCCESS, "SnpGctxCreate");
    let status = launch_start(fw, mem, gctx, policy);
    assert_eq!(status, FirmwareStatus::SUCCESS, "SnpLaunchStart");
    let status = activate(fw, mem, gctx, asid);
    assert_eq!(status, FirmwareStatus::SUCCESS, "SnpActivate");
}

/// A guest up to the launch on an SNP platform not yet initialized:
/// SNP_INIT, `gctx` made a firmware page, then [`start_snp_guest`].
///
/// # Panics
/// As [`snp_init`], [`firmware_page`] and [`start_snp_guest`].
pub fn launching(fw: &mut Firmware, mem: &mut dyn SystemMemory, gctx: u64, policy: u64, asid: u32) {
    snp_init(fw, mem);
    firmware_page(fw, gctx);
    start_snp_guest(fw, mem, gctx, policy, asid);
}

/// A valid CPUID page: one entry, the SEV leaf (0x8000_001F) with the
/// platform's C-bit position `c_bit` (the firmware checks it, as on
/// hardware).
pub fn cpuid_page(c_bit: u8) -> Vec<u8> {
    let mut t = CpuidTable::new_zeroed();
    t.count = U32::new(1);
    t.entries[0] = CpuidEntry {
        eax_in: U32::new(0x8000_001F),
        eax: U32::new(0x1_FFFF),
        ebx: U32::new(0x4000 | u32::from(c_bit)),
        ..CpuidEntry::default()
    };
    let mut page = vec![0u8; 4096];
    page[..CPUID_TABLE_LEN].copy_from_slice(t.as_bytes());
    page
}

#[cfg(test)]
mod tests {
    use sev_firmware::snp::SnpGuestState;
    use sev_firmware::VecMemory;

    use super::*;

    #[test]
    fn a_guest_launches_and_measures_a_page() {
        const GCTX: u64 = 0x10_0000;
        const PAGE: u64 = 0x20_0000;
        let mut fw = crate::firmware(0x11);
        let mut mem = VecMemory::new(1 << 24);
        launching(
            &mut fw,
            &mut mem,
            GCTX,
            SnpPolicy::DEFAULT_RAW | SnpPolicy::DEBUG,
            1,
        );
        assert_eq!(
            fw.snp_guest(GCTX).map(|g| g.state),
            Some(SnpGuestState::Launch)
        );
        pre_guest(&mut fw, PAGE, 0, 1);
        assert_eq!(
            launch_update(&mut fw, &mut mem, GCTX, PAGE, PageType::Normal),
            FirmwareStatus::SUCCESS
        );
        // The page is the guest's now: a second update is refused.
        assert_ne!(
            launch_update(&mut fw, &mut mem, GCTX, PAGE, PageType::Normal),
            FirmwareStatus::SUCCESS
        );
    }
}
