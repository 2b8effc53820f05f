//! Launch digests: what the AMD-SP measures while a guest is launched.
//!
//! * [`SevLaunchDigest`]: SEV and SEV-ES, the SHA-256 over everything
//!   LAUNCH_UPDATE_DATA and LAUNCH_UPDATE_VMSA encrypted, in order (32
//!   bytes; the legacy ATTESTATION report's LAUNCH_DIGEST, and what
//!   LAUNCH_MEASURE's MAC covers).
//! * [`SnpLaunchDigest`]: SEV-SNP, the SHA-384 chain over one PAGE_INFO per
//!   page (48 bytes; the attestation report's MEASUREMENT, the ID block's
//!   LD).
//! * [`LaunchDigest`]: either one, for code that handles every mode.
//!
//! Both digest types are `#[repr(transparent)]` over their bytes, so the
//! layouts that hold a digest carry the type; they dereference (also
//! mutably: any 32 or 48 bytes are a digest) to the byte array and print as
//! lowercase hex.

use core::fmt;
use core::ops::{Deref, DerefMut};

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::error::{AbiError, Result};
use crate::session::SEV_LD_LEN;
use crate::snp_launch::LD_LEN;

/// Writes `bytes` as lowercase hex.
fn write_hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    bytes.iter().try_for_each(|b| write!(f, "{b:02x}"))
}

macro_rules! digest_type {
    ($(#[$meta:meta])* $name:ident, $len:expr, $what:literal) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
        #[repr(transparent)]
        pub struct $name([u8; $len]);

        // The type is its bytes, nothing else.
        const _: () = assert!(core::mem::size_of::<$name>() == $len);

        impl $name {
            /// The digest's length in bytes.
            pub const LEN: usize = $len;

            /// Wraps the digest's bytes.
            pub const fn new(bytes: [u8; $len]) -> Self {
                Self(bytes)
            }

            /// The digest's bytes.
            pub const fn to_bytes(self) -> [u8; $len] {
                self.0
            }

            /// Reads a digest from exactly [`Self::LEN`] bytes
            /// ([`AbiError::Length`] naming the digest otherwise).
            pub fn from_slice(bytes: &[u8]) -> Result<Self> {
                <[u8; $len]>::try_from(bytes)
                    .map(Self)
                    .map_err(|_| AbiError::Length {
                        what: $what,
                        expected: $len,
                        actual: bytes.len(),
                    })
            }
        }

        impl Default for $name {
            /// All zeros (an SNP chain's starting value).
            fn default() -> Self {
                Self([0; $len])
            }
        }

        impl Deref for $name {
            type Target = [u8; $len];

            fn deref(&self) -> &[u8; $len] {
                &self.0
            }
        }

        impl DerefMut for $name {
            fn deref_mut(&mut self) -> &mut [u8; $len] {
                &mut self.0
            }
        }

        impl AsRef<[u8]> for $name {
            fn as_ref(&self) -> &[u8] {
                &self.0
            }
        }

        impl From<[u8; $len]> for $name {
            fn from(bytes: [u8; $len]) -> Self {
                Self(bytes)
            }
        }

        impl From<$name> for [u8; $len] {
            fn from(digest: $name) -> Self {
                digest.0
            }
        }

        impl TryFrom<&[u8]> for $name {
            type Error = AbiError;

            fn try_from(bytes: &[u8]) -> Result<Self> {
                Self::from_slice(bytes)
            }
        }

        impl PartialEq<[u8; $len]> for $name {
            fn eq(&self, other: &[u8; $len]) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<$name> for [u8; $len] {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }

        impl fmt::Display for $name {
            /// Lowercase hex.
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write_hex(f, &self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self)
            }
        }
    };
}

digest_type! {
    /// An SEV / SEV-ES launch digest: SHA-256 over the launch's
    /// LAUNCH_UPDATE_DATA and LAUNCH_UPDATE_VMSA contents (32 bytes).
    SevLaunchDigest, SEV_LD_LEN, "SEV launch digest"
}

digest_type! {
    /// An SEV-SNP launch digest: the SHA-384 chain over one PAGE_INFO per
    /// launched page (48 bytes; the report's MEASUREMENT).
    SnpLaunchDigest, LD_LEN, "SNP launch digest"
}

/// A launch digest of either kind.
///
/// It dereferences to its bytes (32 or 48) and prints as lowercase hex.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum LaunchDigest {
    /// SEV or SEV-ES.
    Sev(SevLaunchDigest),
    /// SEV-SNP.
    Snp(SnpLaunchDigest),
}

