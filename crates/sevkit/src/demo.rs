//! `sevkit demo`: the whole protocol in one process, with nothing to
//! provide. sevkit plays the three parties — the guest owner, the host (the
//! VMM) and the AMD-SP (the software firmware) — for an SEV-ES guest and an
//! SEV-SNP guest booted from the built-in demo image, and prints who sends
//! what to whom, the predicted and actual measurements, the verdicts, and
//! the secret the guest receives.
//!
//! The chip is minted fresh (RSA-4096 ARK and ASK, seconds); its roots are
//! emulated (key ids `sevkitEM…`), so the owner trusts them explicitly here,
//! and says so. With real hardware the owner would pin AMD's roots instead.

use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use clap::Args;
use rand_core::{OsRng, RngCore};
use sev_abi::cert_table::{CertKind, CertTable};
use sev_abi::guid::Guid;
use sev_abi::legacy_cert::{SevCert, SEV_CERT_LEN};
use sev_abi::policy::{GuestPolicy, SnpPolicy};
use sev_abi::product::Product;
use sev_abi::report::AttestationReport;
use sev_attest::legacy::{verify_platform_chain, LegacyAnchor, PlatformChain};
use sev_attest::snp::{verify_report, ChainSource, ReportExpectations};
use sev_crypto::session::build_launch_session;
use sev_crypto::x509::X509Cert;
use sev_firmware::{Firmware, FirmwareConfig};
use sev_firmware::{InProcess, SharedFirmware};
use sev_firmware_server::StateLock;
use sev_measure::{check_launch_measure_blob, measure, FpuState, MeasureParams, Mode};
use sev_owner::secret::{build_secret_packet, SecretTable};
use sev_owner::session::pdh_public_key;
use sev_vmm::exits::certs::provider::CertsProvider;
use sev_vmm::host::Host;
use sev_vmm::launch::{OwnerSession, SevSpec, SnpSpec};
use sev_vmm::machine::demo_image::{demo_image, SECRET_AREA_GPA};
use sev_vmm::plan::{MachinePlan, PlannedGuest, StartedLaunch};
use zerocopy::IntoBytes;

use crate::input::{invalid, InputError};
use crate::number::number;
use crate::Status;

/// Arguments of `sevkit demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// vCPUs of each guest.
    #[arg(long, default_value_t = 2, value_parser = number::<u32>())]
    pub vcpus: u32,
}

/// The secret the owner releases to the SEV-ES guest.
const DEMO_SECRET_GUID: &str = "736b6576-6465-6d6f-2d73-656372657421";
const DEMO_SECRET: &[u8] = b"disk passphrase: correct horse battery staple";
const RAM: u64 = 256 << 20;

fn say(who: &str, what: impl AsRef<str>) {
    outln!("  {who:<16} {}", what.as_ref());
}

fn err(e: impl std::fmt::Display) -> InputError {
    invalid(e.to_string())
}

/// The machine of a demo guest: the image, [`RAM`], `vcpus` EPYC-v4 vCPUs.
fn plan(
    image: &[u8],
    vcpus: u32,
    product: Product,
    guest: PlannedGuest,
) -> Result<MachinePlan, InputError> {
    MachinePlan::for_image(image.to_vec(), RAM, vcpus, "EPYC-v4", product, guest).map_err(err)
}

/// The host of `plan`: its guest memory, shared with the demo's AMD-SP.
fn host_for(fw: &SharedFirmware, plan: &MachinePlan) -> Result<Host, InputError> {
    let memory = plan.memory().map_err(err)?;
    let sp = InProcess::shared(fw.clone(), memory.system_handle().map_err(err)?);
    Ok(Host::new(Box::new(sp), memory))
}

fn check(ok: bool) -> &'static str {
    if ok {
        "OK"
    } else {
        "MISMATCH"
    }
}

