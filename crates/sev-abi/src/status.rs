//! Firmware status codes returned by the AMD Secure Processor for every SEV,
//! SEV-ES and SEV-SNP command (reference §1.2).
//!
//! [`FirmwareStatus`] wraps the raw 32-bit code so that codes this crate does
//! not know (newer firmware, SEV-TIO errors) are carried through unchanged and
//! still display sensibly.

use core::fmt;

/// A firmware status code, as written by the firmware into the command's
/// status register.
///
/// Named codes are associated constants (`FirmwareStatus::BAD_MEASUREMENT`);
/// any other value is still representable. `Display` prints AMD's name and the
/// code, e.g. `BAD_MEASUREMENT (0x0b)`, or `UNKNOWN (0x99)`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct FirmwareStatus(pub u32);

/// Defines the named status constants and the table that maps each code to its
/// name and description, from one list so they cannot drift apart.
macro_rules! statuses {
    ($($name:ident = $code:literal, $desc:literal;)*) => {
        impl FirmwareStatus {
            $(
                #[doc = concat!("`", stringify!($name), "` (", stringify!($code), "): ", $desc)]
                pub const $name: Self = Self($code);
            )*

            /// Every status code this crate names, in ascending code order.
            pub const ALL: &'static [FirmwareStatus] = &[$(Self::$name),*];
        }

        /// `(code, AMD name, description)` for every named code.
        const TABLE: &[(u32, &str, &str)] = &[$(($code, stringify!($name), $desc)),*];
    };
}

