//! `sev_vmm::config`: QEMU command lines and TOML, one test per rule.
//!
//! Every error test checks the rule's kind, the property it names and the
//! message (QEMU's wording where QEMU has one).

use std::path::{Path, PathBuf};

use base64::Engine as _;
use sev_abi::{GuestPolicy, Product, SnpPolicy};
use sev_vmm::config::{
    ConfidentialGuest, ConfigError, ConfigErrorKind as Kind, HostCaps, OnOffAuto, Origin,
    SevGuestConfig, SevSnpGuestConfig, VmConfig, DEFAULT_MEMORY,
};

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// Splits a command line on white space (test lines keep values without
/// spaces; `parse_args` takes a list for the others).
fn words(line: &str) -> Vec<String> {
    line.split_whitespace().map(str::to_owned).collect()
}

fn parse(line: &str) -> Result<VmConfig, ConfigError> {
    VmConfig::from_qemu_args(&words(line))
}

fn ok(line: &str) -> VmConfig {
    parse(line).unwrap_or_else(|e| panic!("{line}: {e}"))
}

fn fail(line: &str) -> ConfigError {
    match parse(line) {
        Ok(cfg) => panic!("{line}: parsed to {cfg:?}"),
        Err(e) => e,
    }
}

/// Asserts an error's kind, property and message, and that its Display
/// names the property.
#[track_caller]
fn check(e: &ConfigError, kind: Kind, property: Option<&str>, message: &str) {
    assert_eq!(e.kind(), kind, "{e}");
    assert_eq!(e.property(), property, "{e}");
    assert_eq!(e.message(), message, "{e}");
    let shown = e.to_string();
    assert!(shown.ends_with(message), "{shown}");
    if let Some(p) = property {
        assert!(shown.contains(&format!("property '{p}'")), "{shown}");
    }
}

fn sev(cfg: &VmConfig) -> &SevGuestConfig {
    match &cfg.guest {
        Some(ConfidentialGuest::Sev(g)) => g,
        other => panic!("not sev-guest: {other:?}"),
    }
}

