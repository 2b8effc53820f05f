//! The guest's own side, for VMs whose guest does not run
//! ([`SimulatedGuest`]). It holds the guest's principal (attached once, at
//! launch: [`crate::host::GuestPrincipal`]), reads its own memory with it,
//! and does what Linux's sev-guest driver does: read VMPCK0 from the secrets
//! page (a private read: only the guest can), seal MSG_REPORT_REQ with it,
//! make the (extended) request through the host
//! ([`crate::exits::guest_request`]), open the response. Its message
//! sequence numbers last as long as the guest, as the driver's do.
//!
//! A backend that runs the guest's vCPUs would replace this model: its
//! guest does these things itself.

use serde::{Deserialize, Serialize};
use sev_abi::guest_msg::KeySelect;
use sev_abi::secrets_page::SecretsPage;
use sev_guest::GuestChannel;
use zerocopy::FromBytes;
use zeroize::Zeroize;

use crate::exits::guest_request::{forward_guest_request, guest_pages, GuestRequestError};
use crate::guest::{FirmwareGuest, GuestActions};
use crate::host::{GuestPrincipal, Host, HostError};
use crate::machine::memory::PAGE_SIZE;

/// The guest's own side, for VMs whose guest does not run: its principal
/// (its view of its memory) and, for SNP guests, a model of the guest
/// kernel's sev-guest driver whose VMPCK0 channel (and so its message
/// sequence numbers) lasts as long as the guest.
pub struct SimulatedGuest {
    principal: GuestPrincipal,
    guest: FirmwareGuest,
    /// The SNP secrets page's GPA (`None`: no secrets page, no requests).
    secrets_gpa: Option<u64>,
    /// The VMPCK0 channel, opened from the secrets page at the first
    /// request.
    channel: Option<GuestChannel>,
}

impl core::fmt::Debug for SimulatedGuest {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SimulatedGuest")
            .field("guest", &self.guest)
            .finish_non_exhaustive()
    }
}

impl SimulatedGuest {
    /// Attaches to `guest` as its principal (once per guest: the firmware
    /// refuses a second attach). `secrets_gpa` is the SNP secrets page.
    pub fn attach(
        host: &mut Host,
        guest: FirmwareGuest,
        secrets_gpa: Option<u64>,
    ) -> Result<Self, HostError> {
        Ok(Self {
            principal: host.attach_guest(guest)?,
            guest,
            secrets_gpa,
            channel: None,
        })
    }

    /// The VMPCK0 channel: opened from the secrets page the first time
    /// (a private read), kept after.
    fn channel(&mut self, host: &mut Host) -> Result<&mut GuestChannel, GuestRequestError> {
        if self.channel.is_none() {
            let secrets_gpa = self.secrets_gpa.ok_or_else(|| {
                GuestRequestError::NotAvailable("the firmware image has no SNP secrets page".into())
            })?;
            let mut page = vec![0u8; PAGE_SIZE as usize];
            host.guest_access(&self.principal, secrets_gpa, &mut page, false, true)?;
            let secrets = SecretsPage::read_from_bytes(&page)
                .map_err(|_| GuestRequestError::Guest("the secrets page does not parse".into()));
            page.zeroize();
            let mut secrets = secrets?;
            let channel = GuestChannel::from_secrets_page(&secrets, 0)
                .map_err(|e| GuestRequestError::Guest(e.to_string()));
            secrets.vmpck.zeroize();
            self.channel = Some(channel?);
        }
        self.channel
            .as_mut()
            .ok_or_else(|| GuestRequestError::Guest("no channel".into()))
    }

    /// Seals MSG_REPORT_REQ and writes it to the request page.
    fn write_report_request(
        &mut self,
        host: &mut Host,
        report_data: [u8; 64],
    ) -> Result<(), GuestRequestError> {
        let request = self
            .channel(host)?
            .request_report(report_data, 0, KeySelect::Vcek)
            .map_err(|e| GuestRequestError::Guest(e.to_string()))?;
        host.memory_mut()
            .host_write(guest_pages::REQUEST, &request)?;
        Ok(())
    }

    /// Opens the report response from the response page.
    fn read_report_response(&mut self, host: &mut Host) -> Result<Vec<u8>, GuestRequestError> {
        let mut page = vec![0u8; PAGE_SIZE as usize];
        host.memory().host_read(guest_pages::RESPONSE, &mut page)?;
        let report = self
            .channel(host)?
            .open_report_response(&page)
            .map_err(|e| GuestRequestError::Guest(e.to_string()))?;
        Ok(zerocopy::IntoBytes::as_bytes(&report).to_vec())
    }
}

