//! Arbitrary SNP guest response pages into the guest library
//! (`sev_guest::GuestChannel`): opening must never panic. Half of the
//! inputs are sealed under the channel's key with the expected sequence
//! number and type, so the report and key payload parsers are reached.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sev_abi::guest_msg::{GuestMessageHeader, KeyRequest, KeySelect, MessageType};
use sev_crypto::guest_msg::seal_message;
use sev_guest::GuestChannel;

const KEY: [u8; 32] = [0x5C; 32];

fuzz_target!(|data: &[u8]| {
    let Ok(mut channel) = GuestChannel::new(&KEY, 1, 6) else {
        return;
    };
    let report = data.first().is_some_and(|b| b & 1 == 0);
    let request = if report {
        channel.request_report([0; 64], 1, KeySelect::Vcek)
    } else {
        channel.request_key(&KeyRequest::new(false, KeySelect::Vcek, 0, 1, 0, 0))
    };
    if request.is_err() {
        return;
    }
    let sealed;
    let page: &[u8] = if data.get(1) == Some(&0xA5) {
        let msg_type = if report {
            MessageType::ReportRsp
        } else {
            MessageType::KeyRsp
        };
        let header = GuestMessageHeader::new(msg_type, 1, 0, 1, 8);
        match seal_message(&KEY, &header, data.get(2..).unwrap_or_default()) {
            Ok(page) => {
                sealed = page;
                &sealed
            }
            Err(_) => return,
        }
    } else {
        data
    };
    if report {
        let _ = channel.open_report_response(page);
    } else {
        let _ = channel.open_key_response(page);
    }
    let _ = channel.pending_request();
});
