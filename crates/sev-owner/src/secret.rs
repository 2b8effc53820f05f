//! The secret table OVMF reads from its SEV secret area, and the
//! LAUNCH_SECRET packet that carries it, in the format `sevctl secret build`
//! writes.
//!
//! ```text
//! table   = GUID_le(1e74f542-71dd-4d66-963e-ef4287ff173b) || u32_le(table_len) || entry*
//!           || zero padding to a multiple of 16 (not counted in table_len)
//! entry   = GUID_le(secret GUID) || u32_le(20 + data_len) || data      (no per-entry padding)
//! header  = u32_le(flags = 0) || iv[16] || mac[32]                       (0x34 bytes)
//! payload = AES-128-CTR(TEK, iv)(table)
//! mac     = HMAC-SHA256(TIK, 0x01 || u32_le(flags) || iv || u32_le(len) || u32_le(len)
//!                            || payload || measurement[32])
//! ```
//!
//! `table_len` counts the 20-byte table header and every entry; GUIDs are in
//! EFI mixed-endian byte order ([`Guid::to_le_bytes`]). The measurement is
//! the [`LaunchMeasurement`]'s `measurement`, the first 32 bytes of the
//! 48-byte LAUNCH_MEASURE blob (`measurement || mnonce`).

use core::fmt;

use sev_abi::guid::{Guid, GUID_LEN, SEVCTL_SECRET_TABLE};
use sev_abi::session::{LaunchMeasurement, PacketHeader, PACKET_FLAG_COMPRESSED};
use sev_crypto::packet::{aes128_ctr, ct_eq, packet_mac, seal_secret, CONTEXT_SECRET};
use sev_crypto::session::{Tek, Tik};
use zeroize::Zeroizing;

use crate::OwnerError;

/// GUID of the whole table (sevctl's and OVMF/grub's `efisecret` table).
pub const SECRET_TABLE_GUID: Guid = SEVCTL_SECRET_TABLE;
/// Size of the table header and of each entry header: GUID then `u32` length.
pub const ENTRY_HEADER_LEN: usize = GUID_LEN + 4;
/// The table is zero-padded to a multiple of this (the firmware's
/// LAUNCH_SECRET length granularity).
pub const TABLE_ALIGN: usize = 16;

/// One secret: the GUID the guest looks it up by, and its bytes.
///
/// The bytes zeroize on drop; `Debug` shows only the GUID and the length.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretEntry {
    /// The secret's GUID.
    pub guid: Guid,
    /// The secret's bytes.
    pub data: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for SecretEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretEntry")
            .field("guid", &self.guid)
            .field("len", &self.data.len())
            .field("data", &format_args!("<redacted>"))
            .finish()
    }
}

/// The secret table, entries in insertion order (duplicates are kept, as
/// sevctl keeps them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecretTable {
    entries: Vec<SecretEntry>,
}

impl SecretTable {
    /// An empty table (serializes to the 20-byte header padded to 32).
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a secret.
    pub fn push(&mut self, guid: Guid, data: Vec<u8>) {
        self.entries.push(SecretEntry {
            guid,
            data: Zeroizing::new(data),
        });
    }

    /// The entries, in order.
    pub fn entries(&self) -> &[SecretEntry] {
        &self.entries
    }

    /// The data of the first entry with `guid`.
    pub fn get(&self, guid: &Guid) -> Option<&[u8]> {
        self.entries
            .iter()
            .find(|e| e.guid == *guid)
            .map(|e| e.data.as_slice())
    }

    /// The value of the table's length field: header plus entries, without
    /// the padding.
    pub fn table_len(&self) -> usize {
        ENTRY_HEADER_LEN
            + self
                .entries
                .iter()
                .map(|e| ENTRY_HEADER_LEN + e.data.len())
                .sum::<usize>()
    }

