//! SNP_GUEST_REQUEST: the firmware side of guest messages (reference
//! §2.10, §2.11).
//!
//! [`handle`] takes the guest's request page and returns the response page
//! or a *command* status (no response written):
//!
//! 1. Header checks → `INVALID_PARAM`: header version 1, header size 0x60,
//!    algorithm 1 (AES-256-GCM), `msg_sz` non-zero and a multiple of 16,
//!    header and payload inside the page, `msg_vmpck <= 3`.
//! 2. AES-GCM tag under VMPCK\[`msg_vmpck`\] → [`TAG_FAILURE_STATUS`]
//!    (`BAD_MEASUREMENT`, the firmware's code for every failed MAC; the
//!    reference leaves the exact code open).
//! 3. `msg_seqno == msg_count[vmpck] + 1` (and the counter not exhausted),
//!    else `AEAD_OFLOW`: a replayed or reordered request is refused and the
//!    counter is unchanged, so the guest continues with the right number.
//! 4. Message type and version: only MSG_REPORT_REQ (version 1) and
//!    MSG_KEY_REQ (versions 1 and 2) are modelled; anything else (unknown,
//!    a response type, unmodelled requests) → `INVALID_PARAM`.
//!
//! Then the response: `msg_type + 1`, the request's `msg_version`,
//! `msg_seqno + 1`, the same VMPCK, sealed with the same key; the counter
//! advances by two. Guest mistakes inside the payload (bad VMPL, key
//! selection, reserved bits) are answered in the payload's `status` field
//! with command status SUCCESS.
//!
//! MSG_KEY_REQ derives `KDF(root, "gmsg-keyreq", MIX_DATA, 32)` with MIX_DATA
//! as in §2.11. Model choice: with GFS bit 6 (LAUNCH_MIT_VECTOR, version-2
//! requests) the 8-byte vector is appended to MIX_DATA (0xB0 bytes).

use sev_abi::guest_msg::{
    GuestMessageHeader, KeyRequest, KeyRequestV2, KeySelect, MessageType, ReportRequest,
    AEAD_ALGO_AES_256_GCM, GFS_FAMILY_ID, GFS_GUEST_POLICY, GFS_GUEST_SVN, GFS_IMAGE_ID,
    GFS_LAUNCH_MIT_VECTOR, GFS_MEASUREMENT, GFS_TCB_VERSION, GUEST_MSG_HEADER_LEN, HEADER_VERSION,
    KEY_REQUEST_V1_LEN, KEY_REQUEST_V2_LEN, KEY_RESPONSE_LEN, MAX_VMPCK, REPORT_REQUEST_LEN,
    REPORT_RESPONSE_HEADER_LEN, REPORT_RESPONSE_LEN,
};
use sev_abi::launch_digest::SnpLaunchDigest;
use sev_abi::product::TcbVersion;
use sev_abi::report::REPORT_LEN;
use sev_abi::status::FirmwareStatus;
use sev_crypto::guest_msg::{open_message, seal_message, GUEST_MSG_PAGE_LEN};
use sev_crypto::kdf::{kdf, LABEL_GMSG_KEYREQ};
use zerocopy::{FromBytes, IntoBytes};
use zeroize::Zeroizing;

use std::sync::Arc;

use sev_abi::policy::SnpPolicy;
use sev_abi::product::Product;
use sev_crypto::ecdsa::{P384PublicKey, P384SigningKey};
use sev_measure::{DigestAlgorithm, LaunchLog};

use super::keys::{EndorsementKeys, SEED_LEN};
use super::report::{build_report, ReportInputs, ReportSigner};
use super::{
    GuestContext, GuestRequestEnv, IdBlockFields, Secret32, SnpGuestState, SnpPlatformView, Vmpcks,
};
use crate::crypt::MemoryKey;
use crate::error::IdentityError;

/// Command status of a request whose AES-GCM tag does not verify.
pub const TAG_FAILURE_STATUS: FirmwareStatus = FirmwareStatus::BAD_MEASUREMENT;
/// Highest MSG_REPORT_REQ version.
pub const REPORT_REQ_MAX_VERSION: u8 = 1;
/// Highest MSG_KEY_REQ version.
pub const KEY_REQ_MAX_VERSION: u8 = 2;
/// Size of MIX_DATA (without the model's launch-mitigation-vector tail).
pub const MIX_DATA_LEN: usize = 0xA8;

/// A guest-side mistake answered in the payload's status field.
type PayloadResult<T> = Result<T, FirmwareStatus>;

