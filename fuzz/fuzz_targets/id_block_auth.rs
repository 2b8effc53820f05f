//! SNP_LAUNCH_FINISH's ID block / ID auth check on arbitrary blobs:
//! `check_id_block` never panics and only accepts a pair whose LD and policy
//! match and whose signatures verify.
//!
//! Input: byte 0 bit 0 = AUTHOR_KEY_EN; then the 0x60-byte ID block and the
//! 0x1000-byte ID auth (short input is zero-padded). The expected LD and
//! policy are taken from the ID block itself half of the time (byte 0 bit 1)
//! so the signature checks are reached.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sev_abi::snp_launch::{ID_AUTH_LEN, ID_BLOCK_LEN};
use sev_firmware::snp::launch::check_id_block;

fuzz_target!(|data: &[u8]| {
    let Some((&opts, rest)) = data.split_first() else {
        return;
    };
    let mut block = [0u8; ID_BLOCK_LEN];
    let mut auth = vec![0u8; ID_AUTH_LEN];
    let n = rest.len().min(ID_BLOCK_LEN);
    block[..n].copy_from_slice(&rest[..n]);
    let rest = &rest[n..];
    let m = rest.len().min(ID_AUTH_LEN);
    auth[..m].copy_from_slice(&rest[..m]);
    let (ld, policy) = if opts & 2 != 0 {
        let mut ld = [0u8; 48];
        ld.copy_from_slice(&block[..48]);
        (
            ld,
            u64::from_le_bytes(block[0x58..0x60].try_into().unwrap()),
        )
    } else {
        ([0u8; 48], 0x30000)
    };
    let _ = check_id_block(&ld, policy, &block, &auth, opts & 1 != 0);
    // Wrong lengths are refused, never a panic.
    let _ = check_id_block(&ld, policy, &block[..n], &auth[..m], opts & 1 != 0);
});
