//! The host-instruction pseudo-commands ([`sev_abi::host_ops`]): RMPUPDATE,
//! PSMASH, PVALIDATE and a guest's own memory access, run through
//! [`Firmware::execute`](crate::Firmware::execute) like AMD's commands so
//! that they cross the firmware socket too.
//!
//! A guest access models the memory controller: a private access (C-bit
//! set) is decrypted or encrypted with the key of the guest, at the system
//! address (the tweak); for an SNP guest the RMP check comes first (the page
//! must be assigned to the guest's ASID at that GPA and, for private
//! accesses, validated); a shared access to a guest-assigned page faults,
//! as on hardware.
//!
//! A guest access and PVALIDATE act as the guest, which on hardware only
//! code running in the guest can: they take the guest principal's token
//! (SEVKIT_GUEST_ATTACH mints it, once per guest, for the caller that owns
//! the guest), never an ASID the host names. See [`crate::client`].

use sev_abi::host_ops::{
    GuestAccessOp, GuestAttachOp, HostOp, PsmashOp, PvalidateOp, RmpUpdateOp, GUEST_ACCESS_MAX_LEN,
    GUEST_ACCESS_NOT_VALIDATED, GUEST_ACCESS_NO_GUEST, GUEST_ACCESS_PRIVATE,
    GUEST_ACCESS_RMP_FAULT, GUEST_ACCESS_WRITE, GUEST_ATTACH_TAKEN, GUEST_TOKEN_LEN,
    PVALIDATE_NO_UPDATE, PVALIDATE_VALIDATE, RMP_ASSIGNED, RMP_IMMUTABLE, RMP_PAGE_2M,
};
use sev_abi::status::FirmwareStatus;
use sev_crypto::packet::ct_eq;
use zerocopy::little_endian::U32;
use zeroize::Zeroizing;

use crate::crypt::MemoryKey;
use crate::firmware::{parse, put, read_into, write_mem, Status};
use crate::snp::rmp::{PageSize, PvalidateOutcome, RmpError, RmpUpdate};
use crate::snp::Secret32;
use crate::{Firmware, SystemMemory};

/// The guest a principal's token names, as the memory controller needs it.
struct Principal<'a> {
    key: &'a MemoryKey,
    /// The guest's ASID (`None`: not running on one).
    asid: Option<u32>,
    snp: bool,
}

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
                if b.reserved.get() != 0 || flags & !(PVALIDATE_VALIDATE | RMP_PAGE_2M) != 0 {
                    return Err(FirmwareStatus::INVALID_PARAM);
                }
                let principal = self.principal(&b.token)?;
                b.no_update = U32::new(0);
                b.rc = match principal.asid {
                    Some(asid) if principal.snp => {
                        let result = self.pvalidate(
                            asid,
                            b.gpa.get(),
                            PageSize::from_bit(flags & RMP_PAGE_2M != 0),
                            flags & PVALIDATE_VALIDATE != 0,
                        );
                        if let Ok(PvalidateOutcome::NoUpdate) = result {
                            b.no_update = U32::new(PVALIDATE_NO_UPDATE);
                        }
                        U32::new(rc_of(result))
                    }
                    // PVALIDATE is an SNP instruction: #UD elsewhere.
                    Some(_) => U32::new(RmpError::FailInput.code()),
                    None => U32::new(GUEST_ACCESS_NO_GUEST),
                };
                put(buf, &b);
            }
            HostOp::GuestAccess => {
                let mut b: GuestAccessOp = parse(buf)?;
                if b.reserved.get() != 0 {
                    return Err(FirmwareStatus::INVALID_PARAM);
                }
                let rc = self.guest_access(&b, mem)?;
                b.rc = U32::new(rc);
                put(buf, &b);
            }
            HostOp::GuestAttach => {
                let mut b: GuestAttachOp = parse(buf)?;
                b.rc = U32::new(self.attach(&mut b)?);
                put(buf, &b);
            }
        }
        Ok(())
    }

    /// SEVKIT_GUEST_ATTACH: the token of the guest's principal, minted once.
    fn attach(&mut self, b: &mut GuestAttachOp) -> Status<u32> {
        // Find the guest (and refuse a second attach) before drawing
        // randomness: seeded runs stay reproducible.
        let taken = match (b.gctx_paddr.get(), b.handle.get()) {
            (0, 0) => return Err(FirmwareStatus::INVALID_GUEST),
            (0, handle) => self.guest(handle)?.principal.is_some(),
            (gctx, 0) => self
                .snp
                .guests
                .get(&gctx)
                .ok_or(FirmwareStatus::INVALID_GUEST)?
                .principal
                .is_some(),
            _ => return Err(FirmwareStatus::INVALID_PARAM),
        };
        if taken {
            return Ok(GUEST_ATTACH_TAKEN);
        }
        let mut token = Secret32::default();
        self.rng.fill_bytes(&mut token.0);
        b.token.copy_from_slice(&token.0);
        match (b.gctx_paddr.get(), b.handle.get()) {
            (0, handle) => self.guest_mut(handle)?.principal = Some(Zeroizing::new(token.0)),
            (gctx, _) => {
                if let Some(ctx) = self.snp.guests.get_mut(&gctx) {
                    ctx.principal = Some(token);
                }
            }
        }
        Ok(0)
    }

    /// The caller's guest whose principal holds `token` (`INVALID_GUEST`
    /// for any other token: the guest principal of another client, of no
    /// guest, or never minted).
    fn principal(&self, token: &[u8; GUEST_TOKEN_LEN]) -> Status<Principal<'_>> {
        let matches = |held: &[u8]| ct_eq(held, token);
        if token.iter().all(|&b| b == 0) {
            return Err(FirmwareStatus::INVALID_GUEST);
        }
        if let Some(ctx) = self
            .snp
            .guests
            .values()
            .find(|g| g.principal.as_ref().is_some_and(|p| matches(&p.0)))
        {
            return Ok(Principal {
                key: &ctx.key,
                asid: ctx.activated.then_some(ctx.asid),
                snp: true,
            });
        }
        self.guests
            .of(self.client)
            .map(|(_, g)| g)
            .find(|g| g.principal.as_ref().is_some_and(|p| matches(&p[..])))
            .map(|g| Principal {
                key: &g.key,
                asid: g.activation.asid(),
                snp: false,
            })
            .ok_or(FirmwareStatus::INVALID_GUEST)
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
        let principal = self.principal(&b.token)?;
        let (key, snp) = (principal.key, principal.snp);
        let Some(asid) = principal.asid else {
            return Ok(GUEST_ACCESS_NO_GUEST);
        };
        // The RMP check, page by page (SNP guests only).
        if snp {
            let mut page = spa - spa % PAGE;
            while page < end {
                let entry = self.snp.rmp.entry(page);
                let page_gpa = gpa.wrapping_add(page.wrapping_sub(spa - spa % PAGE));
                let owned = entry.assigned && entry.asid == asid;
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