/// Runs the demo; `Failed` if any verification failed.
pub fn run(args: &DemoArgs) -> Result<Status, InputError> {
    if args.vcpus == 0 || args.vcpus > 64 {
        return Err(invalid(format!("--vcpus {}: expected 1 to 64", args.vcpus)));
    }
    let started = Instant::now();
    let image = demo_image();
    outln!("sevkit demo: guest owner, host and AMD-SP in one process");
    outln!(
        "  guest image: the built-in demo image ({} KiB, OVMF footer table and SEV metadata; it \
         does nothing if run)",
        image.len() / 1024
    );
    let product = Product::Genoa;
    let t = Instant::now();
    let (_cache_lock, fw, origin) = open_firmware(product)?;
    say(
        "[AMD-SP]",
        format!(
            "software AMD-SP up: {product:?}, chip with emulated AMD roots {origin} ({:.1} s)",
            t.elapsed().as_secs_f64()
        ),
    );
    let (ark, ask) = (fw.chip().ark().clone(), fw.chip().ask().clone());
    let fw: SharedFirmware = Arc::new(Mutex::new(fw));
    let mut ok = sev_es(&fw, &image, args.vcpus, product, (ark, ask))?;
    ok &= snp(&fw, &image, args.vcpus, product)?;
    outln!();
    outln!(
        "demo {} in {:.1} s",
        if ok { "succeeded" } else { "FAILED" },
        started.elapsed().as_secs_f64()
    );
    Ok(if ok { Status::Ok } else { Status::Failed })
}

/// The demo's AMD-SP: its chip (two RSA-4096 keys: seconds to mint) is
/// cached in `$XDG_CACHE_HOME/sevkit/demo-chip` (or `~/.cache/...`), so
/// later runs start at once; the cache is a state directory like any other
/// (created 0700, refused if group or others may write it, locked while the
/// demo runs). Without a usable cache it is minted in memory, and the
/// transcript says why. Its platform state is reset each run.
fn open_firmware(product: Product) -> Result<(Option<StateLock>, Firmware, String), InputError> {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".cache")))
        .map(|d| d.join("sevkit").join("demo-chip"));
    let mut not_cached = String::new();
    if let Some(dir) = cache {
        let existed = std::fs::symlink_metadata(dir.join("chip.sevfw")).is_ok();
        let opened = StateLock::create(&dir)
            .map_err(|e| e.to_string())
            .and_then(|lock| {
                Firmware::open(FirmwareConfig {
                    product,
                    state_dir: Some(dir.clone()),
                    ..FirmwareConfig::default()
                })
                .map(|fw| (lock, fw))
                .map_err(|e| e.to_string())
            });
        match opened {
            Ok((lock, fw)) => {
                let how = if existed {
                    "loaded from"
                } else {
                    "minted, cached in"
                };
                return Ok((Some(lock), fw, format!("{how} {}", dir.display())));
            }
            Err(e) => not_cached = format!(" (not cached: {e})"),
        }
    }
    let fw = Firmware::open(FirmwareConfig {
        product,
        ..FirmwareConfig::default()
    })
    .map_err(err)?;
    Ok((None, fw, format!("minted in memory{not_cached}")))
}

