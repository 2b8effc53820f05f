//! Launch-channel primitives: AES-128-CTR transport encryption, the
//! LAUNCH_MEASURE measurement and packet MACs (LAUNCH_SECRET, SEND/RECEIVE
//! packets).
//!
//! ```text
//! MEASURE = HMAC-SHA256(TIK, 0x04 || api_major || api_minor || build || u32_le(policy) || LD[32] || MNONCE[16])
//! MAC     = HMAC-SHA256(TIK, ctx || u32_le(flags) || iv[16] || u32_le(guest_len) || u32_le(trans_len)
//!                            || TRANS || [MEASURE only when ctx == SECRET])
//! TRANS   = AES-128-CTR(TEK, counter block = iv, plaintext)
//! ```

use aes::cipher::{KeyIvInit, StreamCipher};
use hmac::{Hmac, Mac};
use sev_abi::launch_digest::SevLaunchDigest;
use sev_abi::policy::GuestPolicy;
use sha2::Sha256;

use crate::session::{Tek, Tik};
use crate::{CryptoError, Result};

/// Packet MAC context of LAUNCH_SECRET packets.
pub const CONTEXT_SECRET: u8 = 0x01;
/// Packet MAC context of SEND/RECEIVE_UPDATE_DATA (and, in the firmware,
/// also of VMSA packets).
pub const CONTEXT_DATA: u8 = 0x02;
/// Packet MAC context defined for VMSA packets (the firmware uses
/// [`CONTEXT_DATA`] for them).
pub const CONTEXT_VMSA: u8 = 0x03;
/// Context byte that starts the LAUNCH_MEASURE input.
pub const CONTEXT_MEASURE: u8 = 0x04;

type Aes128Ctr = ctr::Ctr128BE<aes::Aes128>;

/// AES-128 in counter mode, in place. `iv` is the initial 128-bit
/// big-endian counter block (OpenSSL's CTR). Encryption and decryption are
/// the same operation.
pub fn aes128_ctr(key: &[u8; 16], iv: &[u8; 16], data: &mut [u8]) {
    let mut cipher = Aes128Ctr::new(key.into(), iv.into());
    cipher.apply_keystream(data);
}

/// HMAC-SHA256 of the concatenation of `parts`.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC accepts keys of any length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// Compares two byte strings in time that depends only on their lengths.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    core::hint::black_box(diff) == 0
}

/// The LAUNCH_MEASURE measurement over the launch digest.
pub fn launch_measurement(
    tik: &Tik,
    api_major: u8,
    api_minor: u8,
    build: u8,
    policy: GuestPolicy,
    digest: &SevLaunchDigest,
    mnonce: &[u8; 16],
) -> [u8; 32] {
    hmac_sha256(
        &tik.0,
        &[
            &[CONTEXT_MEASURE, api_major, api_minor, build],
            &policy.raw().to_le_bytes(),
            &digest[..],
            mnonce,
        ],
    )
}

/// The MAC of a packet header; `measurement` is appended only when given
/// (the firmware appends it for [`CONTEXT_SECRET`]).
#[allow(clippy::too_many_arguments)]
pub fn packet_mac(
    tik: &Tik,
    context: u8,
    flags: u32,
    iv: &[u8; 16],
    guest_len: u32,
    trans_len: u32,
    trans: &[u8],
    measurement: Option<&[u8; 32]>,
) -> [u8; 32] {
    let measurement: &[u8] = match measurement {
        Some(m) => m,
        None => &[],
    };
    hmac_sha256(
        &tik.0,
        &[
            &[context],
            &flags.to_le_bytes(),
            iv,
            &guest_len.to_le_bytes(),
            &trans_len.to_le_bytes(),
            trans,
            measurement,
        ],
    )
}

