//! [`MemoryDebugOps`] over the AMD-SP: private pages through the debug
//! commands, shared pages as plain host access.
//!
//! **Legacy SEV / SEV-ES** (DBG_DECRYPT 0x60 / DBG_ENCRYPT 0x61). The
//! firmware works on 16-byte AES blocks: source, destination and length must
//! be multiples of 16 (INVALID_ADDRESS / INVALID_LENGTH otherwise). Each page
//! piece of an access is widened to the 16-byte blocks that cover it and
//! decrypted into the first bounce page; a write that does not cover whole
//! blocks first decrypts them, patches the plaintext in the bounce page and
//! encrypts the blocks back (read-modify-write). The commands take system
//! physical addresses; guest pages are identity-mapped, so GPA = SPA.
//!
//! **SEV-SNP** (SNP_DBG_DECRYPT 0xB0 / SNP_DBG_ENCRYPT 0xB1) moves one whole
//! 4 KiB page between a guest page and a host page. The guest page must be
//! assigned to the guest's ASID in the RMP (INVALID_PAGE_STATE /
//! INVALID_PAGE_OWNER otherwise); the host page must be in the Hypervisor
//! or Firmware RMP state. The bounce pages of the host area
//! ([`host_area::DEBUG_BOUNCE`]: page 0 receives decrypted pages, page 1
//! holds pages to encrypt) are never assigned, so they stay in the
//! Hypervisor state and no RMPUPDATE is needed. Partial-page writes decrypt
//! the page, patch it and encrypt it back.
//!
//! Plaintext never stays in the bounce pages: they are zeroed after every
//! command, and the host-side copies are zeroized.

use sev_abi::commands::{DbgBuffer, SevCommand, SnpCommand, SnpDbgBuffer};
use sev_abi::status::FirmwareStatus;
use sev_sp::AmdSp;
use sev_sp::SystemMemory;
use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromZeros, IntoBytes};
use zeroize::Zeroizing;

use super::{check_len, pages, Access, DebugError, MemoryDebugOps, PolicyBit, PAGE};
use crate::guest::FirmwareGuest;
use crate::machine::memory::{host_area, GuestMemory};

/// AES block: the legacy debug commands' granularity.
const BLOCK: u64 = 16;

static ZEROS: [u8; PAGE as usize] = [0; PAGE as usize];

/// Debug access to one guest through the AMD-SP, over the guest's memory.
pub struct EncryptedDebug<'a> {
    sp: &'a mut dyn AmdSp,
    memory: &'a mut GuestMemory,
    guest: FirmwareGuest,
}

impl std::fmt::Debug for EncryptedDebug<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncryptedDebug")
            .field("guest", &self.guest)
            .finish_non_exhaustive()
    }
}

impl<'a> EncryptedDebug<'a> {
    /// Debug access to `guest`, whose memory is `memory`, through `sp` (the
    /// AMD-SP that launched it, sharing `memory`'s memfd).
    pub fn new(sp: &'a mut dyn AmdSp, memory: &'a mut GuestMemory, guest: FirmwareGuest) -> Self {
        Self { sp, memory, guest }
    }

    /// The guest.
    pub fn guest(&self) -> &FirmwareGuest {
        &self.guest
    }

    /// The guest's memory.
    pub fn memory(&self) -> &GuestMemory {
        self.memory
    }

    fn bounce(&self, page: u64) -> u64 {
        self.memory
            .layout()
            .host(host_area::DEBUG_BOUNCE + page * PAGE)
    }

    fn check(&self, gpa: u64, len: usize) -> Result<(), DebugError> {
        check_len(gpa, len)?;
        if self.memory.layout().is_guest(gpa, len as u64) {
            Ok(())
        } else {
            Err(DebugError::NotGuestMemory {
                gpa,
                len: len as u64,
            })
        }
    }

    fn private(&self, gpa: u64, access: Access) -> bool {
        match access {
            Access::Private => true,
            Access::Shared => false,
            Access::ByPageState => self.memory.is_private(gpa),
        }
    }

    /// Reads `buf.len()` bytes of the bounce page `page` and zeroes them.
    fn take_bounce(&mut self, page: u64, buf: &mut [u8]) -> Result<(), DebugError> {
        let at = self.bounce(page);
        let r = self.memory.system().read(at, buf);
        self.wipe_bounce(page, buf.len())?;
        Ok(r?)
    }

