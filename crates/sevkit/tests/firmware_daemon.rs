//! `sevkit firmware serve|init|status|export` as a process: full SEV and
//! SEV-ES launches through the daemon, SIGKILL crash safety of the
//! identity, 64 concurrent VMs, resource limits, SIGTERM, bad frames.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use sev_abi::commands::{PlatformStatusBuffer, SevCommand};
use sev_abi::legacy_cert::SevCert;
use sev_abi::status::FirmwareStatus;
use sev_attest::legacy::{verify_platform_chain, LegacyAnchor, PlatformChain};
use sev_firmware::{Firmware, FirmwareConfig};
use sev_firmware_server::protocol::{self, ErrorCode, Frame, Hello};
use sev_firmware_server::ExportedIdentity;
use sev_sp::{call, AmdSp, SpError};
use sev_vmm::host::{Host, HostError};
use sev_vmm::machine::demo_image::demo_image;
use sev_vmm::plan::StartedLaunch;
use sev_vmm::GuestMemory;
use sevkit_testkit::launch;
use zerocopy::FromZeros;

mod common;

use common::{chip_file, Daemon, CHIP_FILE, SEVKIT, TIMEOUT};

const PLATFORM_FILE: &str = "platform.sevfw";

/// A state directory holding the shared chip and, after `init`, a platform.
fn state_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(chip_file(), dir.path().join(CHIP_FILE)).unwrap();
    dir
}

fn sevkit(args: &[&str], paths: &[&Path]) -> std::process::Output {
    let mut cmd = Command::new(SEVKIT);
    cmd.args(args);
    for p in paths {
        cmd.arg(p);
    }
    cmd.output().unwrap()
}

