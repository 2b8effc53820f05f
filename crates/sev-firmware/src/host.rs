//! The host-instruction pseudo-commands ([`sev_abi::host_ops`]): RMPUPDATE,
//! PSMASH, PVALIDATE and a guest's own memory access, run through
//! [`Firmware::execute`](crate::Firmware::execute) like AMD's commands so
//! that they cross the firmware socket too.
//!
//! A guest access models the memory controller: a private access (C-bit
//! set) is decrypted or encrypted with the key of the guest running on the
//! ASID, at the system address (the tweak); for an SNP guest the RMP check
//! comes first (the page must be assigned to the ASID at that GPA and, for
//! private accesses, validated); a shared access to a guest-assigned page
//! faults, as on hardware.

use sev_abi::host_ops::{
    GuestAccessOp, HostOp, PsmashOp, PvalidateOp, RmpUpdateOp, GUEST_ACCESS_MAX_LEN,
    GUEST_ACCESS_NOT_VALIDATED, GUEST_ACCESS_NO_GUEST, GUEST_ACCESS_PRIVATE,
    GUEST_ACCESS_RMP_FAULT, GUEST_ACCESS_WRITE, PVALIDATE_NO_UPDATE, PVALIDATE_VALIDATE,
    RMP_ASSIGNED, RMP_IMMUTABLE, RMP_PAGE_2M,
};
use sev_abi::status::FirmwareStatus;
use zerocopy::little_endian::U32;
use zeroize::Zeroizing;

use crate::crypt::MemoryKey;
use crate::firmware::{parse, put, read_into, write_mem, Status};
use crate::snp::rmp::{PageSize, PvalidateOutcome, RmpError, RmpUpdate};
use crate::{Firmware, SystemMemory};

const PAGE: u64 = 4096;

fn rc_of<T>(result: Result<T, RmpError>) -> u32 {
    result.map_or_else(RmpError::code, |_| 0)
}

impl Firmware {
    pub(crate) fn host_dispatch(
        &mut self,
        op: HostOp,
        buf: &mut [u8],
        mem: &mut dyn SystemMemory,
    ) -> Status {
        match op {
            HostOp::RmpUpdate => {
                let mut b: RmpUpdateOp = parse(buf)?;
                let flags = b.flags.get();
                if b.reserved.get() != 0
                    || flags & !(RMP_ASSIGNED | RMP_PAGE_2M | RMP_IMMUTABLE) != 0
                {
                    return Err(FirmwareStatus::INVALID_PARAM);
                }
                let update = RmpUpdate {
                    gpa: b.gpa.get(),
                    assigned: flags & RMP_ASSIGNED != 0,
                    page_size: PageSize::from_bit(flags & RMP_PAGE_2M != 0),
                    immutable: flags & RMP_IMMUTABLE != 0,
                    asid: b.asid.get(),
                };
                b.rc = U32::new(rc_of(self.rmp_update(b.spa.get(), &update)));
                put(buf, &b);
            }
            HostOp::Psmash => {
                let mut b: PsmashOp = parse(buf)?;
                if b.reserved.get() != 0 {
                    return Err(FirmwareStatus::INVALID_PARAM);
                }
                b.rc = U32::new(rc_of(self.psmash(b.spa.get())));
                put(buf, &b);
            }
            HostOp::Pvalidate => {
                let mut b: PvalidateOp = parse(buf)?;
                let flags = b.flags.get();
                if flags & !(PVALIDATE_VALIDATE | RMP_PAGE_2M) != 0 {
                    return Err(FirmwareStatus::INVALID_PARAM);
                }
                let result = self.pvalidate(
                    b.asid.get(),
                    b.gpa.get(),
                    PageSize::from_bit(flags & RMP_PAGE_2M != 0),
                    flags & PVALIDATE_VALIDATE != 0,
                );
                b.no_update = U32::new(match result {
                    Ok(PvalidateOutcome::NoUpdate) => PVALIDATE_NO_UPDATE,
                    _ => 0,
                });
                b.rc = U32::new(rc_of(result));
                put(buf, &b);
            }
            HostOp::GuestAccess => {
                let mut b: GuestAccessOp = parse(buf)?;
                let rc = self.guest_access(&b, mem)?;
                b.rc = U32::new(rc);
                put(buf, &b);
            }
        }
        Ok(())
    }