/// Handles one SNP_GUEST_REQUEST: opens `request_page` (up to 4096 bytes)
/// with the guest's VMPCK, checks it, builds the answer and returns the
/// sealed response page. Never panics; see the module docs for the order
/// of the checks and the status codes.
pub fn handle(
    env: &mut GuestRequestEnv<'_>,
    request_page: &[u8],
) -> Result<[u8; GUEST_MSG_PAGE_LEN], FirmwareStatus> {
    let invalid = FirmwareStatus::INVALID_PARAM;
    if request_page.len() > GUEST_MSG_PAGE_LEN {
        return Err(invalid);
    }
    let (header, _) = GuestMessageHeader::from_prefix(request_page).map_err(|_| invalid)?;
    let msg_sz = usize::from(header.msg_sz.get());
    if header.hdr_version != HEADER_VERSION
        || usize::from(header.hdr_sz.get()) != GUEST_MSG_HEADER_LEN
        || header.algo != AEAD_ALGO_AES_256_GCM
        || msg_sz == 0
        || msg_sz % 16 != 0
        || GUEST_MSG_HEADER_LEN + msg_sz > request_page.len()
        || header.msg_vmpck > MAX_VMPCK
    {
        return Err(invalid);
    }
    let index = usize::from(header.msg_vmpck);
    let vmpck = env.gctx.vmpck.0.get(index).ok_or(invalid)?;
    let (header, payload) = open_message(vmpck, request_page).map_err(|_| TAG_FAILURE_STATUS)?;

    let count = env.gctx.msg_count.get(index).copied().ok_or(invalid)?;
    let seqno = header.msg_seqno.get();
    if count >= u64::MAX - 1 || seqno != count + 1 {
        return Err(FirmwareStatus::AEAD_OFLOW);
    }

    let msg_type = MessageType::from_u8(header.msg_type).ok_or(invalid)?;
    let max_version = match msg_type {
        MessageType::ReportReq => REPORT_REQ_MAX_VERSION,
        MessageType::KeyReq => KEY_REQ_MAX_VERSION,
        _ => return Err(invalid),
    };
    if header.msg_version == 0 || header.msg_version > max_version {
        return Err(invalid);
    }
    let response_payload: Zeroizing<Vec<u8>> = match msg_type {
        MessageType::KeyReq => key_request(env, &header, &payload),
        _ => report_request(env, &header, &payload)?,
    };

    let response_type = msg_type.response().ok_or(invalid)?;
    let response_header = GuestMessageHeader::new(
        response_type,
        header.msg_version,
        0,
        header.msg_vmpck,
        seqno + 1,
    );
    let page = seal_message(vmpck, &response_header, &response_payload)
        .map_err(|_| FirmwareStatus::HWERROR_PLATFORM)?;
    if let Some(counter) = env.gctx.msg_count.get_mut(index) {
        *counter = seqno + 1;
    }
    Ok(page)
}

/// Splits a request payload into the structure's bytes and checks that the
/// padding after it is zero.
fn fixed_payload(payload: &[u8], len: usize) -> PayloadResult<&[u8]> {
    let (head, tail) = payload
        .split_at_checked(len)
        .ok_or(FirmwareStatus::INVALID_PARAM)?;
    if tail.iter().any(|b| *b != 0) {
        return Err(FirmwareStatus::INVALID_PARAM);
    }
    Ok(head)
}

/// The key a report is signed with or a derived key is rooted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chosen {
    Vcek,
    Vlek,
    /// MASK_CHIP_KEY and no VLEK: unsigned.
    None,
}

/// KEY_SEL rules of §2.10 (reports and KEY_REQ alike).
fn choose_key(env: &GuestRequestEnv<'_>, key_sel: Option<KeySelect>) -> PayloadResult<Chosen> {
    let has_vlek = env.keys.vlek().is_some();
    let vcek_disabled = env.gctx.vcek_disabled;
    let mask = env.platform.mask_chip_key;
    match key_sel {
        None => Err(FirmwareStatus::INVALID_KEY),
        Some(KeySelect::Vlek) if !has_vlek => Err(FirmwareStatus::INVALID_KEY),
        Some(KeySelect::Vcek) if vcek_disabled => Err(FirmwareStatus::INVALID_KEY),
        Some(KeySelect::PreferVlek) if vcek_disabled && !has_vlek => {
            Err(FirmwareStatus::INVALID_KEY)
        }
        Some(KeySelect::Vlek) => Ok(Chosen::Vlek),
        Some(KeySelect::PreferVlek) if has_vlek => Ok(Chosen::Vlek),
        Some(KeySelect::PreferVlek | KeySelect::Vcek) if mask => Ok(Chosen::None),
        Some(KeySelect::PreferVlek | KeySelect::Vcek) => Ok(Chosen::Vcek),
    }
}

fn check_vmpl(vmpl: u32, msg_vmpck: u8) -> PayloadResult<()> {
    if vmpl < u32::from(msg_vmpck) || vmpl > u32::from(MAX_VMPCK) {
        Err(FirmwareStatus::INVALID_PARAM)
    } else {
        Ok(())
    }
}

fn report_request(
    env: &GuestRequestEnv<'_>,
    header: &GuestMessageHeader,
    payload: &[u8],
) -> Result<Zeroizing<Vec<u8>>, FirmwareStatus> {
    let mut out = Zeroizing::new(vec![0u8; REPORT_RESPONSE_LEN]);
    match report_payload(env, header, payload) {
        Ok(Ok(report)) => {
            out[4..8].copy_from_slice(&(REPORT_LEN as u32).to_le_bytes());
            out[REPORT_RESPONSE_HEADER_LEN..].copy_from_slice(report.as_bytes());
        }
        Ok(Err(status)) => out[..4].copy_from_slice(&status.code().to_le_bytes()),
        Err(command_status) => return Err(command_status),
    }
    Ok(out)
}

/// Outer error: command status (no response); inner error: payload status.
fn report_payload(
    env: &GuestRequestEnv<'_>,
    header: &GuestMessageHeader,
    payload: &[u8],
) -> Result<PayloadResult<sev_abi::report::AttestationReport>, FirmwareStatus> {
    let req = match fixed_payload(payload, REPORT_REQUEST_LEN).and_then(|bytes| {
        ReportRequest::read_from_bytes(bytes).map_err(|_| FirmwareStatus::INVALID_PARAM)
    }) {
        Ok(req) => req,
        Err(status) => return Ok(Err(status)),
    };
    let chosen = match choose_key(env, req.key_select()) {
        Ok(chosen) => chosen,
        Err(status) => return Ok(Err(status)),
    };
    if let Err(status) = check_vmpl(req.vmpl.get(), header.msg_vmpck) {
        return Ok(Err(status));
    }
    if req.has_reserved_bits() {
        return Ok(Err(FirmwareStatus::INVALID_PARAM));
    }
    let inputs =
        ReportInputs::from_context(env.gctx, env.platform, req.report_data, req.vmpl.get());
    let report = match chosen {
        Chosen::Vcek => {
            let key = env
                .keys
                .vcek(env.platform.reported_tcb)
                .map_err(|_| FirmwareStatus::HWERROR_PLATFORM)?;
            build_report(&inputs, ReportSigner::Vcek(&key))?
        }
        Chosen::Vlek => {
            let key = env.keys.vlek().ok_or(FirmwareStatus::HWERROR_PLATFORM)?;
            build_report(&inputs, ReportSigner::Vlek(key))?
        }
        Chosen::None => build_report(&inputs, ReportSigner::None)?,
    };
    Ok(Ok(report))
}

