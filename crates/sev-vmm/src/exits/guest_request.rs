//! SNP guest requests as KVM handles them ([`forward_guest_request`]): the
//! guest's request message (in a shared page) is copied to a host page, the
//! response page is made a firmware page (RMPUPDATE), SNP_GUEST_REQUEST
//! runs, the response page is reclaimed (SNP_PAGE_RECLAIM, RMPUPDATE back
//! to the hypervisor) and its message copied to the guest's shared response
//! page. An extended request first supplies the certificate table through
//! [`crate::exits::certs`] (KVM's certificate exit): a buffer too small is
//! answered with the number of pages needed, and the guest retries.

use sev_abi::commands::{SnpCommand, SnpGuestRequestBuffer, SnpPageReclaimBuffer};
use zerocopy::little_endian::U64;

use crate::guest::FirmwareGuest;
use crate::host::{Host, HostError};
use crate::machine::memory::{host_area, PAGE_SIZE};

/// Shared guest pages the simulated guest uses for its requests (low RAM,
/// below OVMF's SEV metadata areas, never measured).
pub mod guest_pages {
    /// The request message page.
    pub const REQUEST: u64 = 0x10_000;
    /// The response message page.
    pub const RESPONSE: u64 = 0x11_000;
    /// The certificate buffer (up to [`CERTS_MAX_PAGES`] pages).
    pub const CERTS: u64 = 0x20_000;
    /// Most certificate pages the simulated guest offers.
    pub const CERTS_MAX_PAGES: u64 = 64;
}

/// Why a guest request failed.
#[derive(Debug, thiserror::Error)]
pub enum GuestRequestError {
    /// A firmware command or host instruction failed.
    #[error(transparent)]
    Host(#[from] HostError),
    /// Guest memory could not be read or written.
    #[error(transparent)]
    Memory(#[from] sev_sp::MemoryError),
    /// The guest is not an SNP guest, or not running.
    #[error("{0}")]
    NotAvailable(String),
    /// The simulated guest refused the response (bad tag, sequence, ...).
    #[error("the guest rejected the response: {0}")]
    Guest(String),
}

/// KVM's side of SNP_GUEST_REQUEST: runs the guest's request message
/// (from its shared page at `req_gpa`) and writes the response message to
/// its shared page at `rsp_gpa`.
pub fn forward_guest_request(
    host: &mut Host,
    guest: FirmwareGuest,
    req_gpa: u64,
    rsp_gpa: u64,
) -> Result<(), GuestRequestError> {
    let FirmwareGuest::Snp { gctx_paddr, .. } = guest else {
        return Err(GuestRequestError::NotAvailable(
            "guest requests need an SEV-SNP guest".into(),
        ));
    };
    let mut page = vec![0u8; PAGE_SIZE as usize];
    host.memory().host_read(req_gpa, &mut page)?;
    let req = host.put(host_area::GUEST_REQUEST, &page)?;
    let rsp = host.memory().layout().host(host_area::GUEST_RESPONSE);
    host.make_firmware(rsp)?;
    let mut b = SnpGuestRequestBuffer {
        gctx_paddr: U64::new(gctx_paddr),
        req_paddr: U64::new(req),
        rsp_paddr: U64::new(rsp),
    };
    let result = host.run(SnpCommand::SnpGuestRequest.id(), &mut b);
    // Give the response page back to the hypervisor whatever happened.
    let mut reclaim = SnpPageReclaimBuffer {
        paddr: U64::new(rsp),
    };
    host.run(SnpCommand::SnpPageReclaim.id(), &mut reclaim)?;
    host.rmp_update(rsp, 0, 0, 0)?;
    result?;
    let response = host.get(host_area::GUEST_RESPONSE, PAGE_SIZE as usize)?;
    host.memory_mut().host_write(rsp_gpa, &response)?;
    Ok(())
}