    fn wipe_bounce(&mut self, page: u64, len: usize) -> Result<(), DebugError> {
        let at = self.bounce(page);
        Ok(self.memory.system_mut().write(at, &ZEROS[..len])?)
    }

    // ---------------------------------------------------------------- legacy

    fn legacy(
        &mut self,
        command: SevCommand,
        src: u64,
        dst: u64,
        len: u64,
        gpa: u64,
    ) -> Result<(), DebugError> {
        let FirmwareGuest::Legacy { handle, .. } = self.guest else {
            return Err(DebugError::Unsupported("not a legacy guest"));
        };
        let mut b = DbgBuffer::new_zeroed();
        b.handle = U32::new(handle);
        b.src_paddr = U64::new(src);
        b.dst_paddr = U64::new(dst);
        b.len = U32::new(len as u32);
        let status = self.sp.execute(command.id(), b.as_mut_bytes())?;
        check_status(command.name(), gpa, status, PolicyBit::Nodbg)
    }

    /// The 16-byte blocks covering `gpa..gpa + n` (within one page).
    fn blocks(gpa: u64, n: usize) -> (u64, u64) {
        let start = gpa - gpa % BLOCK;
        let end = (gpa + n as u64).next_multiple_of(BLOCK);
        (start, end - start)
    }

    fn legacy_read(&mut self, gpa: u64, out: &mut [u8]) -> Result<(), DebugError> {
        let (start, len) = Self::blocks(gpa, out.len());
        let bounce = self.bounce(0);
        let r = self.legacy(SevCommand::DbgDecrypt, start, bounce, len, gpa);
        let mut plain = Zeroizing::new(vec![0u8; len as usize]);
        let taken = self.take_bounce(0, &mut plain);
        r?;
        taken?;
        let skip = (gpa - start) as usize;
        out.copy_from_slice(&plain[skip..skip + out.len()]);
        Ok(())
    }

    fn legacy_write(&mut self, gpa: u64, data: &[u8]) -> Result<(), DebugError> {
        let (start, len) = Self::blocks(gpa, data.len());
        let mut plain = Zeroizing::new(vec![0u8; len as usize]);
        if start != gpa || len != data.len() as u64 {
            self.legacy_read(start, &mut plain)?;
        }
        let skip = (gpa - start) as usize;
        plain[skip..skip + data.len()].copy_from_slice(data);
        let bounce = self.bounce(0);
        let r = self
            .memory
            .system_mut()
            .write(bounce, &plain)
            .map_err(DebugError::from)
            .and_then(|()| self.legacy(SevCommand::DbgEncrypt, bounce, start, len, gpa));
        let wiped = self.wipe_bounce(0, plain.len());
        r?;
        wiped
    }

    // ------------------------------------------------------------------- SNP

    fn snp(&mut self, command: SnpCommand, src: u64, dst: u64, gpa: u64) -> Result<(), DebugError> {
        let FirmwareGuest::Snp { gctx_paddr, .. } = self.guest else {
            return Err(DebugError::Unsupported("not an SNP guest"));
        };
        let mut b = SnpDbgBuffer::new_zeroed();
        b.gctx_paddr = U64::new(gctx_paddr);
        b.src_paddr = U64::new(src);
        b.dst_paddr = U64::new(dst);
        let status = self.sp.execute(command.id(), b.as_mut_bytes())?;
        check_status(command.name(), gpa, status, PolicyBit::Debug)
    }

    /// Decrypts the guest page at `page` into a host copy.
    fn snp_page(&mut self, page: u64, gpa: u64) -> Result<Zeroizing<Vec<u8>>, DebugError> {
        let bounce = self.bounce(0);
        let r = self.snp(SnpCommand::SnpDbgDecrypt, page, bounce, gpa);
        let mut plain = Zeroizing::new(vec![0u8; PAGE as usize]);
        let taken = self.take_bounce(0, &mut plain);
        r?;
        taken?;
        Ok(plain)
    }

    fn snp_read(&mut self, gpa: u64, out: &mut [u8]) -> Result<(), DebugError> {
        let page = gpa - gpa % PAGE;
        let plain = self.snp_page(page, gpa)?;
        let skip = (gpa - page) as usize;
        out.copy_from_slice(&plain[skip..skip + out.len()]);
        Ok(())
    }

