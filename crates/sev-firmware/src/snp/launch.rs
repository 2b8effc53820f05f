//! SNP commands on the firmware (reference §2.2–§2.9): platform commands,
//! guest contexts, launch, debug, page reclaim, guest requests; and the
//! host- and guest-side RMP instructions.
//!
//! Order of checks for guest commands: SNP platform state
//! (INVALID_PLATFORM_STATE), buffer length and reserved fields
//! (INVALID_PARAM), guest context (INVALID_GUEST: the page is not a guest
//! context), guest state (INVALID_GUEST_STATE), activation (INACTIVE),
//! page type / size / alignment (INVALID_PARAM, INVALID_PAGE_SIZE,
//! INVALID_ADDRESS), RMP state (INVALID_PAGE_STATE) and owner
//! (INVALID_PAGE_OWNER), memory (INVALID_ADDRESS).

use rayon::prelude::*;
use sev_abi::commands::{
    SnpActivateBuffer, SnpCommand, SnpCommitBuffer, SnpConfigBuffer, SnpDbgBuffer, SnpFeatureInfo,
    SnpFeatureInfoBuffer, SnpGuestRequestBuffer, SnpGuestStatus, SnpGuestStatusBuffer,
    SnpInitExBuffer, SnpLaunchFinishBuffer, SnpLaunchStartBuffer, SnpLaunchUpdateBuffer,
    SnpPaddrBuffer, SnpPageReclaimBuffer, SnpPlatformStatus, SnpPlatformStatusBuffer, SnpRange,
    SnpShutdownExBuffer, SnpVlekLoadBuffer, SNP_COMMIT_LENGTH, SNP_CONFIG_MASK_CHIP_ID,
    SNP_CONFIG_MASK_CHIP_KEY, SNP_FEATURE_INFO_LENGTH, SNP_INIT_FLAG_CIPHERTEXT_HIDING_EN,
    SNP_INIT_FLAG_INIT_RMP, SNP_INIT_FLAG_LIST_PADDR_EN, SNP_INIT_FLAG_RAPL_DIS,
    SNP_INIT_FLAG_TIO_EN, SNP_LAUNCH_FINISH_AUTH_KEY_EN, SNP_LAUNCH_FINISH_ID_BLOCK_EN,
    SNP_LAUNCH_FINISH_VCEK_DISABLED, SNP_LAUNCH_START_IMI_EN, SNP_LAUNCH_START_MA_EN,
    SNP_SHUTDOWN_EX_LENGTH, SNP_STATUS_FEATURE_INFO, SNP_STATUS_IS_RMP_INIT,
    SNP_STATUS_MASK_CHIP_ID, SNP_STATUS_MASK_CHIP_KEY, SNP_STATUS_RAPL_DIS, SNP_STATUS_VLEK_EN,
};
use sev_abi::launch_digest::SnpLaunchDigest;
use sev_abi::policy::SnpPolicy;
use sev_abi::product::{Product, TcbVersion};
use sev_abi::secrets_page::{SecretsPage, SECRETS_FLAG_IMI_EN};
use sev_abi::snp_launch::{
    IdAuth, IdBlock, PageType, ID_AUTH_ALGO_ECDSA_P384_SHA384, ID_AUTH_LEN, ID_BLOCK_LEN, LD_LEN,
};
use sev_abi::status::FirmwareStatus;
use sev_crypto::ecdsa::P384PublicKey;
use sev_measure::log::{DigestAlgorithm, LaunchLog, LogPageType};
use sev_measure::snp::{extend_with, page_hash};
use sha2::{Digest, Sha384};
use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromBytes, FromZeros, IntoBytes};
use zeroize::Zeroizing;

use super::cpuid::{self, CpuidPlatform};
use super::keys::VlekLoadError;
use super::platform::{
    c_bit_position, tcb_le, SnpConfig, SnpPlatformState, TSC_FACTOR, TSC_REF_KHZ, VMSA_TWEAK_BITMAP,
};
use super::rmp::{PageSize, PageState, PvalidateOutcome, RmpEntry, RmpError, RmpUpdate, PAGE_4K};
use super::{
    GuestContext, GuestRequestEnv, IdBlockFields, Secret32, SnpGuestState, SnpPlatformView, Vmpcks,
};
use crate::crypt::MemoryKey;
use crate::firmware::{parse, read_into, write_mem, PlatformState, Status};
use crate::memory::SystemMemory;
use crate::Firmware;

/// Secrets page layout version the model writes (FW 1.55.25 writes 3).
pub const SECRETS_PAGE_VERSION: u32 = 3;
/// Bitmap of the guest messages SNP_FEATURE_INFO leaf 1 reports as
/// supported (bit 0 CPUID ... bit 8 TSC_INFO): REPORT and KEY requests.
pub const SUPPORTED_GUEST_MESSAGES: u32 = 0b110;
/// VMSA offsets of GUEST_TSC_SCALE and GUEST_TSC_OFFSET (not measured).
const VMSA_TSC: core::ops::Range<usize> = 0x2F0..0x300;
/// VMSA offset of SEV_FEATURES.
const VMSA_SEV_FEATURES: usize = 0x3B0;
/// SEV_FEATURES bit 9: Secure TSC.
const SEV_FEATURE_SECURE_TSC: u64 = 1 << 9;
/// The model's platform has SMT enabled (PLATFORM_INFO bit 0).
const PLATFORM_SMT_ENABLED: bool = true;
/// Most pages an SNP_INIT_EX range list may make HV_FIXED (model limit:
/// the RMP is a map of entries, 256 MiB of HV_FIXED pages at most).
pub const MAX_HV_FIXED_PAGES: usize = 1 << 16;
/// Policy bits the model's firmware knows (63:26 are reserved).
const POLICY_RESERVED: u64 = SnpPolicy::RESERVED_MASK;

/// The outcome of a successful ID block / ID auth check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdCheck {
    /// Family id, image id, guest SVN.
    pub fields: IdBlockFields,
    /// SHA-384 of the 0x404-byte ID key.
    pub id_key_digest: [u8; 48],
    /// SHA-384 of the 0x404-byte author key (zero without one).
    pub author_key_digest: [u8; 48],
}