// A transcript reads best as one sequence of steps.
#[allow(clippy::too_many_lines)]
fn sev_es(
    fw: &SharedFirmware,
    image: &[u8],
    vcpus: u32,
    product: Product,
    (ark, ask): (sev_abi::amd_cert::AmdCert, sev_abi::amd_cert::AmdCert),
) -> Result<bool, InputError> {
    outln!();
    outln!("SEV-ES guest ({vcpus} vCPUs, policy 0x5: NODBG, ES)");
    let policy = GuestPolicy::from_raw(0x5);
    let sev = SevSpec {
        policy,
        handle: 0,
        session: None,
        legacy_vm_type: true,
    };
    let mut plan = plan(image, vcpus, product, PlannedGuest::Sev(sev.clone()))?;
    let mut host = host_for(fw, &plan)?;
    host.bring_up(false).map_err(err)?;
    let certs = host.platform_certificates().map_err(err)?;
    say(
        "host -> owner",
        "platform certificates: PDH, PEK, OCA, CEK (PDH_CERT_EXPORT)",
    );
    let cert = |bytes: &[u8]| SevCert::from_bytes(bytes).map_err(err);
    let pdh = cert(&certs.pdh)?;
    let chain = PlatformChain {
        pdh,
        pek: cert(&certs.chain[..SEV_CERT_LEN])?,
        oca: cert(&certs.chain[SEV_CERT_LEN..2 * SEV_CERT_LEN])?,
        cek: cert(&certs.chain[2 * SEV_CERT_LEN..])?,
    };
    let verdict = verify_platform_chain(&chain, &LegacyAnchor::Supplied { ask, ark });
    say(
        "[owner]",
        format!(
            "chain ARK -> ASK -> CEK -> PEK -> PDH and OCA -> PEK: {} (trusting this demo's emulated ARK)",
            check(verdict.passed())
        ),
    );
    let session = build_launch_session(&pdh_public_key(&pdh).map_err(err)?, policy, &mut OsRng)
        .map_err(err)?;
    say(
        "owner -> host",
        "policy 0x5, GODH certificate and session blob (TEK, TIK wrapped for the PDH)",
    );
    // The plan's guest, completed with the owner's session.
    plan.guest = PlannedGuest::Sev(SevSpec {
        session: Some(OwnerSession {
            dh_cert: session.godh_cert.as_bytes().to_vec(),
            session: session.session.as_bytes().to_vec(),
        }),
        ..sev
    });
    let vcpu_sig = plan.spec.vcpu_sig;
    let StartedLaunch::Sev(launch) = plan.start(host).map_err(err)? else {
        return Err(invalid("the demo's SEV-ES plan started another launch"));
    };
    say(
        "host -> AMD-SP",
        "LAUNCH_START, ACTIVATE, LAUNCH_UPDATE_DATA (the image, encrypted in place)",
    );
    let mut measured = launch.measure().map_err(err)?;
    say(
        "host -> AMD-SP",
        format!("LAUNCH_UPDATE_VMSA x{vcpus}, LAUNCH_MEASURE"),
    );
    let blob = measured.measure_blob();
    say(
        "host -> owner",
        format!("measurement {}", hex::encode(blob.measurement)),
    );
    say("", format!("mnonce      {}", hex::encode(blob.mnonce)));
    let mut p = MeasureParams::new(Mode::SevEs, image);
    p.vcpus = vcpus;
    p.vcpu_sig = vcpu_sig;
    p.fpu = FpuState::Legacy;
    let predicted = measure(&p).map_err(err)?;
    let digest = *predicted
        .digest
        .sev()
        .ok_or_else(|| invalid("sev-measure predicted no SEV launch digest"))?;
    say("[owner]", format!("predicted launch digest {digest}"));
    let platform = measured.platform();
    let good = check_launch_measure_blob(
        &session.tik,
        platform.api_major,
        platform.api_minor,
        platform.build,
        policy,
        &digest,
        &blob,
    );
    say(
        "[owner]",
        format!(
            "HMAC(0x04 || API {}.{} || BUILD {} || POLICY || DIGEST || MNONCE; TIK): {}",
            platform.api_major,
            platform.api_minor,
            platform.build,
            check(good)
        ),
    );
    if !good {
        say("[owner]", "measurement mismatch: no secret released");
        return Ok(false);
    }
    let mut table = SecretTable::new();
    table.push(
        Guid::parse(DEMO_SECRET_GUID).map_err(err)?,
        DEMO_SECRET.to_vec(),
    );
    let mut iv = [0u8; 16];
    OsRng.fill_bytes(&mut iv);
    let (header, payload) = build_secret_packet(
        &session.tek,
        &session.tik,
        &blob,
        &table.to_bytes().map_err(err)?,
        iv,
    )
    .map_err(err)?;
    say(
        "owner -> host",
        format!("secret packet: header + {} encrypted bytes", payload.len()),
    );
    measured
        .inject_secret(header.as_bytes(), &payload, None)
        .map_err(err)?;
    say(
        "host -> AMD-SP",
        format!("LAUNCH_SECRET into OVMF's secret area at {SECRET_AREA_GPA:#x}; LAUNCH_FINISH"),
    );
    let mut launched = measured.finish().map_err(err)?;
    let gpa = u64::from(SECRET_AREA_GPA);
    let len = payload.len();
    let mut host_view = vec![0u8; len];
    launched
        .host
        .memory()
        .host_read(gpa, &mut host_view)
        .map_err(err)?;
    let guest_view = launched
        .guest_actions
        .read(&mut launched.host, gpa, len)
        .map_err(err)?;
    let secrets = SecretTable::parse(&guest_view).map_err(err)?;
    let secret = secrets
        .get(&Guid::parse(DEMO_SECRET_GUID).map_err(err)?)
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .unwrap_or_default();
    say(
        "[host]",
        format!(
            "reads the secret area: {}... (ciphertext)",
            hex::encode(&host_view[..16])
        ),
    );
    say("[guest]", format!("reads its secret area: {secret:?}"));
    Ok(verdict.passed() && secret.as_bytes() == DEMO_SECRET)
}