fn key_request(
    env: &GuestRequestEnv<'_>,
    header: &GuestMessageHeader,
    payload: &[u8],
) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(vec![0u8; KEY_RESPONSE_LEN]);
    match derive_key(env, header, payload) {
        Ok(key) => out[0x20..0x40].copy_from_slice(&key[..]),
        Err(status) => out[..4].copy_from_slice(&status.code().to_le_bytes()),
    }
    out
}

/// True when every component of `tcb` is at most the one in `limit` and the
/// reserved bytes of `tcb` are zero.
fn tcb_at_most(env: &GuestRequestEnv<'_>, tcb: TcbVersion, limit: TcbVersion) -> bool {
    let layout = env.platform.product.tcb_layout();
    let have = tcb.decode(layout);
    let max = limit.decode(layout);
    tcb.reserved_bytes_zero(layout) && max.meets_minimum(&have)
}

fn derive_key(
    env: &GuestRequestEnv<'_>,
    header: &GuestMessageHeader,
    payload: &[u8],
) -> PayloadResult<Zeroizing<[u8; 32]>> {
    let invalid = FirmwareStatus::INVALID_PARAM;
    let req = if header.msg_version >= 2 {
        KeyRequestV2::read_from_bytes(fixed_payload(payload, KEY_REQUEST_V2_LEN)?)
            .map_err(|_| invalid)?
    } else {
        let v1 = KeyRequest::read_from_bytes(fixed_payload(payload, KEY_REQUEST_V1_LEN)?)
            .map_err(|_| invalid)?;
        KeyRequestV2::new(v1, 0)
    };
    let v1 = &req.v1;
    if v1.has_reserved_bits() {
        return Err(invalid);
    }
    let root_vmrk = v1.root_key_vmrk();
    if !root_vmrk && env.platform.mask_chip_key {
        return Err(FirmwareStatus::INVALID_KEY);
    }
    let chosen = if root_vmrk {
        // Only the reserved selection is refused when the VMRK is the root.
        v1.key_select().ok_or(FirmwareStatus::INVALID_KEY)?;
        None
    } else {
        Some(choose_key(env, v1.key_select())?)
    };
    check_vmpl(v1.vmpl.get(), header.msg_vmpck)?;
    let gfs = v1.guest_field_select.get();
    let allowed = if header.msg_version >= 2 { 0x7F } else { 0x3F };
    if gfs & !allowed != 0 {
        return Err(invalid);
    }
    let tcb = TcbVersion(v1.tcb_version.get());
    if gfs & GFS_TCB_VERSION != 0 && !tcb_at_most(env, tcb, env.platform.committed_tcb) {
        return Err(invalid);
    }
    let gctx = &*env.gctx;
    if gfs & GFS_GUEST_SVN != 0 && v1.guest_svn.get() > gctx.id_block.guest_svn {
        return Err(invalid);
    }

    let mut mix = Zeroizing::new([0u8; MIX_DATA_LEN + 8]);
    let idblock_key_select: u32 = if gctx.author_key_en {
        2
    } else {
        u32::from(gctx.id_block_en)
    };
    mix[0x00..0x04]
        .copy_from_slice(&(u32::from(root_vmrk) | idblock_key_select << 1).to_le_bytes());
    mix[0x08..0x10].copy_from_slice(&gfs.to_le_bytes());
    mix[0x10..0x14].copy_from_slice(&v1.vmpl.get().to_le_bytes());
    if gfs & GFS_GUEST_SVN != 0 {
        mix[0x14..0x18].copy_from_slice(&v1.guest_svn.get().to_le_bytes());
    }
    if gfs & GFS_TCB_VERSION != 0 {
        mix[0x18..0x20].copy_from_slice(&tcb.to_le_bytes());
    }
    if gfs & GFS_GUEST_POLICY != 0 {
        mix[0x20..0x28].copy_from_slice(&gctx.policy.raw().to_le_bytes());
    }
    if gfs & GFS_IMAGE_ID != 0 {
        mix[0x28..0x38].copy_from_slice(&gctx.id_block.image_id);
    }
    if gfs & GFS_FAMILY_ID != 0 {
        mix[0x38..0x48].copy_from_slice(&gctx.id_block.family_id);
    }
    if gfs & GFS_MEASUREMENT != 0 {
        mix[0x48..0x68].copy_from_slice(&gctx.ld[..32]);
    }
    mix[0x68..0x88].copy_from_slice(&gctx.host_data);
    match idblock_key_select {
        1 => mix[0x88..0xA8].copy_from_slice(&gctx.id_key_digest[..32]),
        2 => mix[0x88..0xA8].copy_from_slice(&gctx.author_key_digest[..32]),
        _ => {}
    }
    let mix_len = if gfs & GFS_LAUNCH_MIT_VECTOR != 0 {
        mix[MIX_DATA_LEN..].copy_from_slice(&req.launch_mit_vector.get().to_le_bytes());
        MIX_DATA_LEN + 8
    } else {
        MIX_DATA_LEN
    };

    let mut key = Zeroizing::new([0u8; 32]);
    match chosen {
        None => kdf(
            &gctx.vmrk.0,
            LABEL_GMSG_KEYREQ,
            &mix[..mix_len],
            &mut key[..],
        ),
        Some(Chosen::Vlek) => {
            let seed = env.keys.vlek_seed().ok_or(FirmwareStatus::INVALID_KEY)?;
            kdf(&seed[..], LABEL_GMSG_KEYREQ, &mix[..mix_len], &mut key[..]);
        }
        Some(Chosen::Vcek | Chosen::None) => {
            let tcb = if gfs & GFS_TCB_VERSION != 0 {
                tcb
            } else {
                env.platform.reported_tcb
            };
            let root = env.keys.vcek_hash(tcb);
            kdf(&root[..], LABEL_GMSG_KEYREQ, &mix[..mix_len], &mut key[..]);
        }
    }
    Ok(key)
}