/// SNP_LAUNCH_FINISH's ID block and ID auth checks (reference §2.7), a pure
/// function of the guest's LD and policy and the two blobs: `id_block`
/// must be [`ID_BLOCK_LEN`] and `id_auth` [`ID_AUTH_LEN`] bytes
/// (INVALID_PARAM otherwise). Order: LD (BAD_MEASUREMENT), policy
/// (POLICY_FAILURE), algorithms (INVALID_PARAM), ID key and its signature
/// over the ID block (BAD_SIGNATURE), then with `author_key_en` the author
/// key and its signature over the ID key (BAD_SIGNATURE). Never panics.
pub fn check_id_block(
    ld: &SnpLaunchDigest,
    policy: SnpPolicy,
    id_block: &[u8],
    id_auth: &[u8],
    author_key_en: bool,
) -> Result<IdCheck, FirmwareStatus> {
    let block = IdBlock::from_bytes(id_block).map_err(|_| FirmwareStatus::INVALID_PARAM)?;
    let auth = IdAuth::from_bytes(id_auth).map_err(|_| FirmwareStatus::INVALID_PARAM)?;
    if block.ld != *ld {
        return Err(FirmwareStatus::BAD_MEASUREMENT);
    }
    if block.policy != policy {
        return Err(FirmwareStatus::POLICY_FAILURE);
    }
    if auth.id_key_algo.get() != ID_AUTH_ALGO_ECDSA_P384_SHA384
        || (author_key_en && auth.auth_key_algo.get() != ID_AUTH_ALGO_ECDSA_P384_SHA384)
    {
        return Err(FirmwareStatus::INVALID_PARAM);
    }
    let id_key =
        P384PublicKey::from_amd(&auth.id_key).map_err(|_| FirmwareStatus::BAD_SIGNATURE)?;
    id_key
        .verify_sha384(block.as_bytes(), &auth.id_block_sig)
        .map_err(|_| FirmwareStatus::BAD_SIGNATURE)?;
    let id_key_digest: [u8; 48] = Sha384::digest(auth.id_key.as_bytes()).into();
    let author_key_digest = if author_key_en {
        let author =
            P384PublicKey::from_amd(&auth.author_key).map_err(|_| FirmwareStatus::BAD_SIGNATURE)?;
        author
            .verify_sha384(auth.id_key.as_bytes(), &auth.id_key_sig)
            .map_err(|_| FirmwareStatus::BAD_SIGNATURE)?;
        Sha384::digest(auth.author_key.as_bytes()).into()
    } else {
        [0; 48]
    };
    Ok(IdCheck {
        fields: IdBlockFields {
            family_id: block.family_id,
            image_id: block.image_id,
            guest_svn: block.guest_svn.get(),
        },
        id_key_digest,
        author_key_digest,
    })
}

/// Secure TSC's GUEST_TSC_SCALE for `desired_khz` (§3.3): 8.32 fixed point
/// of `desired / ref`, the fraction rounded up, the integer part masked to
/// 8 bits.
pub fn tsc_scale(desired_khz: u32) -> u64 {
    let desired = u64::from(desired_khz);
    let int = (desired / TSC_REF_KHZ) & 0xFF;
    let frac = desired % TSC_REF_KHZ;
    let frac = (frac << 32).div_ceil(TSC_REF_KHZ);
    (int << 32) | (frac & 0xFFFF_FFFF)
}

/// A page address without flags in bits 11:0.
fn page_addr(paddr: u64) -> Status<u64> {
    if paddr.is_multiple_of(PAGE_4K) {
        Ok(paddr)
    } else {
        Err(FirmwareStatus::INVALID_PARAM)
    }
}

impl Firmware {
    // ----------------------------------------------------------------------
    // Public SNP view and the x86 RMP instructions
    // ----------------------------------------------------------------------

    /// The SNP platform state.
    pub fn snp_platform_state(&self) -> SnpPlatformState {
        self.snp.state
    }

    /// The SNP guest whose context page is at `gctx_paddr`.
    pub fn snp_guest(&self, gctx_paddr: u64) -> Option<&GuestContext> {
        self.snp.guests.get(&gctx_paddr)
    }

    /// What SNP guest `gctx_paddr`'s launch measured, in order (the format
    /// `sevkit measure --log` prints).
    pub fn snp_launch_log(&self, gctx_paddr: u64) -> Option<&LaunchLog> {
        self.snp.guests.get(&gctx_paddr).map(|g| &g.log)
    }

    /// The platform as the guest-request path sees it.
    pub fn snp_platform_view(&self) -> SnpPlatformView {
        SnpPlatformView {
            product: self.snp.product,
            current_tcb: self.snp.current_tcb,
            reported_tcb: self.snp.reported_tcb(),
            committed_tcb: self.snp.committed_tcb,
            chip_id: self.snp_keys.report_chip_id(self.snp.product),
            mask_chip_id: self.snp.mask_chip_id(),
            mask_chip_key: self.snp.mask_chip_key(),
            api_major: self.config.api_major,
            api_minor: self.config.api_minor,
            build: self.config.build,
            fms: self.snp.fms,
            platform_info: u64::from(PLATFORM_SMT_ENABLED),
        }
    }

    /// The C-bit position of the emulated product.
    pub fn c_bit_position(&self) -> u8 {
        c_bit_position(self.snp.product)
    }

    /// RMPREAD: the RMP entry of the 4 KiB page holding `spa`.
    pub fn rmp_entry(&self, spa: u64) -> RmpEntry {
        self.snp.rmp.entry(spa)
    }

    /// The firmware's classification of the page holding `spa`.
    pub fn rmp_page_state(&self, spa: u64) -> PageState {
        self.snp.rmp.state(spa)
    }

    /// RMPUPDATE, as the host executes it. Fails with `FAIL_INPUT` before
    /// SNP_INIT (the instruction faults there), on misaligned addresses and
    /// ASIDs beyond 10 bits; `FAIL_PERMISSION` on immutable entries
    /// (firmware, context, pre-guest and HV_FIXED pages).
    pub fn rmp_update(&mut self, spa: u64, update: &RmpUpdate) -> Result<(), RmpError> {
        if self.snp.state != SnpPlatformState::Init {
            return Err(RmpError::FailInput);
        }
        self.snp.rmp.update(spa, update)
    }

    /// PSMASH, as the host executes it.
    pub fn psmash(&mut self, spa: u64) -> Result<(), RmpError> {
        if self.snp.state != SnpPlatformState::Init {
            return Err(RmpError::FailInput);
        }
        self.snp.rmp.psmash(spa)
    }

    /// PVALIDATE, as a guest running with `asid` executes it on `gpa`.
    pub fn pvalidate(
        &mut self,
        asid: u32,
        gpa: u64,
        page_size: PageSize,
        validate: bool,
    ) -> Result<PvalidateOutcome, RmpError> {
        if self.snp.state != SnpPlatformState::Init {
            return Err(RmpError::FailInput);
        }
        self.snp.rmp.pvalidate(asid, gpa, page_size, validate)
    }

    // ----------------------------------------------------------------------
    // Dispatch
    // ----------------------------------------------------------------------

