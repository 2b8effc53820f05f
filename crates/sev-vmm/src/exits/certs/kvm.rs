//! KVM's certificate exit, as the VMM and the guest see it:
//! `KVM_EXIT_SNP_REQ_CERTS` ([`SnpReqCerts`]), the `ret` values KVM accepts
//! from the VMM ([`ReqCertsRet`]), the VMM error KVM then puts in
//! `SW_EXITINFO2` ([`VmmError`]) and what the guest's extended report
//! request makes of it ([`GuestCertsOutcome`]).

use crate::machine::memory::PAGE_SIZE;

/// `KVM_EXIT_SNP_REQ_CERTS`: the `kvm_run.exit_reason` of the certificate
/// exit.
pub const KVM_EXIT_SNP_REQ_CERTS: u32 = 42;

/// `ENOSPC`: `ret` for a buffer that is too small.
pub const ENOSPC: u64 = 28;
/// `EAGAIN`: `ret` for a busy certificate file.
pub const EAGAIN: u64 = 11;
/// `EIO`: `ret` for every other failure.
pub const EIO: u64 = 5;

/// `struct kvm_exit_snp_req_certs`: `kvm_run.snp_req_certs`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SnpReqCerts {
    /// GPA of the guest's certificate buffer (the GHCB's RAX), 4 KiB
    /// aligned (KVM checks).
    pub gpa: u64,
    /// Its size in pages (the GHCB's RBX). For a `ret` of `ENOSPC`, KVM
    /// hands this back to the guest as the number of pages needed.
    pub npages: u64,
    /// 0 on exit; set by the VMM to 0, `ENOSPC`, `EAGAIN` or `EIO`.
    pub ret: u64,
}

/// The `ret` values KVM accepts for `KVM_EXIT_SNP_REQ_CERTS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReqCertsRet {
    /// 0: the certificates are in the guest's buffer; KVM issues the guest
    /// request to the firmware.
    Success,
    /// `ENOSPC`: the buffer is too small; `npages` holds the pages needed.
    NoSpace,
    /// `EAGAIN`: the certificates are being updated; the guest retries.
    Busy,
    /// `EIO`: any other failure.
    Generic,
}

/// A `ret` value KVM refuses (`KVM_RUN` fails with `EINVAL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0} is not a valid KVM_EXIT_SNP_REQ_CERTS ret (0, ENOSPC, EAGAIN or EIO)")]
pub struct UnsupportedRet(pub u64);

impl ReqCertsRet {
    /// The value for `kvm_run.snp_req_certs.ret`.
    pub const fn errno(self) -> u64 {
        match self {
            Self::Success => 0,
            Self::NoSpace => ENOSPC,
            Self::Busy => EAGAIN,
            Self::Generic => EIO,
        }
    }

    /// Decodes `ret` as KVM does.
    pub const fn from_errno(ret: u64) -> Result<Self, UnsupportedRet> {
        match ret {
            0 => Ok(Self::Success),
            ENOSPC => Ok(Self::NoSpace),
            EAGAIN => Ok(Self::Busy),
            EIO => Ok(Self::Generic),
            other => Err(UnsupportedRet(other)),
        }
    }

    /// The VMM error KVM puts in bits 63:32 of `SW_EXITINFO2`; `None` for
    /// [`ReqCertsRet::Success`] (the firmware is called and its status is
    /// reported instead).
    pub const fn vmm_error(self) -> Option<VmmError> {
        match self {
            Self::Success => None,
            Self::NoSpace => Some(VmmError::InvalidLen),
            Self::Busy => Some(VmmError::Busy),
            Self::Generic => Some(VmmError::Generic),
        }
    }

    /// `SW_EXITINFO2` as KVM completes the `#VMGEXIT` without calling the
    /// firmware; 0 for [`ReqCertsRet::Success`] (before the firmware's
    /// status is known).
    pub const fn sw_exitinfo2(self) -> u64 {
        match self.vmm_error() {
            Some(e) => e.sw_exitinfo2(),
            None => 0,
        }
    }
}

