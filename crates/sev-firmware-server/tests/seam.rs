//! The firmware seam end to end: one launch in-process and through the
//! server, connection isolation, bad frames, graceful shutdown.

mod common;

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{firmware, full_launch, image};
use sev_abi::commands::{DbgBuffer, HandleBuffer, PlatformStatusBuffer, SevCommand};
use sev_abi::host_ops::{
    GuestAccessOp, GuestAttachOp, HostOp, GUEST_ACCESS_PRIVATE, GUEST_ATTACH_TAKEN, GUEST_TOKEN_LEN,
};
use sev_abi::status::FirmwareStatus;
use sev_firmware::FirmwareConfig;
use sev_firmware::InProcess;
use sev_firmware_server::launch::{self, layout};
use sev_firmware_server::protocol::{self, ErrorCode, Frame, Hello};
use sev_firmware_server::{Client, ServeSummary, Server, ServerConfig, ServerShutdownHandle};
use sev_sp::{call, AmdSp, FdMemory, SpError, SystemMemory};
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

fn guest_memory(image_len: usize) -> (FdMemory, FdMemory) {
    let mem = FdMemory::memfd("guest", layout::memory_size(image_len as u64)).unwrap();
    let host = mem.try_clone().unwrap();
    (mem, host)
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
    let img = image(1, 256 << 10);
    let vmsas = vec![image(2, 4096), image(3, 4096)];

    let (mem, mut host) = guest_memory(img.len());
    let mut local = InProcess::new(firmware(9, FirmwareConfig::default()), mem);
    launch::ensure_init(&mut local, true).unwrap();
    let sev_local = full_launch(&mut local, &mut host, 7, 0, 5, &img, &[]);
    let es_local = full_launch(&mut local, &mut host, 8, 0x4, 1, &img, &vmsas);

    let server = Running::start(9, FirmwareConfig::default());
    let (mem, mut host) = guest_memory(img.len());
    let mut client = Client::connect_with_memory(&server.socket, &mem, TIMEOUT).unwrap();
    launch::ensure_init(&mut client, true).unwrap();
    let sev_remote = full_launch(&mut client, &mut host, 7, 0, 5, &img, &[]);
    let es_remote = full_launch(&mut client, &mut host, 8, 0x4, 1, &img, &vmsas);

    // Seeded firmwares are deterministic: the seam changes nothing.
    assert_eq!(sev_local, sev_remote);
    assert_eq!(es_local, es_remote);
    // Guest memory holds the same ciphertext on both sides.
    assert_eq!(
        local.memory().read_vec(layout::IMAGE, img.len()).unwrap(),
        host.read_vec(layout::IMAGE, img.len()).unwrap()
    );
    assert_ne!(host.read_vec(layout::IMAGE, 64).unwrap(), img[..64]);
    drop(client);
    let summary = server.stop();
    assert_eq!(summary.connections, 1);
    assert!(summary.commands > 20);
}