    fn snp_write(&mut self, gpa: u64, data: &[u8]) -> Result<(), DebugError> {
        let page = gpa - gpa % PAGE;
        let mut plain = if data.len() as u64 == PAGE {
            Zeroizing::new(vec![0u8; PAGE as usize])
        } else {
            self.snp_page(page, gpa)?
        };
        let skip = (gpa - page) as usize;
        plain[skip..skip + data.len()].copy_from_slice(data);
        let bounce = self.bounce(1);
        let r = self
            .memory
            .system_mut()
            .write(bounce, &plain)
            .map_err(DebugError::from)
            .and_then(|()| self.snp(SnpCommand::SnpDbgEncrypt, bounce, page, gpa));
        let wiped = self.wipe_bounce(1, plain.len());
        r?;
        wiped
    }
}

impl MemoryDebugOps for EncryptedDebug<'_> {
    fn read(&mut self, gpa: u64, buf: &mut [u8], access: Access) -> Result<(), DebugError> {
        if buf.is_empty() {
            return Ok(());
        }
        self.check(gpa, buf.len())?;
        for (at, off, n) in pages(gpa, buf.len()) {
            let out = &mut buf[off..off + n];
            if !self.private(at, access) {
                self.memory
                    .host_read(at, out)
                    .map_err(|_| DebugError::NotGuestMemory {
                        gpa: at,
                        len: n as u64,
                    })?;
            } else if self.guest.is_snp() {
                self.snp_read(at, out)?;
            } else {
                self.legacy_read(at, out)?;
            }
        }
        Ok(())
    }

    fn write(&mut self, gpa: u64, data: &[u8], access: Access) -> Result<(), DebugError> {
        if data.is_empty() {
            return Ok(());
        }
        self.check(gpa, data.len())?;
        for (at, off, n) in pages(gpa, data.len()) {
            let piece = &data[off..off + n];
            if !self.private(at, access) {
                self.memory
                    .host_write(at, piece)
                    .map_err(|_| DebugError::NotGuestMemory {
                        gpa: at,
                        len: n as u64,
                    })?;
            } else if self.guest.is_snp() {
                self.snp_write(at, piece)?;
            } else {
                self.legacy_write(at, piece)?;
            }
        }
        Ok(())
    }
}