    pub(crate) fn snp_dispatch(
        &mut self,
        cmd: SnpCommand,
        buf: &mut [u8],
        mem: &mut dyn SystemMemory,
    ) -> Status {
        use SnpCommand as C;
        let init = self.snp.state == SnpPlatformState::Init;
        match cmd {
            C::SnpInit | C::SnpInitEx => {
                if init || self.state != PlatformState::Uninit {
                    return Err(FirmwareStatus::INVALID_PLATFORM_STATE);
                }
            }
            C::SnpShutdown | C::SnpShutdownEx | C::SnpPlatformStatus | C::SnpFeatureInfo => {}
            C::SnpPageSwapOut
            | C::SnpPageSwapIn
            | C::SnpPageMove
            | C::SnpPageMdInit
            | C::SnpPageSetState
            | C::SnpPageUnsmash
            | C::SnpDownloadFirmwareEx
            | C::SnpDlfwContinue => return Err(FirmwareStatus::UNSUPPORTED),
            _ => {
                if !init {
                    return Err(FirmwareStatus::INVALID_PLATFORM_STATE);
                }
            }
        }
        match cmd {
            C::SnpInit => self.snp_init(0, 0, 0, mem),
            C::SnpInitEx => {
                let b: SnpInitExBuffer = parse(buf)?;
                if b.reserved0.get() != 0 || b.reserved1 != [0; 32] || b.reserved2 != [0; 14] {
                    return Err(FirmwareStatus::INVALID_PARAM);
                }
                self.snp_init(
                    b.flags.get(),
                    b.list_paddr.get(),
                    u32::from(b.max_snp_asid.get()),
                    mem,
                )
            }
            C::SnpShutdown => self.snp_shutdown(),
            C::SnpShutdownEx => {
                let b: SnpShutdownExBuffer = parse(buf)?;
                if b.length.get() != SNP_SHUTDOWN_EX_LENGTH {
                    return Err(FirmwareStatus::INVALID_LENGTH);
                }
                if b.flags.get() & !3 != 0 {
                    return Err(FirmwareStatus::INVALID_PARAM);
                }
                self.snp_shutdown()
            }
            C::SnpPlatformStatus => self.snp_platform_status(buf, mem),
            C::SnpDfFlush => {
                self.snp.dirty_asids.clear();
                Ok(())
            }
            C::SnpConfig => self.snp_config(buf),
            C::SnpCommit => {
                let b: SnpCommitBuffer = parse(buf)?;
                if b.length.get() != SNP_COMMIT_LENGTH {
                    return Err(FirmwareStatus::INVALID_LENGTH);
                }
                let mut saved = self.snp.persisted();
                saved.committed_tcb = Some(self.snp.current_tcb);
                self.persist_snp(saved)?;
                self.snp.committed_tcb = self.snp.current_tcb;
                self.snp.commit_recorded = true;
                Ok(())
            }
            C::SnpFeatureInfo => self.snp_feature_info(buf, mem),
            C::SnpVlekLoad => self.snp_vlek_load(buf, mem),
            C::SnpGctxCreate => self.snp_gctx_create(buf, mem),
            C::SnpDecommission => self.snp_decommission(buf),
            C::SnpActivate => {
                let b: SnpActivateBuffer = parse(buf)?;
                self.snp_activate(b.gctx_paddr.get(), b.asid.get())
            }
            C::SnpActivateEx => self.snp_activate_ex(buf, mem),
            C::SnpGuestStatus => self.snp_guest_status(buf, mem),
            C::SnpLaunchStart => self.snp_launch_start(buf),
            C::SnpLaunchUpdate => self.snp_launch_update(buf, mem),
            C::SnpLaunchFinish => self.snp_launch_finish(buf, mem),
            C::SnpDbgDecrypt => self.snp_dbg(buf, mem, false),
            C::SnpDbgEncrypt => self.snp_dbg(buf, mem, true),
            C::SnpPageReclaim => self.snp_page_reclaim(buf),
            C::SnpGuestRequest => self.snp_guest_request(buf, mem),
            _ => Err(FirmwareStatus::UNSUPPORTED),
        }
    }

    // ----------------------------------------------------------------------
    // Platform
    // ----------------------------------------------------------------------

    fn snp_init(
        &mut self,
        flags: u32,
        list_paddr: u64,
        max_snp_asid: u32,
        mem: &dyn SystemMemory,
    ) -> Status {
        let known = SNP_INIT_FLAG_INIT_RMP
            | SNP_INIT_FLAG_LIST_PADDR_EN
            | SNP_INIT_FLAG_RAPL_DIS
            | SNP_INIT_FLAG_CIPHERTEXT_HIDING_EN
            | SNP_INIT_FLAG_TIO_EN;
        if flags & !known != 0 {
            return Err(FirmwareStatus::INVALID_PARAM);
        }
        if flags & (SNP_INIT_FLAG_CIPHERTEXT_HIDING_EN | SNP_INIT_FLAG_TIO_EN) != 0 {
            return Err(FirmwareStatus::UNSUPPORTED);
        }
        let es_max = self.config.min_sev_asid.saturating_sub(1);
        if max_snp_asid > es_max {
            return Err(FirmwareStatus::INVALID_PARAM);
        }
        let mut fixed = Vec::new();
        if flags & SNP_INIT_FLAG_LIST_PADDR_EN != 0 {
            let list = page_addr(list_paddr)?;
            let mut header = [0u8; 8];
            read_into(mem, list, &mut header)?;
            let n = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
            if n > (PAGE_4K as usize - 8) / SnpRange::SIZE {
                return Err(FirmwareStatus::INVALID_PARAM);
            }
            let mut ranges = vec![0u8; n * SnpRange::SIZE];
            read_into(mem, list + 8, &mut ranges)?;
            for r in ranges.chunks_exact(SnpRange::SIZE) {
                let r = SnpRange::read_from_bytes(r).map_err(|_| FirmwareStatus::INVALID_PARAM)?;
                let base = page_addr(r.base.get())?;
                let count = u64::from(r.page_count.get());
                if count > MAX_HV_FIXED_PAGES as u64
                    || base.checked_add(count * PAGE_4K).is_none()
                    || r.reserved.get() != 0
                {
                    return Err(FirmwareStatus::INVALID_PARAM);
                }
                fixed.extend((0..count).map(|i| base + i * PAGE_4K));
                if fixed.len() > MAX_HV_FIXED_PAGES {
                    return Err(FirmwareStatus::RESOURCE_LIMIT);
                }
            }
        }
        for spa in fixed {
            self.snp.rmp.set(
                spa,
                RmpEntry {
                    immutable: true,
                    ..RmpEntry::default()
                },
            );
        }
        self.snp.rapl_dis = flags & SNP_INIT_FLAG_RAPL_DIS != 0;
        self.snp.max_snp_asid = max_snp_asid;
        self.snp.state = SnpPlatformState::Init;
        Ok(())
    }