    /// Serializes the table exactly as `sevctl secret build` does, padded
    /// with zeros to a multiple of 16. Fails only when a length does not
    /// fit the `u32` fields.
    pub fn to_bytes(&self) -> Result<Zeroizing<Vec<u8>>, OwnerError> {
        let table_len = self.table_len();
        let table_len_u32 =
            u32::try_from(table_len).map_err(|_| OwnerError::TableTooLarge(table_len))?;
        let padded = table_len.next_multiple_of(TABLE_ALIGN);
        let mut out = Zeroizing::new(Vec::with_capacity(padded));
        out.extend_from_slice(&SECRET_TABLE_GUID.to_le_bytes());
        out.extend_from_slice(&table_len_u32.to_le_bytes());
        for entry in &self.entries {
            // Each entry is shorter than the table, so this cannot overflow.
            let len = u32::try_from(ENTRY_HEADER_LEN + entry.data.len())
                .map_err(|_| OwnerError::TableTooLarge(table_len))?;
            out.extend_from_slice(&entry.guid.to_le_bytes());
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(&entry.data);
        }
        out.resize(padded, 0);
        Ok(out)
    }

    /// Parses a serialized table (the inverse of [`SecretTable::to_bytes`]):
    /// the table GUID, a length that covers the header and fits the buffer,
    /// entries that exactly fill it, and only zero bytes after it (any
    /// amount, so a whole secret area can be given). Never panics.
    pub fn parse(bytes: &[u8]) -> Result<Self, OwnerError> {
        let bad = |reason: String| OwnerError::MalformedTable(reason);
        let (guid, table_len, _) = split_header(bytes)
            .ok_or_else(|| bad(format!("{} bytes, shorter than its header", bytes.len())))?;
        if guid != SECRET_TABLE_GUID {
            return Err(bad(format!(
                "table GUID is {guid}, expected {SECRET_TABLE_GUID}"
            )));
        }
        if table_len < ENTRY_HEADER_LEN || table_len > bytes.len() {
            return Err(bad(format!(
                "table length field {table_len} outside [{ENTRY_HEADER_LEN}, {}]",
                bytes.len()
            )));
        }
        if let Some(pos) = bytes[table_len..].iter().position(|b| *b != 0) {
            return Err(bad(format!(
                "non-zero padding byte at offset {}",
                table_len + pos
            )));
        }
        let mut table = Self::new();
        let mut rest = &bytes[ENTRY_HEADER_LEN..table_len];
        while !rest.is_empty() {
            let offset = table_len - rest.len();
            let (guid, len, _) = split_header(rest).ok_or_else(|| {
                bad(format!(
                    "entry at offset {offset}: {} bytes left, shorter than an entry header",
                    rest.len()
                ))
            })?;
            if len < ENTRY_HEADER_LEN || len > rest.len() {
                return Err(bad(format!(
                    "entry at offset {offset}: length field {len} outside [{ENTRY_HEADER_LEN}, {}]",
                    rest.len()
                )));
            }
            table.push(guid, rest[ENTRY_HEADER_LEN..len].to_vec());
            rest = &rest[len..];
        }
        Ok(table)
    }
}

/// Splits `GUID_le || u32_le(len)` off the front.
fn split_header(bytes: &[u8]) -> Option<(Guid, usize, &[u8])> {
    let (guid, rest) = bytes.split_first_chunk::<GUID_LEN>()?;
    let (len, rest) = rest.split_first_chunk::<4>()?;
    let len = usize::try_from(u32::from_le_bytes(*len)).ok()?;
    Some((Guid::from_le_bytes(*guid), len, rest))
}

/// Checks a LAUNCH_SECRET payload length the way the firmware does.
fn payload_len(len: usize) -> Result<u32, OwnerError> {
    if len == 0 || !len.is_multiple_of(TABLE_ALIGN) {
        return Err(OwnerError::PayloadLength(len));
    }
    u32::try_from(len).map_err(|_| OwnerError::TableTooLarge(len))
}

/// Seals a secret table into a LAUNCH_SECRET packet, as `sevctl secret
/// build` does: flags 0, the given IV (draw it at random for every packet),
/// payload = AES-128-CTR(TEK, IV)(table), MAC with the TIK over the header
/// fields, lengths, ciphertext and the measurement from
/// `launch_measure_blob` (`measurement || mnonce`, as LAUNCH_MEASURE
/// returns it).
///
/// `table` must be a non-zero multiple of 16 bytes, as the firmware requires
/// ([`SecretTable::to_bytes`] always is).
pub fn build_secret_packet(
    tek: &Tek,
    tik: &Tik,
    launch_measure_blob: &LaunchMeasurement,
    table: &[u8],
    iv: [u8; 16],
) -> Result<(PacketHeader, Vec<u8>), OwnerError> {
    payload_len(table.len())?;
    let (payload, mac) = seal_secret(tek, tik, &iv, &launch_measure_blob.measurement, table);
    Ok((PacketHeader::new(0, iv, mac), payload))
}