fn snp(cfg: &VmConfig) -> &SevSnpGuestConfig {
    match &cfg.guest {
        Some(ConfidentialGuest::Snp(g)) => g,
        other => panic!("not sev-snp-guest: {other:?}"),
    }
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

const MACHINE: &str = "-machine q35,confidential-guest-support=sev0";

/// A sev-guest line with extra properties.
fn sev_line(props: &str) -> String {
    format!("{MACHINE} -object sev-guest,id=sev0,cbitpos=47,reduced-phys-bits=1{props}")
}

/// A sev-snp-guest line with extra properties.
fn snp_line(props: &str) -> String {
    format!("{MACHINE} -object sev-snp-guest,id=sev0,cbitpos=51,reduced-phys-bits=1{props}")
}

fn milan() -> HostCaps {
    HostCaps::for_product(Product::Milan)
}

fn rome() -> HostCaps {
    HostCaps::for_product(Product::Rome)
}

fn naples() -> HostCaps {
    HostCaps::for_product(Product::Naples)
}

// ---------------------------------------------------------------------------
// Real command lines
// ---------------------------------------------------------------------------

#[test]
fn qemu_docs_sev_line() {
    // docs/system/i386/amd-memory-encryption.rst
    let cfg = ok("-machine q35,confidential-guest-support=sev0 \
                  -object sev-guest,id=sev0,cbitpos=47,reduced-phys-bits=1");
    let g = sev(&cfg);
    assert_eq!(g.common.id, "sev0");
    assert_eq!(g.common.cbitpos, Some(47));
    assert_eq!(g.common.reduced_phys_bits, 1);
    assert_eq!(g.common.sev_device, Path::new("/dev/sev"));
    assert!(!g.common.kernel_hashes);
    assert_eq!(
        g.policy,
        GuestPolicy::builder().nodbg(true).build(),
        "QEMU's default 0x1"
    );
    assert_eq!(g.handle, 0);
    assert_eq!(g.legacy_vm_type, OnOffAuto::Auto);
    assert!(!cfg.guest.as_ref().unwrap().is_es());
    assert_eq!(
        cfg.machine.confidential_guest_support.as_deref(),
        Some("sev0")
    );
    // The defaults around it.
    assert_eq!(cfg.memory, DEFAULT_MEMORY);
    assert_eq!(cfg.smp, 1);
    assert_eq!(cfg.cpu_model, "EPYC-v4");
    assert!(!cfg.start_paused);
    cfg.validate(&rome()).unwrap();
    cfg.validate(&naples()).unwrap();
}

#[test]
fn qemu_docs_sev_es_line() {
    let cfg = ok("-machine q35,confidential-guest-support=sev0 \
                  -object sev-guest,id=sev0,cbitpos=47,reduced-phys-bits=1,policy=0x5");
    let g = sev(&cfg);
    assert!(g.policy.es() && g.policy.nodbg());
    assert_eq!(g.policy.raw(), GuestPolicy::NODBG | GuestPolicy::ES);
    assert!(cfg.guest.as_ref().unwrap().is_es());
    cfg.validate(&rome()).unwrap();
}

#[test]
fn qemu_docs_snp_line() {
    let cfg = ok("-machine q35,confidential-guest-support=sev0 \
                  -object sev-snp-guest,id=sev0,cbitpos=51,reduced-phys-bits=1");
    let g = snp(&cfg);
    assert_eq!(g.policy, SnpPolicy::default(), "QEMU's default 0x30000");
    assert_eq!(g.guest_visible_workarounds, [0; 16]);
    assert_eq!(g.host_data, [0; 32]);
    assert!(g.id_block.is_none() && g.id_auth.is_none() && g.certs_path.is_none());
    assert!(!g.author_key_enabled && !g.vcek_disabled);
    cfg.validate(&milan()).unwrap();
    cfg.validate(&HostCaps::for_product(Product::Genoa))
        .unwrap();
    cfg.validate(&HostCaps::for_product(Product::Turin))
        .unwrap();
}

#[test]
fn launch_script_style_line() {
    // The shape of AMD's launch-qemu.sh / common distro lines, with the
    // options sevkit accepts and ignores.
    let mut args = words(
        "-enable-kvm -nographic -no-user-config -nodefaults -name guest=snp,debug-threads=on \
         -machine q35,memory-encryption=sev0,vmport=off -display none -vga none -accel kvm \
         -object sev-snp-guest,id=sev0,policy=0x30000,cbitpos=51,reduced-phys-bits=1,kernel-hashes=on \
         -cpu EPYC-v4 -smp 4 -m 2048M -bios /usr/share/ovmf/OVMF.fd -kernel /boot/vmlinuz \
         -initrd /boot/initrd.img -qmp unix:/tmp/qmp.sock,server,nowait -S",
    );
    args.extend([
        "-append".to_owned(),
        "console=ttyS0 earlyprintk=serial".to_owned(),
    ]);
    let cfg = VmConfig::from_qemu_args(&args).unwrap();
    assert_eq!(snp(&cfg).common.id, "sev0");
    assert!(snp(&cfg).common.kernel_hashes);
    assert_eq!(
        cfg.machine.confidential_guest_support.as_deref(),
        Some("sev0")
    );
    assert_eq!(cfg.smp, 4);
    assert_eq!(cfg.memory, 2 << 30);
    assert_eq!(
        cfg.bios.as_deref(),
        Some(Path::new("/usr/share/ovmf/OVMF.fd"))
    );
    assert_eq!(cfg.kernel.as_deref(), Some(Path::new("/boot/vmlinuz")));
    assert_eq!(cfg.initrd.as_deref(), Some(Path::new("/boot/initrd.img")));
    assert_eq!(
        cfg.append.as_deref(),
        Some("console=ttyS0 earlyprintk=serial")
    );
    assert_eq!(cfg.qmp.as_deref(), Some(Path::new("/tmp/qmp.sock")));
    assert!(cfg.start_paused);
    cfg.validate(&milan()).unwrap();
}

#[test]
fn libvirt_json_object() {
    let args = [
        "-machine",
        "pc-q35-9.0,confidential-guest-support=lsec0",
        "-object",
        r#"{"qom-type":"sev-guest","id":"lsec0","cbitpos":47,"reduced-phys-bits":1,"policy":7,"kernel-hashes":true}"#,
    ];
    let cfg = VmConfig::from_qemu_args(&args).unwrap();
    assert_eq!(cfg.machine.machine_type, "pc-q35-9.0");
    let g = sev(&cfg);
    assert_eq!(g.common.id, "lsec0");
    assert_eq!(
        g.policy.raw(),
        GuestPolicy::NODBG | GuestPolicy::NOKS | GuestPolicy::ES
    );
    assert!(g.common.kernel_hashes);

    let e = VmConfig::from_qemu_args(&["-object", "{\"qom-type\":"]).unwrap_err();
    assert_eq!(e.kind(), Kind::Syntax);
    assert!(e.message().starts_with("JSON parse error"), "{e}");
    let e = VmConfig::from_qemu_args(&[
        "-object",
        r#"{"qom-type":"sev-guest","id":"s","reduced-phys-bits":-1}"#,
    ])
    .unwrap_err();
    check(
        &e,
        Kind::InvalidValue,
        Some("reduced-phys-bits"),
        "Parameter 'reduced-phys-bits' expects a uint64 value",
    );
    let e = VmConfig::from_qemu_args(&[
        "-object",
        r#"{"qom-type":"sev-guest","id":"s","reduced-phys-bits":1,"kernel-hashes":1}"#,
    ])
    .unwrap_err();
    check(
        &e,
        Kind::InvalidType,
        Some("kernel-hashes"),
        "Invalid parameter type for 'kernel-hashes', expected: boolean",
    );
}

#[test]
fn json_object_is_read_by_qemus_json_parser() {
    // QEMU reads `-object {...}` with its own JSON parser, which takes
    // single-quoted strings (and the \' escape in them).
    let args = [
        "-machine",
        "q35,confidential-guest-support=sev0",
        "-object",
        r"{'qom-type':'sev-guest','id':'sev0','cbitpos':51,'reduced-phys-bits':1,'policy':'0x5','session-file':'it\'s.b64'}",
    ];
    let cfg = VmConfig::from_qemu_args(&args).unwrap();
    let g = sev(&cfg);
    assert_eq!(g.common.id, "sev0");
    assert_eq!(g.common.cbitpos, Some(51));
    assert_eq!(g.policy.raw(), GuestPolicy::NODBG | GuestPolicy::ES);
    assert_eq!(g.session_file.as_deref(), Some(Path::new("it's.b64")));

    // Malformed JSON gets the parser's messages (QEMU prints them after
    // the option).
    for (arg, message) in [
        ("{'qom-type':", "JSON parse error, premature EOI"),
        (
            "{'qom-type':'sev-guest',}",
            "JSON parse error, expecting value",
        ),
        (
            "{'qom-type': sevguest}",
            "JSON parse error, invalid keyword 'sevguest'",
        ),
        (
            "{'qom-type' 'sev-guest'}",
            "JSON parse error, missing : in object pair",
        ),
        ("{'id':'a','id':'b'}", "JSON parse error, duplicate key"),
        (
            "{'qom-type':'sev-guest\x01'}",
            "JSON parse error, stray ''sev-guest\x01'",
        ),
        (
            "{'qom-type':'sev-guest'} {}",
            "Expecting at most one JSON value",
        ),
    ] {
        let e = VmConfig::from_qemu_args(&["-object", arg]).unwrap_err();
        check(&e, Kind::Syntax, None, message);
        assert_eq!(e.origin(), &Origin::Option("-object".into()), "{arg}");
    }
}

// ---------------------------------------------------------------------------
// Command-line level rules
// ---------------------------------------------------------------------------

#[test]
fn rule_invalid_option() {
    for word in ["-foo", "--foo", "-", "--"] {
        let e = fail(word);
        check(&e, Kind::InvalidOption, None, "invalid option");
        assert_eq!(e.origin(), &Origin::Option(word.to_owned()));
        assert_eq!(e.to_string(), format!("{word}: invalid option"));
    }
    // --opt is -opt.
    assert_eq!(ok("--smp 2").smp, 2);
}

#[test]
fn rule_option_requires_argument() {
    for opt in [
        "-m", "-object", "-machine", "-smp", "-cpu", "-qmp", "-kernel", "-bios",
    ] {
        let e = fail(&format!("-S {opt}"));
        check(&e, Kind::MissingArgument, None, "requires an argument");
        assert_eq!(e.to_string(), format!("{opt}: requires an argument"));
    }
}

#[test]
fn rule_positional_argument() {
    let e = fail("disk.img");
    assert_eq!(e.kind(), Kind::UnexpectedArgument);
    assert_eq!(e.origin(), &Origin::Argument("disk.img".into()));
}

#[test]
fn rule_unsupported_qemu_options() {
    for opt in ["-drive", "-device", "-netdev", "-no-reboot", "-daemonize"] {
        let e = fail(&format!("{opt} x"));
        check(
            &e,
            Kind::Unsupported,
            None,
            "option not supported by sevkit",
        );
        assert_eq!(e.origin(), &Origin::Option(opt.to_owned()));
    }
    check(
        &fail("-display gtk"),
        Kind::Unsupported,
        None,
        "'gtk' is not supported by sevkit (only 'none')",
    );
    check(
        &fail("-accel tcg"),
        Kind::Unsupported,
        Some("accel"),
        "accelerator 'tcg' is not supported: sevkit runs confidential guests on KVM only",
    );
    check(
        &fail("-machine q35,accel=tcg"),
        Kind::Unsupported,
        Some("accel"),
        "accelerator 'tcg' is not supported: sevkit runs confidential guests on KVM only",
    );
}

#[test]
fn rule_append_and_initrd_need_kernel() {
    let e = fail("-append console=ttyS0");
    check(
        &e,
        Kind::Conflict,
        None,
        "-append only allowed with -kernel option",
    );
    assert_eq!(e.origin(), &Origin::Option("-append".into()));
    let e = fail("-initrd /boot/initrd");
    check(
        &e,
        Kind::Conflict,
        None,
        "-initrd only allowed with -kernel option",
    );
    // With -kernel, or through the machine properties, it is fine.
    let cfg = ok("-kernel /k -append a -initrd /i");
    assert_eq!(cfg.append.as_deref(), Some("a"));
    let cfg = ok("-machine q35,kernel=/k,initrd=/i,append=x,,y,firmware=/f");
    assert_eq!(cfg.kernel.as_deref(), Some(Path::new("/k")));
    assert_eq!(cfg.append.as_deref(), Some("x,y"), "keyval ,, escape");
    assert_eq!(cfg.bios.as_deref(), Some(Path::new("/f")));
    // The last of -kernel and -machine kernel= wins, as in QEMU.
    assert_eq!(
        ok("-kernel /a -machine kernel=/b").kernel.as_deref(),
        Some(Path::new("/b"))
    );
}

// ---------------------------------------------------------------------------
// -object: type, id, members
// ---------------------------------------------------------------------------

#[test]
fn rule_unknown_object_type() {
    let e = fail("-object foo-guest,id=x");
    check(
        &e,
        Kind::InvalidValue,
        Some("qom-type"),
        "Parameter 'qom-type' does not accept value 'foo-guest'",
    );
    let e = fail("-object memory-backend-memfd,id=ram1,size=2G");
    assert_eq!(e.kind(), Kind::Unsupported);
    assert_eq!(e.property(), Some("qom-type"));
}

#[test]
fn rule_missing_qom_type() {
    let e = fail("-object id=sev0,reduced-phys-bits=1");
    check(
        &e,
        Kind::MissingParameter,
        Some("qom-type"),
        "Parameter 'qom-type' is missing",
    );
}

#[test]
fn rule_missing_id() {
    let e = fail("-object sev-guest,reduced-phys-bits=1");
    check(
        &e,
        Kind::MissingParameter,
        Some("id"),
        "Parameter 'id' is missing",
    );
    assert_eq!(
        e.to_string(),
        "sev-guest: property 'id': Parameter 'id' is missing"
    );
}

#[test]
fn rule_malformed_id() {
    for id in ["0sev", "s%v", "-sev"] {
        let e = fail(&format!("-object sev-guest,id={id},reduced-phys-bits=1"));
        assert_eq!(e.kind(), Kind::InvalidValue);
        assert_eq!(e.property(), Some("id"));
        assert!(
            e.message()
                .starts_with("Parameter 'id' expects an identifier"),
            "{e}"
        );
    }
}

#[test]
fn rule_duplicate_id() {
    let e = fail(&format!(
        "{} -object sev-snp-guest,id=sev0,reduced-phys-bits=1",
        sev_line("")
    ));
    check(
        &e,
        Kind::DuplicateId,
        Some("id"),
        "Duplicate ID 'sev0' for object",
    );
    // Also between the JSON and the QemuOpts form.
    let mut args = words(&sev_line(""));
    args.extend([
        "-object".to_owned(),
        r#"{"qom-type":"sev-guest","id":"sev0","reduced-phys-bits":1}"#.to_owned(),
    ]);
    let e = VmConfig::from_qemu_args(&args).unwrap_err();
    check(
        &e,
        Kind::DuplicateId,
        Some("id"),
        "Duplicate ID 'sev0' for object",
    );
}

#[test]
fn rule_reduced_phys_bits_is_mandatory() {
    let e = fail(&format!("{MACHINE} -object sev-guest,id=sev0,cbitpos=47"));
    check(
        &e,
        Kind::MissingParameter,
        Some("reduced-phys-bits"),
        "Parameter 'reduced-phys-bits' is missing",
    );
    // Reported before an unknown key, as QEMU's visitor does.
    let e = fail(&format!("{MACHINE} -object sev-guest,id=sev0,foo=1"));
    assert_eq!(e.property(), Some("reduced-phys-bits"));
}

#[test]
fn rule_reduced_phys_bits_range() {
    for bits in [0u32, 64, 100] {
        let e = fail(&format!(
            "{MACHINE} -object sev-snp-guest,id=sev0,cbitpos=51,reduced-phys-bits={bits}"
        ));
        check(
            &e,
            Kind::OutOfRange,
            Some("reduced-phys-bits"),
            &format!(
                "reduced_phys_bits check failed, it should be in the range of 1 to 63, \
                 requested '{bits}'"
            ),
        );
    }
    let cfg = ok(&format!(
        "{MACHINE} -object sev-guest,id=sev0,cbitpos=47,reduced-phys-bits=63"
    ));
    assert_eq!(sev(&cfg).common.reduced_phys_bits, 63);
}

#[test]
fn rule_unknown_property() {
    let e = fail(&sev_line(",bogus=1"));
    check(
        &e,
        Kind::InvalidParameter,
        Some("bogus"),
        "Invalid parameter 'bogus'",
    );
    assert_eq!(
        e.to_string(),
        "sev-guest 'sev0': property 'bogus': Invalid parameter 'bogus'"
    );
}

#[test]
fn rule_sev_guest_properties_are_not_snp_properties() {
    for prop in [
        "handle=1",
        "dh-cert-file=/a",
        "session-file=/b",
        "legacy-vm-type=on",
    ] {
        let name = prop.split('=').next().unwrap();
        let e = fail(&snp_line(&format!(",{prop}")));
        check(
            &e,
            Kind::InvalidParameter,
            Some(name),
            &format!("Invalid parameter '{name}'"),
        );
    }
    for prop in [
        "id-block=AA==",
        "id-auth=AA==",
        "host-data=AA==",
        "guest-visible-workarounds=AA==",
        "author-key-enabled=on",
        "vcek-disabled=on",
        "certs-path=/c",
    ] {
        let name = prop.split('=').next().unwrap();
        let e = fail(&sev_line(&format!(",{prop}")));
        check(
            &e,
            Kind::InvalidParameter,
            Some(name),
            &format!("Invalid parameter '{name}'"),
        );
    }
}

#[test]
fn rule_bad_integer() {
    for value in ["abc", "", "1x", "0x", "08", "1.5", "on"] {
        let e = fail(&sev_line(&format!(",handle={value}")));
        check(
            &e,
            Kind::InvalidValue,
            Some("handle"),
            "Parameter 'handle' expects a uint64 value",
        );
    }
}

#[test]
fn rule_negative_numbers_are_refused() {
    for value in ["-1", "-0", "-0x1"] {
        let e = fail(&sev_line(&format!(",policy={value}")));
        check(
            &e,
            Kind::InvalidValue,
            Some("policy"),
            "Parameter 'policy' expects a uint64 value",
        );
    }
}

#[test]
fn rule_uint32_overflow() {
    // sev-guest's policy is uint32, sev-snp-guest's is uint64.
    let e = fail(&sev_line(",policy=0x100000000"));
    check(
        &e,
        Kind::InvalidValue,
        Some("policy"),
        "Parameter 'policy' expects uint32_t",
    );
    let e = fail(&sev_line(",cbitpos=4294967296"));
    check(
        &e,
        Kind::InvalidValue,
        Some("cbitpos"),
        "Parameter 'cbitpos' expects uint32_t",
    );
    assert_eq!(sev(&ok(&sev_line(",handle=4294967295"))).handle, u32::MAX);
    let cfg = ok(&snp_line(",policy=0x100030000"));
    assert_eq!(snp(&cfg).policy.raw(), 0x1_0003_0000);
    let e = fail(&snp_line(",policy=18446744073709551616"));
    check(
        &e,
        Kind::InvalidValue,
        Some("policy"),
        "Parameter 'policy' expects a uint64 value",
    );
}

#[test]
fn integers_decimal_hex_octal() {
    let cbitpos = |v: &str| {
        sev(&ok(&format!(
            "{MACHINE} -object sev-guest,id=sev0,reduced-phys-bits=1,cbitpos={v}"
        )))
        .common
        .cbitpos
    };
    assert_eq!(cbitpos("51"), Some(51));
    assert_eq!(cbitpos("0x33"), Some(51));
    assert_eq!(cbitpos("0X33"), Some(51));
    assert_eq!(
        cbitpos("063"),
        Some(51),
        "qemu_strtou64 base 0: leading 0 is octal"
    );
    assert_eq!(cbitpos("0"), Some(0));
    assert_eq!(sev(&ok(&sev_line(",policy=07"))).policy.raw(), 7);
}

#[test]
fn rule_bad_boolean() {
    for value in ["maybe", "ON", "1", "enabled", ""] {
        let e = fail(&sev_line(&format!(",kernel-hashes={value}")));
        check(
            &e,
            Kind::InvalidValue,
            Some("kernel-hashes"),
            "Parameter 'kernel-hashes' expects 'on' or 'off'",
        );
    }
    for prop in ["author-key-enabled", "vcek-disabled"] {
        let e = fail(&snp_line(&format!(",{prop}=2")));
        check(
            &e,
            Kind::InvalidValue,
            Some(prop),
            &format!("Parameter '{prop}' expects 'on' or 'off'"),
        );
    }
}

#[test]
fn booleans_like_qapi_bool_parse() {
    let hashes = |props: &str| sev(&ok(&sev_line(props))).common.kernel_hashes;
    for on in ["on", "yes", "true", "y"] {
        assert!(hashes(&format!(",kernel-hashes={on}")), "{on}");
    }
    for off in ["off", "no", "false", "n"] {
        assert!(!hashes(&format!(",kernel-hashes={off}")), "{off}");
    }
    assert!(hashes(",kernel-hashes"), "a bare flag means on");
    assert!(
        !hashes(",kernel-hashes,nokernel-hashes"),
        "no<flag> means off; the last wins"
    );
    assert!(!hashes(""));
}

#[test]
fn rule_legacy_vm_type_values() {
    for (v, want) in [
        ("on", OnOffAuto::On),
        ("off", OnOffAuto::Off),
        ("auto", OnOffAuto::Auto),
    ] {
        assert_eq!(
            sev(&ok(&sev_line(&format!(",legacy-vm-type={v}")))).legacy_vm_type,
            want
        );
    }
    let e = fail(&sev_line(",legacy-vm-type=yes"));
    check(
        &e,
        Kind::InvalidValue,
        Some("legacy-vm-type"),
        "Parameter 'legacy-vm-type' does not accept value 'yes'",
    );
}

#[test]
fn comma_escaping_in_values() {
    let cfg = ok(&sev_line(
        ",dh-cert-file=/tmp/a,,b.b64,session-file=/x,,,,y,sev-device=/dev/s,,ev,handle=3",
    ));
    let g = sev(&cfg);
    assert_eq!(g.dh_cert_file.as_deref(), Some(Path::new("/tmp/a,b.b64")));
    assert_eq!(g.session_file.as_deref(), Some(Path::new("/x,,y")));
    assert_eq!(g.common.sev_device, Path::new("/dev/s,ev"));
    assert_eq!(g.handle, 3);
    let cfg = ok(&snp_line(",certs-path=/var/certs,,1"));
    assert_eq!(
        snp(&cfg).certs_path.as_deref(),
        Some(Path::new("/var/certs,1"))
    );
}

// ---------------------------------------------------------------------------
// Base64 blobs
// ---------------------------------------------------------------------------

#[test]
fn rule_bad_base64() {
    for prop in [
        "id-block",
        "id-auth",
        "host-data",
        "guest-visible-workarounds",
    ] {
        let e = fail(&snp_line(&format!(",{prop}=not-base64!")));
        check(
            &e,
            Kind::InvalidBase64,
            Some(prop),
            "Base64 data contains invalid characters",
        );
    }
}

#[test]
fn rule_id_block_length() {
    for len in [0usize, 95, 97] {
        let e = fail(&snp_line(&format!(
            ",id-block={},id-auth=AA==",
            b64(&vec![1; len])
        )));
        check(
            &e,
            Kind::InvalidLength,
            Some("id-block"),
            &format!("parameter length of {len} not equal to 96"),
        );
    }
    let block: Vec<u8> = (0..96).collect();
    let cfg = ok(&snp_line(&format!(
        ",id-block={},id-auth={}",
        b64(&block),
        b64(&[7; 4096])
    )));
    assert_eq!(snp(&cfg).id_block.as_ref().map(|b| b.to_vec()), Some(block));
}

#[test]
fn rule_id_auth_length() {
    let e = fail(&snp_line(&format!(",id-auth={}", b64(&[0; 4097]))));
    check(
        &e,
        Kind::InvalidLength,
        Some("id-auth"),
        "parameter length:ID_AUTH 4097 exceeds max of 4096",
    );
    // Shorter blobs are accepted and zero-padded to 4096 bytes.
    let auth: Vec<u8> = (1..=200).collect();
    let cfg = ok(&snp_line(&format!(",id-auth={}", b64(&auth))));
    let got = snp(&cfg).id_auth.as_ref().unwrap();
    assert_eq!(&got[..200], auth.as_slice());
    assert!(got[200..].iter().all(|b| *b == 0));
}

#[test]
fn rule_host_data_length() {
    let e = fail(&snp_line(&format!(",host-data={}", b64(&[9; 31]))));
    check(
        &e,
        Kind::InvalidLength,
        Some("host-data"),
        "parameter length of 31 not equal to 32",
    );
    assert_eq!(
        e.to_string(),
        "sev-snp-guest 'sev0': property 'host-data': parameter length of 31 not equal to 32"
    );
    let e = fail(&snp_line(&format!(",host-data={}", b64(&[9; 33]))));
    check(
        &e,
        Kind::InvalidLength,
        Some("host-data"),
        "parameter length of 33 not equal to 32",
    );
    let data: Vec<u8> = (100..132).collect();
    assert_eq!(
        snp(&ok(&snp_line(&format!(",host-data={}", b64(&data)))))
            .host_data
            .to_vec(),
        data
    );
}

#[test]
fn rule_guest_visible_workarounds_length() {
    // QEMU checks != 16 but words it as "exceeds max": shorter blobs fail
    // with the same message.
    for len in [15usize, 17, 0] {
        let e = fail(&snp_line(&format!(
            ",guest-visible-workarounds={}",
            b64(&vec![1; len])
        )));
        check(
            &e,
            Kind::InvalidLength,
            Some("guest-visible-workarounds"),
            &format!("parameter length of {len} exceeds max of 16"),
        );
    }
    let w: Vec<u8> = (0..16).collect();
    let cfg = ok(&snp_line(&format!(
        ",guest-visible-workarounds={}",
        b64(&w)
    )));
    assert_eq!(snp(&cfg).guest_visible_workarounds.to_vec(), w);
}

#[test]
fn base64_is_decoded_like_glib() {
    // Newlines are allowed; a missing pad drops the incomplete last group.
    let data = [0x5a; 32];
    let text = b64(&data);
    let with_newline = format!("{}\n{}", &text[..20], &text[20..]);
    let args = [
        "-machine".to_owned(),
        "q35,confidential-guest-support=s".to_owned(),
        "-object".to_owned(),
        format!("sev-snp-guest,id=s,cbitpos=51,reduced-phys-bits=1,host-data={with_newline}"),
    ];
    let cfg = VmConfig::from_qemu_args(&args).unwrap();
    assert_eq!(snp(&cfg).host_data, data);
    let unpadded = text.trim_end_matches('=');
    let e = fail(&snp_line(&format!(",host-data={unpadded}")));
    check(
        &e,
        Kind::InvalidLength,
        Some("host-data"),
        "parameter length of 30 not equal to 32",
    );
}

#[test]
fn rule_id_block_needs_id_auth() {
    let e = fail(&snp_line(&format!(",id-block={}", b64(&[0; 96]))));
    assert_eq!(e.kind(), Kind::Conflict);
    assert_eq!(e.property(), Some("id-auth"));
    assert!(e.message().starts_with("id-block requires id-auth"), "{e}");
    // id-auth alone (and author-key-enabled) is accepted, as KVM ignores it.
    ok(&snp_line(",id-auth=AA==,author-key-enabled=on"));
}

// ---------------------------------------------------------------------------
// Named policy fields
// ---------------------------------------------------------------------------

#[test]
fn sev_policy_named_bits() {
    let cases: [(&str, GuestPolicy); 6] = [
        ("nodbg", GuestPolicy::builder().nodbg(true).build()),
        ("noks", GuestPolicy::builder().noks(true).build()),
        ("es", GuestPolicy::builder().es(true).build()),
        ("nosend", GuestPolicy::builder().nosend(true).build()),
        ("domain", GuestPolicy::builder().domain(true).build()),
        ("sev", GuestPolicy::builder().sev(true).build()),
    ];
    for (name, want) in cases {
        let cfg = ok(&sev_line(&format!(",policy=0,policy.{name}=on")));
        assert_eq!(sev(&cfg).policy, want, "{name}");
        let cfg = ok(&sev_line(&format!(",policy=0xffff003f,policy.{name}=off")));
        assert_eq!(
            sev(&cfg).policy.raw(),
            0xffff_003f & !want.raw(),
            "{name} off"
        );
    }
    let cfg = ok(&sev_line(
        ",policy=0,policy.api-major=1,policy.api-minor=0x33",
    ));
    assert_eq!(
        sev(&cfg).policy,
        GuestPolicy::builder().api(1, 0x33).build()
    );
}

#[test]
fn sev_policy_fields_apply_on_the_default() {
    // Without a raw policy QEMU's default 0x1 (NODBG) is the start.
    let cfg = ok(&sev_line(",policy.es=on,policy.noks"));
    assert_eq!(
        sev(&cfg).policy,
        GuestPolicy::builder()
            .nodbg(true)
            .noks(true)
            .es(true)
            .build()
    );
    // In order: the later field wins; the raw policy is the start whatever
    // its position.
    let cfg = ok(&sev_line(",policy.nodbg=off,policy.nodbg=on,policy=0x4"));
    assert_eq!(
        sev(&cfg).policy,
        GuestPolicy::builder().es(true).nodbg(true).build()
    );
    let cfg = ok(&sev_line(",policy.nodbg=off"));
    assert_eq!(sev(&cfg).policy, GuestPolicy::from_raw(0));
}

#[test]
fn snp_policy_named_bits() {
    let b = SnpPolicy::builder;
    let cases: [(&str, SnpPolicy); 10] = [
        ("smt", b().smt(true).build()),
        ("rsvd-mbo", b().build()),
        ("migrate-ma", b().migrate_ma(true).build()),
        ("debug", b().debug(true).build()),
        ("single-socket", b().single_socket(true).build()),
        ("cxl-allow", b().cxl_allow(true).build()),
        ("mem-aes-256-xts", b().mem_aes_256_xts(true).build()),
        ("rapl-dis", b().rapl_dis(true).build()),
        ("ciphertext-hiding", b().ciphertext_hiding(true).build()),
        ("page-swap-disable", b().page_swap_disable(true).build()),
    ];
    for (name, want) in cases {
        let cfg = ok(&snp_line(&format!(",policy=0x20000,policy.{name}=on")));
        assert_eq!(snp(&cfg).policy, want, "{name}");
    }
    let cfg = ok(&snp_line(",policy.rsvd-mbo=off"));
    assert_eq!(snp(&cfg).policy, b().smt(true).reserved_mbo(false).build());
    let cfg = ok(&snp_line(",policy.abi-major=1,policy.abi-minor=55"));
    assert_eq!(snp(&cfg).policy, b().smt(true).abi(1, 55).build());
    // The brief's example: smt on, debug off on top of the default.
    let cfg = ok(&snp_line(",policy.smt=on,policy.debug=off"));
    assert_eq!(snp(&cfg).policy, SnpPolicy::default());
    let cfg = ok(&snp_line(",policy=0x30000,policy.smt=off,policy.debug=on"));
    assert_eq!(snp(&cfg).policy, b().debug(true).build());
}

#[test]
fn rule_unknown_policy_field() {
    let e = fail(&sev_line(",policy.debug=on"));
    assert_eq!(e.kind(), Kind::InvalidParameter);
    assert_eq!(e.property(), Some("policy.debug"));
    assert!(
        e.message().starts_with("Invalid parameter 'policy.debug'"),
        "{e}"
    );
    assert!(
        e.message().contains("nodbg, noks, es, nosend, domain, sev"),
        "{e}"
    );
    let e = fail(&snp_line(",policy.nodbg=on"));
    assert_eq!(e.property(), Some("policy.nodbg"));
    assert!(e.message().contains("smt"), "{e}");
}

#[test]
fn rule_policy_field_values() {
    let e = fail(&sev_line(",policy.es=2"));
    check(
        &e,
        Kind::InvalidValue,
        Some("policy.es"),
        "Parameter 'policy.es' expects 'on' or 'off'",
    );
    let e = fail(&sev_line(",policy.api-major=256"));
    check(
        &e,
        Kind::InvalidValue,
        Some("policy.api-major"),
        "Parameter 'policy.api-major' expects uint8_t",
    );
    let e = fail(&snp_line(",policy.abi-minor=x"));
    check(
        &e,
        Kind::InvalidValue,
        Some("policy.abi-minor"),
        "Parameter 'policy.abi-minor' expects a uint64 value",
    );
}

// ---------------------------------------------------------------------------
// -machine and the guest reference
// ---------------------------------------------------------------------------

#[test]
fn rule_confidential_guest_support_names_no_object() {
    let e = fail(
        "-machine q35,confidential-guest-support=sev1 \
                  -object sev-guest,id=sev0,reduced-phys-bits=1",
    );
    check(
        &e,
        Kind::ObjectNotFound,
        Some("confidential-guest-support"),
        "Device 'sev1' not found",
    );
    assert_eq!(e.origin(), &Origin::Option("-machine".into()));
    let e = fail("-machine q35,memory-encryption=sev1");
    check(
        &e,
        Kind::ObjectNotFound,
        Some("memory-encryption"),
        "No such memory encryption object 'sev1'",
    );
}

#[test]
fn memory_encryption_alias_and_machine_forms() {
    let line = |machine: &str| {
        format!("{machine} -object sev-guest,id=sev0,cbitpos=47,reduced-phys-bits=1")
    };
    for machine in [
        "-machine q35,confidential-guest-support=sev0",
        "-machine q35,memory-encryption=sev0",
        "-machine type=q35,confidential-guest-support=sev0",
        "-M q35,confidential-guest-support=sev0",
        "-machine pc-q35-9.1 -machine confidential-guest-support=sev0",
        "-machine confidential-guest-support=sev0",
    ] {
        let cfg = ok(&line(machine));
        assert_eq!(sev(&cfg).common.id, "sev0", "{machine}");
    }
    assert_eq!(
        ok(&line("-machine pc-q35-9.1,memory-encryption=sev0"))
            .machine
            .machine_type,
        "pc-q35-9.1"
    );
    // The object may come first.
    let cfg = ok("-object sev-guest,id=sev0,reduced-phys-bits=1 -machine q35,confidential-guest-support=sev0");
    assert_eq!(sev(&cfg).common.cbitpos, None);
}

#[test]
fn unreferenced_object_is_not_the_guest() {
    // QEMU creates the object, but the VM is not confidential.
    let cfg = ok("-machine q35 -object sev-guest,id=sev0,reduced-phys-bits=1");
    assert!(cfg.guest.is_none());
    assert_eq!(cfg.machine.confidential_guest_support, None);
    cfg.validate(&naples()).unwrap();
    // It is still checked.
    let e = fail("-object sev-guest,id=sev0,reduced-phys-bits=0");
    assert_eq!(e.property(), Some("reduced-phys-bits"));
    // An empty link clears the reference.
    let cfg = ok(&format!(
        "{} -machine confidential-guest-support=",
        sev_line("")
    ));
    assert!(cfg.guest.is_none());
    // Of two objects, the referenced one is the guest.
    let cfg = ok("-object sev-guest,id=a,reduced-phys-bits=1 \
                  -object sev-snp-guest,id=b,reduced-phys-bits=1 \
                  -machine confidential-guest-support=b");
    assert_eq!(snp(&cfg).common.id, "b");
}

#[test]
fn rule_snp_refuses_smm_on() {
    let e = fail(&format!("{} -machine smm=on", snp_line("")));
    check(
        &e,
        Kind::Conflict,
        Some("smm"),
        "SEV-SNP does not support SMM.",
    );
    assert_eq!(e.origin(), &Origin::Option("-machine".into()));
    assert_eq!(
        ok(&format!("{} -machine smm=off", snp_line("")))
            .machine
            .smm,
        OnOffAuto::Off
    );
    assert_eq!(ok(&snp_line("")).machine.smm, OnOffAuto::Auto);
    // SEV (not SNP) may have SMM.
    assert_eq!(
        ok(&format!("{} -machine smm=on", sev_line(""))).machine.smm,
        OnOffAuto::On
    );
}

#[test]
fn rule_machine_values() {
    let e = fail("-machine q35,smm=maybe");
    check(
        &e,
        Kind::InvalidValue,
        Some("smm"),
        "Parameter 'smm' does not accept value 'maybe'",
    );
    let e = fail("-machine q35,graphics=2");
    check(
        &e,
        Kind::InvalidValue,
        Some("graphics"),
        "Parameter 'graphics' expects 'on' or 'off'",
    );
    let e = fail("-machine q35,smm");
    check(&e, Kind::Syntax, None, "Expected '=' after parameter 'smm'");
    let e = fail("-machine q35,foo=bar");
    check(
        &e,
        Kind::InvalidParameter,
        Some("foo"),
        "Property 'q35-machine.foo' not found",
    );
    let e = fail("-machine q35,usb=off");
    assert_eq!(e.kind(), Kind::Unsupported);
    assert_eq!(e.property(), Some("usb"));
}

#[test]
fn rule_machine_type() {
    let e = fail("-machine virt");
    check(
        &e,
        Kind::InvalidValue,
        Some("type"),
        "unsupported machine type: \"virt\" (Use -machine help to list supported machines)",
    );
    for t in ["pc", "pc-i440fx-9.0", "microvm"] {
        let e = fail(&format!("-machine {t}"));
        assert_eq!(e.kind(), Kind::Unsupported, "{t}");
        assert_eq!(e.property(), Some("type"));
    }
    assert_eq!(ok("").machine.machine_type, "q35");
    assert_eq!(ok("-machine pc-q35-8.2").machine.machine_type, "pc-q35-8.2");
}

// ---------------------------------------------------------------------------
// -m, -smp, -cpu, -S, -qmp
// ---------------------------------------------------------------------------

#[test]
fn memory_sizes_like_qemu() {
    let mem = |arg: &str| ok(&format!("-m {arg}")).memory;
    assert_eq!(ok("").memory, 128 << 20, "QEMU's default for x86");
    assert_eq!(mem("2048"), 2 << 30, "a plain number is MiB");
    assert_eq!(mem("2G"), 2 << 30);
    assert_eq!(mem("2g"), 2 << 30);
    assert_eq!(mem("512M"), 512 << 20);
    assert_eq!(mem("512m"), 512 << 20);
    assert_eq!(mem("1T"), 1 << 40);
    assert_eq!(mem("1048576k"), 1 << 30);
    assert_eq!(mem("size=2G"), 2 << 30);
    assert_eq!(mem("1.5G"), 3 << 29);
    assert_eq!(mem("0"), 128 << 20, "-m 0 keeps the default");
    assert_eq!(mem("1000000B"), 1_007_616, "rounded up to 8 KiB");
    assert_eq!(ok("-m 1G -m 2G").memory, 2 << 30, "the last -m wins");
    let empty = VmConfig::from_qemu_args(&["-m", ""]).unwrap();
    assert_eq!(empty.memory, 128 << 20, "an empty -m sets no size");
}

#[test]
fn rule_bad_memory_size() {
    let expects = "Parameter 'size' expects a non-negative number below 2^64 (Optional suffix \
                   k, M, G, T, P or E means kilo-, mega-, giga-, tera-, peta- and exabytes, \
                   respectively.)";
    for arg in ["2GB", "two", "1.5", "size=", "2 G"] {
        let e = VmConfig::from_qemu_args(&["-m", arg]).unwrap_err();
        check(&e, Kind::InvalidValue, Some("size"), expects);
    }
    let e = fail("-m -5");
    check(
        &e,
        Kind::InvalidValue,
        Some("size"),
        "Value '-5' is out of range for parameter 'size'",
    );
    let e = fail("-m 0x400");
    check(
        &e,
        Kind::InvalidValue,
        Some("size"),
        "Parameter 'memory.size' expects size",
    );
    let e = fail("-m 2G,foo=1");
    check(
        &e,
        Kind::InvalidParameter,
        Some("foo"),
        "Invalid parameter 'foo'",
    );
    let e = fail("-m 2G,maxmem=8G");
    check(
        &e,
        Kind::Unsupported,
        Some("maxmem"),
        "memory hotplug is not supported by sevkit",
    );
}

#[test]
fn smp_like_qemu() {
    assert_eq!(ok("-smp 4").smp, 4);
    assert_eq!(ok("-smp cpus=4").smp, 4);
    assert_eq!(ok("-smp 8,sockets=2,cores=4").smp, 8);
    assert_eq!(ok("-smp sockets=2,dies=2,cores=2,threads=2").smp, 16);
    assert_eq!(ok("-smp 4,maxcpus=4").smp, 4);
    assert_eq!(ok("-smp 2 -smp sockets=1").smp, 2, "-smp options merge");
}

#[test]
fn rule_bad_smp() {
    let e = fail("-smp x");
    check(
        &e,
        Kind::InvalidValue,
        Some("cpus"),
        "Parameter 'smp.cpus' expects integer",
    );
    let e = fail("-smp 4,foo=1");
    check(
        &e,
        Kind::InvalidParameter,
        Some("foo"),
        "Parameter 'smp.foo' is unexpected",
    );
    let e = fail("-smp 0");
    check(
        &e,
        Kind::OutOfRange,
        None,
        "Invalid CPU topology: CPU topology parameters must be greater than zero",
    );
    let e = fail("-smp 5,sockets=2,cores=2");
    assert_eq!(e.kind(), Kind::OutOfRange);
    assert!(
        e.message()
            .starts_with("Invalid CPU topology: product of the hierarchy"),
        "{e}"
    );
    let e = fail("-smp 4,maxcpus=8");
    assert_eq!(e.kind(), Kind::Unsupported);
    assert_eq!(e.property(), Some("maxcpus"));
}

#[test]
fn cpu_models() {
    assert_eq!(ok("").cpu_model, "EPYC-v4");
    for t in sev_measure::VCPU_TYPES {
        assert_eq!(ok(&format!("-cpu {}", t.name)).cpu_model, t.name);
    }
    for bad in ["EPYC-v99", "epyc-v4", "host", "qemu64"] {
        let e = fail(&format!("-cpu {bad}"));
        check(
            &e,
            Kind::InvalidValue,
            Some("model"),
            &format!("unable to find CPU model '{bad}'"),
        );
    }
    let e = VmConfig::from_qemu_args(&["-cpu", ""]).unwrap_err();
    check(
        &e,
        Kind::InvalidValue,
        Some("model"),
        "-cpu option cannot be empty",
    );
    let e = fail("-cpu EPYC-v4,+avx512f");
    assert_eq!(e.kind(), Kind::Unsupported);
}

#[test]
fn start_paused() {
    assert!(ok("-S").start_paused);
    assert!(!ok("").start_paused);
}

#[test]
fn qmp_socket() {
    for arg in [
        "unix:/run/qmp.sock,server=on,wait=off",
        "unix:/run/qmp.sock,server,nowait",
        "unix:/run/qmp.sock,wait=off,server=on",
        "unix:path=/run/qmp.sock,server=yes,wait=no",
    ] {
        assert_eq!(
            ok(&format!("-qmp {arg}")).qmp.as_deref(),
            Some(Path::new("/run/qmp.sock")),
            "{arg}"
        );
    }
    assert_eq!(
        ok("-qmp unix:/a,,b,server=on,wait=off").qmp,
        Some(PathBuf::from("/a,b"))
    );
}

#[test]
fn rule_qmp_unsupported_forms() {
    let e = fail("-qmp tcp:127.0.0.1:4444,server=on,wait=off");
    assert_eq!(e.kind(), Kind::Unsupported);
    assert_eq!(e.origin(), &Origin::Option("-qmp".into()));
    assert!(
        e.message().contains("only unix sockets are supported"),
        "{e}"
    );
    let e = fail("-qmp unix:/q.sock");
    check(
        &e,
        Kind::Unsupported,
        Some("server"),
        "only listening sockets (server=on) are supported by sevkit",
    );
    let e = fail("-qmp unix:/q.sock,server=on");
    assert_eq!((e.kind(), e.property()), (Kind::Unsupported, Some("wait")));
    let e = fail("-qmp unix:/q.sock,server=maybe,wait=off");
    check(
        &e,
        Kind::InvalidValue,
        Some("server"),
        "Parameter 'server' expects 'on' or 'off'",
    );
    let e = fail("-qmp unix:/q.sock,server=on,wait=off,bogus=1");
    check(
        &e,
        Kind::InvalidParameter,
        Some("bogus"),
        "Invalid parameter 'bogus'",
    );
    let e = fail("-qmp unix:/q.sock,server=on,wait=off,telnet=on");
    assert_eq!(
        (e.kind(), e.property()),
        (Kind::Unsupported, Some("telnet"))
    );
    let e = fail("-qmp unix:/a,server=on,wait=off -qmp unix:/b,server=on,wait=off");
    assert_eq!(e.kind(), Kind::Unsupported);
}

// ---------------------------------------------------------------------------
// validate(): the host checks
// ---------------------------------------------------------------------------

#[test]
fn rule_cbitpos_check() {
    let cfg = ok(&sev_line(""));
    let e = cfg.validate(&milan()).unwrap_err();
    check(
        &e,
        Kind::HostMismatch,
        Some("cbitpos"),
        "cbitpos check failed, host '51' requested '47'",
    );
    cfg.validate(&rome()).unwrap();
    let cfg = ok(&snp_line(""));
    let e = cfg
        .validate(&HostCaps {
            cbitpos: 52,
            sev_es: true,
            snp: true,
        })
        .unwrap_err();
    check(
        &e,
        Kind::HostMismatch,
        Some("cbitpos"),
        "cbitpos check failed, host '52' requested '51'",
    );
}

#[test]
fn rule_absent_cbitpos_is_qemus_zero() {
    let cfg = ok(&format!(
        "{MACHINE} -object sev-snp-guest,id=sev0,reduced-phys-bits=1"
    ));
    assert_eq!(snp(&cfg).common.cbitpos, None);
    let e = cfg.validate(&milan()).unwrap_err();
    check(
        &e,
        Kind::HostMismatch,
        Some("cbitpos"),
        "cbitpos check failed, host '51' requested '0'",
    );
}

#[test]
fn rule_es_needs_host_es() {
    let cfg = ok(&sev_line(",policy=0x5"));
    let e = cfg.validate(&naples()).unwrap_err();
    check(
        &e,
        Kind::HostUnsupported,
        Some("policy"),
        "guest policy requires SEV-ES, but host SEV-ES support unavailable",
    );
    cfg.validate(&rome()).unwrap();
    // With legacy-vm-type=off KVM needs the SEV-ES VM type, which it lacks.
    let cfg = ok(&sev_line(",policy.es=on,legacy-vm-type=off"));
    let e = cfg.validate(&naples()).unwrap_err();
    assert_eq!(
        (e.kind(), e.property()),
        (Kind::HostUnsupported, Some("legacy-vm-type"))
    );
    assert!(e
        .message()
        .starts_with("SEV: host kernel does not support requested KVM_X86_SEV_ES_VM VM type."));
}

#[test]
fn rule_snp_needs_snp_host() {
    let cfg = ok(&format!(
        "{MACHINE} -object sev-snp-guest,id=sev0,cbitpos=47,reduced-phys-bits=1"
    ));
    for host in [rome(), naples()] {
        let e = cfg.validate(&host).unwrap_err();
        check(
            &e,
            Kind::HostUnsupported,
            None,
            "vm-type SEV-SNP not supported by KVM",
        );
        assert_eq!(
            e.origin(),
            &Origin::Object {
                qom_type: Some("sev-snp-guest".into()),
                id: Some("sev0".into())
            }
        );
    }
}

#[test]
fn rule_policy_the_firmware_rejects() {
    // Reserved bit 6 of the legacy policy.
    let cfg = ok(&sev_line(",policy=0x41"));
    let e = cfg.validate(&rome()).unwrap_err();
    assert_eq!(
        (e.kind(), e.property()),
        (Kind::InvalidPolicy, Some("policy"))
    );
    // RSVD_MBO cleared, and reserved bits 63:26, of the SNP policy.
    for props in [
        ",policy=0x10000",
        ",policy.rsvd-mbo=off",
        ",policy=0x4000030000",
    ] {
        let cfg = ok(&snp_line(props));
        let e = cfg.validate(&milan()).unwrap_err();
        assert_eq!(
            (e.kind(), e.property()),
            (Kind::InvalidPolicy, Some("policy")),
            "{props}"
        );
    }
}

#[test]
fn validate_rechecks_hand_built_configs() {
    let mut cfg = ok(&snp_line(""));
    cfg.validate(&milan()).unwrap();

    let mut bad = cfg.clone();
    bad.guest.as_mut().unwrap().common_mut().reduced_phys_bits = 0;
    let e = bad.validate(&milan()).unwrap_err();
    check(
        &e,
        Kind::OutOfRange,
        Some("reduced-phys-bits"),
        "reduced_phys_bits check failed, it should be in the range of 1 to 63, requested '0'",
    );

    let mut bad = cfg.clone();
    bad.machine.smm = OnOffAuto::On;
    check(
        &bad.validate(&milan()).unwrap_err(),
        Kind::Conflict,
        Some("smm"),
        "SEV-SNP does not support SMM.",
    );

    let mut bad = cfg.clone();
    bad.machine.confidential_guest_support = Some("other".into());
    let e = bad.validate(&milan()).unwrap_err();
    check(
        &e,
        Kind::ObjectNotFound,
        Some("confidential-guest-support"),
        "Device 'other' not found",
    );

    let mut bad = cfg.clone();
    bad.append = Some("x".into());
    assert_eq!(bad.validate(&milan()).unwrap_err().kind(), Kind::Conflict);

    let mut bad = cfg.clone();
    bad.smp = 0;
    assert_eq!(bad.validate(&milan()).unwrap_err().kind(), Kind::OutOfRange);

    let mut bad = cfg.clone();
    bad.cpu_model = "Skylake-Server".into();
    assert_eq!(
        bad.validate(&milan()).unwrap_err().message(),
        "unable to find CPU model 'Skylake-Server'"
    );

    if let Some(ConfidentialGuest::Snp(g)) = &mut cfg.guest {
        g.id_block = Some([0; 96]);
    }
    assert_eq!(cfg.validate(&milan()).unwrap_err().kind(), Kind::Conflict);
}

// ---------------------------------------------------------------------------
// TOML
// ---------------------------------------------------------------------------

const EXAMPLE_TOML: &str = include_str!("../src/config/example.toml");

#[test]
fn toml_example_equals_its_command_line() {
    let from_toml = VmConfig::from_toml(EXAMPLE_TOML).unwrap();
    let host_data = b64(b"sevkit example host data 32 byte");
    let args = words(&format!(
        "-machine q35,confidential-guest-support=sev0,smm=off \
         -object sev-snp-guest,id=sev0,cbitpos=51,reduced-phys-bits=1,kernel-hashes=on,\
policy.smt=on,policy.debug=off,host-data={host_data} \
         -bios /usr/share/ovmf/OVMF.amdsev.fd -kernel /var/lib/sevkit/vmlinuz \
         -initrd /var/lib/sevkit/initrd.img -append console=ttyS0 -cpu EPYC-Milan -smp 4 \
         -m 2G -S -qmp unix:/run/sevkit/qmp.sock,server=on,wait=off"
    ));
    let from_cli = VmConfig::from_qemu_args(&args).unwrap();
    assert_eq!(from_toml, from_cli);
}

#[test]
fn toml_policy_forms() {
    let doc = |policy: &str| {
        format!(
            "[machine]\nconfidential-guest-support = \"s\"\n\n[[object]]\nqom-type = \
             \"sev-guest\"\nid = \"s\"\nreduced-phys-bits = 1\n{policy}\n"
        )
    };
    let policy = |p: &str| sev(&VmConfig::from_toml(&doc(p)).unwrap()).policy;
    assert_eq!(policy("policy = 5"), GuestPolicy::from_raw(5));
    assert_eq!(policy("policy = 0x5"), GuestPolicy::from_raw(5));
    assert_eq!(policy("policy = \"0x5\""), GuestPolicy::from_raw(5));
    assert_eq!(
        policy("policy = \"05\""),
        GuestPolicy::from_raw(5),
        "strings follow the command line"
    );
    assert_eq!(
        policy("policy = { es = true, noks = true }"),
        GuestPolicy::builder()
            .nodbg(true)
            .noks(true)
            .es(true)
            .build()
    );
    assert_eq!(
        policy("policy.nodbg = false\npolicy.api-major = 2"),
        GuestPolicy::builder().api_major(2).build()
    );
    let e = VmConfig::from_toml(&doc("policy = { bogus = true }")).unwrap_err();
    assert_eq!(
        (e.kind(), e.property()),
        (Kind::InvalidParameter, Some("policy.bogus"))
    );
    let e = VmConfig::from_toml(&doc("policy = -1")).unwrap_err();
    check(
        &e,
        Kind::InvalidValue,
        Some("policy"),
        "Parameter 'policy' expects a uint64 value",
    );
    let e = VmConfig::from_toml(&doc("policy = 1.5")).unwrap_err();
    check(
        &e,
        Kind::InvalidType,
        Some("policy"),
        "Invalid parameter type for 'policy', expected: integer",
    );
}

#[test]
fn toml_equals_cli_for_every_property() {
    let block = b64(&[3; 96]);
    let auth = b64(&[4; 4096]);
    let gosvw = b64(&[5; 16]);
    let host = b64(&[6; 32]);
    let toml = format!(
        r#"
        memory = 4096
        smp = {{ cpus = 2, sockets = 1 }}
        [machine]
        type = "pc-q35-9.1"
        memory-encryption = "snp"
        smm = "auto"
        [[object]]
        qom-type = "sev-snp-guest"
        id = "snp"
        sev-device = "/dev/sev2"
        cbitpos = 51
        reduced-phys-bits = 5
        kernel-hashes = "on"
        policy = "0x70000"
        guest-visible-workarounds = "{gosvw}"
        id-block = "{block}"
        id-auth = "{auth}"
        author-key-enabled = true
        host-data = "{host}"
        vcek-disabled = true
        certs-path = "/var/certs"
        [[object]]
        qom-type = "sev-guest"
        id = "other"
        reduced-phys-bits = 1
        dh-cert-file = "/pdh"
        session-file = "/session"
        handle = 7
        legacy-vm-type = "on"
        "#
    );
    let cli = format!(
        "-m 4096 -smp 2,sockets=1 -machine pc-q35-9.1,memory-encryption=snp,smm=auto \
         -object sev-snp-guest,id=snp,sev-device=/dev/sev2,cbitpos=51,reduced-phys-bits=5,\
kernel-hashes=on,policy=0x70000,guest-visible-workarounds={gosvw},id-block={block},\
id-auth={auth},author-key-enabled=on,host-data={host},vcek-disabled=on,certs-path=/var/certs \
         -object sev-guest,id=other,reduced-phys-bits=1,dh-cert-file=/pdh,session-file=/session,\
handle=7,legacy-vm-type=on"
    );
    let a = VmConfig::from_toml(&toml).unwrap();
    let b = ok(&cli);
    assert_eq!(a, b);
    let g = snp(&a);
    assert_eq!(g.common.sev_device, Path::new("/dev/sev2"));
    assert_eq!(g.common.reduced_phys_bits, 5);
    assert_eq!(
        g.policy,
        SnpPolicy::builder().smt(true).migrate_ma(true).build()
    );
    assert_eq!(g.guest_visible_workarounds, [5; 16]);
    assert_eq!(g.id_block, Some([3; 96]));
    assert_eq!(g.id_auth.as_deref(), Some(&[4; 4096]));
    assert!(g.author_key_enabled && g.vcek_disabled);
    assert_eq!(g.host_data, [6; 32]);
    assert_eq!(g.certs_path.as_deref(), Some(Path::new("/var/certs")));
    assert_eq!(a.memory, 4 << 30);
    assert_eq!(a.smp, 2);
}

#[test]
fn toml_unknown_keys_are_named() {
    let e = VmConfig::from_toml("memroy = \"2G\"").unwrap_err();
    check(
        &e,
        Kind::InvalidParameter,
        Some("memroy"),
        "unknown key 'memroy'",
    );
    assert_eq!(e.origin(), &Origin::Toml);
    let e = VmConfig::from_toml("[machine]\nsmn = \"off\"").unwrap_err();
    check(
        &e,
        Kind::InvalidParameter,
        Some("smn"),
        "Property 'q35-machine.smn' not found",
    );
    let e = VmConfig::from_toml(
        "[[object]]\nqom-type = \"sev-guest\"\nid = \"s\"\nreduced-phys-bits = 1\nhandel = 1",
    )
    .unwrap_err();
    check(
        &e,
        Kind::InvalidParameter,
        Some("handel"),
        "Invalid parameter 'handel'",
    );
    let e = VmConfig::from_toml("smp = { cpus = 2, sokets = 1 }").unwrap_err();
    check(
        &e,
        Kind::InvalidParameter,
        Some("sokets"),
        "Parameter 'smp.sokets' is unexpected",
    );
}

#[test]
fn toml_types_and_syntax() {
    let e = VmConfig::from_toml("paused = \"yes\"").unwrap_err();
    assert_eq!(
        (e.kind(), e.property()),
        (Kind::InvalidType, Some("paused"))
    );
    let e = VmConfig::from_toml("kernel = 5").unwrap_err();
    assert_eq!(
        (e.kind(), e.property()),
        (Kind::InvalidType, Some("kernel"))
    );
    let e = VmConfig::from_toml("[object]\nqom-type = \"sev-guest\"").unwrap_err();
    assert_eq!(
        (e.kind(), e.property()),
        (Kind::InvalidType, Some("object"))
    );
    let e = VmConfig::from_toml(
        "[[object]]\nqom-type = \"sev-guest\"\nid = \"s\"\nreduced-phys-bits = true",
    )
    .unwrap_err();
    check(
        &e,
        Kind::InvalidType,
        Some("reduced-phys-bits"),
        "Invalid parameter type for 'reduced-phys-bits', expected: integer",
    );
    let e = VmConfig::from_toml("smp = [").unwrap_err();
    assert_eq!((e.kind(), e.origin()), (Kind::Syntax, &Origin::Toml));
    // memory as integer MiB or -m string, smp as integer or -smp string.
    let cfg = VmConfig::from_toml("memory = 1024\nsmp = \"4,sockets=2\"\npaused = true").unwrap();
    assert_eq!((cfg.memory, cfg.smp, cfg.start_paused), (1 << 30, 4, true));
    let cfg = VmConfig::from_toml("memory = \"size=1G\"").unwrap();
    assert_eq!(cfg.memory, 1 << 30);
    let e = VmConfig::from_toml("memory = \"2GB\"").unwrap_err();
    assert_eq!(
        (e.kind(), e.property(), e.origin()),
        (
            Kind::InvalidValue,
            Some("size"),
            &Origin::Option("memory".into())
        )
    );
    let e = VmConfig::from_toml("append = \"x\"").unwrap_err();
    check(
        &e,
        Kind::Conflict,
        None,
        "-append only allowed with -kernel option",
    );
    assert_eq!(VmConfig::from_toml("").unwrap(), VmConfig::default());
}

// ---------------------------------------------------------------------------
// to_qemu_args
// ---------------------------------------------------------------------------

#[track_caller]
fn round_trip(cfg: &VmConfig) {
    let args = cfg.to_qemu_args();
    let back = VmConfig::from_qemu_args(&args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert_eq!(&back, cfg, "{args:?}");
}

#[test]
fn canonical_command_line_round_trips() {
    round_trip(&VmConfig::default());
    round_trip(&ok(&sev_line("")));
    round_trip(&ok(&snp_line("")));
    round_trip(&VmConfig::from_toml(EXAMPLE_TOML).unwrap());
    round_trip(&ok(&format!(
        "{} -machine smm=on -smp 3 -m 1536 -cpu EPYC-Rome-v4 -S",
        sev_line(
            ",policy=0x07000033,handle=9,dh-cert-file=/a,,b,session-file=/s=1,\
sev-device=/dev/sev,,x,kernel-hashes=on,legacy-vm-type=off"
        )
    )));
    let snp_full = ok(&snp_line(&format!(
        ",policy=0x1b0102,guest-visible-workarounds={},id-block={},id-auth={},\
author-key-enabled=on,host-data={},vcek-disabled=on,certs-path=/c,,d",
        b64(&[1; 16]),
        b64(&[2; 96]),
        b64(&[3; 1000]),
        b64(&[4; 32])
    )));
    round_trip(&snp_full);

    // Paths with commas and '=' in the QMP socket and the boot files.
    let mut cfg = ok(&snp_line(""));
    cfg.qmp = Some(PathBuf::from("/run/a=b,c.sock"));
    cfg.kernel = Some(PathBuf::from("/boot/vm,linuz"));
    cfg.append = Some("a=b, c".into());
    cfg.bios = Some(PathBuf::from("/fw,1"));
    round_trip(&cfg);
}

#[test]
fn canonical_command_line_shape() {
    let cfg = ok(&format!("{} -S -m 2G -smp 2", snp_line(",kernel-hashes")));
    assert_eq!(
        cfg.to_qemu_args(),
        [
            "-machine",
            "type=q35,confidential-guest-support=sev0",
            "-object",
            "sev-snp-guest,id=sev0,cbitpos=51,reduced-phys-bits=1,kernel-hashes=on,policy=0x30000",
            "-cpu",
            "EPYC-v4",
            "-smp",
            "2",
            "-m",
            "2G",
            "-S",
        ]
    );
}

// ---------------------------------------------------------------------------
// Robustness
// ---------------------------------------------------------------------------

/// A small deterministic generator (xorshift), so the test is repeatable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

#[test]
fn no_panic_on_arbitrary_input() {
    let options = [
        "-object", "-machine", "-m", "-smp", "-cpu", "-qmp", "-S", "-kernel", "-append", "-accel",
        "--object", "-x",
    ];
    let pieces = [
        "sev-guest",
        "sev-snp-guest",
        "id=sev0",
        "id=",
        ",",
        ",,",
        "=",
        "policy=",
        "0x",
        "policy.es",
        "nopolicy.smt",
        "reduced-phys-bits=",
        "63",
        "-1",
        "0777",
        "18446744073709551616",
        "host-data=",
        "id-block=",
        "id-auth=",
        "AAAA",
        "====",
        "\n",
        "é",
        "{",
        "}",
        "\"",
        "q35",
        "confidential-guest-support=sev0",
        "smm=on",
        "unix:",
        "server",
        "nowait",
        "1.5G",
        ".",
        "e",
        "0x1b",
        "cpus=",
        "maxcpus=",
        "help",
        "?",
        "\0",
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..20_000 {
        let mut args = Vec::new();
        for _ in 0..(rng.next() % 6) {
            args.push(rng.pick(&options).to_owned());
            let mut value = String::new();
            for _ in 0..(rng.next() % 8) {
                value.push_str(rng.pick(&pieces));
            }
            args.push(value);
        }
        if let Ok(cfg) = VmConfig::from_qemu_args(&args) {
            let _ = cfg.validate(&milan());
            round_trip(&cfg);
        }
        let doc: String = (0..(rng.next() % 10))
            .map(|_| {
                rng.pick(&[
                    "a = 1\n",
                    "[machine]\n",
                    "[[object]]\n",
                    "qom-type = \"sev-guest\"\n",
                    "id = \"x\"\n",
                    "policy = { es = true }\n",
                    "memory = \"1G\"\n",
                    "smp = -1\n",
                    "= \n",
                ])
            })
            .collect();
        let _ = VmConfig::from_toml(&doc);
    }
}

// ---------------------------------------------------------------------------
// Huge input
// ---------------------------------------------------------------------------

/// The longest message a 1 MiB key, value, name or line may produce.
const SHORT_MESSAGE: usize = 1024;

/// Every message quotes at most an excerpt of what it refuses: a 1 MiB
/// value, key, id or option gives a message of a few hundred bytes, which
/// still names the option and property.
#[test]
fn command_line_messages_quote_an_excerpt_of_huge_input() {
    let huge = "x".repeat(1 << 20);
    let h = huge.as_str();
    let obj = "sev-guest,id=sev0,cbitpos=51,reduced-phys-bits=1";
    let machine = "q35,confidential-guest-support=sev0";
    let qemu: Vec<Vec<String>> = [
        vec![h.to_owned()],
        vec![format!("-{h}")],
        vec!["-machine".into(), format!("q35,{h}=1")],
        vec!["-machine".into(), format!("q35,a{h}")],
        vec!["-machine".into(), format!("q35,smm={h}")],
        vec!["-machine".into(), format!("q35,vmport={h}")],
        vec!["-machine".into(), format!("q35,graphics={h}")],
        vec![
            "-machine".into(),
            format!("q35,confidential-guest-support={h}"),
        ],
        vec!["-machine".into(), format!("q35,memory-encryption={h}")],
        vec!["-machine".into(), format!("q35,accel={h}")],
        vec!["-machine".into(), format!("q35,{h}.x=1")],
        vec!["-machine".into(), format!("q35,a.{h}=1")],
        vec!["-machine".into(), format!("q35,x{}=1", &h[..100])],
        vec!["-machine".into(), h.to_owned()],
        vec!["-machine".into(), format!("pc-i440fx-{h}")],
        vec!["-object".into(), format!("{obj},{h}=1")],
        vec!["-object".into(), format!("{obj},policy.{h}=1")],
        vec!["-object".into(), format!("{h},id=sev0")],
        vec!["-object".into(), format!("sev-guest,id=a{h}!")],
        vec!["-object".into(), format!("{obj},cbitpos={h}")],
        vec!["-object".into(), format!("{obj},policy=1{h}")],
        vec!["-object".into(), format!("{obj},kernel-hashes={h}")],
        vec!["-object".into(), format!("{obj},legacy-vm-type={h}")],
        vec![
            "-object".into(),
            format!(r#"{{"qom-type": "sev-guest", "id": "sev0", "{h}": 1}}"#),
        ],
        vec!["-object".into(), format!(r#"{{"qom-type": "{h}"}}"#)],
        vec![
            "-object".into(),
            format!(r#"{{"qom-type": "sev-guest", "id": "{h}"}}"#),
        ],
        vec!["-object".into(), format!("{{{h}")],
        vec!["-m".into(), h.to_owned()],
        vec!["-m".into(), format!("1{h}")],
        vec!["-m".into(), format!("size=1G,{h}=1")],
        vec![
            "-m".into(),
            format!("99999999999999999999999{}", "9".repeat(1 << 20)),
        ],
        vec!["-smp".into(), h.to_owned()],
        vec!["-smp".into(), format!("2,{h}=1")],
        vec!["-smp".into(), format!("cpus={h}")],
        vec!["-cpu".into(), h.to_owned()],
        vec!["-cpu".into(), format!("EPYC,{h}")],
        vec!["-qmp".into(), h.to_owned()],
        vec!["-qmp".into(), format!("unix:/x,{h}=on")],
        vec!["-qmp".into(), format!("unix:/x,server={h}")],
        vec!["-accel".into(), h.to_owned()],
        vec!["-accel".into(), format!("kvm,{h}=1")],
        vec!["-display".into(), h.to_owned()],
        vec![
            "-machine".into(),
            machine.into(),
            "-object".into(),
            format!("sev-guest,id=a{h}"),
            "-object".into(),
            format!("sev-guest,id=a{h}"),
        ],
    ]
    .into_iter()
    .collect();
    for args in &qemu {
        let Err(e) = VmConfig::from_qemu_args(args) else {
            panic!(
                "{:?}: accepted",
                args.iter()
                    .map(|a| &a[..a.len().min(40)])
                    .collect::<Vec<_>>()
            );
        };
        let text = e.to_string();
        assert!(
            text.len() < SHORT_MESSAGE,
            "{} bytes: {}",
            text.len(),
            &text[..200]
        );
    }
}

/// The same for TOML: a 1 MiB key, value or line; a syntax error still
/// names the line and column, and shows the place under a caret.
#[test]
fn toml_messages_quote_an_excerpt_of_huge_input() {
    let huge = "x".repeat(1 << 20);
    let h = huge.as_str();
    let toml: Vec<String> = vec![
        format!("{h} = 1"),
        format!("cpu = \"{h}\""),
        format!("bios = \"a\"\nsmp = \"{h}\""),
        format!("memory = \"{h}\""),
        format!("[machine]\n{h} = 1"),
        format!("[machine]\ntype = \"{h}\""),
        format!("smp = {{ {h} = 1 }}"),
        format!("[[object]]\nqom-type = \"{h}\""),
        format!(
            "[[object]]\nqom-type = \"sev-guest\"\nid = \"sev0\"\ncbitpos = 51\n\
             reduced-phys-bits = 1\n{h} = 1"
        ),
        format!("[[object]]\nqom-type = \"sev-guest\"\nid = \"{h}\""),
        // Syntax errors in a 1 MiB line.
        format!("cpu = \"{h}"),
        format!("cpu = {h}"),
        format!("a = 1 {h}"),
    ];
    for (i, text) in toml.iter().enumerate() {
        let Err(e) = VmConfig::from_toml(text) else {
            panic!("TOML case {i}: accepted");
        };
        let shown = e.to_string();
        assert!(
            shown.len() < SHORT_MESSAGE,
            "{} bytes: {}",
            shown.len(),
            &shown[..200]
        );
    }

    // A syntax error in the middle of a long line: where, what, and the
    // place itself under a caret.
    let text = format!("cpu = \"EPYC\"\nsmp = 2\nbios = \"{h}\" ?{h}");
    let e = VmConfig::from_toml(&text).unwrap_err();
    let shown = e.to_string();
    assert_eq!(e.kind(), Kind::Syntax);
    let column = "bios = \"".len() + h.len() + "\" ".len() + 1;
    assert!(
        shown.contains(&format!("line 3, column {column}")),
        "{shown}"
    );
    let lines: Vec<&str> = shown.lines().collect();
    let (quoted, caret) = (lines[lines.len() - 2], lines[lines.len() - 1]);
    let at = caret.find('^').unwrap();
    assert_eq!(quoted.chars().nth(at), Some('?'), "{shown}");
    assert!(
        quoted.starts_with("    …x") && quoted.ends_with("x…"),
        "{shown}"
    );
    assert!(shown.len() < SHORT_MESSAGE);
}