/// The VMM error of an SNP guest request (bits 63:32 of `SW_EXITINFO2`;
/// `vmm_error` in the guest's `snp_guest_request_ioctl`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VmmError {
    /// `SNP_GUEST_VMM_ERR_INVALID_LEN` (1): the certificate buffer is too
    /// small; RBX holds the pages needed.
    InvalidLen,
    /// `SNP_GUEST_VMM_ERR_BUSY` (2): try again.
    Busy,
    /// KVM's `SNP_GUEST_VMM_ERR_GENERIC` (`0xffff_ffff`).
    Generic,
}

impl VmmError {
    /// The 32-bit code.
    pub const fn code(self) -> u32 {
        match self {
            Self::InvalidLen => 1,
            Self::Busy => 2,
            Self::Generic => u32::MAX,
        }
    }

    /// The code in place in `SW_EXITINFO2` (firmware status 0).
    pub const fn sw_exitinfo2(self) -> u64 {
        (self.code() as u64) << 32
    }

    /// Decodes a code; unknown non-zero codes are [`VmmError::Generic`]
    /// (the Linux guest treats them all as `EIO`), 0 is `None`.
    pub const fn from_code(code: u32) -> Option<Self> {
        match code {
            0 => None,
            1 => Some(Self::InvalidLen),
            2 => Some(Self::Busy),
            _ => Some(Self::Generic),
        }
    }
}

/// What the guest's extended report request learns from the host's answer
/// to the certificate exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GuestCertsOutcome {
    /// The firmware was asked for the report; the certificate table is in
    /// the guest's buffer (`vmm_error` 0).
    Completed,
    /// `vmm_error` `INVALID_LEN`: the guest's `certs_len` becomes
    /// `npages * 4096` and it retries with that many pages.
    InvalidLen {
        /// Pages needed (RBX).
        npages: u64,
    },
    /// `vmm_error` `BUSY`: the guest retries later.
    Busy,
    /// The generic VMM error: the request fails.
    Generic,
}

impl GuestCertsOutcome {
    /// What KVM makes of the exit as the VMM left it (`ret` and, for
    /// `ENOSPC`, `npages`).
    pub const fn from_exit(exit: &SnpReqCerts) -> Result<Self, UnsupportedRet> {
        match ReqCertsRet::from_errno(exit.ret) {
            Ok(ret) => Ok(Self::from_ret(ret, exit.npages)),
            Err(e) => Err(e),
        }
    }

    /// The outcome of `ret`, with the pages needed for
    /// [`ReqCertsRet::NoSpace`].
    pub const fn from_ret(ret: ReqCertsRet, npages: u64) -> Self {
        match ret {
            ReqCertsRet::Success => Self::Completed,
            ReqCertsRet::NoSpace => Self::InvalidLen { npages },
            ReqCertsRet::Busy => Self::Busy,
            ReqCertsRet::Generic => Self::Generic,
        }
    }

    /// What a guest decodes from `SW_EXITINFO2` and RBX after the
    /// `#VMGEXIT`. Only the VMM error (bits 63:32) is looked at: with a
    /// VMM error of 0 the firmware was called, whatever its status.
    pub const fn from_sw_exitinfo2(exitinfo2: u64, rbx: u64) -> Self {
        match VmmError::from_code((exitinfo2 >> 32) as u32) {
            None => Self::Completed,
            Some(VmmError::InvalidLen) => Self::InvalidLen { npages: rbx },
            Some(VmmError::Busy) => Self::Busy,
            Some(VmmError::Generic) => Self::Generic,
        }
    }

    /// The guest ioctl's `vmm_error` (0 when the firmware was called).
    pub const fn vmm_error(self) -> u32 {
        match self.as_vmm_error() {
            Some(e) => e.code(),
            None => 0,
        }
    }