/// Turns the firmware's answer into a result, explaining refusals.
fn check_status(
    command: &'static str,
    gpa: u64,
    status: FirmwareStatus,
    policy: PolicyBit,
) -> Result<(), DebugError> {
    let hint = match status {
        FirmwareStatus::SUCCESS => return Ok(()),
        FirmwareStatus::POLICY_FAILURE => {
            return Err(DebugError::PolicyForbids {
                command,
                status,
                policy,
            })
        }
        FirmwareStatus::INACTIVE => {
            "the guest is not activated on an ASID: run ACTIVATE (SNP_ACTIVATE) first"
        }
        FirmwareStatus::INVALID_GUEST => {
            "the firmware has no such guest (handle or guest context): it was never launched \
             or has been decommissioned"
        }
        FirmwareStatus::INVALID_PAGE_STATE => {
            "the guest page is not assigned to the guest in the RMP (a shared or reclaimed \
             page: read it with Access::Shared), or the bounce page is not in the Hypervisor \
             or Firmware state"
        }
        FirmwareStatus::INVALID_PAGE_OWNER => {
            "the page is assigned to another guest's ASID in the RMP"
        }
        FirmwareStatus::INVALID_PLATFORM_STATE => {
            "the platform is not initialized (INIT / SNP_INIT)"
        }
        FirmwareStatus::INVALID_ADDRESS | FirmwareStatus::INVALID_PARAM => {
            "the firmware cannot reach the address (outside system memory or misaligned)"
        }
        other => other.description(),
    };
    Err(DebugError::Firmware {
        command,
        gpa,
        status,
        hint,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sev_sp::SpError;

    use crate::machine::memory::MemoryLayout;

    /// A fake AMD-SP that answers every command with one status and records
    /// the command buffers.
    struct Fixed(FirmwareStatus, Vec<(u32, Vec<u8>)>);

    impl AmdSp for Fixed {
        fn execute(&mut self, command: u32, buffer: &mut [u8]) -> Result<FirmwareStatus, SpError> {
            self.1.push((command, buffer.to_vec()));
            Ok(self.0)
        }
    }

    fn memory() -> GuestMemory {
        GuestMemory::new(MemoryLayout::q35(16 << 20, 0).unwrap()).unwrap()
    }

    const LEGACY: FirmwareGuest = FirmwareGuest::Legacy {
        handle: 7,
        asid: 1,
        policy: sev_abi::policy::GuestPolicy::from_raw(0),
    };

    #[test]
    fn legacy_commands_cover_the_blocks() {
        let mut mem = memory();
        mem.set_private(0, 0x4000, true);
        let mut sp = Fixed(FirmwareStatus::SUCCESS, Vec::new());
        let mut dbg = EncryptedDebug::new(&mut sp, &mut mem, LEGACY);
        let mut buf = [0u8; 5];
        dbg.read(0x1FFE, &mut buf, Access::ByPageState).unwrap();
        dbg.write(0x2003, &[1, 2, 3], Access::Private).unwrap();
        let bounce = dbg.bounce(0);
        let cmds: Vec<(u32, u64, u64, u32)> =
            sp.1.iter()
                .map(|(c, b)| {
                    let (d, _) = <DbgBuffer as zerocopy::FromBytes>::read_from_prefix(b).unwrap();
                    (*c, d.src_paddr.get(), d.dst_paddr.get(), d.len.get())
                })
                .collect();
        assert_eq!(
            cmds,
            vec![
                // The read spans two pages: one block each.
                (0x60, 0x1FF0, bounce, 16),
                (0x60, 0x2000, bounce, 16),
                // The write: read-modify-write of the block.
                (0x60, 0x2000, bounce, 16),
                (0x61, bounce, 0x2000, 16),
            ]
        );
        assert!(sp.1.iter().all(|(_, b)| b[..4] == 7u32.to_le_bytes()));
    }

    #[test]
    fn shared_pages_and_limits_never_reach_the_firmware() {
        let mut mem = memory();
        let mut sp = Fixed(FirmwareStatus::SUCCESS, Vec::new());
        let mut dbg = EncryptedDebug::new(&mut sp, &mut mem, LEGACY);
        dbg.write(0x3000, b"plain", Access::ByPageState).unwrap();
        let mut buf = [0u8; 5];
        dbg.read(0x3000, &mut buf, Access::Shared).unwrap();
        assert_eq!(&buf, b"plain");
        assert!(dbg.read(0, &mut [], Access::Private).is_ok());
        assert!(dbg.read(u64::MAX, &mut [], Access::Private).is_ok());
        assert!(matches!(
            dbg.read(u64::MAX - 1, &mut buf, Access::Private),
            Err(DebugError::NotGuestMemory { .. })
        ));
        assert!(matches!(
            dbg.read(16 << 20, &mut buf, Access::Private),
            Err(DebugError::NotGuestMemory { .. })
        ));
        let host = dbg.memory().layout().host_base;
        assert!(matches!(
            dbg.write(host, &buf, Access::Private),
            Err(DebugError::NotGuestMemory { .. })
        ));
        let mut huge = vec![0u8; super::super::MAX_ACCESS_LEN + 1];
        assert!(matches!(
            dbg.read(0, &mut huge, Access::Private),
            Err(DebugError::TooLong { .. })
        ));
        assert!(sp.1.is_empty());
    }

    #[test]
    fn refusals_are_explained() {
        let mut mem = memory();
        let mut sp = Fixed(FirmwareStatus::INVALID_PAGE_STATE, Vec::new());
        let snp = FirmwareGuest::Snp {
            gctx_paddr: 0x1000,
            asid: 1,
            policy: sev_abi::policy::SnpPolicy::from_raw(0x30000),
        };
        let mut dbg = EncryptedDebug::new(&mut sp, &mut mem, snp);
        let e = dbg
            .read(0x5008, &mut [0u8; 4], Access::Private)
            .unwrap_err();
        assert_eq!(
            e.firmware_status(),
            Some(FirmwareStatus::INVALID_PAGE_STATE)
        );
        assert!(
            e.to_string()
                .contains("SNP_DBG_DECRYPT of guest address 0x5008"),
            "{e}"
        );
        let (cmd, buf) = &sp.1[0];
        assert_eq!(*cmd, 0xB0);
        let (b, _) = <SnpDbgBuffer as zerocopy::FromBytes>::read_from_prefix(buf).unwrap();
        assert_eq!((b.gctx_paddr.get(), b.src_paddr.get()), (0x1000, 0x5000));
    }
}
