//! The SNP attestation report parser against real AMD reports.

use sev_abi::product::{Product, TcbLayout, TcbParts};
use sev_abi::report::{AttestationReport, SigningKey, REPORT_LEN, SIGNED_LEN};

use sevkit_conformance::read_hex as read_hex_vector;

#[test]
#[cfg_attr(
    not(sevkit_vectors),
    ignore = "needs shared/vectors (set SEVKIT_VECTORS)"
)]
fn real_milan_v2_report() {
    let bytes = read_hex_vector("real/snp/milan/report.hex");
    assert_eq!(bytes.len(), REPORT_LEN);
    let report = AttestationReport::from_bytes(&bytes).expect("real Milan report parses");

    assert_eq!(report.version(), 2);
    assert_eq!(report.policy().raw(), 0x30000);
    assert!(report.policy().smt() && report.policy().reserved_mbo());
    assert_eq!(report.policy().validate(), Ok(()));
    assert_eq!(report.signature_algo(), 1);

    assert_eq!(&bytes[0x180..0x188], &[0x03, 0, 0, 0, 0, 0, 0x08, 0x73]);
    let tcb = report.reported_tcb().decode(TcbLayout::MilanGenoa);
    assert_eq!(
        tcb,
        TcbParts {
            fmc: None,
            bootloader: 3,
            tee: 0,
            snp: 8,
            microcode: 0x73
        }
    );
    assert!(report
        .reported_tcb()
        .reserved_bytes_zero(TcbLayout::MilanGenoa));

    assert!(!report.is_chip_id_masked());
    assert_eq!(report.key_info().signing_key, SigningKey::Vcek);
    assert!(!report.key_info().mask_chip_key);
    assert!(!report.signature.is_zero());
    assert!(report.signature.to_be_scalars().is_some());
    assert_eq!(report.cpuid(), None);
    assert_eq!(report.mitigation_vectors(), None);
    // A v2 report with a full 64-byte chip id: Milan or Genoa, not Turin.
    assert_eq!(report.product_hint(), None);
    assert!(Product::Milan.is_snp_capable());

    assert_eq!(report.to_bytes(), bytes, "serialization is byte-exact");
    assert_eq!(report.signed_bytes(), &bytes[..SIGNED_LEN]);
    assert!(
        report.reserved_nonzero().is_empty(),
        "{:?}",
        report.reserved_nonzero()
    );
}
