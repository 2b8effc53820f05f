//! The launch sequence against the in-process software AMD-SP: the VMM's
//! launch log, the firmware's, and sev-measure's prediction agree.

mod common;

use sev_abi::policy::{GuestPolicy, SnpPolicy};
use sev_measure::{measure, FpuState, MeasureParams, Mode};
use sev_vmm::launch::{LaunchSpec, SevLaunch, SevSpec, SnpLaunch, SnpSpec};

fn debian_ovmf() -> Option<Vec<u8>> {
    std::fs::read("/usr/share/ovmf/OVMF.fd").ok()
}

fn spec(image: Vec<u8>, vcpus: u32) -> LaunchSpec {
    LaunchSpec::new(image, vcpus, "EPYC-v4", sev_abi::product::Product::Genoa).unwrap()
}

#[test]
#[cfg_attr(
    not(sevkit_debian_ovmf),
    ignore = "needs Debian's ovmf package (installed by .ci/run)"
)]
fn sev_es_launch_matches_prediction_and_firmware_log() {
    let image = debian_ovmf().unwrap();
    let fw = common::firmware(1);
    let host = common::host(&fw, 512 << 20, image.len());
    let sev = SevSpec {
        policy: GuestPolicy::from_raw(0x5),
        handle: 0,
        session: None,
        legacy_vm_type: true,
    };
    let launch = SevLaunch::start(host, spec(image.clone(), 4), sev).unwrap();
    let measured = launch.measure().unwrap();
    let launched = measured.finish().unwrap();
    let mut p = MeasureParams::new(Mode::SevEs, &image);
    p.vcpus = 4;
    p.vcpu_sig = sev_measure::vcpu_type("EPYC-v4").unwrap().signature();
    p.fpu = FpuState::Legacy;
    let predicted = measure(&p).unwrap();
    assert_eq!(launched.digest, predicted.digest);
    let sev_vmm::FirmwareGuest::Legacy { handle, .. } = launched.guest else {
        panic!()
    };
    let fw_log = fw.lock().unwrap().launch_log(handle).unwrap().clone();
    assert_eq!(fw_log.final_digest(), Some(&predicted.digest[..]));
    assert_eq!(launched.log.final_digest(), Some(&predicted.digest[..]));
    // Entry by entry: the VMM's log is the prediction's, and the firmware
    // measured the same blobs with the same running digests.
    assert_eq!(launched.log.first_divergence(&predicted.log), None);
    let digests = |log: &sev_measure::LaunchLog| {
        log.entries
            .iter()
            .map(|e| (e.content_hash.clone(), e.digest_after.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(digests(&fw_log), digests(&launched.log));
}

#[test]
#[cfg_attr(
    not(sevkit_debian_ovmf),
    ignore = "needs Debian's ovmf package (installed by .ci/run)"
)]
fn snp_launch_matches_prediction() {
    let image = debian_ovmf().unwrap();
    let fw = common::firmware(2);
    let host = common::host(&fw, 512 << 20, image.len());
    let snp = SnpSpec {
        policy: SnpPolicy::from_raw(0x30000),
        gosvw: [0; 16],
        id: None,
        vcek_disabled: false,
        host_data: [7; 32],
    };
    let launch = SnpLaunch::start(host, spec(image.clone(), 2), snp).unwrap();
    let launched = launch.finish().unwrap();
    let mut p = MeasureParams::new(Mode::Snp, &image);
    p.vcpus = 2;
    p.vcpu_sig = sev_measure::vcpu_type("EPYC-v4").unwrap().signature();
    let predicted = measure(&p).unwrap();
    assert_eq!(launched.digest, predicted.digest);
    let sev_vmm::FirmwareGuest::Snp { gctx_paddr, .. } = launched.guest else {
        panic!()
    };
    let fw = fw.lock().unwrap();
    assert_eq!(
        fw.snp_guest(gctx_paddr).unwrap().ld.to_vec(),
        predicted.digest
    );
}

mod vm_states {
    use sev_abi::product::Product;
    use sev_vmm::config::VmConfig;
    use sev_vmm::monitor::backend::hmp;
    use sev_vmm::plan::{MachineError, MachinePlan};
    use sev_vmm::vm::{RunState, SevState};
    use sev_vmm::GuestMemory;

    fn args(dir: &std::path::Path, object: &str, paused: bool) -> Vec<String> {
        let image = dir.join("fw.bin");
        std::fs::write(&image, sev_vmm::machine::demo_image::demo_image()).unwrap();
        let mut a: Vec<String> = [
            "-machine",
            "q35,confidential-guest-support=sev0",
            "-object",
            object,
            "-bios",
            image.to_str().unwrap(),
            "-smp",
            "2",
        ]
        .iter()
        .map(ToString::to_string)
        .collect();
        if paused {
            a.push("-S".into());
        }
        a
    }

    fn vm(object: &str, paused: bool, seed: u8) -> sev_vmm::vm::Vm {
        let dir = tempfile::tempdir().unwrap();
        let config = VmConfig::from_qemu_args(&args(dir.path(), object, paused)).unwrap();
        let plan = MachinePlan::new(&config, Product::Genoa).unwrap();
        let fw = super::common::firmware(seed);
        let memory = GuestMemory::new(plan.layout).unwrap();
        let sp = sev_firmware::InProcess::shared(fw, memory.system_handle().unwrap());
        plan.launch(sev_vmm::host::Host::new(Box::new(sp), memory))
            .unwrap()
    }

    #[test]
    fn sev_es_vm_waits_for_secrets_then_runs() {
        let mut vm = vm(
            "sev-guest,id=sev0,policy=0x5,cbitpos=51,reduced-phys-bits=1",
            true,
            11,
        );
        assert_eq!(
            (vm.sev_state(), vm.run_state()),
            (SevState::LaunchSecret, RunState::Prelaunch)
        );
        assert_eq!(vm.launch_measure().unwrap().len(), 64, "base64 of 48 bytes");
        // A packet for another measurement: the firmware's BAD_MEASUREMENT.
        let header = base64_of(&[0u8; 0x34]);
        let err = vm
            .inject_launch_secret(&header, &base64_of(&[0u8; 32]), None)
            .unwrap_err();
        assert!(err.desc.contains("BAD_MEASUREMENT"), "{err}");
        // QEMU decodes both with g_base64_decode, which skips what is not
        // base64: wrapped, indented text reaches the firmware alike.
        let err = vm
            .inject_launch_secret(&wrapped(&header), &wrapped(&base64_of(&[0u8; 32])), None)
            .unwrap_err();
        assert!(err.desc.contains("BAD_MEASUREMENT"), "{err}");
        // Only text with nothing to decode is refused, with QEMU's message.
        let err = vm.inject_launch_secret("!!!", "AA==", None).unwrap_err();
        assert_eq!(err.desc, "SEV: Failed to decode sequence header");
        let err = vm.inject_launch_secret(&header, "AAA", None).unwrap_err();
        assert_eq!(err.desc, "SEV: Failed to decode data");
        // "not base64!" has nine base64 characters: six bytes for QEMU.
        let err = vm
            .inject_launch_secret("not base64!", "AA==", None)
            .unwrap_err();
        assert_ne!(err.desc, "SEV: Failed to decode sequence header");
        assert!(
            vm.guest_report([0; 64], None).is_err(),
            "SEV-ES guests make no SNP requests"
        );
        let info = hmp(&mut vm, "info sev").unwrap();
        assert!(
            info.contains("state: launch-secret\r\n") && info.contains("debug: off\r\n"),
            "{info}"
        );
        assert_eq!(
            hmp(&mut vm, "frobnicate 1").unwrap(),
            "unknown command: 'frobnicate'\r\n"
        );
        // A huge command name is quoted as an excerpt.
        let huge = "f".repeat(1 << 20);
        assert_eq!(
            hmp(&mut vm, &huge).unwrap(),
            format!(
                "unknown command: '{}…'\r\n",
                &huge[..sev_os::EXCERPT_CHARS - 1]
            )
        );
        vm.cont().unwrap();
        assert_eq!(
            (vm.sev_state(), vm.run_state()),
            (SevState::Running, RunState::Running)
        );
        let err = vm.inject_launch_secret(&header, "AA==", None).unwrap_err();
        assert_eq!(err.desc, "SEV: Not in correct state. (LSECRET) 3");
        vm.stop();
        assert_eq!(vm.run_state(), RunState::Paused);
        vm.cont().unwrap();
        assert_eq!(vm.run_state(), RunState::Running);
        // The measurement stays available once running, as in QEMU.
        assert!(vm.launch_measure().is_ok());
        let report = vm.attestation_report(&base64_of(&[7u8; 16])).unwrap();
        assert!(!report.is_empty());
        assert_eq!(
            vm.attestation_report(&base64_of(&[7u8; 15]))
                .unwrap_err()
                .desc,
            "SEV: mnonce must be 16 bytes (got 15)"
        );
        // The mnonce is g_base64_decode'd too: no decode error of its own.
        let report = vm
            .attestation_report(&wrapped(&base64_of(&[7u8; 16])))
            .unwrap();
        assert!(!report.is_empty());
        assert_eq!(
            vm.attestation_report("not base64!").unwrap_err().desc,
            "SEV: mnonce must be 16 bytes (got 6)"
        );
    }

    /// `text` broken into CRLF-terminated lines of 16 characters, each
    /// indented by a tab.
    fn wrapped(text: &str) -> String {
        let mut out = String::new();
        for line in text.as_bytes().chunks(16) {
            out.push('\t');
            out.push_str(std::str::from_utf8(line).unwrap());
            out.push_str("\r\n");
        }
        out
    }

    #[test]
    fn snp_vm_finishes_at_cont_and_its_guest_gets_a_report() {
        let mut vm = vm(
            "sev-snp-guest,id=sev0,cbitpos=51,reduced-phys-bits=1",
            true,
            12,
        );
        assert_eq!(vm.sev_state(), SevState::LaunchUpdate);
        assert_eq!(
            vm.launch_measure().unwrap_err().desc,
            "SEV launch measurement is not available"
        );
        assert!(vm.launch_log().is_err(), "not before the launch finishes");
        assert!(vm.guest_report([0; 64], None).is_err(), "not before cont");
        vm.cont().unwrap();
        assert_eq!(vm.sev_state(), SevState::Running);
        let got = vm.guest_report([9; 64], Some(1)).unwrap();
        assert_eq!(got.report.len(), 1184);
        assert_eq!(got.report[0x50..0x90], [9u8; 64]);
        assert_eq!(got.certs, vec![0u8; 24], "no certs-path: the empty table");
        assert_eq!(got.pages_offered, vec![1]);
        let log = vm.launch_log().unwrap();
        assert_eq!(log.final_digest().unwrap(), &got.report[0x90..0xC0]);
        assert!(vm.attestation_report(&base64_of(&[0u8; 16])).is_err());
    }

    /// The simulated guest keeps its message sequence numbers for the
    /// guest's life (as the sev-guest driver does): report after report
    /// works, on this VM and on another, each report fresh.
    #[test]
    fn a_guest_asks_for_a_hundred_reports_in_a_row() {
        for seed in [13, 14] {
            let mut vm = vm(
                "sev-snp-guest,id=sev0,cbitpos=51,reduced-phys-bits=1",
                false,
                seed,
            );
            let mut seen = std::collections::BTreeSet::new();
            for i in 0..100u8 {
                let got = vm
                    .guest_report([i; 64], Some(1))
                    .unwrap_or_else(|e| panic!("VM {seed}, report {i}: {e}"));
                assert_eq!(got.report[0x50..0x90], [i; 64], "report {i}");
                // Every report is signed anew (the signature differs).
                assert!(seen.insert(got.report[0x2A0..].to_vec()), "report {i}");
            }
        }
    }

    #[test]
    fn plans_refuse_what_cannot_launch() {
        let dir = tempfile::tempdir().unwrap();
        let object = "sev-guest,id=sev0,cbitpos=51,reduced-phys-bits=1";
        let mut a = args(dir.path(), object, false);
        let bios = a.iter().position(|x| x == "-bios").unwrap();
        a[bios + 1] = dir.path().join("missing.fd").to_str().unwrap().into();
        let config = VmConfig::from_qemu_args(&a).unwrap();
        let err = MachinePlan::new(&config, Product::Genoa).unwrap_err();
        assert!(
            matches!(err, MachineError::Read { what: "-bios", .. }),
            "{err}"
        );
        let plain = VmConfig::from_qemu_args(&["-smp", "1"]).unwrap();
        let err = MachinePlan::new(&plain, Product::Genoa).unwrap_err();
        assert!(
            err.to_string().contains("confidential-guest-support"),
            "{err}"
        );
        // SNP on a product without it (Rome): QEMU's KVM check, before any command.
        let snp = VmConfig::from_qemu_args(&args(
            dir.path(),
            "sev-snp-guest,id=sev0,cbitpos=47,reduced-phys-bits=1",
            false,
        ))
        .unwrap();
        assert!(MachinePlan::new(&snp, Product::Rome).is_err());
        // A session file that is not base64.
        std::fs::write(dir.path().join("s.b64"), "@@@").unwrap();
        let with_session = format!(
            "{object},session-file={},dh-cert-file={}",
            dir.path().join("s.b64").display(),
            dir.path().join("s.b64").display()
        );
        let config = VmConfig::from_qemu_args(&args(dir.path(), &with_session, false)).unwrap();
        let err = MachinePlan::new(&config, Product::Genoa).unwrap_err();
        assert!(err.to_string().contains("not base64"), "{err}");
    }

    #[test]
    fn owner_files_are_read_with_glib_base64() {
        use sev_vmm::launch::OwnerSession;
        use sev_vmm::plan::PlannedGuest;
        let dir = tempfile::tempdir().unwrap();
        let cert: Vec<u8> = (0..2084u32).map(|i| (i * 7) as u8).collect();
        // Wrapped with CRLF and indented (what a strict decoder refuses
        // unless white space is stripped first), ...
        std::fs::write(dir.path().join("godh.b64"), wrapped(&base64_of(&cert))).unwrap();
        // ... and two base64 texts concatenated, the last with trailing bits
        // that are not zero: QEMU decodes each group on its own.
        std::fs::write(dir.path().join("session.b64"), "QUJD\nQQ==QR==\n").unwrap();
        let object = format!(
            "sev-guest,id=sev0,cbitpos=51,reduced-phys-bits=1,dh-cert-file={},session-file={}",
            dir.path().join("godh.b64").display(),
            dir.path().join("session.b64").display()
        );
        let config = VmConfig::from_qemu_args(&args(dir.path(), &object, false)).unwrap();
        let plan = MachinePlan::new(&config, Product::Genoa).unwrap();
        let PlannedGuest::Sev(spec) = plan.guest else {
            panic!("not sev-guest")
        };
        assert_eq!(
            spec.session,
            Some(OwnerSession {
                dh_cert: cert,
                session: b"ABCAA".to_vec(),
            })
        );
    }

    /// `x-sevkit-read-memory`'s backend: the firmware image's plaintext
    /// through the debug API where the policy allows it, the policy bit and
    /// the remedy where it does not, whole or not at all.
    #[test]
    fn read_memory_decrypts_where_the_policy_allows_and_names_the_bit_where_not() {
        use sev_vmm::monitor::backend::read_memory;
        use sev_vmm::monitor::qmp::MAX_READ_MEMORY;

        let image = sev_vmm::machine::demo_image::demo_image();
        let base = (1u64 << 32) - image.len() as u64;
        for (object, seed, allowed, bit) in [
            ("sev-guest,id=sev0,policy=0x0", 21, true, "NODBG"),
            (
                "sev-guest,id=sev0,policy=0x1",
                22,
                false,
                "NODBG (policy bit 0) is set",
            ),
            ("sev-snp-guest,id=sev0,policy=0xb0000", 23, true, "DEBUG"),
            (
                "sev-snp-guest,id=sev0,policy=0x30000",
                24,
                false,
                "DEBUG (policy bit 19) is clear",
            ),
        ] {
            let mut vm = vm(
                &format!("{object},cbitpos=51,reduced-phys-bits=1"),
                false,
                seed,
            );
            // Across a page boundary.
            let (gpa, len) = (base + 0x0FF0, 0x20usize);
            let got = read_memory(&mut vm, gpa, len as u64);
            if allowed {
                assert_eq!(got.unwrap(), image[0x0FF0..0x0FF0 + len], "{object}");
            } else {
                let err = got.unwrap_err().desc;
                assert!(
                    err.contains("POLICY_FAILURE") && err.contains(bit) && err.contains("relaunch"),
                    "{object}: {err}"
                );
            }
            let err = read_memory(&mut vm, 1 << 40, 16).unwrap_err().desc;
            assert!(err.contains("is not guest memory"), "{object}: {err}");
            let err = read_memory(&mut vm, base, MAX_READ_MEMORY + 1)
                .unwrap_err()
                .desc;
            assert!(err.contains("exceeds the limit of 1048576 bytes"), "{err}");
            assert_eq!(read_memory(&mut vm, base, 0).unwrap(), Vec::<u8>::new());
        }
    }

    fn base64_of(bytes: &[u8]) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }
}