    fn snp_platform_status(&mut self, buf: &[u8], mem: &mut dyn SystemMemory) -> Status {
        let b: SnpPlatformStatusBuffer = parse(buf)?;
        let mut out = SnpPlatformStatus::new_zeroed();
        out.api_major = self.config.api_major;
        out.api_minor = self.config.api_minor;
        out.state = self.snp.state as u8;
        out.is_rmp_init = if self.snp.state == SnpPlatformState::Init {
            SNP_STATUS_IS_RMP_INIT
        } else {
            0
        };
        out.build_id = U32::new(u32::from(self.config.build));
        let mut flags = SNP_STATUS_FEATURE_INFO;
        if self.snp.mask_chip_id() {
            flags |= SNP_STATUS_MASK_CHIP_ID;
        }
        if self.snp.mask_chip_key() {
            flags |= SNP_STATUS_MASK_CHIP_KEY;
        }
        if self.snp_keys.vlek_tcb().is_some() {
            flags |= SNP_STATUS_VLEK_EN;
        }
        if self.snp.rapl_dis {
            flags |= SNP_STATUS_RAPL_DIS;
        }
        out.flags = U32::new(flags);
        out.guest_count = U32::new(
            self.snp
                .all_guests()
                .filter(|g| g.state != SnpGuestState::Init)
                .count() as u32,
        );
        out.current_tcb = U64::new(self.snp.current_tcb.raw());
        out.reported_tcb = U64::new(self.snp.reported_tcb().raw());
        write_mem(mem, b.status_paddr.get(), out.as_bytes())
    }

    fn snp_config(&mut self, buf: &[u8]) -> Status {
        let b: SnpConfigBuffer = parse(buf)?;
        let flags = b.flags.get();
        if flags & !(SNP_CONFIG_MASK_CHIP_ID | SNP_CONFIG_MASK_CHIP_KEY) != 0
            || b.reserved0 != [0; 32]
            || b.reserved1 != [0; 20]
        {
            return Err(FirmwareStatus::INVALID_PARAM);
        }
        let reported = TcbVersion::new(b.reported_tcb.get());
        if !reported.reserved_bytes_zero(self.snp.product.tcb_layout()) {
            return Err(FirmwareStatus::INVALID_PARAM);
        }
        if !tcb_le(reported, self.snp.current_tcb) {
            return Err(FirmwareStatus::INVALID_CONFIG);
        }
        let config = SnpConfig {
            reported_tcb: reported,
            mask_chip_id: flags & SNP_CONFIG_MASK_CHIP_ID != 0,
            mask_chip_key: flags & SNP_CONFIG_MASK_CHIP_KEY != 0,
        };
        let mut saved = self.snp.persisted();
        saved.config = Some(config);
        self.persist_snp(saved)?;
        self.snp.config = Some(config);
        Ok(())
    }

    /// SNP_SHUTDOWN(_EX): the SNP_CONFIG reset is persisted first; when that
    /// write fails nothing changes (HWERROR_PLATFORM).
    fn snp_shutdown(&mut self) -> Status {
        let mut saved = self.snp.persisted();
        saved.config = None;
        self.persist_snp(saved)?;
        self.snp.shutdown();
        Ok(())
    }

    fn snp_feature_info(&mut self, buf: &[u8], mem: &mut dyn SystemMemory) -> Status {
        let b: SnpFeatureInfoBuffer = parse(buf)?;
        if b.length.get() != SNP_FEATURE_INFO_LENGTH {
            return Err(FirmwareStatus::INVALID_LENGTH);
        }
        let mut out = SnpFeatureInfo::new_zeroed();
        match b.ecx_in.get() {
            0 => {
                out.eax = U32::new(1);
                out.ebx = U32::new(1); // legacy SEV commands supported
                                       // VLEK, X86_SNP_SHUTDOWN, RAPL_DIS; AES-256-XTS on Genoa+.
                let mut ecx = 0b111;
                if self.snp.product != Product::Milan {
                    ecx |= 1 << 4;
                }
                out.ecx = U32::new(ecx);
            }
            1 => out.eax = U32::new(SUPPORTED_GUEST_MESSAGES),
            _ => return Err(FirmwareStatus::INVALID_PARAM),
        }
        write_mem(mem, b.feature_info_paddr.get(), out.as_bytes())
    }

    fn snp_vlek_load(&mut self, buf: &[u8], mem: &dyn SystemMemory) -> Status {
        let b: SnpVlekLoadBuffer = parse(buf)?;
        if b.length.get() as usize != SnpVlekLoadBuffer::SIZE {
            return Err(FirmwareStatus::INVALID_LENGTH);
        }
        if b.reserved != [0; 3] {
            return Err(FirmwareStatus::INVALID_PARAM);
        }
        let mut wrapped = Zeroizing::new(vec![0u8; super::keys::WRAPPED_VLEK_LEN]);
        read_into(mem, b.vlek_wrapped_paddr.get(), &mut wrapped)?;
        self.snp_keys
            .load_vlek(b.vlek_wrapped_version, &wrapped)
            .map(|_| ())
            .map_err(|e| match e {
                VlekLoadError::Length(_) => FirmwareStatus::INVALID_LENGTH,
                VlekLoadError::Version(_) | VlekLoadError::Reserved => {
                    FirmwareStatus::INVALID_PARAM
                }
                VlekLoadError::Authentication => FirmwareStatus::BAD_MEASUREMENT,
            })
    }

    // ----------------------------------------------------------------------
    // Guest contexts
    // ----------------------------------------------------------------------

    fn snp_ctx(&self, gctx_paddr: u64) -> Status<&GuestContext> {
        let paddr = page_addr(gctx_paddr)?;
        self.snp
            .guests
            .get(&paddr)
            .ok_or(FirmwareStatus::INVALID_GUEST)
    }

    fn snp_ctx_mut(&mut self, gctx_paddr: u64) -> Status<&mut GuestContext> {
        let paddr = page_addr(gctx_paddr)?;
        self.snp
            .guests
            .get_mut(&paddr)
            .ok_or(FirmwareStatus::INVALID_GUEST)
    }