/// Endorsement keys with one fixed VCEK for every TCB (the VCEK hash still
/// depends on the TCB) and an optional VLEK: for tests, fuzzing and
/// benchmarks of [`handle`] without a chip identity.
pub struct FixedEndorsementKeys {
    vcek: Arc<P384SigningKey>,
    vlek: Option<P384SigningKey>,
}

impl core::fmt::Debug for FixedEndorsementKeys {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("FixedEndorsementKeys")
            .field("vlek", &self.vlek.is_some())
            .finish_non_exhaustive()
    }
}

impl FixedEndorsementKeys {
    /// Random keys; with a VLEK when `with_vlek`.
    pub fn generate(with_vlek: bool) -> Self {
        Self {
            vcek: Arc::new(P384SigningKey::generate()),
            vlek: with_vlek.then(P384SigningKey::generate),
        }
    }

    /// The VCEK's public key.
    pub fn vcek_public(&self) -> P384PublicKey {
        self.vcek.public_key()
    }

    /// The VLEK's public key, if there is a VLEK.
    pub fn vlek_public(&self) -> Option<P384PublicKey> {
        self.vlek.as_ref().map(P384SigningKey::public_key)
    }
}

impl EndorsementKeys for FixedEndorsementKeys {
    fn vcek(&self, _reported_tcb: TcbVersion) -> Result<Arc<P384SigningKey>, IdentityError> {
        Ok(Arc::clone(&self.vcek))
    }

    fn vcek_hash(&self, tcb: TcbVersion) -> Zeroizing<[u8; SEED_LEN]> {
        let mut hash = Zeroizing::new([0x5A; SEED_LEN]);
        hash[..8].copy_from_slice(&tcb.to_le_bytes());
        hash
    }

    fn vlek(&self) -> Option<&P384SigningKey> {
        self.vlek.as_ref()
    }

    fn vlek_seed(&self) -> Option<Zeroizing<[u8; SEED_LEN]>> {
        self.vlek.as_ref().map(|_| Zeroizing::new([0xA5; SEED_LEN]))
    }
}

/// A RUNNING guest context made without the launch path, with the given
/// VMPCKs and fixed, recognisable values elsewhere (ID block with guest SVN
/// 5, measurement 0x4D.., host data 0x48.., VMRK 0x77..): for fuzzing and
/// benchmarks of [`handle`].
pub fn standalone_guest(vmpck: [[u8; 32]; 4]) -> GuestContext {
    GuestContext {
        gctx_paddr: 0x1000,
        state: SnpGuestState::Running,
        policy: SnpPolicy::from_raw(0x3_0000),
        asid: 1,
        ld: SnpLaunchDigest::new([0x4D; 48]),
        imd: SnpLaunchDigest::default(),
        imi_en: false,
        vmpck: Vmpcks(vmpck),
        msg_count: [0; 4],
        vmrk: Secret32([0x77; 32]),
        report_id: [0x31; 32],
        report_id_ma: [0xFF; 32],
        host_data: [0x48; 32],
        id_block: IdBlockFields {
            family_id: [0xFA; 16],
            image_id: [0x1A; 16],
            guest_svn: 5,
        },
        id_key_digest: [0x1D; 48],
        author_key_digest: [0xAD; 48],
        author_key_en: false,
        id_block_en: true,
        vcek_disabled: false,
        launch_tcb: TcbVersion(0x7306_0000_0000_0003),
        gosvw: [0; 16],
        desired_tsc_khz: 0,
        log: LaunchLog::new(DigestAlgorithm::Sha384, None),
        key: MemoryKey::from_vek(&[1; 16]),
        activated: true,
        vmsa_count: 1,
        principal: None,
    }
}

