//! The firmware seam end to end: one launch in-process and through the
//! server, connection isolation, bad frames, graceful shutdown.

mod common;

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::firmware;
use sev_abi::commands::{DbgBuffer, HandleBuffer, PlatformStatusBuffer, SevCommand};
use sev_abi::host_ops::{
    GuestAccessOp, GuestAttachOp, HostOp, GUEST_ACCESS_PRIVATE, GUEST_ATTACH_TAKEN, GUEST_TOKEN_LEN,
};
use sev_abi::status::FirmwareStatus;
use sev_firmware::FirmwareConfig;
use sev_firmware_server::protocol::{self, ErrorCode, Frame, Hello};
use sev_firmware_server::{Client, ServeSummary, Server, ServerConfig, ServerShutdownHandle};
use sev_sp::{call, AmdSp, FdMemory, SpError};
use sev_vmm::host::{Host, HostError};
use sev_vmm::machine::demo_image::{demo_image, DEMO_IMAGE_GPA};
use sev_vmm::machine::memory::host_area;
use sev_vmm::plan::StartedLaunch;
use sevkit_testkit::launch::{self, Outcome};
use zerocopy::little_endian::{U32, U64};
use zerocopy::FromZeros;

const TIMEOUT: Option<Duration> = Some(Duration::from_secs(30));

struct Running {
    _dir: tempfile::TempDir,
    socket: PathBuf,
    stop: ServerShutdownHandle,
    thread: Option<JoinHandle<ServeSummary>>,
}

impl Running {
    fn start(seed: u8, fw_config: FirmwareConfig) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("fw.sock");
        let server = Server::bind(
            firmware(seed, fw_config),
            &socket,
            ServerConfig {
                hello_timeout: Duration::from_millis(500),
                ..ServerConfig::default()
            },
        )
        .unwrap();
        let stop = server.shutdown_handle();
        let thread = std::thread::spawn(move || server.run().unwrap());
        Self {
            _dir: dir,
            socket,
            stop,
            thread: Some(thread),
        }
    }

    fn stop(mut self) -> ServeSummary {
        self.stop.shutdown();
        self.thread.take().unwrap().join().unwrap()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.shutdown();
    }
}

/// A host on the daemon at `socket`, with guest memory of its own.
fn connect(socket: &Path) -> Host {
    launch::through_daemon(socket, launch::bare_memory())
}

/// The machine of the launches: the built-in demo image as an SEV guest of
/// `policy`, two vCPUs.
fn sev_plan(policy: u32) -> sev_vmm::plan::MachinePlan {
    launch::plan(&demo_image(), 2, launch::sev_guest(policy))
}

/// An SEV guest (LAUNCH_START, ACTIVATE, the image's LAUNCH_UPDATE_DATA)
/// of `policy` on `host`, left in the update state.
fn started_sev(host: Host, policy: u32) -> sev_vmm::launch::SevLaunch<sev_vmm::launch::Updating> {
    match sev_plan(policy).start(host).unwrap() {
        StartedLaunch::Sev(launch) => launch,
        StartedLaunch::Snp(..) => panic!("an SEV plan started an SNP launch"),
    }
}

/// SEV (seed 7) then SEV-ES (seed 8, two vCPUs) launched by an owner on
/// `host`; the outcomes and what guest memory holds at the image.
fn both_launches(mut host: Host) -> (Outcome, Outcome, Vec<u8>) {
    let image = demo_image();
    host.bring_up(false).unwrap();
    let (pdh, _) = launch::pdh_and_chain(&mut host).unwrap();
    let (launched, sev) = launch::owner_launch(host, &image, 2, 0, &pdh, [7; 32], &[7; 64]);
    let (launched, es) =
        launch::owner_launch(launched.host, &image, 2, 0x4, &pdh, [8; 32], &[8; 64]);
    let memory = launched
        .host
        .memory()
        .system()
        .read_vec(DEMO_IMAGE_GPA, image.len())
        .unwrap();
    (sev, es, memory)
}

fn guest_count(sp: &mut dyn AmdSp) -> u32 {
    let mut s = PlatformStatusBuffer::new_zeroed();
    assert_eq!(
        call(sp, SevCommand::PlatformStatus, &mut s).unwrap(),
        FirmwareStatus::SUCCESS
    );
    s.guest_count.get()
}