    fn snp_gctx_create(&mut self, buf: &[u8], mem: &mut dyn SystemMemory) -> Status {
        let b: SnpPaddrBuffer = parse(buf)?;
        let paddr = page_addr(b.paddr.get())?;
        let entry = self.snp.rmp.entry(paddr);
        if PageState::of(&entry) != PageState::Firmware || entry.page_size != PageSize::Size4K {
            return Err(FirmwareStatus::INVALID_PAGE_STATE);
        }
        write_mem(mem, paddr, &[0u8; PAGE_4K as usize])?;
        let mut vek = Zeroizing::new([0u8; 16]);
        self.rng.fill_bytes(&mut vek[..]);
        let ctx = GuestContext {
            gctx_paddr: paddr,
            state: SnpGuestState::Init,
            policy: SnpPolicy::from_raw(0),
            asid: 0,
            ld: SnpLaunchDigest::default(),
            imd: SnpLaunchDigest::default(),
            imi_en: false,
            vmpck: Vmpcks::default(),
            msg_count: [0; 4],
            vmrk: Secret32::default(),
            report_id: [0; 32],
            report_id_ma: [0xFF; 32],
            host_data: [0; 32],
            id_block: IdBlockFields::default(),
            id_key_digest: [0; 48],
            author_key_digest: [0; 48],
            author_key_en: false,
            id_block_en: false,
            vcek_disabled: false,
            launch_tcb: self.snp.committed_tcb,
            gosvw: [0; 16],
            desired_tsc_khz: 0,
            log: LaunchLog::new(DigestAlgorithm::Sha384, Some(vec![0; LD_LEN]))
                .with_limit(crate::LAUNCH_LOG_MAX_ENTRIES),
            key: MemoryKey::from_vek(&vek),
            activated: false,
            vmsa_count: 0,
            principal: None,
        };
        self.snp.rmp.set(
            paddr,
            RmpEntry {
                vmsa: true,
                ..entry
            },
        );
        self.snp.guests.insert(paddr, ctx);
        Ok(())
    }

    fn snp_decommission(&mut self, buf: &[u8]) -> Status {
        let b: SnpPaddrBuffer = parse(buf)?;
        let paddr = page_addr(b.paddr.get())?;
        let ctx = self
            .snp
            .guests
            .remove(&paddr)
            .ok_or(FirmwareStatus::INVALID_GUEST)?;
        if ctx.activated {
            self.snp.bound_asids.remove(&ctx.asid);
            self.snp.dirty_asids.insert(ctx.asid);
        }
        let mut entry = self.snp.rmp.entry(paddr);
        entry.vmsa = false;
        self.snp.rmp.set(paddr, entry);
        Ok(())
    }

    /// Highest ASID an SNP guest may use (the SEV-ES range, or
    /// SNP_INIT_EX's `max_snp_asid`).
    fn max_snp_asid(&self) -> u32 {
        if self.snp.max_snp_asid == 0 {
            self.config.min_sev_asid.saturating_sub(1)
        } else {
            self.snp.max_snp_asid
        }
    }

    fn snp_activate(&mut self, gctx_paddr: u64, asid: u32) -> Status {
        let max = self.max_snp_asid();
        let ctx = self.snp_ctx(gctx_paddr)?;
        if ctx.state == SnpGuestState::Init {
            return Err(FirmwareStatus::INVALID_GUEST_STATE);
        }
        if ctx.activated {
            return Err(FirmwareStatus::ACTIVE);
        }
        if asid == 0 || asid > max {
            return Err(FirmwareStatus::INVALID_ASID);
        }
        if self.snp.bound_asids.contains_key(&asid) || !self.asids.is_free(asid) {
            return Err(FirmwareStatus::ASID_OWNED);
        }
        if self.snp.dirty_asids.contains(&asid) {
            return Err(FirmwareStatus::DF_FLUSH_REQUIRED);
        }
        let paddr = ctx.gctx_paddr;
        self.snp.bound_asids.insert(asid, (self.snp.active, paddr));
        let ctx = self.snp_ctx_mut(paddr)?;
        ctx.asid = asid;
        ctx.activated = true;
        Ok(())
    }

    fn snp_activate_ex(&mut self, buf: &[u8], mem: &dyn SystemMemory) -> Status {
        // u32 ex_len (0x20); u32 rsvd; u64 gctx; u32 asid; u32 numids; u64 ids.
        if buf.len() < 0x20 {
            return Err(FirmwareStatus::INVALID_PARAM);
        }
        let word = |o: usize| u32::from_le_bytes([buf[o], buf[o + 1], buf[o + 2], buf[o + 3]]);
        let qword = |o: usize| u64::from(word(o)) | (u64::from(word(o + 4)) << 32);
        if word(0) != 0x20 {
            return Err(FirmwareStatus::INVALID_LENGTH);
        }
        let numids = u64::from(word(0x14));
        if numids > 1024 {
            return Err(FirmwareStatus::INVALID_PARAM);
        }
        let mut ids = vec![0u8; (numids * 4) as usize];
        read_into(mem, qword(0x18), &mut ids)?;
        self.snp_activate(qword(0x08), word(0x10))
    }

    fn snp_guest_status(&mut self, buf: &[u8], mem: &mut dyn SystemMemory) -> Status {
        let b: SnpGuestStatusBuffer = parse(buf)?;
        let ctx = self.snp_ctx(b.gctx_paddr.get())?;
        let mut out = SnpGuestStatus::new_zeroed();
        out.policy = ctx.policy;
        out.asid = U32::new(if ctx.activated { ctx.asid } else { 0 });
        out.state = ctx.state as u8;
        out.flags = U32::new(u32::from(ctx.vcek_disabled));
        write_mem(mem, b.status_paddr.get(), out.as_bytes())
    }

    // ----------------------------------------------------------------------
    // Launch
    // ----------------------------------------------------------------------

    fn check_snp_policy(&self, policy: SnpPolicy) -> Status {
        let raw = policy.raw();
        let unsupported = raw & POLICY_RESERVED != 0
            || !policy.reserved_mbo()
            || (!policy.smt() && PLATFORM_SMT_ENABLED)
            || (policy.abi_major(), policy.abi_minor())
                > (self.config.api_major, self.config.api_minor)
            || raw & SnpPolicy::CIPHERTEXT_HIDING != 0
            || (raw & SnpPolicy::RAPL_DIS != 0 && !self.snp.rapl_dis)
            || (raw & SnpPolicy::MEM_AES_256_XTS != 0 && self.snp.product == Product::Milan);
        if unsupported {
            Err(FirmwareStatus::POLICY_FAILURE)
        } else {
            Ok(())
        }
    }

