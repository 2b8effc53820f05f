//! Guest contexts and the ASID pool (reference §1.5, §3.2).

use sev_abi::launch_digest::SevLaunchDigest;
use sev_abi::policy::GuestPolicy;
use sev_abi::status::FirmwareStatus;
use sev_crypto::session::{Tek, Tik};
use sev_measure::log::{DigestAlgorithm, LaunchLog};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::client::ClientId;
use crate::crypt::MemoryKey;

/// Legacy guest states (reference §1.5), with AMD's encodings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum GuestState {
    /// No guest (encoding 0).
    Uninit = 0,
    /// Launching: LAUNCH_UPDATE_* accepted.
    LUpdate = 1,
    /// Measured: LAUNCH_SECRET and LAUNCH_FINISH accepted.
    LSecret = 2,
    /// Launched.
    Running = 3,
    /// Being sent.
    SUpdate = 4,
    /// Being received.
    RUpdate = 5,
    /// Sent.
    Sent = 6,
}

impl GuestState {
    /// The state with this encoding.
    pub fn from_u8(value: u8) -> Option<Self> {
        Some(match value {
            0 => Self::Uninit,
            1 => Self::LUpdate,
            2 => Self::LSecret,
            3 => Self::Running,
            4 => Self::SUpdate,
            5 => Self::RUpdate,
            6 => Self::Sent,
            _ => return None,
        })
    }

    /// AMD's name (`LUPDATE`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Uninit => "UNINIT",
            Self::LUpdate => "LUPDATE",
            Self::LSecret => "LSECRET",
            Self::Running => "RUNNING",
            Self::SUpdate => "SUPDATE",
            Self::RUpdate => "RUPDATE",
            Self::Sent => "SENT",
        }
    }
}

/// Whether a guest is bound to an ASID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Activation {
    Inactive,
    /// ACTIVATE before LAUNCH_FINISH: the ASID becomes valid at LAUNCH_FINISH.
    Pending(u32),
    Active(u32),
}

impl Activation {
    pub(crate) fn asid(self) -> Option<u32> {
        match self {
            Self::Inactive => None,
            Self::Pending(a) | Self::Active(a) => Some(a),
        }
    }
}

/// One guest context.
pub(crate) struct Guest {
    /// The client that created it (LAUNCH_START); no other may name it.
    pub(crate) client: ClientId,
    /// The guest principal's token, once attached
    /// ([`sev_abi::host_ops::GuestAttachOp`]).
    pub(crate) principal: Option<Zeroizing<[u8; 32]>>,
    pub(crate) policy: GuestPolicy,
    pub(crate) state: GuestState,
    pub(crate) activation: Activation,
    /// The VEK seed (shared with other guests by key sharing).
    pub(crate) vek: Zeroizing<[u8; 16]>,
    /// Guests created with the same VEK share this number.
    pub(crate) key_group: u64,
    pub(crate) key: MemoryKey,
    /// TEK and TIK; zeroed (dropped) at LAUNCH_FINISH.
    pub(crate) channel: Option<(Tek, Tik)>,
    /// Running launch digest until LAUNCH_MEASURE.
    pub(crate) ld: Option<Sha256>,
    /// The finalized launch digest (after LAUNCH_MEASURE).
    pub(crate) launch_digest: SevLaunchDigest,
    /// The measurement LAUNCH_MEASURE returned (LAUNCH_SECRET MACs cover it).
    pub(crate) measurement: [u8; 32],
    pub(crate) log: LaunchLog,
}

impl Guest {
    pub(crate) fn new(
        client: ClientId,
        policy: GuestPolicy,
        vek: Zeroizing<[u8; 16]>,
        key_group: u64,
        channel: (Tek, Tik),
    ) -> Self {
        let key = MemoryKey::from_vek(&vek);
        Self {
            client,
            principal: None,
            policy,
            state: GuestState::LUpdate,
            activation: Activation::Inactive,
            vek,
            key_group,
            key,
            channel: Some(channel),
            ld: Some(Sha256::new()),
            launch_digest: SevLaunchDigest::default(),
            measurement: [0; 32],
            log: LaunchLog::new(DigestAlgorithm::Sha256, None)
                .with_limit(crate::LAUNCH_LOG_MAX_ENTRIES),
        }
    }
}

/// The legacy guests by handle. A guest is reachable only with the client
/// that created it ([`crate::client`]): there is no lookup by handle alone.
#[derive(Default)]
pub(crate) struct Guests(std::collections::BTreeMap<u32, Guest>);

impl Guests {
    /// `client`'s guest `handle`.
    pub(crate) fn get(&self, client: ClientId, handle: u32) -> Option<&Guest> {
        self.0.get(&handle).filter(|g| g.client == client)
    }

    /// `client`'s guest `handle`, mutably.
    pub(crate) fn get_mut(&mut self, client: ClientId, handle: u32) -> Option<&mut Guest> {
        self.0.get_mut(&handle).filter(|g| g.client == client)
    }

    /// `client`'s guests.
    pub(crate) fn of(&self, client: ClientId) -> impl Iterator<Item = (u32, &Guest)> {
        self.0
            .iter()
            .filter(move |(_, g)| g.client == client)
            .map(|(h, g)| (*h, g))
    }

    /// Removes `client`'s guest `handle`.
    pub(crate) fn remove(&mut self, client: ClientId, handle: u32) -> Option<Guest> {
        self.get(client, handle)?;
        self.0.remove(&handle)
    }