statuses! {
    SUCCESS = 0x00,
        "the command completed successfully";
    INVALID_PLATFORM_STATE = 0x01,
        "the platform is in the wrong state for this command: check PLATFORM_STATUS and INIT or SHUTDOWN the platform first";
    INVALID_GUEST_STATE = 0x02,
        "the guest is in the wrong state for this command: check the launch/migration command sequence";
    INVALID_CONFIG = 0x03,
        "the platform configuration is invalid: check the INIT or SNP_CONFIG parameters";
    INVALID_LENGTH = 0x04,
        "a buffer is too small: the firmware wrote the required length back, retry with a larger buffer";
    ALREADY_OWNED = 0x05,
        "the platform is already owned: PEK/PDH ownership must be reset (PEK_GEN or FACTORY_RESET) first";
    INVALID_CERTIFICATE = 0x06,
        "a certificate is malformed or did not verify: check the certificate chain supplied to the command";
    POLICY_FAILURE = 0x07,
        "the guest policy forbids this command or the platform does not satisfy it: check the policy bits and firmware version";
    INACTIVE = 0x08,
        "the guest is not active: ACTIVATE it (bind an ASID) before this command";
    INVALID_ADDRESS = 0x09,
        "an address is invalid or misaligned: check the physical addresses and alignment passed to the command";
    BAD_SIGNATURE = 0x0A,
        "a signature did not verify: check the signing key and the signed bytes";
    BAD_MEASUREMENT = 0x0B,
        "an HMAC (session wrap, policy MAC, packet MAC) did not verify: check TIK/TEK and the session blob";
    ASID_OWNED = 0x0C,
        "the ASID is already owned by another guest: pick a free ASID or DEACTIVATE the other guest";
    INVALID_ASID = 0x0D,
        "the ASID is out of range or of the wrong kind (SEV vs SEV-ES vs SNP): choose a valid ASID";
    WBINVD_REQUIRED = 0x0E,
        "caches must be written back: execute WBINVD on all cores and retry";
    DF_FLUSH_REQUIRED = 0x0F,
        "a data-fabric flush is required: issue DF_FLUSH and retry";
    INVALID_GUEST = 0x10,
        "the guest handle does not name a guest: check the handle";
    INVALID_COMMAND = 0x11,
        "the command id is unknown or not allowed now: check the command id and firmware version";
    ACTIVE = 0x12,
        "the guest is still active: DEACTIVATE it first";
    HWERROR_PLATFORM = 0x13,
        "a hardware error occurred; the platform may be unusable: reboot and check firmware and hardware";
    HWERROR_UNSAFE = 0x14,
        "a hardware error left the platform in an unsafe state: reboot the machine";
    UNSUPPORTED = 0x15,
        "the feature or command is not supported by this platform or firmware: update firmware or avoid the feature";
    INVALID_PARAM = 0x16,
        "a command parameter is invalid (often non-zero reserved fields): check the command buffer";
    RESOURCE_LIMIT = 0x17,
        "a firmware resource is exhausted: free guests or ASIDs and retry";
    SECURE_DATA_INVALID = 0x18,
        "the persistent secure data failed its integrity check: a FACTORY_RESET may be needed";
    INVALID_PAGE_SIZE = 0x19,
        "the page size does not match the RMP entry: check 4K vs 2M page sizes";
    INVALID_PAGE_STATE = 0x1A,
        "the page is not in the RMP state the command requires: check page assignment and validation";
    INVALID_MDATA_ENTRY = 0x1B,
        "the metadata entry of a swapped page is invalid: check the metadata page given to SWAP_IN";
    INVALID_PAGE_OWNER = 0x1C,
        "the page belongs to another guest or the hypervisor: check the RMP ownership of the page";
    AEAD_OFLOW = 0x1D,
        "the AEAD sequence counter would overflow: the guest context can no longer encrypt and must be relaunched";
    EXIT_RING_BUFFER = 0x1F,
        "the firmware left ring-buffer mode: re-enter it or issue commands through the mailbox";
    RMP_INIT_REQUIRED = 0x20,
        "the RMP is not initialised: run SNP_INIT before this command";
    BAD_SVN = 0x21,
        "the security version number is too low: update the firmware image or TCB";
    BAD_VERSION = 0x22,
        "the firmware version is not acceptable for this operation: check the required API version";
    SHUTDOWN_REQUIRED = 0x23,
        "the firmware must be shut down first: run SHUTDOWN (or SNP_SHUTDOWN) and retry";
    UPDATE_FAILED = 0x24,
        "the firmware update failed: retry with a valid firmware image";
    RESTORE_REQUIRED = 0x25,
        "the firmware must be restored: complete the pending restore before other commands";
    RMP_INITIALIZATION_FAILED = 0x26,
        "RMP initialisation failed: check the RMP table setup and memory configuration";
    INVALID_KEY = 0x27,
        "the requested key is unavailable (e.g. VLEK not installed or VCEK disabled): choose another key selection";
    SHUTDOWN_INCOMPLETE = 0x28,
        "the shutdown did not complete: retry the shutdown";
    INCORRECT_BUFFER_LENGTH = 0x30,
        "a buffer has the wrong length: check the length fields of the command buffer";
    EXPAND_BUFFER_LENGTH_REQUEST = 0x31,
        "the output buffer is too small: retry with the length the firmware reported";
    SPDM_REQUEST = 0x32,
        "the firmware needs an SPDM exchange with the device: relay the SPDM request and resume";
    SPDM_ERROR = 0x33,
        "an SPDM exchange with the device failed: check the device connection";
    IN_USE = 0x3A,
        "the resource is in use (SEV-TIO): release it before retrying";
}

impl FirmwareStatus {
    /// Wraps a raw status code.
    pub const fn new(code: u32) -> Self {
        Self(code)
    }

    /// The raw status code.
    pub const fn code(self) -> u32 {
        self.0
    }

    /// True for [`FirmwareStatus::SUCCESS`].
    pub const fn is_success(self) -> bool {
        self.0 == 0
    }

    fn entry(self) -> Option<&'static (u32, &'static str, &'static str)> {
        TABLE.iter().find(|(code, _, _)| *code == self.0)
    }

    /// AMD's upper-case name for the code (e.g. `"BAD_MEASUREMENT"`), or
    /// `None` for codes this crate does not know.
    pub fn name(self) -> Option<&'static str> {
        self.entry().map(|(_, name, _)| *name)
    }

    /// One sentence saying what the code means and, for errors, what to do.
    /// Unknown codes give `"unknown status code"`.
    pub fn description(self) -> &'static str {
        self.entry()
            .map_or("unknown status code", |(_, _, desc)| *desc)
    }
}