    /// The VMM error, if any.
    pub const fn as_vmm_error(self) -> Option<VmmError> {
        match self {
            Self::Completed => None,
            Self::InvalidLen { .. } => Some(VmmError::InvalidLen),
            Self::Busy => Some(VmmError::Busy),
            Self::Generic => Some(VmmError::Generic),
        }
    }

    /// The guest's updated `certs_len` (`npages * 4096`) for
    /// [`GuestCertsOutcome::InvalidLen`]; `None` otherwise or when it does
    /// not fit the field's 32 bits.
    pub const fn certs_len(self) -> Option<u32> {
        let Self::InvalidLen { npages } = self else {
            return None;
        };
        match npages.checked_mul(PAGE_SIZE) {
            Some(len) if len <= u32::MAX as u64 => Some(len as u32),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exits::certs::MAX_CERT_TABLE_LEN;

    #[test]
    fn errno_values_match_the_kernel() {
        use rustix::io::Errno as E;
        assert_eq!(ENOSPC, u64::try_from(E::NOSPC.raw_os_error()).unwrap());
        assert_eq!(EAGAIN, u64::try_from(E::AGAIN.raw_os_error()).unwrap());
        assert_eq!(EIO, u64::try_from(E::IO.raw_os_error()).unwrap());
    }

    #[test]
    fn ret_mapping() {
        let all = [
            (ReqCertsRet::Success, 0, 0, None),
            (ReqCertsRet::NoSpace, 28, 0x1_0000_0000, Some(1)),
            (ReqCertsRet::Busy, 11, 0x2_0000_0000, Some(2)),
            (
                ReqCertsRet::Generic,
                5,
                0xffff_ffff_0000_0000,
                Some(u32::MAX),
            ),
        ];
        for (ret, errno, exitinfo2, vmm) in all {
            assert_eq!(ret.errno(), errno);
            assert_eq!(ReqCertsRet::from_errno(errno), Ok(ret));
            assert_eq!(ret.sw_exitinfo2(), exitinfo2);
            assert_eq!(ret.vmm_error().map(VmmError::code), vmm);
            let guest = GuestCertsOutcome::from_ret(ret, 3);
            assert_eq!(guest.vmm_error(), vmm.unwrap_or(0));
            assert_eq!(GuestCertsOutcome::from_sw_exitinfo2(exitinfo2, 3), guest);
            let exit = SnpReqCerts {
                gpa: 0,
                npages: 3,
                ret: errno,
            };
            assert_eq!(GuestCertsOutcome::from_exit(&exit), Ok(guest));
        }
        for bad in [1, 22, EIO + 1, u64::MAX, 1 << 32] {
            assert_eq!(ReqCertsRet::from_errno(bad), Err(UnsupportedRet(bad)));
            let exit = SnpReqCerts {
                gpa: 0,
                npages: 0,
                ret: bad,
            };
            assert_eq!(
                GuestCertsOutcome::from_exit(&exit),
                Err(UnsupportedRet(bad))
            );
        }
        // Firmware status bits do not make a VMM error; unknown VMM codes are
        // generic.
        assert_eq!(
            GuestCertsOutcome::from_sw_exitinfo2(0x16, 0),
            GuestCertsOutcome::Completed
        );
        assert_eq!(
            GuestCertsOutcome::from_sw_exitinfo2(7 << 32, 0),
            GuestCertsOutcome::Generic
        );
        assert_eq!(VmmError::from_code(0), None);
    }

    #[test]
    fn guest_certs_len() {
        let len = |npages| GuestCertsOutcome::InvalidLen { npages }.certs_len();
        assert_eq!(len(2), Some(8192));
        assert_eq!(len(0), Some(0));
        assert_eq!(len(MAX_CERT_TABLE_LEN / PAGE_SIZE), Some(1 << 20));
        assert_eq!(len(1 << 20), None, "4 GiB does not fit certs_len");
        assert_eq!(len(u64::MAX), None);
        assert_eq!(GuestCertsOutcome::Busy.certs_len(), None);
        assert_eq!(GuestCertsOutcome::Completed.as_vmm_error(), None);
    }
}