/// SNP guests leave their ASID dirty when they end (their connection to the
/// daemon closes: SNP_DECOMMISSION); the next launch gets SNP_ACTIVATE's
/// DF_FLUSH_REQUIRED and flushes with SNP_DF_FLUSH, so a daemon with four
/// SNP ASIDs launches any number of guests one after another.
#[test]
fn snp_launches_reuse_the_asids_of_ended_guests() {
    use sev_firmware_server::{Server, ServerConfig};
    use sev_vmm::machine::demo_image::demo_image;
    use sevkit_testkit::launch;

    let fw = sev_firmware::Firmware::open_with_chip(
        sev_firmware::FirmwareConfig {
            seed: Some([3; 32]),
            ..sev_firmware::FirmwareConfig::default()
        },
        common::chip(),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("fw.sock");
    let server = Server::bind(fw, &socket, ServerConfig::default()).unwrap();
    let stop = server.shutdown_handle();
    let thread = std::thread::spawn(move || server.run());
    let mut asids = Vec::new();
    for _ in 0..6 {
        let plan = launch::plan(&demo_image(), 1, launch::snp_guest(0x30000));
        let host = launch::through_daemon(&socket, launch::memory(&plan));
        let vm = plan.launch(host).unwrap();
        asids.push(vm.guest().asid());
        drop(vm);
        // The daemon ends the guest when the connection closes.
        let mut control = launch::through_daemon(&socket, launch::bare_memory());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while launch::platform_status(&mut control)
            .unwrap()
            .guest_count
            .get()
            != 0
        {
            assert!(
                std::time::Instant::now() < deadline,
                "the guest was not ended"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
    assert!(asids.iter().all(|&a| (1..=4).contains(&a)), "{asids:?}");
    stop.shutdown();
    thread.join().unwrap().unwrap();
}