/// Opens a LAUNCH_SECRET packet (the firmware's side, and the guest owner's
/// check of its own output), in the firmware's order: the COMPRESSED flag is
/// refused (`UNSUPPORTED`), the length must be a non-zero multiple of 16, the
/// MAC (over the header's own flags and IV, the lengths, the ciphertext and
/// the measurement) must match in constant time (`BAD_MEASUREMENT`), then
/// the payload is decrypted.
pub fn open_secret_packet(
    tek: &Tek,
    tik: &Tik,
    launch_measure_blob: &LaunchMeasurement,
    header: &PacketHeader,
    payload: &[u8],
) -> Result<Zeroizing<Vec<u8>>, OwnerError> {
    let flags = header.flags.get();
    if flags & PACKET_FLAG_COMPRESSED != 0 {
        return Err(OwnerError::Compressed(flags));
    }
    let len = payload_len(payload.len())?;
    let expected = packet_mac(
        tik,
        CONTEXT_SECRET,
        flags,
        &header.iv,
        len,
        len,
        payload,
        Some(&launch_measure_blob.measurement),
    );
    if !ct_eq(&expected, &header.mac) {
        return Err(OwnerError::BadMac);
    }
    let mut plain = Zeroizing::new(payload.to_vec());
    aes128_ctr(tek.as_bytes(), &header.iv, &mut plain);
    Ok(plain)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use zerocopy::IntoBytes;

    fn b64(s: &str) -> Vec<u8> {
        base64::engine::general_purpose::STANDARD.decode(s).unwrap()
    }

    // Known answers of sevctl 0.6.2's own `secret_build` test
    // (tests/secretbuild.rs): the inputs are tests/data/secret/{tek1,tik1}.bin
    // and secret{1,2}.txt (also in shared/vectors/sevctl/secret/).
    const TEK1: &str = "52a869b79ab9c13bb6a92b0561619cb3";
    const TIK1: &str = "c6d5a9956133050912b24bbe5c372686";
    const BLOB: &str = "TLeA7607lZQntLjRY1/i+sbtdSZ+75zxpz4Px9hzpBLwItF5Q2o4prA++3ZZv9ZS";
    const IV: &str = "rFR07U3TLH2YnsUj2SVZ7A==";
    const GUID1: &str = "736869e5-84f0-4973-92ec-06879ce3da0b";
    const GUID2: &str = "736869e5-aaaa-4973-92ec-06879ce3da0b";

    fn keys() -> (Tek, Tik) {
        (
            Tek::new(hex::decode(TEK1).unwrap().try_into().unwrap()),
            Tik::new(hex::decode(TIK1).unwrap().try_into().unwrap()),
        )
    }

    fn blob() -> LaunchMeasurement {
        LaunchMeasurement::from_bytes(&b64(BLOB)).unwrap()
    }

    fn iv() -> [u8; 16] {
        b64(IV).try_into().unwrap()
    }

    #[test]
    fn sevctl_known_answers() {
        let (tek, tik) = keys();
        let mut one = SecretTable::new();
        one.push(Guid::parse(GUID1).unwrap(), b"MY-LUKS-PASSPHRASE".to_vec());
        let mut two = one.clone();
        two.push(Guid::parse(GUID2).unwrap(), b"SOME OTHER SECRET".to_vec());
        for (table, header, payload) in [
            (
                &one,
                "AAAAAKxUdO1N0yx9mJ7FI9klWey8FSzeYQ4X8K71VzNKLU/KQsIsQxLjtbhaPUewqshX5Q==",
                "0U3e5PcXv0UW+H4tSBFKOdCYfKE1+j38Bc2fuO16mYiyI+sWx7INfn+lgYj56GL12yyinDa+lVfCCwD/2w5cPA==",
            ),
            (
                &two,
                "AAAAAKxUdO1N0yx9mJ7FI9klWeyZ3r0dOEKHUOhIRqzGYYvTJgdMtBPL1nK6GD9aGET7Ng==",
                "0U3e5PcXv0UW+H4tSBFKObWYfKE1+j38Bc2fuO16mYiyI+sWx7INfn+lgYj56GL12yyinDa+lVfCC+WWs332lpLNUX1ZI3YK7vYgtys4X+uGxEIlkIQ90v8/w8ZFmQMe",
            ),
        ] {
            let bytes = table.to_bytes().unwrap();
            let (h, p) = build_secret_packet(&tek, &tik, &blob(), &bytes, iv()).unwrap();
            assert_eq!(h.as_bytes(), &b64(header)[..]);
            assert_eq!(p, b64(payload));
            let plain = open_secret_packet(&tek, &tik, &blob(), &h, &p).unwrap();
            assert_eq!(plain, bytes);
            assert_eq!(&SecretTable::parse(&plain).unwrap(), table);
        }
    }

    #[test]
    fn table_layout() {
        let mut t = SecretTable::new();
        assert_eq!(t.table_len(), 20);
        let empty = t.to_bytes().unwrap();
        assert_eq!(empty.len(), 32);
        assert_eq!(&empty[..16], &SECRET_TABLE_GUID.to_le_bytes());
        assert_eq!(&empty[..4], &[0x42, 0xf5, 0x74, 0x1e]);
        assert_eq!(&empty[16..20], &20u32.to_le_bytes());
        assert!(empty[20..].iter().all(|b| *b == 0));

        let g = Guid::parse(GUID1).unwrap();
        t.push(g, b"abc".to_vec());
        let bytes = t.to_bytes().unwrap();
        assert_eq!(t.table_len(), 20 + 20 + 3);
        assert_eq!(bytes.len(), 48);
        assert_eq!(&bytes[16..20], &43u32.to_le_bytes());
        assert_eq!(&bytes[20..36], &g.to_le_bytes());
        assert_eq!(&bytes[20..24], &[0xe5, 0x69, 0x68, 0x73]);
        assert_eq!(&bytes[36..40], &23u32.to_le_bytes());
        assert_eq!(&bytes[40..43], b"abc");
        assert_eq!(t.get(&g), Some(&b"abc"[..]));
        assert_eq!(t.get(&Guid::NIL), None);

        // sevctl's size limit test: 16343- and 16344-byte secrets both fill
        // exactly 16384 bytes.
        for n in [16_343, 16_344] {
            let mut t = SecretTable::new();
            t.push(g, vec![b'.'; n]);
            assert_eq!(t.to_bytes().unwrap().len(), 16_384);
        }
    }

    #[test]
    fn parse_round_trips_and_rejects_junk() {
        let mut t = SecretTable::new();
        for i in 0..5u8 {
            t.push(
                Guid::from_u128(u128::from(i) << 64),
                vec![i; usize::from(i) * 7],
            );
        }
        let bytes = t.to_bytes().unwrap();
        assert_eq!(SecretTable::parse(&bytes).unwrap(), t);
        // A whole secret area with trailing zeros parses too.
        let mut area = bytes.to_vec();
        area.resize(4096, 0);
        assert_eq!(SecretTable::parse(&area).unwrap(), t);

        let mut bad = bytes.to_vec();
        bad[0] ^= 1;
        assert!(SecretTable::parse(&bad).is_err());
        let mut bad = bytes.to_vec();
        let last = bad.len() - 1;
        bad[last] = 1;
        assert!(SecretTable::parse(&bad).is_err());
        let mut bad = bytes.to_vec();
        bad[16] = 19;
        assert!(SecretTable::parse(&bad).is_err());
        let mut bad = bytes.to_vec();
        bad[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(SecretTable::parse(&bad).is_err());
        let mut bad = bytes.to_vec();
        bad[36] = 200; // first entry's length runs past the table
        assert!(SecretTable::parse(&bad).is_err());
        let mut bad = bytes.to_vec();
        bad[36] = 3; // first entry shorter than its header
        assert!(SecretTable::parse(&bad).is_err());
        for n in 0..bytes.len() {
            let _ = SecretTable::parse(&bytes[..n]);
        }
        assert!(SecretTable::parse(&[]).is_err());
    }

    #[test]
    fn packet_tampering_is_refused() {
        let (tek, tik) = keys();
        let mut t = SecretTable::new();
        t.push(Guid::parse(GUID1).unwrap(), b"s3cret".to_vec());
        let table = t.to_bytes().unwrap();
        let (h, p) = build_secret_packet(&tek, &tik, &blob(), &table, iv()).unwrap();
        assert_eq!(h.flags.get(), 0);
        assert_eq!(h.iv, iv());

        for i in 0..p.len() {
            let mut bad = p.clone();
            bad[i] ^= 0x40;
            let e = open_secret_packet(&tek, &tik, &blob(), &h, &bad).unwrap_err();
            assert_eq!(e, OwnerError::BadMac);
            assert_eq!(e.status(), Some(sev_abi::FirmwareStatus::BAD_MEASUREMENT));
        }
        for i in 0..32 {
            let mut bad = h;
            bad.mac[i] ^= 1;
            assert_eq!(
                open_secret_packet(&tek, &tik, &blob(), &bad, &p),
                Err(OwnerError::BadMac)
            );
        }
        for i in 0..16 {
            let mut bad = h;
            bad.iv[i] ^= 1;
            assert_eq!(
                open_secret_packet(&tek, &tik, &blob(), &bad, &p),
                Err(OwnerError::BadMac)
            );
        }
        // The measurement is MACed, the mnonce is not.
        for i in 0..48 {
            let mut other = blob();
            other.as_mut_bytes()[i] ^= 1;
            let r = open_secret_packet(&tek, &tik, &other, &h, &p);
            if i < 32 {
                assert_eq!(r, Err(OwnerError::BadMac), "byte {i}");
            } else {
                assert!(r.is_ok(), "byte {i}");
            }
        }
        let mut flagged = h;
        flagged.flags = zerocopy::little_endian::U32::new(2);
        assert_eq!(
            open_secret_packet(&tek, &tik, &blob(), &flagged, &p),
            Err(OwnerError::BadMac)
        );
        flagged.flags = zerocopy::little_endian::U32::new(1);
        let e = open_secret_packet(&tek, &tik, &blob(), &flagged, &p).unwrap_err();
        assert_eq!(e, OwnerError::Compressed(1));
        assert_eq!(e.status(), Some(sev_abi::FirmwareStatus::UNSUPPORTED));
        assert_eq!(
            open_secret_packet(&tek, &Tik::new([0; 16]), &blob(), &h, &p),
            Err(OwnerError::BadMac)
        );
        assert_eq!(
            open_secret_packet(&tek, &tik, &blob(), &h, &p[..16]),
            Err(OwnerError::BadMac)
        );
        assert_eq!(
            open_secret_packet(&tek, &tik, &blob(), &h, &p[..15]),
            Err(OwnerError::PayloadLength(15))
        );
        // A wrong TEK passes the MAC but decrypts to garbage.
        let wrong = open_secret_packet(&Tek::new([0; 16]), &tik, &blob(), &h, &p).unwrap();
        assert_ne!(wrong, table);
        assert!(SecretTable::parse(&wrong).is_err());
    }

    #[test]
    fn build_checks_length() {
        let (tek, tik) = keys();
        for len in [0usize, 1, 15, 17, 33] {
            assert_eq!(
                build_secret_packet(&tek, &tik, &blob(), &vec![0; len], iv()),
                Err(OwnerError::PayloadLength(len))
            );
        }
    }

    #[test]
    fn debug_hides_secrets() {
        let mut t = SecretTable::new();
        t.push(Guid::parse(GUID1).unwrap(), b"hunter2-hunter2".to_vec());
        let text = format!("{t:?}");
        assert!(
            text.contains("<redacted>") && text.contains("len: 15"),
            "{text}"
        );
        assert!(
            !text.contains("hunter2") && !text.contains("104, 117"),
            "{text}"
        );
    }
}