/// What the simulated guest got from an extended report request: an SNP
/// extended report as the guest receives it.
///
/// It is also the answer to the sevkit QMP extension
/// `x-sevkit-guest-report`: `{"report": base64, "certs": base64}` (the
/// offered sizes are not sent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestReport {
    /// The signed attestation report (1184 bytes).
    #[serde(with = "crate::qemu::b64::text")]
    pub report: Vec<u8>,
    /// The certificate table the host supplied (GHCB format; 24 zero bytes
    /// when the host has none).
    #[serde(with = "crate::qemu::b64::text")]
    pub certs: Vec<u8>,
    /// The buffer sizes (pages) the guest offered, in order: more than one
    /// when the first was too small and it retried with the size learned.
    #[serde(skip)]
    pub pages_offered: Vec<u64>,
}

impl GuestReport {
    /// A report and certificate table (no sizes offered recorded).
    pub fn from_bytes(report: &[u8], certs: &[u8]) -> Self {
        Self {
            report: report.to_vec(),
            certs: certs.to_vec(),
            pages_offered: Vec::new(),
        }
    }
}

/// Most attempts of one extended request (a too-small buffer, or a busy
/// certificate file, makes the guest retry).
const MAX_ATTEMPTS: usize = 8;

impl GuestActions for SimulatedGuest {
    fn read(&mut self, host: &mut Host, gpa: u64, len: usize) -> Result<Vec<u8>, HostError> {
        let mut out = vec![0u8; len];
        host.guest_access(&self.principal, gpa, &mut out, false, true)?;
        Ok(out)
    }

    /// The host answers the certificate exit from `certs`; a buffer too
    /// small makes the guest retry with the pages the host said it needs;
    /// then the request goes to the firmware and the guest opens the
    /// response.
    fn extended_report(
        &mut self,
        host: &mut Host,
        certs: &crate::exits::certs::provider::CertsProvider,
        report_data: [u8; 64],
        certs_pages: Option<u64>,
    ) -> Result<GuestReport, GuestRequestError> {
        if !self.guest.is_snp() {
            return Err(GuestRequestError::NotAvailable(
                "guest requests need an SEV-SNP guest".into(),
            ));
        }
        extended_report(self, host, certs, report_data, certs_pages)
    }
}

fn extended_report(
    sim: &mut SimulatedGuest,
    host: &mut Host,
    certs: &crate::exits::certs::provider::CertsProvider,
    report_data: [u8; 64],
    certs_pages: Option<u64>,
) -> Result<GuestReport, GuestRequestError> {
    use crate::exits::certs::kvm::{GuestCertsOutcome, SnpReqCerts};
    use crate::exits::certs::provider::ReqCertsOutcome;
    let guest = sim.guest;
    let mut npages = certs_pages.unwrap_or(1);
    let mut pages_offered = Vec::new();
    for _ in 0..MAX_ATTEMPTS {
        if npages > guest_pages::CERTS_MAX_PAGES {
            return Err(GuestRequestError::Guest(format!(
                "the host needs {npages} certificate pages; the guest offers at most {}",
                guest_pages::CERTS_MAX_PAGES
            )));
        }
        pages_offered.push(npages);
        let mut exit = SnpReqCerts {
            gpa: guest_pages::CERTS,
            npages,
            ret: 0,
        };
        let outcome = certs.handle_exit(&mut exit, host.memory_mut());
        let seen = GuestCertsOutcome::from_exit(&exit)
            .map_err(|e| GuestRequestError::Guest(e.to_string()))?;
        match (seen, outcome) {
            (GuestCertsOutcome::Completed, ReqCertsOutcome::Supplied(lease)) => {
                sim.write_report_request(host, report_data)?;
                forward_guest_request(host, guest, guest_pages::REQUEST, guest_pages::RESPONSE)?;
                let table_len = lease.table_bytes().len();
                // The certificates and the report are of one TCB: the lease
                // is released only after the firmware answered.
                drop(lease);
                let report = sim.read_report_response(host)?;
                let mut certs = vec![0u8; table_len];
                host.memory().host_read(guest_pages::CERTS, &mut certs)?;
                return Ok(GuestReport {
                    report,
                    certs,
                    pages_offered,
                });
            }
            (GuestCertsOutcome::InvalidLen { npages: needed }, _) => npages = needed,
            (GuestCertsOutcome::Busy, _) => {}
            (_, ReqCertsOutcome::Failed(e)) => {
                return Err(GuestRequestError::Guest(format!(
                    "the host could not supply certificates: {e}"
                )))
            }
            (seen, _) => {
                return Err(GuestRequestError::Guest(format!(
                    "the host answered the certificate request with {seen:?}"
                )))
            }
        }
    }
    Err(GuestRequestError::Guest(format!(
        "no report after {MAX_ATTEMPTS} attempts (buffer sizes offered: {pages_offered:?})"
    )))
}