/// A platform view for [`standalone_guest`]: the product's report layout,
/// TCBs `0x7308_0000_0000_0003` (reported, committed), chip id 0xC1..,
/// firmware 1.55.25, a Genoa FMS (Turin's for Turin).
pub fn standalone_platform(product: Product) -> SnpPlatformView {
    SnpPlatformView {
        product,
        current_tcb: TcbVersion(0x7308_0000_0000_0004),
        reported_tcb: TcbVersion(0x7308_0000_0000_0003),
        committed_tcb: TcbVersion(0x7308_0000_0000_0003),
        chip_id: [0xC1; 64],
        mask_chip_id: false,
        mask_chip_key: false,
        api_major: 1,
        api_minor: 55,
        build: 25,
        fms: if matches!(product, Product::Turin) {
            0x00B0_0F21
        } else {
            0x00A1_0F11
        },
        platform_info: 0x3,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use sev_abi::guest_msg::{
        GFS_FAMILY_ID, GFS_GUEST_POLICY, GFS_GUEST_SVN, GFS_IMAGE_ID, GFS_LAUNCH_MIT_VECTOR,
        GFS_MEASUREMENT, GFS_TCB_VERSION,
    };
    use sev_abi::product::Product;
    use sev_abi::report::SigningKey;
    use sev_crypto::report::verify_report_signature;
    use sev_guest::{GuestChannel, GuestError};

    use super::*;
    use crate::snp::{GuestContext, SnpPlatformView};

    type FakeKeys = FixedEndorsementKeys;

    fn gctx() -> GuestContext {
        let mut vmpck = [[0u8; 32]; 4];
        for (i, k) in vmpck.iter_mut().enumerate() {
            *k = [0x10 + i as u8; 32];
        }
        standalone_guest(vmpck)
    }

    fn platform(product: Product) -> SnpPlatformView {
        standalone_platform(product)
    }

    struct World {
        gctx: GuestContext,
        platform: SnpPlatformView,
        keys: FakeKeys,
    }

    impl World {
        fn new() -> Self {
            Self {
                gctx: gctx(),
                platform: platform(Product::Genoa),
                keys: FakeKeys::generate(false),
            }
        }
        fn send(&mut self, page: &[u8]) -> Result<[u8; 4096], FirmwareStatus> {
            let mut env = GuestRequestEnv {
                gctx: &mut self.gctx,
                platform: &self.platform,
                keys: &self.keys,
            };
            handle(&mut env, page)
        }
        fn channel(&self, index: u8) -> GuestChannel {
            let i = usize::from(index);
            GuestChannel::new(&self.gctx.vmpck.0[i], index, self.gctx.msg_count[i]).unwrap()
        }
        fn report(
            &mut self,
            ch: &mut GuestChannel,
            vmpl: u32,
            sel: KeySelect,
        ) -> sev_guest::Result<sev_abi::report::AttestationReport> {
            let req = ch.request_report([0xDA; 64], vmpl, sel).unwrap();
            let rsp = self.send(&req).unwrap();
            ch.open_report_response(&rsp)
        }
        fn key(
            &mut self,
            ch: &mut GuestChannel,
            req: &KeyRequest,
        ) -> sev_guest::Result<Zeroizing<[u8; 32]>> {
            let page = ch.request_key(req).unwrap();
            let rsp = self.send(&page).unwrap();
            ch.open_key_response(&rsp)
        }
    }

    #[test]
    fn report_round_trip_fields_and_signature() {
        let mut w = World::new();
        let mut ch = w.channel(1);
        let report = w.report(&mut ch, 2, KeySelect::Vcek).unwrap();
        verify_report_signature(report.as_bytes(), &w.keys.vcek_public()).unwrap();
        let g = &w.gctx;
        let p = &w.platform;
        assert_eq!(report.version(), 3);
        assert_eq!(report.guest_svn(), 5);
        assert_eq!(report.policy.raw(), 0x3_0000);
        assert_eq!(report.family_id, g.id_block.family_id);
        assert_eq!(report.image_id, g.id_block.image_id);
        assert_eq!(report.vmpl(), 2);
        assert_eq!(report.signature_algo(), 1);
        assert_eq!(report.current_tcb(), p.current_tcb);
        assert_eq!(report.reported_tcb(), p.reported_tcb);
        assert_eq!(report.committed_tcb(), p.committed_tcb);
        assert_eq!(report.launch_tcb(), g.launch_tcb);
        assert_eq!(report.platform_info.get(), 3);
        assert_eq!(report.key_info().signing_key, SigningKey::Vcek);
        assert!(!report.key_info().author_key_en);
        assert_eq!(report.report_data, [0xDA; 64]);
        assert_eq!(report.measurement, g.ld);
        assert_eq!(report.host_data, g.host_data);
        assert_eq!(report.id_key_digest, g.id_key_digest);
        assert_eq!(report.author_key_digest, g.author_key_digest);
        assert_eq!(report.report_id, g.report_id);
        assert_eq!(report.report_id_ma, [0xFF; 32]);
        assert_eq!(report.cpuid(), Some((0x19, 0x11, 1)));
        assert_eq!(report.chip_id, [0xC1; 64]);
        assert_eq!(report.current_version(), (1, 55, 25));
        assert!(report.reserved_nonzero().is_empty());
        assert_eq!(w.gctx.msg_count[1], 2);
        assert_eq!(ch.message_count(), 2);
        // The next exchange uses 3/4.
        w.report(&mut ch, 1, KeySelect::PreferVlek).unwrap();
        assert_eq!(w.gctx.msg_count[1], 4);
    }

    #[test]
    fn report_key_selection_and_masking() {
        let mut w = World::new();
        w.keys = FakeKeys::generate(true);
        let mut ch = w.channel(0);
        let r = w.report(&mut ch, 0, KeySelect::PreferVlek).unwrap();
        assert_eq!(r.key_info().signing_key, SigningKey::Vlek);
        verify_report_signature(r.as_bytes(), &w.keys.vlek_public().unwrap()).unwrap();
        let r = w.report(&mut ch, 0, KeySelect::Vlek).unwrap();
        assert_eq!(r.key_info().signing_key, SigningKey::Vlek);
        let r = w.report(&mut ch, 0, KeySelect::Vcek).unwrap();
        assert_eq!(r.key_info().signing_key, SigningKey::Vcek);

        // MaskChipKey: VCEK requests are unsigned, VLEK still signs.
        w.platform.mask_chip_key = true;
        w.platform.mask_chip_id = true;
        let r = w.report(&mut ch, 0, KeySelect::Vcek).unwrap();
        assert_eq!(r.key_info().signing_key, SigningKey::None);
        assert!(r.key_info().mask_chip_key);
        assert!(r.is_chip_id_masked());
        assert!(r.as_bytes()[0x2A0..].iter().all(|b| *b == 0));
        let r = w.report(&mut ch, 0, KeySelect::PreferVlek).unwrap();
        assert_eq!(r.key_info().signing_key, SigningKey::Vlek);

        // No VLEK: VLEK-only refused; VCEK_DIS: VCEK and prefer-VLEK refused.
        let mut w = World::new();
        let mut ch = w.channel(0);
        let invalid_key = GuestError::FirmwareStatus(FirmwareStatus::INVALID_KEY.code());
        assert_eq!(
            w.report(&mut ch, 0, KeySelect::Vlek),
            Err(invalid_key.clone())
        );
        w.gctx.vcek_disabled = true;
        assert_eq!(
            w.report(&mut ch, 0, KeySelect::Vcek),
            Err(invalid_key.clone())
        );
        assert_eq!(
            w.report(&mut ch, 0, KeySelect::PreferVlek),
            Err(invalid_key)
        );
        // Payload-level refusals still complete the exchange.
        assert_eq!(w.gctx.msg_count[0], 6);
        assert_eq!(ch.message_count(), 6);
    }

    #[test]
    fn report_payload_refusals() {
        let mut w = World::new();
        let mut ch = w.channel(2);
        let invalid = GuestError::FirmwareStatus(FirmwareStatus::INVALID_PARAM.code());
        // VMPL below the message's VMPCK, or above 3.
        assert_eq!(w.report(&mut ch, 1, KeySelect::Vcek), Err(invalid.clone()));
        assert_eq!(w.report(&mut ch, 4, KeySelect::Vcek), Err(invalid.clone()));
        // Reserved key_sel 3 → INVALID_KEY; reserved bits → INVALID_PARAM.
        let mut req = ReportRequest::new([0; 64], 2, KeySelect::Vcek);
        req.flags = 3.into();
        let page = ch
            .request(MessageType::ReportReq, 1, req.as_bytes())
            .unwrap();
        let rsp = w.send(&page).unwrap();
        assert_eq!(
            ch.open_report_response(&rsp),
            Err(GuestError::FirmwareStatus(
                FirmwareStatus::INVALID_KEY.code()
            ))
        );
        let mut req = ReportRequest::new([0; 64], 2, KeySelect::Vcek);
        req.reserved[5] = 1;
        let page = ch
            .request(MessageType::ReportReq, 1, req.as_bytes())
            .unwrap();
        let rsp = w.send(&page).unwrap();
        assert_eq!(ch.open_report_response(&rsp), Err(invalid.clone()));
        // Short payload.
        let page = ch.request(MessageType::ReportReq, 1, &[0; 0x50]).unwrap();
        let rsp = w.send(&page).unwrap();
        assert_eq!(ch.open_report_response(&rsp), Err(invalid));
        w.report(&mut ch, 3, KeySelect::Vcek).unwrap();
    }

    #[test]
    fn replay_reorder_wrong_key_tamper_then_continue() {
        let mut w = World::new();
        let mut ch = w.channel(0);
        // First exchange, keep its request page.
        let first = ch.request_report([1; 64], 0, KeySelect::Vcek).unwrap();
        let rsp = w.send(&first).unwrap();
        ch.open_report_response(&rsp).unwrap();

        // Replay of the old request.
        assert_eq!(w.send(&first), Err(FirmwareStatus::AEAD_OFLOW));
        assert_eq!(w.gctx.msg_count[0], 2);

        // Reordered: skip ahead (seqno 5 instead of 3).
        let mut ahead = GuestChannel::new(&w.gctx.vmpck.0[0], 0, 4).unwrap();
        let page = ahead.request_report([2; 64], 0, KeySelect::Vcek).unwrap();
        assert_eq!(w.send(&page), Err(FirmwareStatus::AEAD_OFLOW));
        // Going back (seqno 1 with fresh ciphertext).
        let mut behind = GuestChannel::new(&w.gctx.vmpck.0[0], 0, 0).unwrap();
        let page = behind.request_report([2; 64], 0, KeySelect::Vcek).unwrap();
        assert_eq!(w.send(&page), Err(FirmwareStatus::AEAD_OFLOW));

        // Wrong VMPCK (VMPCK1's key with index 0).
        let mut wrong = GuestChannel::new(&w.gctx.vmpck.0[1], 0, 2).unwrap();
        let page = wrong.request_report([3; 64], 0, KeySelect::Vcek).unwrap();
        assert_eq!(w.send(&page), Err(TAG_FAILURE_STATUS));
        // Right key bytes but under another index.
        let mut other = GuestChannel::new(&w.gctx.vmpck.0[0], 1, 0).unwrap();
        let page = other.request_report([3; 64], 1, KeySelect::Vcek).unwrap();
        assert_eq!(w.send(&page), Err(TAG_FAILURE_STATUS));

        // Tampered tag, tampered AAD, tampered ciphertext.
        let good = ch.request_report([4; 64], 0, KeySelect::Vcek).unwrap();
        for (offset, what) in [
            (0usize, "tag"),
            (15, "tag"),
            (0x35, "msg_version (AAD)"),
            (0x3D, "reserved (AAD)"),
            (0x38, "rsvd (AAD)"),
            (0x70, "ciphertext"),
        ] {
            let mut bad = good;
            bad[offset] ^= 0x80;
            assert_eq!(
                w.send(&bad),
                Err(TAG_FAILURE_STATUS),
                "{what} at {offset:#x}"
            );
        }
        // The seqno in the header is not AAD but is the IV: changing it
        // breaks the tag (not AEAD_OFLOW).
        let mut bad = good;
        bad[0x20] ^= 2;
        assert!(w.send(&bad).is_err());
        assert_eq!(w.gctx.msg_count[0], 2);
        assert_eq!(w.gctx.msg_count[1], 0);

        // After all the refusals the guest resends its identical request
        // and continues with the right counter.
        assert_eq!(ch.pending_request(), Some(&good));
        let rsp = w.send(ch.pending_request().unwrap()).unwrap();
        let r = ch.open_report_response(&rsp).unwrap();
        assert_eq!(r.report_data, [4; 64]);
        assert_eq!(w.gctx.msg_count[0], 4);
        w.report(&mut ch, 0, KeySelect::Vcek).unwrap();
        assert_eq!(w.gctx.msg_count[0], 6);
    }

    #[test]
    fn header_checks() {
        let mut w = World::new();
        let mut ch = w.channel(0);
        let good = ch.request_report([0; 64], 0, KeySelect::Vcek).unwrap();
        let invalid = Err(FirmwareStatus::INVALID_PARAM);
        let mut cases: Vec<(&str, [u8; 4096])> = Vec::new();
        let mut p = good;
        p[0x31] = 2;
        cases.push(("hdr_version", p));
        let mut p = good;
        p[0x32] = 0x50;
        cases.push(("hdr_sz", p));
        let mut p = good;
        p[0x30] = 2;
        cases.push(("algo", p));
        let mut p = good;
        p[0x36..0x38].copy_from_slice(&0u16.to_le_bytes());
        cases.push(("msg_sz 0", p));
        let mut p = good;
        p[0x36..0x38].copy_from_slice(&0x58u16.to_le_bytes());
        cases.push(("msg_sz % 16", p));
        let mut p = good;
        p[0x36..0x38].copy_from_slice(&0xFFF0u16.to_le_bytes());
        cases.push(("msg_sz beyond page", p));
        let mut p = good;
        p[0x3C] = 4;
        cases.push(("msg_vmpck", p));
        for (what, page) in cases {
            assert_eq!(w.send(&page), invalid, "{what}");
        }
        assert_eq!(w.send(&good[..0x5F]), invalid);
        assert_eq!(w.send(&good[..0x60]), invalid);
        assert_eq!(w.send(&[0; 4097]), invalid);
        assert_eq!(w.gctx.msg_count[0], 0);
        let rsp = w.send(&good).unwrap();
        ch.open_report_response(&rsp).unwrap();
    }

    #[test]
    fn unsupported_types_and_versions() {
        let mut w = World::new();
        for (t, v) in [
            (MessageType::CpuidReq, 1),
            (MessageType::TscInfoReq, 1),
            (MessageType::ExportReq, 1),
            (MessageType::ReportRsp, 1),
            (MessageType::ReportReq, 0),
            (MessageType::ReportReq, 2),
            (MessageType::KeyReq, 3),
        ] {
            let mut ch = w.channel(0);
            let page = ch.request(t, v, &[0; 0x80]).unwrap();
            assert_eq!(
                w.send(&page),
                Err(FirmwareStatus::INVALID_PARAM),
                "{t:?} v{v}"
            );
        }
        // Unknown type 0x40.
        let mut h = GuestMessageHeader::new(MessageType::ReportReq, 1, 0, 0, 1);
        h.msg_type = 0x40;
        let page = seal_message(&w.gctx.vmpck.0[0], &h, &[0; 0x60]).unwrap();
        assert_eq!(w.send(&page), Err(FirmwareStatus::INVALID_PARAM));
        assert_eq!(w.gctx.msg_count[0], 0);
    }

    fn key_req(gfs: u64) -> KeyRequest {
        KeyRequest::new(false, KeySelect::Vcek, gfs, 1, 0, 0)
    }

    #[test]
    fn derived_keys() {
        let mut w = World::new();
        let mut ch = w.channel(1);
        let base = w.key(&mut ch, &key_req(0)).unwrap();
        assert_eq!(
            *w.key(&mut ch, &key_req(0)).unwrap(),
            *base,
            "deterministic"
        );
        // Each GFS bit changes the key.
        let mut seen = vec![*base];
        for bit in [
            GFS_GUEST_POLICY,
            GFS_IMAGE_ID,
            GFS_FAMILY_ID,
            GFS_MEASUREMENT,
            GFS_GUEST_SVN,
            GFS_TCB_VERSION,
        ] {
            let k = w.key(&mut ch, &key_req(bit)).unwrap();
            assert!(!seen.contains(&*k), "GFS bit {bit:#x}");
            seen.push(*k);
        }
        // VMPL, SVN, TCB values, the VMRK root, the measurement change it.
        let vmpl2 = w
            .key(
                &mut ch,
                &KeyRequest::new(false, KeySelect::Vcek, 0, 2, 0, 0),
            )
            .unwrap();
        assert_ne!(*vmpl2, *base);
        let svn = |s| KeyRequest::new(false, KeySelect::Vcek, GFS_GUEST_SVN, 1, s, 0);
        assert_ne!(
            *w.key(&mut ch, &svn(1)).unwrap(),
            *w.key(&mut ch, &svn(2)).unwrap()
        );
        let tcb = |t| KeyRequest::new(false, KeySelect::Vcek, GFS_TCB_VERSION, 1, 0, t);
        assert_ne!(
            *w.key(&mut ch, &tcb(0x7308_0000_0000_0003)).unwrap(),
            *w.key(&mut ch, &tcb(0x7307_0000_0000_0003)).unwrap()
        );
        let vmrk = w
            .key(&mut ch, &KeyRequest::new(true, KeySelect::Vcek, 0, 1, 0, 0))
            .unwrap();
        assert_ne!(*vmrk, *base);
        let m = w.key(&mut ch, &key_req(GFS_MEASUREMENT)).unwrap();
        w.gctx.ld[0] ^= 1;
        assert_ne!(*w.key(&mut ch, &key_req(GFS_MEASUREMENT)).unwrap(), *m);
        // Host data is always mixed in.
        w.gctx.host_data[0] ^= 1;
        assert_ne!(*w.key(&mut ch, &key_req(0)).unwrap(), *base);
        // Version 2 with the launch mitigation vector.
        let v2 = |mit| KeyRequestV2::new(key_req(GFS_LAUNCH_MIT_VECTOR), mit);
        let page = ch.request_key_v2(&v2(1)).unwrap();
        let a = ch.open_key_response(&w.send(&page).unwrap()).unwrap();
        let page = ch.request_key_v2(&v2(2)).unwrap();
        let b = ch.open_key_response(&w.send(&page).unwrap()).unwrap();
        assert_ne!(*a, *b);
        assert!(!format!("{:?}", w.gctx).contains("77"));
    }

    #[test]
    fn key_request_refusals() {
        let mut w = World::new();
        let mut ch = w.channel(2);
        let status = |s: FirmwareStatus| Err(GuestError::FirmwareStatus(s.code()));
        let invalid = FirmwareStatus::INVALID_PARAM;
        // VMPL below the message's VMPCK.
        let r = KeyRequest::new(false, KeySelect::Vcek, 0, 1, 0, 0);
        assert_eq!(w.key(&mut ch, &r), status(invalid));
        // GFS bit 6 in a version-1 request; bit 7 anywhere.
        let r = KeyRequest::new(false, KeySelect::Vcek, GFS_LAUNCH_MIT_VECTOR, 2, 0, 0);
        assert_eq!(w.key(&mut ch, &r), status(invalid));
        let r = KeyRequest::new(false, KeySelect::Vcek, 1 << 7, 2, 0, 0);
        assert_eq!(w.key(&mut ch, &r), status(invalid));
        // TCB above committed; reserved TCB bytes.
        let r = KeyRequest::new(
            false,
            KeySelect::Vcek,
            GFS_TCB_VERSION,
            2,
            0,
            0x7309_0000_0000_0003,
        );
        assert_eq!(w.key(&mut ch, &r), status(invalid));
        let r = KeyRequest::new(
            false,
            KeySelect::Vcek,
            GFS_TCB_VERSION,
            2,
            0,
            0x7308_0000_0100_0003,
        );
        assert_eq!(w.key(&mut ch, &r), status(invalid));
        // SVN above the ID block's.
        let r = KeyRequest::new(false, KeySelect::Vcek, GFS_GUEST_SVN, 2, 6, 0);
        assert_eq!(w.key(&mut ch, &r), status(invalid));
        // Reserved bits.
        let mut r = KeyRequest::new(false, KeySelect::Vcek, 0, 2, 0, 0);
        r.reserved = 1.into();
        assert_eq!(w.key(&mut ch, &r), status(invalid));
        // Key selection: VLEK without one; MaskChipKey with the chip root.
        let r = KeyRequest::new(false, KeySelect::Vlek, 0, 2, 0, 0);
        assert_eq!(w.key(&mut ch, &r), status(FirmwareStatus::INVALID_KEY));
        w.platform.mask_chip_key = true;
        let r = KeyRequest::new(false, KeySelect::Vcek, 0, 2, 0, 0);
        assert_eq!(w.key(&mut ch, &r), status(FirmwareStatus::INVALID_KEY));
        let r = KeyRequest::new(true, KeySelect::Vcek, 0, 2, 0, 0);
        assert!(w.key(&mut ch, &r).is_ok());
        // VLEK root when one is installed differs from the VCEK root.
        let mut w = World::new();
        w.keys = FakeKeys::generate(true);
        let mut ch = w.channel(0);
        let vlek = w
            .key(
                &mut ch,
                &KeyRequest::new(false, KeySelect::Vlek, 0, 0, 0, 0),
            )
            .unwrap();
        let vcek = w
            .key(
                &mut ch,
                &KeyRequest::new(false, KeySelect::Vcek, 0, 0, 0, 0),
            )
            .unwrap();
        assert_ne!(*vlek, *vcek);
    }

    #[test]
    fn turin_reports_v5() {
        let mut w = World::new();
        w.platform = platform(Product::Turin);
        w.platform.fms = 0x00B0_0F21;
        let mut ch = w.channel(0);
        let r = w.report(&mut ch, 0, KeySelect::Vcek).unwrap();
        assert_eq!(r.version(), 5);
        assert_eq!(r.mitigation_vectors(), Some((0, 0)));
        assert_eq!(&r.chip_id[..8], &[0xC1; 8]);
        assert!(r.chip_id[8..].iter().all(|b| *b == 0));
    }

    #[test]
    fn arbitrary_pages_never_panic() {
        let mut w = World::new();
        let mut state = 0x1234_5678_9ABC_DEF0u64;
        let mut page = [0u8; 4096];
        for round in 0..2000 {
            for b in page.iter_mut().take(0x200) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                *b = state as u8;
            }
            // Keep the header plausible half the time.
            if round % 2 == 0 {
                page[0x30] = 1;
                page[0x31] = 1;
                page[0x32..0x34].copy_from_slice(&0x60u16.to_le_bytes());
                page[0x36..0x38].copy_from_slice(&0x60u16.to_le_bytes());
                page[0x3C] &= 3;
            }
            assert!(w.send(&page[..(round * 7) % 4097]).is_err());
        }
    }
}