fn init(state: &Path) {
    let out = sevkit(&["firmware", "init", "--state"], &[state]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn export(state: &Path, out_dir: &Path) -> ExportedIdentity {
    let out = Command::new(SEVKIT)
        .args(["firmware", "export", "--state"])
        .arg(state)
        .arg("--out")
        .arg(out_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    ExportedIdentity::read_from(out_dir).unwrap()
}

fn chain_verifies(id: &ExportedIdentity) -> bool {
    let chain = PlatformChain {
        pdh: id.pdh,
        pek: id.pek,
        oca: id.oca,
        cek: id.cek,
    };
    let anchor = LegacyAnchor::Supplied {
        ask: id.ask.clone(),
        ark: id.ark.clone(),
    };
    verify_platform_chain(&chain, &anchor).passed()
}

/// Guest memory for a connection (as the VMM lays it out for the
/// launches' machine: the demo image or the OVMF, 128 MiB of RAM).
fn memory(image: &[u8]) -> GuestMemory {
    launch::memory(&launch::plan(image, 1, launch::sev_guest(0)))
}

/// Connects to the daemon with fresh guest memory for `image`'s machine.
fn connect(daemon: &mut Daemon, image: &[u8]) -> Host {
    let memory = memory(image);
    let client = daemon.connect(memory.system());
    Host::new(Box::new(client), memory)
}

/// A VMM's and a guest owner's full launch of `image` on `host` (SEV or,
/// with `policy` 0x4, SEV-ES on `vcpus` vCPUs): the owner's session for
/// `pdh` from `seed`, the launch through the VMM, the owner's check of the
/// measurement against its prediction, a secret, LAUNCH_FINISH. Returns
/// the measurement and the host for the next launch.
fn full_launch(
    host: Host,
    pdh: &SevCert,
    seed: u64,
    policy: u32,
    image: &[u8],
    vcpus: u32,
) -> ([u8; 32], Host) {
    let mut owner_seed = [0u8; 32];
    ChaCha20Rng::seed_from_u64(seed).fill_bytes(&mut owner_seed);
    let (launched, outcome) =
        launch::owner_launch(host, image, vcpus, policy, pdh, owner_seed, &[0x5A; 32]);
    (outcome.measurement, launched.host)
}

fn platform_status(sp: &mut (dyn AmdSp + Send)) -> PlatformStatusBuffer {
    let mut s = PlatformStatusBuffer::new_zeroed();
    assert_eq!(
        call(sp, SevCommand::PlatformStatus, &mut s).unwrap(),
        FirmwareStatus::SUCCESS
    );
    s
}

#[test]
#[cfg_attr(
    not(sevkit_vectors),
    ignore = "needs shared/vectors (set SEVKIT_VECTORS)"
)]
fn full_sev_and_sev_es_launch_in_process_and_through_the_daemon() {
    let ovmf = std::fs::read(Path::new(env!("SEVKIT_VECTORS_DIR")).join("firmware/OVMF.amdsev.fd"))
        .unwrap();

    let state = state_dir();
    init(state.path());
    let out = tempfile::tempdir().unwrap();
    let identity = export(state.path(), out.path());
    assert!(chain_verifies(&identity));

    // In-process, on a copy of the state directory.
    let copy = tempfile::tempdir().unwrap();
    for f in [CHIP_FILE, PLATFORM_FILE] {
        std::fs::copy(state.path().join(f), copy.path().join(f)).unwrap();
    }
    let fw = Firmware::open(FirmwareConfig {
        state_dir: Some(copy.path().to_owned()),
        ..FirmwareConfig::default()
    })
    .unwrap();
    let mut local = launch::in_process_owned(fw, memory(&ovmf));
    local.bring_up(false).unwrap();
    let (pdh, _) = launch::pdh_and_chain(&mut local).unwrap();
    assert_eq!(pdh, identity.pdh);
    let (_, local) = full_launch(local, &pdh, 1, 0x1, &ovmf, 1);
    full_launch(local, &pdh, 2, 0x5, &ovmf, 4);

    // Through the daemon.
    let mut daemon = Daemon::start(state.path(), &[]);
    let mut client = connect(&mut daemon, &ovmf);
    client.bring_up(false).unwrap();
    let (pdh, chain) = launch::pdh_and_chain(&mut client).unwrap();
    assert_eq!(pdh, identity.pdh, "the daemon serves the exported identity");
    assert_eq!(chain, [identity.pek, identity.oca, identity.cek]);
    let (_, client) = full_launch(client, &pdh, 3, 0x1, &ovmf, 1);
    let (_, mut client) = full_launch(client, &pdh, 4, 0x5, &ovmf, 4);
    assert_eq!(platform_status(client.sp()).guest_count.get(), 2);
}

/// Kills the daemon with SIGKILL at random moments while a client rotates
/// the identity (PEK_GEN, PDH_GEN: each rewrites the platform state file),
/// 200 times. After each kill the state file must be intact, the restarted
/// daemon must load it (not refuse it), and what it serves must be the
/// identity the client last saw acknowledged, or the one in flight when the
/// kill came, never an older one, with a chain that verifies.
#[test]
#[allow(clippy::too_many_lines)] // one loop, step by step
fn identity_survives_sigkill_during_writes() {
    use sev_firmware::store::{self, StateKind};
    const ITERATIONS: usize = 200;
    let started = Instant::now();
    let state = state_dir();
    init(state.path());
    let out = tempfile::tempdir().unwrap();
    let root = export(state.path(), out.path());
    assert!(chain_verifies(&root));
    let chip_bytes = std::fs::read(state.path().join(CHIP_FILE)).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(0x5EC0_4B17);
    let mut last_acked = root.pdh;
    let mut seen: Vec<SevCert> = vec![root.pdh];
    let mut in_flight = false;
    let (mut in_flight_kills, mut rotations, mut replaced) = (0usize, 0usize, 0usize);
    // How long one rotation (key generation, state write, export) takes on
    // this machine now: the kills land at random points of three of them (a
    // fresh daemon's first is slower), so a busy machine (slower rotations)
    // sees about as many as an idle one.
    let image = demo_image();
    let window = {
        let mut daemon = Daemon::start(state.path(), &[]);
        let mut client = connect(&mut daemon, &image);
        client.bring_up(false).unwrap();
        let mut times: Vec<Duration> = (0..3)
            .map(|_| {
                let t = Instant::now();
                assert_eq!(
                    client
                        .sp()
                        .execute(SevCommand::PdhGen.id(), &mut [])
                        .unwrap(),
                    FirmwareStatus::SUCCESS
                );
                let (pdh, _) = launch::pdh_and_chain(&mut client).unwrap();
                seen.push(pdh);
                last_acked = pdh;
                t.elapsed()
            })
            .collect();
        times.sort();
        daemon.signal(rustix::process::Signal::TERM);
        daemon.wait(Duration::from_secs(10));
        (times[1] * 3).clamp(Duration::from_millis(20), Duration::from_millis(400))
    };
    let calibration = seen.len() - 1;
    for iteration in 0..=ITERATIONS {
        // Restart: the daemon loads what the kill left.
        let mut daemon = Daemon::start(state.path(), &[]);
        let mut client = connect(&mut daemon, &image);
        client.bring_up(false).unwrap();
        let (pdh, [pek, oca, cek]) = launch::pdh_and_chain(&mut client).unwrap();
        let served = ExportedIdentity {
            pdh,
            pek,
            oca,
            cek,
            ask: root.ask.clone(),
            ark: root.ark.clone(),
        };
        assert!(chain_verifies(&served), "iteration {iteration}: chain");
        if pdh != last_acked {
            // Only the rotation in flight may have replaced it, and never
            // by an older identity.
            assert!(
                in_flight,
                "iteration {iteration}: acknowledged identity lost"
            );
            assert!(
                !seen.contains(&pdh),
                "iteration {iteration}: an old identity came back"
            );
            seen.push(pdh);
            last_acked = pdh;
            replaced += 1;
        }
        if iteration == ITERATIONS {
            break;
        }

        let stop = Arc::new(AtomicBool::new(false));
        // (last acknowledged PDH, a rotation sent and not yet acknowledged)
        let progress = Arc::new(Mutex::new((last_acked, false)));
        let worker = {
            let (stop, progress) = (Arc::clone(&stop), Arc::clone(&progress));
            std::thread::spawn(move || {
                let mut n = 0usize;
                while !stop.load(Ordering::SeqCst) {
                    let cmd = if n.is_multiple_of(2) {
                        SevCommand::PekGen
                    } else {
                        SevCommand::PdhGen
                    };
                    progress.lock().unwrap().1 = true;
                    match client.sp().execute(cmd.id(), &mut []) {
                        Ok(FirmwareStatus::SUCCESS) => n += 1,
                        Ok(status) => panic!("{} -> {status:?}", cmd.name()),
                        Err(_) => break, // killed
                    }
                    match launch::pdh_and_chain(&mut client) {
                        Ok((pdh, _)) => *progress.lock().unwrap() = (pdh, false),
                        Err(_) => break,
                    }
                }
                n
            })
        };
        let window_us = u32::try_from(window.as_micros()).unwrap_or(u32::MAX);
        let delay = rng.next_u32() % window_us;
        std::thread::sleep(Duration::from_micros(u64::from(delay)));
        daemon.signal(rustix::process::Signal::KILL);
        daemon.wait(Duration::from_secs(10));
        stop.store(true, Ordering::SeqCst);
        rotations += worker.join().unwrap();
        let (acked, pending) = *progress.lock().unwrap();
        if acked != last_acked {
            seen.push(acked);
            last_acked = acked;
        }
        in_flight = pending;
        in_flight_kills += usize::from(pending);

        // The chip never changes; the platform file is whole.
        assert_eq!(
            std::fs::read(state.path().join(CHIP_FILE)).unwrap(),
            chip_bytes
        );
        let dir = sev_os::PrivateDir::open(state.path()).unwrap();
        match store::load(&dir, StateKind::Platform) {
            Ok(Some(_)) => {}
            Ok(None) => panic!("iteration {iteration}: platform state lost"),
            Err(e) => panic!("iteration {iteration}: platform state torn: {e}"),
        }
        // Now and then, through the CLI as a user would.
        if iteration % 50 == 49 {
            let out = tempfile::tempdir().unwrap();
            let id = export(state.path(), out.path());
            let verify = Command::new(SEVKIT)
                .args(["verify", "sev-chain"])
                .args([
                    "--pdh", "pdh.cert", "--pek", "pek.cert", "--oca", "oca.cert",
                ])
                .args([
                    "--cek", "cek.cert", "--ask", "ask.cert", "--ark", "ark.cert",
                ])
                .current_dir(out.path())
                .output()
                .unwrap();
            assert!(
                verify.status.success(),
                "{}",
                String::from_utf8_lossy(&verify.stdout)
            );
            assert!(id.pdh == last_acked || in_flight);
        }
    }
    eprintln!(
        "{ITERATIONS} SIGKILLs in {:.1} s: {rotations} acknowledged rotations, {in_flight_kills} \
         kills with a rotation in flight, {replaced} of which had already replaced the identity",
        started.elapsed().as_secs_f64()
    );
    // The identity really changed many times over the run, and most kills
    // landed while a rotation (key generation and state write) was running.
    assert!(
        seen.len() - calibration > 10,
        "only {} identities over the run",
        seen.len() - calibration
    );
    assert!(
        in_flight_kills > ITERATIONS / 2,
        "most kills should land inside a rotation"
    );
}

#[test]
fn sixty_four_vms_launch_concurrently_through_one_daemon() {
    const VMS: u32 = 64;
    let state = state_dir();
    init(state.path());
    // ASIDs 1..=8 for SEV-ES guests, 9..=80 for SEV guests.
    let mut daemon = Daemon::start(
        state.path(),
        &[
            "--max-guests",
            "64",
            "--max-asid",
            "80",
            "--min-sev-asid",
            "9",
        ],
    );
    let image = demo_image();
    let mut control = connect(&mut daemon, &image);
    control.bring_up(false).unwrap();
    let (pdh, _) = launch::pdh_and_chain(&mut control).unwrap();
    let socket = daemon.socket.clone();
    let started = Instant::now();
    let threads: Vec<_> = (0..VMS)
        .map(|i| {
            let (socket, image) = (socket.clone(), image.clone());
            std::thread::spawn(move || {
                let es = i % 8 == 0;
                let host = launch::through_daemon(&socket, memory(&image));
                let policy = if es { 0x5 } else { 0x1 };
                full_launch(host, &pdh, u64::from(i), policy, &image, 1).1
            })
        })
        .collect();
    let clients: Vec<Host> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let elapsed = started.elapsed();
    assert_eq!(platform_status(control.sp()).guest_count.get(), VMS);
    eprintln!(
        "{VMS} concurrent launches in {:.2} s",
        elapsed.as_secs_f64()
    );
    drop(clients);
    let deadline = Instant::now() + Duration::from_secs(30);
    while platform_status(control.sp()).guest_count.get() != 0 {
        assert!(
            Instant::now() < deadline,
            "guests of closed connections not released"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn guest_and_asid_limits_answer_promptly() {
    let state = state_dir();
    init(state.path());
    // 4 guests at most; SEV ASIDs 5 and 6 only.
    let mut daemon = Daemon::start(
        state.path(),
        &[
            "--max-guests",
            "4",
            "--max-asid",
            "6",
            "--min-sev-asid",
            "5",
        ],
    );
    let image = demo_image();
    let mut control = connect(&mut daemon, &image);
    control.bring_up(false).unwrap();
    let socket = daemon.socket.clone();
    let started = Instant::now();
    let results: Vec<_> = (0..8)
        .map(|_| {
            let (socket, image) = (socket.clone(), image.clone());
            std::thread::spawn(move || {
                let mut c = launch::through_daemon(&socket, memory(&image));
                (launch::launch_start(&mut c, 0), c)
            })
        })
        .map(|t| t.join().unwrap())
        .collect();
    let mut started_guests = Vec::new();
    let mut refused = 0;
    for (r, c) in results {
        match r {
            Ok(handle) => started_guests.push((handle, c)),
            Err(HostError::Firmware { status, .. }) => {
                assert_eq!(status, FirmwareStatus::RESOURCE_LIMIT);
                refused += 1;
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!((started_guests.len(), refused), (4, 4));
    // Two ASIDs for four guests: the third and fourth ACTIVATE are refused.
    let mut statuses = Vec::new();
    for (i, (handle, c)) in started_guests.iter_mut().enumerate() {
        let asid = [5, 6, 7, 5][i];
        statuses.push(match launch::activate(c, *handle, asid) {
            Ok(()) => FirmwareStatus::SUCCESS,
            Err(HostError::Firmware { status, .. }) => status,
            Err(e) => panic!("{e}"),
        });
    }
    assert_eq!(
        statuses,
        [
            FirmwareStatus::SUCCESS,
            FirmwareStatus::SUCCESS,
            FirmwareStatus::INVALID_ASID,
            FirmwareStatus::ASID_OWNED
        ]
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "limits must not hang"
    );
}

#[test]
fn sigterm_stops_gracefully_and_keeps_the_state() {
    let state = state_dir();
    init(state.path());
    let before = std::fs::read(state.path().join(PLATFORM_FILE)).unwrap();
    let mut daemon = Daemon::start(state.path(), &[]);
    let image = demo_image();
    let client = connect(&mut daemon, &image);
    let StartedLaunch::Sev(mut guest) = launch::plan(&image, 1, launch::sev_guest(0))
        .start(client)
        .unwrap()
    else {
        panic!("an SEV plan started an SNP launch")
    };

    // The state directory is locked while the daemon runs.
    let out = tempfile::tempdir().unwrap();
    let busy = Command::new(SEVKIT)
        .args(["firmware", "export", "--state"])
        .arg(state.path())
        .arg("--out")
        .arg(out.path())
        .output()
        .unwrap();
    assert_eq!(busy.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&busy.stderr).contains("in use"));
    // status works through the socket.
    let status = sevkit(
        &["firmware", "status", "--json", "--socket"],
        &[&daemon.socket],
    );
    assert!(status.status.success());
    let json: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(json["state"], "WORKING");
    assert_eq!(json["guests"], 1);

    daemon.signal(rustix::process::Signal::TERM);
    let exit = daemon.wait(Duration::from_secs(20));
    assert!(exit.success(), "{exit}");
    assert!(!daemon.socket.exists(), "socket removed");
    assert!(matches!(
        launch::platform_status(guest.host()),
        Err(HostError::Seam(SpError::Closed | SpError::Io(_)))
    ));
    assert_eq!(
        std::fs::read(state.path().join(PLATFORM_FILE)).unwrap(),
        before
    );
    let id = export(state.path(), out.path());
    assert!(chain_verifies(&id));
}

#[test]
fn bad_frames_do_not_disturb_other_clients() {
    let state = state_dir();
    let mut daemon = Daemon::start(state.path(), &[]);
    let mut good = connect(&mut daemon, &demo_image());
    let expect_error = |bytes: &[u8]| {
        let mut s = UnixStream::connect(&daemon.socket).unwrap();
        s.set_read_timeout(TIMEOUT).unwrap();
        s.write_all(bytes).unwrap();
        let mut answer = Vec::new();
        let _ = s.read_to_end(&mut answer);
        match protocol::decode(&answer) {
            Ok((Frame::Error(e), _)) => ErrorCode::from_u32(e.code),
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(expect_error(&[0xA5; 100]), Some(ErrorCode::BadMagic));
    let mut long = protocol::encode(&Frame::Hello(Hello { memory_size: 0 }));
    long[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(expect_error(&long), Some(ErrorCode::TooLong));
    assert_eq!(
        expect_error(&protocol::encode(&Frame::Hello(Hello {
            memory_size: 1 << 20
        }))),
        Some(ErrorCode::MissingFd)
    );
    assert_eq!(platform_status(good.sp()).state, 0);
    assert!(
        daemon.child.try_wait().unwrap().is_none(),
        "daemon still serving"
    );
}
