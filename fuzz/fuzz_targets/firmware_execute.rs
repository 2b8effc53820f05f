//! The software AMD-SP's one entry point on arbitrary command sequences:
//! `execute` never panics, whatever the command ids, buffers and memory.
//!
//! Input: byte 0 bit 0 starts from an initialized platform (INIT), bit 1
//! from one with SEV-ES, bit 2 with a launched and activated guest (handle
//! 1); then records `u32 command id LE | u8 buffer length | buffer bytes`
//! until the input ends. Memory is 2 MiB, its first 64 KiB taken from the
//! tail of the input, so addresses in buffers can hit data.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sev_abi::status::FirmwareStatus;
use sev_firmware::{ChipIdentity, Firmware, FirmwareConfig, SystemMemory, VecMemory};

/// A Naples-style chip (RSA-2048 roots): minted once, quickly.
fn chip() -> ChipIdentity {
    static CHIP: OnceLock<ChipIdentity> = OnceLock::new();
    CHIP.get_or_init(|| {
        ChipIdentity::generate_with_bits(&mut ChaCha20Rng::from_seed([0x5E; 32]), 1, 55, 2048)
            .unwrap()
    })
    .clone()
}

fuzz_target!(|data: &[u8]| {
    let Some((&opts, mut rest)) = data.split_first() else {
        return;
    };
    let mut fw = Firmware::open_with_chip(
        FirmwareConfig {
            seed: Some([1; 32]),
            ..FirmwareConfig::default()
        },
        chip(),
    )
    .unwrap();
    let mut mem = VecMemory::new(2 << 20);
    let tail = &data[data.len().saturating_sub(0x1_0000)..];
    mem.write(0, tail).unwrap();

    if opts & 1 != 0 {
        let es = opts & 2 != 0;
        let mut init = [0u8; 0x14];
        if es {
            init[0] = 1;
            init[8..16].copy_from_slice(&0x10_0000u64.to_le_bytes());
            init[16..20].copy_from_slice(&(1u32 << 20).to_le_bytes());
        }
        assert_eq!(
            fw.execute(0x01, &mut init, &mut mem),
            FirmwareStatus::SUCCESS
        );
        if opts & 4 != 0 {
            let mut start = [0u8; 0x24];
            if es {
                start[4] = 4;
            }
            assert_eq!(
                fw.execute(0x30, &mut start, &mut mem),
                FirmwareStatus::SUCCESS
            );
            let mut act = [0u8; 8];
            act[0] = 1;
            act[4] = if es { 1 } else { 5 };
            assert_eq!(
                fw.execute(0x21, &mut act, &mut mem),
                FirmwareStatus::SUCCESS
            );
        }
    }

    while let Some((id, after)) = rest.split_first_chunk::<4>() {
        let Some((&len, after)) = after.split_first() else {
            break;
        };
        let len = usize::from(len).min(after.len());
        let mut buf = after[..len].to_vec();
        let before = buf.len();
        let _ = fw.execute(u32::from_le_bytes(*id), &mut buf, &mut mem);
        assert_eq!(buf.len(), before);
        rest = &after[len..];
    }
    // Still answering.
    let mut status = [0u8; 12];
    assert_eq!(
        fw.execute(0x04, &mut status, &mut mem),
        FirmwareStatus::SUCCESS
    );
});