    /// The key of the guest running on `asid`, and whether it is an SNP
    /// guest.
    fn key_of_asid(&self, asid: u32) -> Option<(&MemoryKey, bool)> {
        if let Some(gctx) = self.snp.bound_asids.get(&asid) {
            return self.snp.guests.get(gctx).map(|g| (&g.key, true));
        }
        self.guests
            .values()
            .find(|g| g.activation.asid() == Some(asid))
            .map(|g| (&g.key, false))
    }

    /// One guest access; `Ok(rc)` when the access ran or faulted.
    fn guest_access(&self, b: &GuestAccessOp, mem: &mut dyn SystemMemory) -> Status<u32> {
        let flags = b.flags.get();
        if flags & !(GUEST_ACCESS_WRITE | GUEST_ACCESS_PRIVATE) != 0
            || b.len.get() > GUEST_ACCESS_MAX_LEN
        {
            return Err(FirmwareStatus::INVALID_PARAM);
        }
        let (spa, gpa, len) = (b.spa.get(), b.gpa.get(), u64::from(b.len.get()));
        let (Some(end), Some(_)) = (spa.checked_add(len), b.host_paddr.get().checked_add(len))
        else {
            return Err(FirmwareStatus::INVALID_ADDRESS);
        };
        if len == 0 {
            return Ok(0);
        }
        let (write, private) = (
            flags & GUEST_ACCESS_WRITE != 0,
            flags & GUEST_ACCESS_PRIVATE != 0,
        );
        let Some((key, snp)) = self.key_of_asid(b.asid.get()) else {
            return Ok(GUEST_ACCESS_NO_GUEST);
        };
        // The RMP check, page by page (SNP guests only).
        if snp {
            let mut page = spa - spa % PAGE;
            while page < end {
                let entry = self.snp.rmp.entry(page);
                let page_gpa = gpa.wrapping_add(page.wrapping_sub(spa - spa % PAGE));
                let owned = entry.assigned && entry.asid == b.asid.get();
                if private {
                    if !owned || entry.gpa != page_gpa - page_gpa % PAGE {
                        return Ok(GUEST_ACCESS_RMP_FAULT);
                    }
                    if !entry.validated {
                        return Ok(GUEST_ACCESS_NOT_VALIDATED);
                    }
                } else if entry.assigned {
                    return Ok(GUEST_ACCESS_RMP_FAULT);
                }
                // The top page of the address space ends the scan.
                let Some(next) = page.checked_add(PAGE) else {
                    break;
                };
                page = next;
            }
        }
        // Whole 16-byte blocks cover the access (the XTS block size).
        let start = spa - spa % 16;
        let block_end = end
            .checked_next_multiple_of(16)
            .ok_or(FirmwareStatus::INVALID_ADDRESS)?;
        let span = usize::try_from(block_end - start).map_err(|_| FirmwareStatus::INVALID_PARAM)?;
        let mut blocks = Zeroizing::new(vec![0u8; span]);
        read_into(mem, start, &mut blocks)?;
        if private {
            key.decrypt(start, &mut blocks);
        }
        let at = (spa - start) as usize;
        let len = len as usize;
        if write {
            read_into(mem, b.host_paddr.get(), &mut blocks[at..at + len])?;
            if private {
                key.encrypt(start, &mut blocks);
            }
            write_mem(mem, start, &blocks)?;
        } else {
            write_mem(mem, b.host_paddr.get(), &blocks[at..at + len])?;
        }
        Ok(0)
    }
}