impl From<u32> for FirmwareStatus {
    fn from(code: u32) -> Self {
        Self(code)
    }
}

impl From<FirmwareStatus> for u32 {
    fn from(status: FirmwareStatus) -> Self {
        status.0
    }
}

impl fmt::Display for FirmwareStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({:#04x})", self.name().unwrap_or("UNKNOWN"), self.0)
    }
}

impl fmt::Debug for FirmwareStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FirmwareStatus({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_named_code_round_trips() {
        assert_eq!(FirmwareStatus::ALL.len(), TABLE.len());
        for status in FirmwareStatus::ALL {
            let name = status.name().expect("named");
            assert_eq!(FirmwareStatus::new(status.code()), *status);
            assert_eq!(u32::from(*status), status.code());
            assert_eq!(FirmwareStatus::from(status.code()).name(), Some(name));
            assert!(name
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'));
            assert_ne!(status.description(), "unknown status code");
            assert!(status.to_string().starts_with(name));
        }
    }

    #[test]
    fn names_and_codes_are_unique_and_sorted() {
        let names: HashSet<_> = TABLE.iter().map(|(_, n, _)| *n).collect();
        let codes: HashSet<_> = TABLE.iter().map(|(c, _, _)| *c).collect();
        assert_eq!(names.len(), TABLE.len());
        assert_eq!(codes.len(), TABLE.len());
        assert!(TABLE.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn spec_codes() {
        assert_eq!(FirmwareStatus::SUCCESS.code(), 0);
        assert!(FirmwareStatus::SUCCESS.is_success());
        assert!(!FirmwareStatus::POLICY_FAILURE.is_success());
        assert_eq!(FirmwareStatus::INVALID_PLATFORM_STATE.code(), 1);
        assert_eq!(FirmwareStatus::BAD_MEASUREMENT.code(), 0x0B);
        assert_eq!(FirmwareStatus::AEAD_OFLOW.code(), 0x1D);
        assert_eq!(FirmwareStatus::EXIT_RING_BUFFER.code(), 0x1F);
        assert_eq!(FirmwareStatus::RMP_INIT_REQUIRED.code(), 0x20);
        assert_eq!(FirmwareStatus::INVALID_KEY.code(), 0x27);
        assert_eq!(FirmwareStatus::SHUTDOWN_INCOMPLETE.code(), 0x28);
        assert_eq!(FirmwareStatus::INCORRECT_BUFFER_LENGTH.code(), 0x30);
        assert_eq!(FirmwareStatus::SPDM_ERROR.code(), 0x33);
        assert_eq!(FirmwareStatus::IN_USE.code(), 0x3A);
        assert_eq!(FirmwareStatus::ALL.len(), 45);
    }

    #[test]
    fn display() {
        assert_eq!(
            FirmwareStatus::BAD_MEASUREMENT.to_string(),
            "BAD_MEASUREMENT (0x0b)"
        );
        assert_eq!(FirmwareStatus::SUCCESS.to_string(), "SUCCESS (0x00)");
        assert_eq!(FirmwareStatus::IN_USE.to_string(), "IN_USE (0x3a)");
        assert_eq!(
            format!("{:?}", FirmwareStatus::ACTIVE),
            "FirmwareStatus(ACTIVE (0x12))"
        );
        assert!(FirmwareStatus::BAD_MEASUREMENT
            .description()
            .contains("TIK/TEK"));
    }

    #[test]
    fn unknown_codes() {
        for code in [0x1E, 0x29, 0x34, 0x99, 0xFFFF_FFFF] {
            let status = FirmwareStatus::new(code);
            assert_eq!(status.name(), None);
            assert_eq!(status.description(), "unknown status code");
            assert!(!status.is_success());
        }
        assert_eq!(FirmwareStatus::new(0x99).to_string(), "UNKNOWN (0x99)");
        assert_eq!(
            FirmwareStatus::new(0xFFFF_FFFF).to_string(),
            "UNKNOWN (0xffffffff)"
        );
    }
}
