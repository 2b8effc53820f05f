//! Shared helpers: one cached chip, and a full owner-verified launch over
//! any seam.
#![allow(dead_code)]

use std::sync::OnceLock;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sev_abi::session::PacketHeader;
use sev_crypto::packet::{launch_measurement, seal_secret};
use sev_crypto::session::build_launch_session;
use sev_firmware::{
    ChipIdentity, Firmware, FirmwareConfig, SystemMemory, DEFAULT_API_MAJOR, DEFAULT_API_MINOR,
    DEFAULT_BUILD,
};
use sev_firmware_server::launch::{self, layout};
use sev_measure::log::LogPageType;
use sev_measure::sev::SevLaunchDigest;
use sev_sp::AmdSp;

/// Seed of the chip shared with sev-firmware's tests (same cache).
pub const CHIP_SEED: [u8; 32] = [0x5E; 32];

/// The shared test chip, minted once (two RSA-4096 key generations) and
/// cached under Cargo's target directory.
pub fn chip() -> ChipIdentity {
    static CHIP: OnceLock<ChipIdentity> = OnceLock::new();
    CHIP.get_or_init(|| {
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("sev-firmware-test-chip");
        Firmware::open(FirmwareConfig {
            state_dir: Some(dir),
            seed: Some(CHIP_SEED),
            ..FirmwareConfig::default()
        })
        .expect("test chip")
        .chip()
        .clone()
    })
    .clone()
}

/// A seeded in-memory firmware on the shared chip.
pub fn firmware(seed: u8, config: FirmwareConfig) -> Firmware {
    Firmware::open_with_chip(
        FirmwareConfig {
            seed: Some([seed; 32]),
            ..config
        },
        chip(),
    )
    .unwrap()
}

/// What a launch produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub handle: u32,
    pub measurement: [u8; 32],
    pub mnonce: [u8; 16],
}

/// A full launch as a VMM and a guest owner perform it: export the PDH,
/// build the owner's session against it, LAUNCH_START, ACTIVATE, measure
/// `image` (and `vmsas` for SEV-ES), LAUNCH_MEASURE, check the measurement
/// against the owner's own computation, LAUNCH_SECRET, LAUNCH_FINISH.
pub fn full_launch(
    sp: &mut dyn AmdSp,
    mem: &mut dyn SystemMemory,
    seed: u8,
    policy: u32,
    asid: u32,
    image: &[u8],
    vmsas: &[Vec<u8>],
) -> Outcome {
    let es = policy & 0x4 != 0;
    launch::ensure_init(sp, es).unwrap();
    let (pdh, _chain) = launch::export_pdh(sp, mem).unwrap();
    let mut rng = ChaCha20Rng::from_seed([seed; 32]);
    let session = build_launch_session(pdh.ecc_key().unwrap(), policy, &mut rng).unwrap();
    let handle = launch::launch_start(
        sp,
        mem,
        policy,
        Some((&session.godh_cert, &session.session)),
    )
    .unwrap();
    launch::activate(sp, handle, asid).unwrap();
    mem.write(layout::IMAGE, image).unwrap();
    launch::update_data(sp, handle, layout::IMAGE, image.len() as u32).unwrap();
    for (i, page) in vmsas.iter().enumerate() {
        launch::update_vmsa(sp, mem, handle, layout::VMSA_BASE + 0x1000 * i as u64, page).unwrap();
    }
    let (measurement, mnonce) = launch::measure(sp, mem, handle).unwrap();

    // The owner's side: the predicted digest, HMAC'd under TIK.
    let mut ld = SevLaunchDigest::new();
    ld.update("image", Some(layout::IMAGE), LogPageType::SevData, image);
    for (i, page) in vmsas.iter().enumerate() {
        ld.update(&format!("vmsa[{i}]"), None, LogPageType::Vmsa, page);
    }
    let expected = launch_measurement(
        &session.tik,
        DEFAULT_API_MAJOR,
        DEFAULT_API_MINOR,
        DEFAULT_BUILD,
        policy,
        &ld.digest(),
        &mnonce,
    );
    assert_eq!(measurement, expected, "measurement of guest {handle}");

    let secret = [seed; 64];
    let iv = [0x42u8; 16];
    let (ct, mac) = seal_secret(&session.tek, &session.tik, &iv, &measurement, &secret);
    launch::inject_secret(
        sp,
        mem,
        handle,
        &PacketHeader::new(0, iv, mac),
        &ct,
        layout::SECRET_DST,
    )
    .unwrap();
    launch::finish(sp, handle).unwrap();
    Outcome {
        handle,
        measurement,
        mnonce,
    }
}

/// A deterministic pseudo-random image of `len` bytes.
pub fn image(seed: u8, len: usize) -> Vec<u8> {
    let mut x = u64::from(seed) | 0x9E37_79B9_7F4A_7C00;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