    fn snp_launch_start(&mut self, buf: &[u8]) -> Status {
        let b: SnpLaunchStartBuffer = parse(buf)?;
        let flags = b.flags.get();
        if flags & !(SNP_LAUNCH_START_MA_EN | SNP_LAUNCH_START_IMI_EN) != 0 {
            return Err(FirmwareStatus::INVALID_PARAM);
        }
        let ctx = self.snp_ctx(b.gctx_paddr.get())?;
        if ctx.state != SnpGuestState::Init {
            return Err(FirmwareStatus::INVALID_GUEST_STATE);
        }
        let paddr = ctx.gctx_paddr;
        let policy = b.policy;
        let ma_en = flags & SNP_LAUNCH_START_MA_EN != 0;
        if ma_en && !policy.migrate_ma() {
            return Err(FirmwareStatus::POLICY_FAILURE);
        }
        self.check_snp_policy(policy)?;
        let report_id_ma = if ma_en {
            let ma = self.snp_ctx(b.ma_gctx_paddr.get())?;
            if ma.state != SnpGuestState::Running {
                return Err(FirmwareStatus::INVALID_GUEST_STATE);
            }
            if policy.single_socket() && !ma.policy.single_socket() {
                return Err(FirmwareStatus::POLICY_FAILURE);
            }
            ma.report_id
        } else {
            [0xFF; 32]
        };
        let mut vmpck = Vmpcks::default();
        for k in &mut vmpck.0 {
            self.rng.fill_bytes(k);
        }
        let mut vmrk = Secret32::default();
        self.rng.fill_bytes(&mut vmrk.0);
        let mut report_id = [0u8; 32];
        self.rng.fill_bytes(&mut report_id);
        let ctx = self.snp_ctx_mut(paddr)?;
        ctx.policy = policy;
        ctx.vmpck = vmpck;
        ctx.vmrk = vmrk;
        ctx.report_id = report_id;
        ctx.report_id_ma = report_id_ma;
        ctx.imi_en = flags & SNP_LAUNCH_START_IMI_EN != 0;
        ctx.gosvw = b.gosvw;
        ctx.desired_tsc_khz = b.desired_tsc_khz.get();
        ctx.ld = SnpLaunchDigest::default();
        ctx.imd = SnpLaunchDigest::default();
        ctx.state = SnpGuestState::Launch;
        Ok(())
    }

    fn snp_launch_update(&mut self, buf: &[u8], mem: &mut dyn SystemMemory) -> Status {
        let b: SnpLaunchUpdateBuffer = parse(buf)?;
        let (size, page_type, imi_page, perms) = decode_update(&b)?;
        // Taken before the guest context is borrowed; an early error below
        // merely drops it.
        let mut buffer = UpdateBuffer::take(&mut self.snp.normal_pages, page_type, size);
        let ctx = self.snp_ctx(b.gctx_paddr.get())?;
        if ctx.state != SnpGuestState::Launch {
            return Err(FirmwareStatus::INVALID_GUEST_STATE);
        }
        if !ctx.activated {
            return Err(FirmwareStatus::INACTIVE);
        }
        if ctx.imi_en && !imi_page {
            return Err(FirmwareStatus::INVALID_PARAM);
        }
        let single = matches!(
            page_type,
            PageType::Vmsa | PageType::Secrets | PageType::Cpuid
        );
        if size == PageSize::Size2M && single {
            return Err(FirmwareStatus::INVALID_PAGE_SIZE);
        }
        let spa = b.page_paddr.get();
        if !spa.is_multiple_of(size.bytes()) || spa.checked_add(size.bytes()).is_none() {
            return Err(FirmwareStatus::INVALID_ADDRESS);
        }
        let rmp_entries = self.snp.rmp.pre_guest_entries(spa, size, ctx.asid)?;
        let cpuid_platform = CpuidPlatform {
            product: self.snp.product,
            fms: self.snp.fms,
            c_bit: c_bit_position(self.snp.product),
        };
        let fms = self.snp.fms;
        let gctx = ctx.gctx_paddr;
        // Pass 1: read, build and measure every 4 KiB chunk; nothing changes
        // until all of them succeeded.
        read_into(mem, spa, buffer.bytes())?;
        // NORMAL pages: hashed and encrypted up front (see hash_and_encrypt).
        let normal_hashes = (page_type == PageType::Normal)
            .then(|| hash_and_encrypt(&ctx.key, spa, buffer.bytes()));
        let mut ld = ctx.ld;
        let mut imd = ctx.imd;
        let mut digests = Vec::with_capacity(rmp_entries.len());
        for (i, (page, e)) in buffer
            .bytes()
            .chunks_exact_mut(PAGE_4K as usize)
            .zip(&rmp_entries)
            .enumerate()
        {
            let contents = if let Some(hashes) = &normal_hashes {
                hashes[i]
            } else if let Some(contents) = prepare_page(page, page_type, ctx, fms, cpuid_platform) {
                contents
            } else {
                // The corrected CPUID table goes back in plaintext.
                write_mem(mem, spa + i as u64 * PAGE_4K, page)?;
                return Err(FirmwareStatus::INVALID_PARAM);
            };
            ld = extend_with(&ld, &contents, page_type, imi_page, perms, e.gpa);
            if imi_page {
                imd = extend_with(&imd, &contents, page_type, true, perms, e.gpa);
            }
            digests.push((contents, ld));
        }
        // Pass 2: encrypt, write, update the RMP, log.
        let ctx = self
            .snp
            .guests
            .get_mut(&gctx)
            .ok_or(FirmwareStatus::INVALID_GUEST)?;
        if normal_hashes.is_none() {
            ctx.key.encrypt(spa, buffer.bytes());
        }
        write_mem(mem, spa, buffer.bytes())?;
        buffer.give_back(&mut self.snp.normal_pages);
        let log_type = LogPageType::from_snp(page_type);
        for (i, (mut e, (contents, digest))) in rmp_entries.into_iter().zip(&digests).enumerate() {
            let page_spa = spa + i as u64 * PAGE_4K;
            let gpa = e.gpa;
            e.validated = true;
            e.immutable = false;
            e.vmsa = page_type == PageType::Vmsa;
            e.perms = [0xFF, perms[0], perms[1], perms[2]];
            self.snp.rmp.set(page_spa, e);
            let region = region_name(page_type, &mut ctx.vmsa_count);
            ctx.log
                .push(region, Some(gpa), log_type, PAGE_4K, contents, &digest[..]);
        }
        ctx.ld = ld;
        ctx.imd = imd;
        Ok(())
    }