#[test]
fn guests_belong_to_their_connection() {
    let server = Running::start(10, FirmwareConfig::default());
    let (mem_a, mut host_a) = guest_memory(4096);
    let (mem_b, _) = guest_memory(4096);
    let mut a = Client::connect_with_memory(&server.socket, &mem_a, TIMEOUT).unwrap();
    let mut b = Client::connect_with_memory(&server.socket, &mem_b, TIMEOUT).unwrap();
    launch::ensure_init(&mut a, false).unwrap();
    let handle = launch::launch_start(&mut a, &mut host_a, 0, None).unwrap();
    assert_eq!(guest_count(&mut b), 1);

    // B can neither finish, share nor decommission A's guest.
    let mut h = HandleBuffer {
        handle: U32::new(handle),
    };
    for cmd in [SevCommand::LaunchFinish, SevCommand::Decommission] {
        assert_eq!(
            call(&mut b, cmd, &mut h).unwrap(),
            FirmwareStatus::INVALID_GUEST
        );
    }
    let mut share = sev_abi::commands::LaunchStartBuffer::new_zeroed();
    share.handle = U32::new(handle);
    assert_eq!(
        call(&mut b, SevCommand::LaunchStart, &mut share).unwrap(),
        FirmwareStatus::INVALID_GUEST
    );
    // A handle naming no guest is the firmware's answer, the same status.
    h.handle = U32::new(999);
    assert_eq!(
        call(&mut b, SevCommand::Decommission, &mut h).unwrap(),
        FirmwareStatus::INVALID_GUEST
    );
    launch::activate(&mut a, handle, 6).unwrap();

    // A goes away: its guest is deactivated and decommissioned.
    drop(a);
    let deadline = Instant::now() + Duration::from_secs(10);
    while guest_count(&mut b) != 0 {
        assert!(Instant::now() < deadline, "A's guest was not released");
        std::thread::sleep(Duration::from_millis(5));
    }
    // Its ASID waits for DF_FLUSH, as on hardware.
    let mut host_b = mem_b.try_clone().unwrap();
    let h2 = launch::launch_start(&mut b, &mut host_b, 0, None).unwrap();
    match launch::activate(&mut b, h2, 6) {
        Err(launch::LaunchError::Firmware { status, .. }) => {
            assert_eq!(status, FirmwareStatus::DF_FLUSH_REQUIRED);
        }
        other => panic!("{other:?}"),
    }
    let mut none = [0u8; 0];
    assert_eq!(
        b.execute(SevCommand::DfFlush.id(), &mut none).unwrap(),
        FirmwareStatus::SUCCESS
    );
    launch::activate(&mut b, h2, 6).unwrap();
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
    let (mem_a, mut host_a) = guest_memory(4096);
    let (mem_b, host_b) = guest_memory(4096);
    let mut a = Client::connect_with_memory(&server.socket, &mem_a, TIMEOUT).unwrap();
    let mut b = Client::connect_with_memory(&server.socket, &mem_b, TIMEOUT).unwrap();
    launch::ensure_init(&mut a, false).unwrap();
    let handle = launch::launch_start(&mut a, &mut host_a, 0x1, None).unwrap();
    launch::activate(&mut a, handle, 6).unwrap();
    let secret = *b"the guest's own secret, 32 bytes";
    host_a.write(layout::IMAGE, &secret).unwrap();
    launch::update_data(&mut a, handle, layout::IMAGE, 4096).unwrap();
    assert_ne!(host_a.read_vec(layout::IMAGE, 32).unwrap(), secret);

    // B: the guest does not exist for it.
    let mut dbg = DbgBuffer {
        handle: U32::new(handle),
        src_paddr: U64::new(layout::IMAGE),
        dst_paddr: U64::new(layout::SECRET_DST),
        len: U32::new(32),
        ..DbgBuffer::new_zeroed()
    };
    assert_eq!(
        call(&mut b, SevCommand::DbgDecrypt, &mut dbg).unwrap(),
        FirmwareStatus::INVALID_GUEST
    );
    let mut attach = GuestAttachOp {
        handle: U32::new(handle),
        ..GuestAttachOp::default()
    };
    assert_eq!(
        host_op(&mut b, HostOp::GuestAttach, &mut attach),
        FirmwareStatus::INVALID_GUEST
    );
    assert_eq!(
        guest_access(
            &mut b,
            [0; GUEST_TOKEN_LEN],
            layout::IMAGE,
            layout::SECRET_DST
        )
        .0,
        FirmwareStatus::INVALID_GUEST
    );
    // A's host: the policy says no, and there is no way around it.
    assert_eq!(
        call(&mut a, SevCommand::DbgDecrypt, &mut dbg).unwrap(),
        FirmwareStatus::POLICY_FAILURE
    );
    assert_eq!(
        guest_access(
            &mut a,
            [0; GUEST_TOKEN_LEN],
            layout::IMAGE,
            layout::SECRET_DST
        )
        .0,
        FirmwareStatus::INVALID_GUEST
    );
    // The guest's principal (attached once) sees its plaintext; B holding
    // the same token sees nothing.
    assert_eq!(
        host_op(&mut a, HostOp::GuestAttach, &mut attach),
        FirmwareStatus::SUCCESS
    );
    assert_eq!(attach.rc.get(), 0);
    let token = attach.token;
    let mut again = GuestAttachOp {
        handle: U32::new(handle),
        ..GuestAttachOp::default()
    };
    assert_eq!(
        host_op(&mut a, HostOp::GuestAttach, &mut again),
        FirmwareStatus::SUCCESS
    );
    assert_eq!(again.rc.get(), GUEST_ATTACH_TAKEN);
    assert_eq!(again.token, [0; GUEST_TOKEN_LEN]);
    assert_eq!(
        guest_access(&mut b, token, layout::IMAGE, layout::SECRET_DST).0,
        FirmwareStatus::INVALID_GUEST
    );
    assert_eq!(host_b.read_vec(layout::SECRET_DST, 32).unwrap(), [0; 32]);
    assert_eq!(
        guest_access(&mut a, token, layout::IMAGE, layout::SECRET_DST),
        (FirmwareStatus::SUCCESS, 0)
    );
    assert_eq!(host_a.read_vec(layout::SECRET_DST, 32).unwrap(), secret);
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
    let (mem, _) = guest_memory(4096);
    let mut good = Client::connect_with_memory(&server.socket, &mem, TIMEOUT).unwrap();

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
    let (mem2, _) = guest_memory(4096);
    let c = Client::connect_with_memory(&server.socket, &mem2, TIMEOUT).unwrap();
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
    assert_eq!(guest_count(&mut good), 0);
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
    let (mem, mut host) = guest_memory(8 << 20);
    let mut client = Client::connect_with_memory(&socket, &mem, TIMEOUT).unwrap();
    launch::ensure_init(&mut client, false).unwrap();
    let handle = launch::launch_start(&mut client, &mut host, 0, None).unwrap();
    launch::activate(&mut client, handle, 5).unwrap();
    let stop = server.stop.clone();
    // A long command in flight when the shutdown comes.
    let worker = std::thread::spawn(move || {
        let r = launch::update_data(&mut client, handle, layout::IMAGE, 8 << 20);
        (r.is_ok(), client)
    });
    std::thread::sleep(Duration::from_millis(20));
    stop.shutdown();
    let summary = server.stop();
    let (ok, mut client) = worker.join().unwrap();
    assert!(ok, "the command in flight got its answer");
    assert!(!socket.exists(), "socket removed");
    assert!(matches!(
        launch::platform_status(&mut client),
        Err(launch::LaunchError::Seam(SpError::Closed | SpError::Io(_)))
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