    /// The lowest free handle in `1..=max`.
    pub(crate) fn free_handle(&self, max: u32) -> Option<u32> {
        (1..=max).find(|h| !self.0.contains_key(h))
    }

    /// Adds a guest under `handle` (from [`Self::free_handle`]).
    pub(crate) fn insert(&mut self, handle: u32, guest: Guest) {
        self.0.insert(handle, guest);
    }

    /// Every client's guests (the platform's count).
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the platform has no guests.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Forgets every guest (SHUTDOWN).
    pub(crate) fn clear(&mut self) {
        self.0.clear();
    }
}

/// What an ASID is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AsidSlot {
    Free,
    /// Bound to `users` guests of one key group.
    Owned {
        key_group: u64,
        users: u32,
    },
    /// Deactivated: DF_FLUSH before it may be bound again.
    Dirty,
}

/// ASIDs `1..=max_asid`; `1..min_sev_asid` are for SEV-ES guests, the rest
/// for plain SEV guests (CPUID 0x8000_001F ECX/EDX).
#[derive(Debug, Clone)]
pub(crate) struct AsidPool {
    min_sev_asid: u32,
    slots: Vec<AsidSlot>,
}

impl AsidPool {
    pub(crate) fn new(max_asid: u32, min_sev_asid: u32) -> Self {
        Self {
            min_sev_asid,
            slots: vec![AsidSlot::Free; max_asid as usize + 1],
        }
    }

    fn max_asid(&self) -> u32 {
        (self.slots.len() - 1) as u32
    }

    /// Checks and binds `asid` for a guest (ES or not) of `key_group`.
    pub(crate) fn bind(
        &mut self,
        asid: u32,
        es: bool,
        key_group: u64,
    ) -> Result<(), FirmwareStatus> {
        let in_range = if es {
            asid >= 1 && asid < self.min_sev_asid
        } else {
            asid >= self.min_sev_asid && asid >= 1 && asid <= self.max_asid()
        };
        if !in_range {
            return Err(FirmwareStatus::INVALID_ASID);
        }
        let slot = &mut self.slots[asid as usize];
        match *slot {
            AsidSlot::Free => {
                *slot = AsidSlot::Owned {
                    key_group,
                    users: 1,
                };
                Ok(())
            }
            AsidSlot::Owned {
                key_group: owner,
                users,
            } if owner == key_group => {
                *slot = AsidSlot::Owned {
                    key_group,
                    users: users + 1,
                };
                Ok(())
            }
            AsidSlot::Owned { .. } => Err(FirmwareStatus::ASID_OWNED),
            AsidSlot::Dirty => Err(FirmwareStatus::DF_FLUSH_REQUIRED),
        }
    }

    /// Unbinds one guest from `asid`; the last one leaves it dirty.
    pub(crate) fn unbind(&mut self, asid: u32) {
        if let Some(slot) = self.slots.get_mut(asid as usize) {
            if let AsidSlot::Owned { key_group, users } = *slot {
                *slot = if users > 1 {
                    AsidSlot::Owned {
                        key_group,
                        users: users - 1,
                    }
                } else {
                    AsidSlot::Dirty
                };
            }
        }
    }

    /// Whether `asid` is neither bound nor awaiting DF_FLUSH (SNP_ACTIVATE
    /// refuses ASIDs the legacy guests hold).
    pub(crate) fn is_free(&self, asid: u32) -> bool {
        matches!(self.slots.get(asid as usize), None | Some(AsidSlot::Free))
    }

    /// DF_FLUSH: every dirty ASID becomes free.
    pub(crate) fn flush(&mut self) {
        for slot in &mut self.slots {
            if *slot == AsidSlot::Dirty {
                *slot = AsidSlot::Free;
            }
        }
    }

    /// SHUTDOWN: every ASID free.
    pub(crate) fn reset(&mut self) {
        self.slots.fill(AsidSlot::Free);
    }

    /// Number of ASIDs awaiting DF_FLUSH.
    #[cfg(test)]
    pub(crate) fn dirty(&self) -> usize {
        self.slots.iter().filter(|s| **s == AsidSlot::Dirty).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asid_ranges_ownership_and_flush() {
        let mut pool = AsidPool::new(15, 5);
        assert_eq!(pool.bind(0, true, 1), Err(FirmwareStatus::INVALID_ASID));
        assert_eq!(pool.bind(5, true, 1), Err(FirmwareStatus::INVALID_ASID));
        assert_eq!(pool.bind(4, false, 1), Err(FirmwareStatus::INVALID_ASID));
        assert_eq!(pool.bind(16, false, 1), Err(FirmwareStatus::INVALID_ASID));
        pool.bind(4, true, 1).unwrap();
        pool.bind(5, false, 2).unwrap();
        assert_eq!(pool.bind(5, false, 3), Err(FirmwareStatus::ASID_OWNED));
        pool.bind(5, false, 2).unwrap(); // key sharing: same key group
        pool.unbind(5);
        assert_eq!(pool.dirty(), 0);
        pool.unbind(5);
        assert_eq!(pool.dirty(), 1);
        assert_eq!(
            pool.bind(5, false, 3),
            Err(FirmwareStatus::DF_FLUSH_REQUIRED)
        );
        pool.flush();
        pool.bind(5, false, 3).unwrap();
        pool.reset();
        pool.bind(4, true, 9).unwrap();
        assert_eq!(GuestState::from_u8(2), Some(GuestState::LSecret));
        assert_eq!(GuestState::Running.name(), "RUNNING");
        assert_eq!(GuestState::from_u8(7), None);
    }
}