/// Encrypts a LAUNCH_SECRET payload and computes its header MAC (flags 0,
/// guest_len = trans_len = payload length, context SECRET, MAC over the
/// ciphertext followed by the launch measurement). Returns
/// `(ciphertext, mac)`.
///
/// The firmware also requires the length to be a multiple of 16; that is
/// the caller's concern.
///
/// # Panics
/// If the plaintext is 4 GiB or longer (its length must fit the `u32`
/// header fields).
pub fn seal_secret(
    tek: &Tek,
    tik: &Tik,
    iv: &[u8; 16],
    measurement: &[u8; 32],
    plaintext: &[u8],
) -> (Vec<u8>, [u8; 32]) {
    let len = u32::try_from(plaintext.len()).expect("secret length must fit in u32");
    let mut ciphertext = plaintext.to_vec();
    aes128_ctr(&tek.0, iv, &mut ciphertext);
    let mac = packet_mac(
        tik,
        CONTEXT_SECRET,
        0,
        iv,
        len,
        len,
        &ciphertext,
        Some(measurement),
    );
    (ciphertext, mac)
}

/// Checks a LAUNCH_SECRET MAC (in constant time, over the ciphertext, before
/// decrypting) and decrypts the payload.
///
/// Fails with [`CryptoError::BadMac`] (firmware status `BAD_MEASUREMENT`)
/// when the MAC does not match.
pub fn open_secret(
    tek: &Tek,
    tik: &Tik,
    iv: &[u8; 16],
    measurement: &[u8; 32],
    ciphertext: &[u8],
    mac: &[u8; 32],
) -> Result<Vec<u8>> {
    let len = u32::try_from(ciphertext.len()).map_err(|_| CryptoError::BadLength {
        what: "secret ciphertext (must fit in u32)",
        expected: u32::MAX as usize,
        actual: ciphertext.len(),
    })?;
    let expected = packet_mac(
        tik,
        CONTEXT_SECRET,
        0,
        iv,
        len,
        len,
        ciphertext,
        Some(measurement),
    );
    if !ct_eq(&expected, mac) {
        return Err(CryptoError::BadMac);
    }
    let mut plaintext = ciphertext.to_vec();
    aes128_ctr(&tek.0, iv, &mut plaintext);
    Ok(plaintext)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest;

    #[test]
    fn measurement_vector() {
        // amd-sp-reference.md §1.11.
        let tik = Tik(hex::decode("66320db73158a35a255d051758e95ed4")
            .unwrap()
            .try_into()
            .unwrap());
        let digest: [u8; 32] = Sha256::digest([]).into();
        assert_eq!(
            hex::encode(digest),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let mnonce: [u8; 16] = hex::decode("4fbe0bedbad6c86ae8f68971d103e554")
            .unwrap()
            .try_into()
            .unwrap();
        let m = launch_measurement(
            &tik,
            0x00,
            0x12,
            0x0f,
            GuestPolicy::from_raw(0),
            &SevLaunchDigest::new(digest),
            &mnonce,
        );
        assert_eq!(
            hex::encode(m),
            "6faab2daae389bcd3405a05d6cafe33c0414f7bedd0bae19ba5f38b7fd1664ea"
        );
        assert_ne!(
            launch_measurement(
                &tik,
                0x00,
                0x12,
                0x0f,
                GuestPolicy::from_raw(1),
                &SevLaunchDigest::new(digest),
                &mnonce
            ),
            m
        );
    }

    #[test]
    fn ctr_counter_is_big_endian_128_bit() {
        // The counter block increments as one 128-bit big-endian integer, so
        // the second keystream block with IV ff..ff is the first block with
        // IV 00..00.
        let key = [0x11u8; 16];
        let mut a = [0u8; 32];
        aes128_ctr(&key, &[0xFF; 16], &mut a);
        let mut b = [0u8; 16];
        aes128_ctr(&key, &[0; 16], &mut b);
        assert_eq!(&a[16..], &b[..]);
        let mut iv = [0u8; 16];
        iv[15] = 1;
        let mut c = [0u8; 16];
        aes128_ctr(&key, &iv, &mut c);
        let mut d = [0u8; 32];
        aes128_ctr(&key, &[0; 16], &mut d);
        assert_eq!(&d[16..], &c[..]);
    }

    #[test]
    fn aes_ctr_known_answer() {
        // NIST SP800-38A F.5.1 (CTR-AES128.Encrypt), first block.
        let key: [u8; 16] = hex::decode("2b7e151628aed2a6abf7158809cf4f3c")
            .unwrap()
            .try_into()
            .unwrap();
        let iv: [u8; 16] = hex::decode("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff")
            .unwrap()
            .try_into()
            .unwrap();
        let mut data =
            hex::decode("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51")
                .unwrap();
        aes128_ctr(&key, &iv, &mut data);
        assert_eq!(
            hex::encode(data),
            "874d6191b620e3261bef6864990db6ce9806f66b7970fdff8617187bb9fffdff"
        );
    }

    #[test]
    fn packet_mac_layout() {
        let tik = Tik([5; 16]);
        let iv = [6u8; 16];
        let m = [7u8; 32];
        let mut input = vec![CONTEXT_SECRET];
        input.extend_from_slice(&0x0102_0304u32.to_le_bytes());
        input.extend_from_slice(&iv);
        input.extend_from_slice(&16u32.to_le_bytes());
        input.extend_from_slice(&17u32.to_le_bytes());
        input.extend_from_slice(b"abc");
        input.extend_from_slice(&m);
        assert_eq!(
            packet_mac(
                &tik,
                CONTEXT_SECRET,
                0x0102_0304,
                &iv,
                16,
                17,
                b"abc",
                Some(&m)
            ),
            hmac_sha256(&tik.0, &[&input])
        );
        let without = packet_mac(&tik, CONTEXT_DATA, 0x0102_0304, &iv, 16, 17, b"abc", None);
        input[0] = CONTEXT_DATA;
        input.truncate(input.len() - 32);
        assert_eq!(without, hmac_sha256(&tik.0, &[&input]));
    }

    #[test]
    fn seal_open_round_trip_and_tampering() {
        let tek = Tek([1; 16]);
        let tik = Tik([2; 16]);
        let iv = [3u8; 16];
        let measurement = [4u8; 32];
        let secret = b"a secret of exactly 32 bytes....";
        let (ct, mac) = seal_secret(&tek, &tik, &iv, &measurement, secret);
        assert_ne!(&ct[..], &secret[..]);
        assert_eq!(ct.len(), secret.len());
        assert_eq!(
            open_secret(&tek, &tik, &iv, &measurement, &ct, &mac).unwrap(),
            secret
        );

        let mut bad_ct = ct.clone();
        bad_ct[5] ^= 1;
        assert_eq!(
            open_secret(&tek, &tik, &iv, &measurement, &bad_ct, &mac),
            Err(CryptoError::BadMac)
        );
        let mut bad_mac = mac;
        bad_mac[0] ^= 1;
        assert_eq!(
            open_secret(&tek, &tik, &iv, &measurement, &ct, &bad_mac),
            Err(CryptoError::BadMac)
        );
        let mut bad_m = measurement;
        bad_m[31] ^= 1;
        assert_eq!(
            open_secret(&tek, &tik, &iv, &bad_m, &ct, &mac),
            Err(CryptoError::BadMac)
        );
        let mut bad_iv = iv;
        bad_iv[0] ^= 1;
        assert_eq!(
            open_secret(&tek, &tik, &bad_iv, &measurement, &ct, &mac),
            Err(CryptoError::BadMac)
        );
        assert_eq!(
            open_secret(&tek, &tik, &iv, &measurement, &ct[..16], &mac),
            Err(CryptoError::BadMac)
        );
        assert_eq!(
            open_secret(&tek, &Tik([9; 16]), &iv, &measurement, &ct, &mac),
            Err(CryptoError::BadMac)
        );
    }

    #[test]
    fn constant_time_compare() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
        assert!(ct_eq(b"", b""));
    }
}