#[test]
fn the_same_launch_in_process_and_through_the_server() {
    let img = demo_image();
    let memory = launch::memory(&sev_plan(0));
    let local = launch::in_process_owned(firmware(9, FirmwareConfig::default()), memory);
    let (sev_local, es_local, local_memory) = both_launches(local);

    let server = Running::start(9, FirmwareConfig::default());
    let client = launch::through_daemon(&server.socket, launch::memory(&sev_plan(0)));
    let (sev_remote, es_remote, remote_memory) = both_launches(client);

    // Seeded firmwares are deterministic: the seam changes nothing.
    assert_eq!(sev_local, sev_remote);
    assert_eq!(es_local, es_remote);
    // Guest memory holds the same ciphertext on both sides.
    assert_eq!(local_memory, remote_memory);
    assert_ne!(remote_memory[..64], img[..64]);
    let summary = server.stop();
    assert_eq!(summary.connections, 1);
    assert!(summary.commands > 20);
}

#[test]
fn guests_belong_to_their_connection() {
    let server = Running::start(10, FirmwareConfig::default());
    let mut a = connect(&server.socket);
    let mut host_b = connect(&server.socket);
    let b = host_b.sp();
    a.bring_up(false).unwrap();
    let handle = launch::launch_start(&mut a, 0).unwrap();
    assert_eq!(guest_count(b), 1);

    // B can neither finish, share nor decommission A's guest.
    let mut h = HandleBuffer {
        handle: U32::new(handle),
    };
    for cmd in [SevCommand::LaunchFinish, SevCommand::Decommission] {
        assert_eq!(call(b, cmd, &mut h).unwrap(), FirmwareStatus::INVALID_GUEST);
    }
    let mut share = sev_abi::commands::LaunchStartBuffer::new_zeroed();
    share.handle = U32::new(handle);
    assert_eq!(
        call(b, SevCommand::LaunchStart, &mut share).unwrap(),
        FirmwareStatus::INVALID_GUEST
    );
    // A handle naming no guest is the firmware's answer, the same status.
    h.handle = U32::new(999);
    assert_eq!(
        call(b, SevCommand::Decommission, &mut h).unwrap(),
        FirmwareStatus::INVALID_GUEST
    );
    launch::activate(&mut a, handle, 6).unwrap();

    // A goes away: its guest is deactivated and decommissioned.
    drop(a);
    let deadline = Instant::now() + Duration::from_secs(10);
    while guest_count(host_b.sp()) != 0 {
        assert!(Instant::now() < deadline, "A's guest was not released");
        std::thread::sleep(Duration::from_millis(5));
    }
    // Its ASID waits for DF_FLUSH, as on hardware.
    let h2 = launch::launch_start(&mut host_b, 0).unwrap();
    match launch::activate(&mut host_b, h2, 6) {
        Err(HostError::Firmware { status, .. }) => {
            assert_eq!(status, FirmwareStatus::DF_FLUSH_REQUIRED);
        }
        other => panic!("{other:?}"),
    }
    let mut none = [0u8; 0];
    assert_eq!(
        host_b
            .sp()
            .execute(SevCommand::DfFlush.id(), &mut none)
            .unwrap(),
        FirmwareStatus::SUCCESS
    );
    launch::activate(&mut host_b, h2, 6).unwrap();
}

/// Sends a host-instruction pseudo-command over `sp`.
fn host_op<T: zerocopy::IntoBytes + zerocopy::FromBytes>(
    sp: &mut dyn AmdSp,
    op: HostOp,
    buf: &mut T,
) -> FirmwareStatus {
    sp.execute(op.id(), buf.as_mut_bytes()).unwrap()
}

fn guest_access(
    sp: &mut dyn AmdSp,
    token: [u8; GUEST_TOKEN_LEN],
    spa: u64,
    dst: u64,
) -> (FirmwareStatus, u32) {
    let mut b = GuestAccessOp {
        token,
        spa: U64::new(spa),
        gpa: U64::new(spa),
        host_paddr: U64::new(dst),
        len: U32::new(32),
        flags: U32::new(GUEST_ACCESS_PRIVATE),
        ..GuestAccessOp::default()
    };
    let status = host_op(sp, HostOp::GuestAccess, &mut b);
    (status, b.rc.get())
}