#[allow(clippy::too_many_lines)]
fn snp(
    fw: &SharedFirmware,
    image: &[u8],
    vcpus: u32,
    product: Product,
) -> Result<bool, InputError> {
    outln!();
    outln!("SEV-SNP guest ({vcpus} vCPUs, policy 0x30000: SMT allowed, no debug)");
    let policy = SnpPolicy::from_raw(0x30000);
    let mut host_data = [0u8; 32];
    host_data[..17].copy_from_slice(b"sevkit demo guest");
    let snp = SnpSpec {
        policy,
        gosvw: [0; 16],
        id: None,
        vcek_disabled: false,
        host_data,
    };
    let plan = plan(
        image,
        vcpus,
        product,
        PlannedGuest::Snp(snp, CertsProvider::new(None)),
    )?;
    let vcpu_sig = plan.spec.vcpu_sig;
    let host = host_for(fw, &plan)?;
    let StartedLaunch::Snp(launch, _) = plan.start(host).map_err(err)? else {
        return Err(invalid("the demo's SNP plan started another launch"));
    };
    say(
        "host -> AMD-SP",
        "SNP_GCTX_CREATE, SNP_LAUNCH_START, SNP_ACTIVATE",
    );
    let mut launched = launch.finish().map_err(err)?;
    say(
        "host -> AMD-SP",
        format!(
            "SNP_LAUNCH_UPDATE: image, SEV metadata pages (zero, secrets, CPUID), {vcpus} VMSAs; SNP_LAUNCH_FINISH"
        ),
    );
    // The host's certificate file: the emulated KDS's chain for this chip.
    let table = {
        let fw = fw.lock().map_err(|_| invalid("firmware lock poisoned"))?;
        crate::firmware::snp_host_certs(&fw)?.table
    };
    let dir = crate::output::scratch_dir("sevkit-demo")?;
    let certs_path = dir.join("certs.bin");
    sev_vmm::exits::certs::writer::replace_certs_file(&certs_path, &table).map_err(err)?;
    say(
        "[host]",
        format!(
            "certs-path {}: ARK, ASK, VCEK ({} bytes)",
            certs_path.display(),
            table.len()
        ),
    );

    let mut nonce = [0u8; 64];
    OsRng.fill_bytes(&mut nonce[..32]);
    say(
        "owner -> guest",
        format!("nonce {}", hex::encode(&nonce[..32])),
    );
    let got = launched.guest_actions.extended_report(
        &mut launched.host,
        &CertsProvider::new(Some(certs_path.clone())),
        nonce,
        Some(1),
    );
    let _ = std::fs::remove_dir_all(&dir);
    let got = got.map_err(err)?;
    say(
        "guest -> host",
        format!(
            "SNP_GET_EXT_REPORT with {} certificate page(s); the host answers it needs {}; the guest retries",
            got.pages_offered[0],
            got.pages_offered.last().copied().unwrap_or(0)
        ),
    );
    say(
        "host -> AMD-SP",
        "SNP_GUEST_REQUEST (MSG_REPORT_REQ, sealed with VMPCK0 from the secrets page)",
    );
    say(
        "guest -> owner",
        format!("report ({} bytes) and certificates", got.report.len()),
    );

    let mut p = MeasureParams::new(Mode::Snp, image);
    p.vcpus = vcpus;
    p.vcpu_sig = vcpu_sig;
    let predicted = *measure(&p)
        .map_err(err)?
        .digest
        .snp()
        .ok_or_else(|| invalid("sev-measure predicted no SNP launch digest"))?;
    say("[owner]", format!("predicted measurement {predicted}"));
    let certs = CertTable::from_bytes(&got.certs).map_err(err)?;
    let der = |kind: CertKind| {
        certs
            .get_kind(kind)
            .ok_or_else(|| invalid(format!("no {kind:?} in the certificate table")))
            .and_then(|d| X509Cert::from_der(d).map_err(err))
    };
    let source = ChainSource::Supplied {
        ask: der(CertKind::Ask)?,
        ark: der(CertKind::Ark)?,
    };
    let expect = ReportExpectations {
        measurement: Some(predicted),
        report_data: Some(nonce.to_vec()),
        host_data: Some(host_data.to_vec()),
        ..ReportExpectations::default()
    };
    let verdict = verify_report(
        &got.report,
        &der(CertKind::Vcek)?,
        &source,
        &expect,
        SystemTime::now(),
    )
    .map_err(err)?;
    let actual = AttestationReport::from_bytes(&got.report)
        .map_err(err)?
        .measurement;
    say("[owner]", format!("report measurement    {actual}"));
    for c in &verdict.checks {
        if let sev_attest::Outcome::Fail(why) = &c.outcome {
            say("[owner]", format!("FAILED {}: {why}", c.name));
        }
    }
    say(
        "[owner]",
        format!(
            "report signed by the VCEK, chain VCEK -> ASK -> ARK (emulated), measurement, nonce, host data: {}",
            check(verdict.passed())
        ),
    );
    Ok(verdict.passed() && actual == predicted)
}
