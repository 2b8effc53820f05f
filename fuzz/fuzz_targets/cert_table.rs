//! GHCB certificate table parser: never panics; what parses re-serializes to
//! a table that parses to the same entries.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sev_abi::cert_table::CertTable;

fuzz_target!(|data: &[u8]| {
    if let Ok(table) = CertTable::from_bytes(data) {
        let bytes = table.to_bytes().expect("a parsed table re-serializes");
        let again = CertTable::from_bytes(&bytes).expect("serialized table parses");
        assert_eq!(again, table);
    }
});
