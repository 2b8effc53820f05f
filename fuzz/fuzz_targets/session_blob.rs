//! The firmware's side of a launch session (`open_launch_session`) on
//! arbitrary GODH certificates and session blobs, with a fixed PDH key:
//! never panics; anything it accepts must round-trip the keys it returns.
//!
//! Input: one mode byte, a u32 policy (LE), the 0x80-byte session blob,
//! then the 0x824-byte GODH certificate (zero-filled when short). The mode
//! bits steer the fuzzer past the early checks: bit 0 forces a valid
//! version, usage, algorithm and curve; bit 1 also puts a valid P-384 key
//! in the certificate, so the MAC checks are reached; bit 2 (with 0 and 1)
//! rebuilds the blob as the owner would (keys from the wrap_tk bytes, the
//! nonce and IV as given), which must open to exactly those keys; bit 3
//! then flips one bit of the blob (position from the policy_mac bytes),
//! which must be refused with BAD_MEASUREMENT.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sev_abi::legacy_cert::{SevCert, SEV_CERT_LEN};
use sev_abi::session::{SessionBlob, SESSION_BLOB_LEN};
use sev_crypto::session::{
    derive_transport_keys, open_launch_session, policy_mac, wrap_keys, EcdhP384Secret,
    SessionError, Tek, Tik,
};
use zerocopy::{FromBytes, IntoBytes};

fn scalar(last: u8) -> EcdhP384Secret {
    let mut d = [0x5Au8; 48];
    d[47] = last;
    EcdhP384Secret::from_be_bytes(&d).expect("fixed scalar is in range")
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut buf = [0u8; 4 + SESSION_BLOB_LEN + SEV_CERT_LEN];
    let n = rest.len().min(buf.len());
    buf[..n].copy_from_slice(&rest[..n]);
    let policy = u32::from_le_bytes(buf[..4].try_into().unwrap());
    let session = SessionBlob::read_from_bytes(&buf[4..4 + SESSION_BLOB_LEN]).unwrap();
    let mut cert = SevCert::read_from_bytes(&buf[4 + SESSION_BLOB_LEN..]).unwrap();
    if mode & 1 != 0 {
        cert.version.set(1);
        cert.pubkey_usage.set(0x1003);
        cert.pubkey_algo.set(0x3);
        cert.pubkey[..4].copy_from_slice(&2u32.to_le_bytes());
    }
    if mode & 2 != 0 {
        let godh = scalar(7).public_amd();
        cert.pubkey.copy_from_slice(godh.as_bytes());
    }
    let pdh = scalar(3);
    if mode & 7 == 7 {
        let mut session = session;
        let tek = Tek::new(session.wrap_tk[..16].try_into().unwrap());
        let tik = Tik::new(session.wrap_tk[16..].try_into().unwrap());
        let z = scalar(7).shared_x_be(&pdh.public_sec1()).unwrap();
        let (kek, kik) = derive_transport_keys(&z, &session.nonce);
        let flip = usize::from(u16::from_le_bytes([
            session.policy_mac[0],
            session.policy_mac[1],
        ])) % (SESSION_BLOB_LEN * 8);
        (session.wrap_tk, session.wrap_mac) = wrap_keys(&kek, &kik, &session.wrap_iv, &tek, &tik);
        session.policy_mac = policy_mac(&tik, policy);
        let mut bytes = [0u8; SESSION_BLOB_LEN];
        bytes.copy_from_slice(session.as_bytes());
        if mode & 8 != 0 {
            bytes[flip / 8] ^= 1 << (flip % 8);
        }
        let session = SessionBlob::read_from_bytes(&bytes).unwrap();
        let r = open_launch_session(&pdh, &cert, &session, policy);
        if mode & 8 == 0 {
            let (t, i) = r.expect("an honestly built session opens");
            assert!(t == tek && i == tik);
        } else {
            assert_eq!(r.unwrap_err().status().code(), 0x0b);
        }
        return;
    }
    match open_launch_session(&pdh, &cert, &session, policy) {
        Ok((_tek, tik)) => {
            assert_eq!(policy_mac(&tik, policy), session.policy_mac);
        }
        Err(e) => {
            let _ = e.status();
            let _ = e.to_string();
            if let SessionError::InvalidCertificate(_) = e {
                assert_eq!(e.status().code(), 0x06);
            } else {
                assert_eq!(e.status().code(), 0x0b);
            }
        }
    }
});