    fn snp_launch_finish(&mut self, buf: &[u8], mem: &dyn SystemMemory) -> Status {
        let b: SnpLaunchFinishBuffer = parse(buf)?;
        let flags = b.flags.get();
        let known = SNP_LAUNCH_FINISH_ID_BLOCK_EN
            | SNP_LAUNCH_FINISH_AUTH_KEY_EN
            | SNP_LAUNCH_FINISH_VCEK_DISABLED;
        if flags & !known != 0 {
            return Err(FirmwareStatus::INVALID_PARAM);
        }
        let id_block_en = flags & SNP_LAUNCH_FINISH_ID_BLOCK_EN != 0;
        let author_key_en = flags & SNP_LAUNCH_FINISH_AUTH_KEY_EN != 0;
        if author_key_en && !id_block_en {
            return Err(FirmwareStatus::INVALID_PARAM);
        }
        let ctx = self.snp_ctx(b.gctx_paddr.get())?;
        if ctx.state != SnpGuestState::Launch || ctx.imi_en {
            return Err(FirmwareStatus::INVALID_GUEST_STATE);
        }
        let check = if id_block_en {
            let mut block = [0u8; ID_BLOCK_LEN];
            read_into(mem, b.id_block_paddr.get(), &mut block)?;
            let mut auth = vec![0u8; ID_AUTH_LEN];
            read_into(mem, b.id_auth_paddr.get(), &mut auth)?;
            Some(check_id_block(
                &ctx.ld,
                ctx.policy,
                &block,
                &auth,
                author_key_en,
            )?)
        } else {
            None
        };
        let paddr = ctx.gctx_paddr;
        let ctx = self.snp_ctx_mut(paddr)?;
        if let Some(c) = check {
            ctx.id_block = c.fields;
            ctx.id_key_digest = c.id_key_digest;
            ctx.author_key_digest = c.author_key_digest;
        }
        ctx.id_block_en = id_block_en;
        ctx.author_key_en = author_key_en;
        ctx.vcek_disabled = flags & SNP_LAUNCH_FINISH_VCEK_DISABLED != 0;
        ctx.host_data = b.host_data;
        ctx.state = SnpGuestState::Running;
        Ok(())
    }

    // ----------------------------------------------------------------------
    // Debug, reclaim, guest requests
    // ----------------------------------------------------------------------

    fn snp_dbg(&mut self, buf: &[u8], mem: &mut dyn SystemMemory, encrypt: bool) -> Status {
        let b: SnpDbgBuffer = parse(buf)?;
        let (src, dst) = (page_addr(b.src_paddr.get())?, page_addr(b.dst_paddr.get())?);
        let ctx = self.snp_ctx(b.gctx_paddr.get())?;
        if !ctx.policy.debug() {
            return Err(FirmwareStatus::POLICY_FAILURE);
        }
        if !ctx.activated {
            return Err(FirmwareStatus::INACTIVE);
        }
        let (guest_page, host_page) = if encrypt { (dst, src) } else { (src, dst) };
        let g = self.snp.rmp.entry(guest_page);
        if !g.assigned || g.asid == 0 {
            return Err(FirmwareStatus::INVALID_PAGE_STATE);
        }
        if g.asid != ctx.asid {
            return Err(FirmwareStatus::INVALID_PAGE_OWNER);
        }
        if !matches!(
            self.snp.rmp.state(host_page),
            PageState::Hypervisor | PageState::Firmware
        ) {
            return Err(FirmwareStatus::INVALID_PAGE_STATE);
        }
        let mut page = Zeroizing::new(vec![0u8; PAGE_4K as usize]);
        read_into(mem, src, &mut page)?;
        if encrypt {
            ctx.key.encrypt(dst, &mut page);
        } else {
            ctx.key.decrypt(src, &mut page);
        }
        write_mem(mem, dst, &page)
    }

    fn snp_page_reclaim(&mut self, buf: &[u8]) -> Status {
        let b: SnpPageReclaimBuffer = parse(buf)?;
        let raw = b.paddr.get();
        if raw & 0xFFE != 0 {
            return Err(FirmwareStatus::INVALID_PARAM);
        }
        let size = PageSize::from_bit(raw & 1 != 0);
        let spa = raw & !0xFFF;
        if !spa.is_multiple_of(size.bytes()) || spa.checked_add(size.bytes()).is_none() {
            return Err(FirmwareStatus::INVALID_ADDRESS);
        }
        let count = size.bytes() / PAGE_4K;
        for i in 0..count {
            let e = self.snp.rmp.entry(spa + i * PAGE_4K);
            match PageState::of(&e) {
                PageState::Context | PageState::HvFixed => {
                    return Err(FirmwareStatus::INVALID_PAGE_STATE)
                }
                _ if e.assigned && e.page_size != size => {
                    return Err(FirmwareStatus::INVALID_PAGE_SIZE)
                }
                _ => {}
            }
        }
        for i in 0..count {
            let page = spa + i * PAGE_4K;
            let mut e = self.snp.rmp.entry(page);
            if matches!(
                PageState::of(&e),
                PageState::Firmware
                    | PageState::Metadata
                    | PageState::PreGuest
                    | PageState::PreSwap
            ) {
                e.immutable = false;
                e.metadata = false;
                self.snp.rmp.set(page, e);
            }
        }
        Ok(())
    }

    fn snp_guest_request(&mut self, buf: &[u8], mem: &mut dyn SystemMemory) -> Status {
        let b: SnpGuestRequestBuffer = parse(buf)?;
        let (req, rsp) = (page_addr(b.req_paddr.get())?, page_addr(b.rsp_paddr.get())?);
        let ctx = self.snp_ctx(b.gctx_paddr.get())?;
        if ctx.state != SnpGuestState::Running {
            return Err(FirmwareStatus::INVALID_GUEST_STATE);
        }
        let paddr = ctx.gctx_paddr;
        if self.snp.rmp.state(rsp) != PageState::Firmware {
            return Err(FirmwareStatus::INVALID_PAGE_STATE);
        }
        let mut request = Zeroizing::new(vec![0u8; PAGE_4K as usize]);
        read_into(mem, req, &mut request)?;
        let view = self.snp_platform_view();
        let gctx = self
            .snp
            .guests
            .get_mut(&paddr)
            .ok_or(FirmwareStatus::INVALID_GUEST)?;
        let mut env = GuestRequestEnv {
            gctx,
            platform: &view,
            keys: &self.snp_keys,
        };
        let response = super::guest_request::handle(&mut env, &request)?;
        write_mem(mem, rsp, &response)
    }
}

/// The plaintext of one SNP_LAUNCH_UPDATE's pages, contiguous.
///
/// NORMAL pages hold only host-supplied plaintext and, once
/// [`hash_and_encrypt`] ran, ciphertext: their buffer is reused from one
/// update to the next (no allocation, no page faults, no wiping of 2 MiB
/// per update). Every other page type may hold secrets (the SECRETS page's
/// VMPCKs) and gets a fresh buffer that is wiped on drop.
enum UpdateBuffer {
    Reused(Vec<u8>),
    Wiped(Zeroizing<Vec<u8>>),
}