/// Two connections to one daemon; A launches a guest with NODBG. Neither
/// B nor A's own host reaches its plaintext: B cannot name the guest at all
/// (INVALID_GUEST for DBG_DECRYPT, attach and guest access), A's
/// DBG_DECRYPT obeys the policy, and a guest access needs the guest's
/// principal, which only the first attach gets and which names nothing in
/// another connection's hands.
#[test]
fn a_nodbg_guest_is_private_to_its_principal_on_a_shared_daemon() {
    let server = Running::start(11, FirmwareConfig::default());
    let plan = sev_plan(0x1);
    let mut guest_a = started_sev(
        launch::through_daemon(&server.socket, launch::memory(&plan)),
        0x1,
    );
    let mut host_b = launch::through_daemon(&server.socket, launch::memory(&plan));
    let handle = guest_a.handle().handle;
    // The guest's own page, measured into it, and where the host reads.
    let (page, dst) = (0x1_0000, plan.layout.host(host_area::DEBUG_BOUNCE));
    let secret = *b"the guest's own secret, 32 bytes";
    let mut data = vec![0u8; 4096];
    data[..32].copy_from_slice(&secret);
    guest_a.update_data("secret", page, &data).unwrap();
    let a = guest_a.host();
    assert_ne!(a.memory().system().read_vec(page, 32).unwrap(), secret);
    let b = host_b.sp();

    // B: the guest does not exist for it.
    let mut dbg = DbgBuffer {
        handle: U32::new(handle),
        src_paddr: U64::new(page),
        dst_paddr: U64::new(dst),
        len: U32::new(32),
        ..DbgBuffer::new_zeroed()
    };
    assert_eq!(
        call(b, SevCommand::DbgDecrypt, &mut dbg).unwrap(),
        FirmwareStatus::INVALID_GUEST
    );
    let mut attach = GuestAttachOp {
        handle: U32::new(handle),
        ..GuestAttachOp::default()
    };
    assert_eq!(
        host_op(b, HostOp::GuestAttach, &mut attach),
        FirmwareStatus::INVALID_GUEST
    );
    assert_eq!(
        guest_access(b, [0; GUEST_TOKEN_LEN], page, dst).0,
        FirmwareStatus::INVALID_GUEST
    );
    // A's host: the policy says no, and there is no way around it.
    assert_eq!(
        call(a.sp(), SevCommand::DbgDecrypt, &mut dbg).unwrap(),
        FirmwareStatus::POLICY_FAILURE
    );
    assert_eq!(
        guest_access(a.sp(), [0; GUEST_TOKEN_LEN], page, dst).0,
        FirmwareStatus::INVALID_GUEST
    );
    // The guest's principal (attached once) sees its plaintext; B holding
    // the same token sees nothing.
    assert_eq!(
        host_op(a.sp(), HostOp::GuestAttach, &mut attach),
        FirmwareStatus::SUCCESS
    );
    assert_eq!(attach.rc.get(), 0);
    let token = attach.token;
    let mut again = GuestAttachOp {
        handle: U32::new(handle),
        ..GuestAttachOp::default()
    };
    assert_eq!(
        host_op(a.sp(), HostOp::GuestAttach, &mut again),
        FirmwareStatus::SUCCESS
    );
    assert_eq!(again.rc.get(), GUEST_ATTACH_TAKEN);
    assert_eq!(again.token, [0; GUEST_TOKEN_LEN]);
    assert_eq!(
        guest_access(b, token, page, dst).0,
        FirmwareStatus::INVALID_GUEST
    );
    assert_eq!(host_b.memory().system().read_vec(dst, 32).unwrap(), [0; 32]);
    assert_eq!(
        guest_access(a.sp(), token, page, dst),
        (FirmwareStatus::SUCCESS, 0)
    );
    assert_eq!(a.memory().system().read_vec(dst, 32).unwrap(), secret);
}

fn raw(socket: &Path) -> UnixStream {
    let s = UnixStream::connect(socket).unwrap();
    s.set_read_timeout(TIMEOUT).unwrap();
    s
}

/// Reads what the server says before closing: an ERROR frame's code.
fn error_code(mut s: UnixStream) -> Option<ErrorCode> {
    let mut bytes = Vec::new();
    let _ = s.read_to_end(&mut bytes);
    match protocol::decode(&bytes) {
        Ok((Frame::Error(e), _)) => ErrorCode::from_u32(e.code),
        other => panic!("expected an ERROR frame, got {other:?} from {bytes:?}"),
    }
}

