//! Arbitrary SNP guest request pages into the firmware's
//! `snp::guest_request::handle`: it must never panic. Half of the inputs
//! are sealed under the guest's real VMPCK with the right sequence number
//! (the input is then the payload and header fields), so the payload
//! parsers behind the tag check are reached too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sev_abi::guest_msg::GuestMessageHeader;
use sev_abi::product::Product;
use sev_crypto::guest_msg::seal_message;
use sev_firmware::snp::guest_request::{
    handle, standalone_guest, standalone_platform, FixedEndorsementKeys,
};
use sev_firmware::snp::GuestRequestEnv;
use std::sync::OnceLock;
use zerocopy::FromBytes;

static KEYS: OnceLock<FixedEndorsementKeys> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let keys = KEYS.get_or_init(|| FixedEndorsementKeys::generate(true));
    let vmpck = [[0x11; 32], [0x22; 32], [0x33; 32], [0x44; 32]];
    let mut gctx = standalone_guest(vmpck);
    let product = if data.first().is_some_and(|b| b & 1 == 1) {
        Product::Turin
    } else {
        Product::Genoa
    };
    let platform = standalone_platform(product);
    let mut env = GuestRequestEnv {
        gctx: &mut gctx,
        platform: &platform,
        keys,
    };
    if let Some((&0xA5, rest)) = data.split_first() {
        // Authenticated path: header fields from the input, payload after it.
        if let Ok((mut header, payload)) = GuestMessageHeader::read_from_prefix(rest) {
            header.msg_vmpck &= 3;
            header.msg_seqno = 1.into();
            let key = vmpck[usize::from(header.msg_vmpck)];
            if let Ok(page) = seal_message(&key, &header, payload) {
                let _ = handle(&mut env, &page);
            }
        }
    } else {
        let _ = handle(&mut env, data);
    }
});
