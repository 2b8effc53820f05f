//! Peer test: the emulated KDS's certificates and a report signed by the
//! chip's VCEK against `snpguest` (crates.io), and against sevkit's own
//! verifier (`sev_attest::snp::verify_report`).

use std::process::Command;
use std::sync::OnceLock;
use std::time::SystemTime;

use sev_abi::launch_digest::SnpLaunchDigest;
use sev_abi::product::{Product, TcbParts, TcbVersion};
use sev_attest::snp::{verify_report, ChainSource, ReportExpectations};
use sev_crypto::report::{sign_report, REPORT_LEN};
use sev_crypto::x509::X509Cert;
use sev_firmware::snp::kds::EmulatedKds;
use sev_firmware::snp::keys::{ChipEndorsementKeys, EndorsementKeys};
use sev_firmware::ChipIdentity;

/// The shared test chip (`sevkit-testkit`), minted once per target
/// directory.
fn chip() -> &'static ChipIdentity {
    static CHIP: OnceLock<ChipIdentity> = OnceLock::new();
    CHIP.get_or_init(sevkit_testkit::chip)
}

fn tcb_for(product: Product) -> (TcbParts, TcbVersion) {
    let parts = TcbParts {
        fmc: (product == Product::Turin).then_some(1),
        bootloader: 4,
        tee: 0,
        snp: 22,
        microcode: 213,
    };
    (parts, parts.encode(product.tcb_layout()))
}

/// A report consistent with the VCEK: version 3 (Milan, Genoa) or 5
/// (Turin), reported/current/committed/launch TCB, chip id, VCEK key.
fn report(product: Product, keys: &ChipEndorsementKeys, tcb: TcbVersion) -> Vec<u8> {
    let mut r = vec![0u8; REPORT_LEN];
    let put = |r: &mut Vec<u8>, at: usize, bytes: &[u8]| {
        r[at..at + bytes.len()].copy_from_slice(bytes);
    };
    let version: u32 = if product == Product::Turin { 5 } else { 3 };
    put(&mut r, 0x00, &version.to_le_bytes());
    put(&mut r, 0x08, &0x3_0000u64.to_le_bytes()); // policy: SMT, reserved bit 17
    put(&mut r, 0x34, &1u32.to_le_bytes()); // ECDSA P-384 SHA-384
    put(&mut r, 0x38, &tcb.to_le_bytes()); // current TCB
    put(&mut r, 0x48, &0u32.to_le_bytes()); // signed by the VCEK
    put(&mut r, 0x50, &[0xAB; 64]); // report data
    put(&mut r, 0x90, &[0x11; 48]); // measurement
    put(&mut r, 0x180, &tcb.to_le_bytes()); // reported TCB
    let (family, model) = match product {
        Product::Milan => (0x19, 0x01),
        Product::Genoa => (0x19, 0x11),
        _ => (0x1A, 0x02),
    };
    put(&mut r, 0x188, &[family, model, 1]);
    put(&mut r, 0x1A0, &keys.report_chip_id(product));
    put(&mut r, 0x1E0, &tcb.to_le_bytes()); // committed TCB
    put(&mut r, 0x1E8, &[21, 55, 1, 0, 21, 55, 1, 0]); // current, committed build/minor/major
    put(&mut r, 0x1F0, &tcb.to_le_bytes()); // launch TCB
    let vcek = keys.vcek(tcb).unwrap();
    sign_report(&mut r, &vcek).unwrap();
    r
}

struct Setup {
    _dir: tempfile::TempDir,
    certs: std::path::PathBuf,
    report: Vec<u8>,
    report_path: std::path::PathBuf,
    kds: EmulatedKds,
    vcek_der: Vec<u8>,
}

fn setup(product: Product) -> Setup {
    let chip = chip();
    let keys = ChipEndorsementKeys::new(chip);
    let kds = EmulatedKds::new(chip, product).unwrap();
    let (_, tcb) = tcb_for(product);
    let vcek_der = kds.vcek_cert_for(&keys, tcb).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    std::fs::create_dir(&certs).unwrap();
    for (name, bytes) in kds.export_dir(&vcek_der) {
        std::fs::write(certs.join(name), bytes).unwrap();
    }
    let report = report(product, &keys, tcb);
    let report_path = dir.path().join("report.bin");
    std::fs::write(&report_path, &report).unwrap();
    Setup {
        _dir: dir,
        certs,
        report,
        report_path,
        kds,
        vcek_der,
    }
}

fn snpguest(args: &[&std::ffi::OsStr]) -> std::process::Output {
    Command::new("snpguest")
        .args(args)
        .output()
        .expect("run snpguest")
}

#[test]
#[cfg_attr(
    not(sevkit_snpguest),
    ignore = "needs snpguest (cargo install snpguest); .ci/run installs it"
)]
fn snpguest_accepts_emulated_certs_and_report() {
    for product in [Product::Milan, Product::Genoa, Product::Turin] {
        let s = setup(product);
        let out = snpguest(&["verify".as_ref(), "certs".as_ref(), s.certs.as_os_str()]);
        assert!(
            out.status.success(),
            "{product}: snpguest verify certs: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let out = snpguest(&[
            "verify".as_ref(),
            "attestation".as_ref(),
            s.certs.as_os_str(),
            s.report_path.as_os_str(),
        ]);
        assert!(
            out.status.success(),
            "{product}: snpguest verify attestation: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // A tampered report is refused.
        let mut bad = s.report.clone();
        bad[0x90] ^= 1;
        std::fs::write(&s.report_path, &bad).unwrap();
        let out = snpguest(&[
            "verify".as_ref(),
            "attestation".as_ref(),
            s.certs.as_os_str(),
            s.report_path.as_os_str(),
        ]);
        assert!(!out.status.success(), "{product}: tampered report accepted");
    }
}

#[test]
fn sevkit_verifier_accepts_supplied_chain_and_refuses_pinned() {
    for product in [Product::Milan, Product::Genoa, Product::Turin] {
        let s = setup(product);
        let vcek = X509Cert::from_der(&s.vcek_der).unwrap();
        let supplied = ChainSource::Supplied {
            ask: X509Cert::from_der(s.kds.ask_der()).unwrap(),
            ark: X509Cert::from_der(s.kds.ark_der()).unwrap(),
        };
        let (parts, _) = tcb_for(product);
        let expect = ReportExpectations {
            measurement: Some(SnpLaunchDigest::new([0x11; 48])),
            report_data: Some(vec![0xAB; 64]),
            min_tcb: Some(parts),
            ..ReportExpectations::default()
        };
        let now = SystemTime::now();
        let v = verify_report(&s.report, &vcek, &supplied, &expect, now).unwrap();
        assert!(
            v.passed(),
            "{product}: {:#?}",
            v.failures().collect::<Vec<_>>()
        );
        let pinned = verify_report(
            &s.report,
            &vcek,
            &ChainSource::Pinned(product),
            &expect,
            now,
        )
        .unwrap();
        assert!(
            !pinned.passed(),
            "{product}: AMD's roots accepted the emulated chain"
        );
        assert!(pinned.failures().all(|c| c.name.starts_with("chain.")));
        let mut bad = s.report.clone();
        bad[0x90] ^= 1;
        let v = verify_report(&bad, &vcek, &supplied, &expect, now).unwrap();
        assert!(!v.passed());
    }
}