impl UpdateBuffer {
    /// A buffer for one `size` page of `page_type`, reusing `reusable` for
    /// NORMAL pages.
    fn take(reusable: &mut Vec<u8>, page_type: PageType, size: PageSize) -> Self {
        let len = size.bytes() as usize;
        if page_type == PageType::Normal {
            let mut buffer = core::mem::take(reusable);
            buffer.resize(len, 0);
            Self::Reused(buffer)
        } else {
            Self::Wiped(Zeroizing::new(vec![0u8; len]))
        }
    }

    fn bytes(&mut self) -> &mut [u8] {
        match self {
            Self::Reused(b) => b,
            Self::Wiped(b) => b,
        }
    }

    /// Keeps a reusable buffer for the next update.
    fn give_back(self, reusable: &mut Vec<u8>) {
        if let Self::Reused(b) = self {
            *reusable = b;
        }
    }
}

/// Below this many pages, handing pages to other threads costs more than it
/// saves.
const PARALLEL_MIN_PAGES: usize = 64;

/// SHA-384 of each page's plaintext, then the page encrypted in place as
/// stored at its address (consecutive 4 KiB pages from `spa`), on all
/// available cores (rayon's pool) when there are many pages.
///
/// The contents hashes of NORMAL pages are independent of each other (only
/// the PAGE_INFO chain is sequential), and nothing after the read can fail
/// for them, so they are encrypted in the same pass while in cache (the
/// buffers reach system memory only in pass 2).
fn hash_and_encrypt(key: &MemoryKey, spa: u64, pages: &mut [u8]) -> Vec<[u8; LD_LEN]> {
    let page_len = PAGE_4K as usize;
    let mut hashes = vec![[0u8; LD_LEN]; pages.len() / page_len];
    let work = |(j, (hash, page)): (usize, (&mut [u8; LD_LEN], &mut [u8]))| {
        *hash = page_hash(page);
        key.encrypt(spa + j as u64 * PAGE_4K, page);
    };
    if hashes.len() < PARALLEL_MIN_PAGES {
        hashes
            .iter_mut()
            .zip(pages.chunks_exact_mut(page_len))
            .enumerate()
            .for_each(work);
    } else {
        hashes
            .par_iter_mut()
            .zip(pages.par_chunks_exact_mut(page_len))
            .enumerate()
            .for_each(work);
    }
    hashes
}

/// The launch log's region name of a page: `vmsa[N]` for the N-th VMSA,
/// else the page type's name.
fn region_name(page_type: PageType, vmsa_count: &mut usize) -> String {
    if page_type == PageType::Vmsa {
        *vmsa_count += 1;
        format!("vmsa[{}]", *vmsa_count - 1)
    } else {
        LogPageType::from_snp(page_type).name().to_owned()
    }
}

/// SNP_LAUNCH_UPDATE's flags and permissions: page size, page type, IMI
/// page, VMPL1..3 permissions; reserved fields and bits → INVALID_PARAM.
fn decode_update(b: &SnpLaunchUpdateBuffer) -> Status<(PageSize, PageType, bool, [u8; 3])> {
    let flags = b.flags.get();
    if flags & !0x1F != 0 || b.reserved0.get() != 0 || b.reserved1 != 0 || b.reserved2.get() != 0 {
        return Err(FirmwareStatus::INVALID_PARAM);
    }
    let size = PageSize::from_bit(flags & 1 != 0);
    let page_type =
        PageType::from_u8(((flags >> 1) & 7) as u8).ok_or(FirmwareStatus::INVALID_PARAM)?;
    let perms = [b.vmpl1_perms, b.vmpl2_perms, b.vmpl3_perms];
    if perms.iter().any(|p| p & !0x1F != 0) {
        return Err(FirmwareStatus::INVALID_PARAM);
    }
    Ok((size, page_type, flags & (1 << 4) != 0, perms))
}

/// SNP_LAUNCH_UPDATE step 2 and 3 for one 4 KiB chunk: returns the
/// PAGE_INFO CONTENTS and leaves in `page` what is to be encrypted (zeroed
/// for ZERO, built for SECRETS, Secure TSC fields for VMSA). `None`: the
/// CPUID table was invalid and `page` holds the corrected table.
fn prepare_page(
    page: &mut [u8],
    page_type: PageType,
    ctx: &GuestContext,
    fms: u32,
    cpuid_platform: CpuidPlatform,
) -> Option<[u8; LD_LEN]> {
    let contents = match page_type {
        PageType::Normal => page_hash(page),
        PageType::Vmsa => {
            let mut measured = Zeroizing::new(page.to_vec());
            if let Some(tsc) = measured.get_mut(VMSA_TSC) {
                tsc.fill(0);
            }
            page_hash(&measured)
        }
        _ => [0u8; LD_LEN],
    };
    match page_type {
        PageType::Zero => page.fill(0),
        PageType::Secrets => {
            page.fill(0);
            write_secrets(page, ctx, fms);
        }
        PageType::Cpuid => {
            if !cpuid::validate(page, cpuid_platform) {
                return None;
            }
        }
        PageType::Vmsa => {
            let features = page
                .get(VMSA_SEV_FEATURES..VMSA_SEV_FEATURES + 8)
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map_or(0, u64::from_le_bytes);
            if features & SEV_FEATURE_SECURE_TSC != 0 {
                if let Some(tsc) = page.get_mut(VMSA_TSC) {
                    tsc[..8].copy_from_slice(&tsc_scale(ctx.desired_tsc_khz).to_le_bytes());
                    tsc[8..].fill(0);
                }
            }
        }
        PageType::Normal | PageType::Unmeasured => {}
    }
    Some(contents)
}

/// Builds the secrets page (§2.8) into `page`.
fn write_secrets(page: &mut [u8], ctx: &GuestContext, fms: u32) {
    let mut s = SecretsPage::new_zeroed();
    s.version = U32::new(SECRETS_PAGE_VERSION);
    s.flags = U32::new(if ctx.imi_en { SECRETS_FLAG_IMI_EN } else { 0 });
    s.fms = U32::new(fms);
    s.gosvw = ctx.gosvw;
    s.vmpck = ctx.vmpck.0;
    s.vmsa_tweak_bitmap = VMSA_TWEAK_BITMAP;
    s.tsc_factor = U32::new(TSC_FACTOR);
    let bytes = s.as_bytes();
    if let Some(dst) = page.get_mut(..bytes.len()) {
        dst.copy_from_slice(bytes);
    }
    // The stack copy of the VMPCKs.
    zeroize::Zeroize::zeroize(&mut s.vmpck);
}