#[test]
fn bad_frames_close_only_their_connection() {
    let server = Running::start(11, FirmwareConfig::default());
    let mut good_host = connect(&server.socket);
    let good = good_host.sp();

    // Garbage.
    let mut s = raw(&server.socket);
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert_eq!(error_code(s), Some(ErrorCode::BadMagic));

    // An oversized length.
    let mut s = raw(&server.socket);
    let mut frame = protocol::encode(&Frame::Hello(Hello { memory_size: 0 }));
    frame[8..12].copy_from_slice(&0x7FFF_FFFFu32.to_le_bytes());
    s.write_all(&frame).unwrap();
    assert_eq!(error_code(s), Some(ErrorCode::TooLong));

    // HELLO declaring memory without an fd.
    let mut s = raw(&server.socket);
    s.write_all(&protocol::encode(&Frame::Hello(Hello {
        memory_size: 4096,
    })))
    .unwrap();
    assert_eq!(error_code(s), Some(ErrorCode::MissingFd));

    // An fd smaller than declared.
    let small = FdMemory::memfd("small", 4096).unwrap();
    let err = Client::connect(&server.socket, Some((small.as_fd(), 1 << 20)), TIMEOUT).unwrap_err();
    assert!(
        matches!(err, SpError::Server { code, .. } if code == ErrorCode::BadMemory as u32),
        "{err}"
    );

    // A command before HELLO.
    let mut s = raw(&server.socket);
    s.write_all(&protocol::encode(&Frame::Command(protocol::Command {
        command: 4,
        buffer: vec![0; 12],
    })))
    .unwrap();
    assert_eq!(error_code(s), Some(ErrorCode::Unexpected));

    // Silence: the HELLO timeout closes it.
    let s = raw(&server.socket);
    assert_eq!(error_code(s), Some(ErrorCode::Timeout));

    // A valid client that then sends garbage after HELLO.
    let mem2 = launch::bare_memory();
    let c = Client::connect_with_memory(&server.socket, mem2.system(), TIMEOUT).unwrap();
    let mut s = c.stream().try_clone().unwrap();
    s.write_all(&[0xFF; 64]).unwrap();
    assert_eq!(error_code(s), Some(ErrorCode::BadMagic));

    // An over-long command buffer is refused before it is sent.
    let mut big = vec![0u8; 8192];
    assert!(matches!(
        good.execute(4, &mut big),
        Err(SpError::BufferTooLong { .. })
    ));
    // The good client was never disturbed.
    assert_eq!(guest_count(good), 0);
    let mut short = [0u8; 2];
    assert_eq!(
        good.execute(SevCommand::PlatformStatus.id(), &mut short)
            .unwrap(),
        FirmwareStatus::INVALID_PARAM
    );
    assert_eq!(
        good.execute(0xDEAD, &mut []).unwrap(),
        FirmwareStatus::INVALID_COMMAND
    );
    let summary = server.stop();
    assert!(summary.protocol_errors >= 6, "{summary:?}");
}

#[test]
fn shutdown_answers_in_flight_commands_and_removes_the_socket() {
    let server = Running::start(12, FirmwareConfig::default());
    let socket = server.socket.clone();
    let mut guest = started_sev(
        launch::through_daemon(&socket, launch::memory(&sev_plan(0))),
        0,
    );
    let big = vec![0x5Au8; 8 << 20];
    let stop = server.stop.clone();
    // A long command in flight when the shutdown comes.
    let worker = std::thread::spawn(move || {
        let r = guest.update_data("big", 0x10_0000, &big);
        (r.is_ok(), guest)
    });
    std::thread::sleep(Duration::from_millis(20));
    stop.shutdown();
    let summary = server.stop();
    let (ok, mut guest) = worker.join().unwrap();
    assert!(ok, "the command in flight got its answer");
    assert!(!socket.exists(), "socket removed");
    assert!(matches!(
        launch::platform_status(guest.host()),
        Err(HostError::Seam(SpError::Closed | SpError::Io(_)))
    ));
    assert_eq!(summary.connections, 1);
}

#[test]
fn the_socket_is_0600_and_only_a_stale_one_is_replaced() {
    use sev_firmware_server::ServerError;
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let server = Running::start(13, FirmwareConfig::default());
    let meta = std::fs::symlink_metadata(&server.socket).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.mode() & 0o777, 0o600);
    // Nothing but the socket was left next to it (no staging directory).
    let dir = server.socket.parent().unwrap();
    assert_eq!(std::fs::read_dir(dir).unwrap().count(), 1);
    // A live socket is refused.
    let err = Server::bind(
        firmware(14, FirmwareConfig::default()),
        &server.socket,
        ServerConfig::default(),
    )
    .unwrap_err();
    assert!(matches!(err, ServerError::InUse(_)), "{err}");
    // A file that is not a socket is refused and kept.
    let file = dir.join("file");
    std::fs::write(&file, b"keep").unwrap();
    let err = Server::bind(
        firmware(14, FirmwareConfig::default()),
        &file,
        ServerConfig::default(),
    )
    .unwrap_err();
    assert!(matches!(err, ServerError::NotASocket(_)), "{err}");
    assert_eq!(std::fs::read(&file).unwrap(), b"keep");
    // A stale socket is replaced.
    let stale = dir.join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    let server2 = Server::bind(
        firmware(14, FirmwareConfig::default()),
        &stale,
        ServerConfig::default(),
    )
    .unwrap();
    UnixStream::connect(&stale).unwrap();
    drop(server2);
    server.stop();
}