impl LaunchDigest {
    /// The digest's bytes.
    pub fn as_slice(&self) -> &[u8] {
        match self {
            Self::Sev(d) => &d[..],
            Self::Snp(d) => &d[..],
        }
    }

    /// The SEV / SEV-ES digest, if this is one.
    pub const fn sev(&self) -> Option<&SevLaunchDigest> {
        match self {
            Self::Sev(d) => Some(d),
            Self::Snp(_) => None,
        }
    }

    /// The SEV-SNP digest, if this is one.
    pub const fn snp(&self) -> Option<&SnpLaunchDigest> {
        match self {
            Self::Snp(d) => Some(d),
            Self::Sev(_) => None,
        }
    }
}

impl Deref for LaunchDigest {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl AsRef<[u8]> for LaunchDigest {
    fn as_ref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl From<SevLaunchDigest> for LaunchDigest {
    fn from(d: SevLaunchDigest) -> Self {
        Self::Sev(d)
    }
}

impl From<SnpLaunchDigest> for LaunchDigest {
    fn from(d: SnpLaunchDigest) -> Self {
        Self::Snp(d)
    }
}

impl PartialEq<[u8]> for LaunchDigest {
    fn eq(&self, other: &[u8]) -> bool {
        self.as_slice() == other
    }
}

impl PartialEq<Vec<u8>> for LaunchDigest {
    fn eq(&self, other: &Vec<u8>) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl PartialEq<LaunchDigest> for Vec<u8> {
    fn eq(&self, other: &LaunchDigest) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl fmt::Display for LaunchDigest {
    /// Lowercase hex.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, self.as_slice())
    }
}

impl fmt::Debug for LaunchDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sev(d) => fmt::Debug::fmt(d, f),
            Self::Snp(d) => fmt::Debug::fmt(d, f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_their_bytes() {
        let mut bytes = [0u8; 48];
        bytes[0] = 0xAB;
        bytes[47] = 0x01;
        let d = SnpLaunchDigest::new(bytes);
        assert_eq!(d.as_bytes(), &bytes[..]);
        assert_eq!(SnpLaunchDigest::read_from_bytes(&bytes).unwrap(), d);
        assert_eq!(d, bytes);
        assert_eq!(bytes, d);
        assert_eq!(d.to_bytes(), bytes);
        assert!(d.to_string().starts_with("ab00") && d.to_string().ends_with("0001"));
        assert_eq!(d.to_string().len(), 96);
        assert!(format!("{d:?}").starts_with("SnpLaunchDigest(ab"));
        assert_eq!(SnpLaunchDigest::default(), SnpLaunchDigest::new([0; 48]));
        assert_eq!(
            SevLaunchDigest::from_slice(&[1; 31]),
            Err(AbiError::Length {
                what: "SEV launch digest",
                expected: 32,
                actual: 31
            })
        );
        assert_eq!(
            SevLaunchDigest::try_from(&[7u8; 32][..]).unwrap(),
            SevLaunchDigest::new([7; 32])
        );
    }

    #[test]
    fn either_kind() {
        let sev = LaunchDigest::from(SevLaunchDigest::new([2; 32]));
        let snp = LaunchDigest::from(SnpLaunchDigest::new([3; 48]));
        assert_eq!((sev.len(), snp.len()), (32, 48));
        assert_eq!(sev, vec![2u8; 32]);
        assert_eq!(vec![3u8; 48], snp);
        assert_ne!(sev, vec![2u8; 48]);
        assert_eq!(sev.sev(), Some(&SevLaunchDigest::new([2; 32])));
        assert_eq!((sev.snp(), snp.sev()), (None, None));
        assert_eq!(snp.to_string(), "03".repeat(48));
        assert_eq!(&snp[..2], &[3, 3]);
    }
}
