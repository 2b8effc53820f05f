//! Certificates to SNP guests: the certificate exit answered into guest
//! memory, and the certificate file's locking protocol under concurrent
//! writers (threads and processes, in-place rewrites and renames).
//!
//! Every lease opens the certificate file anew, so it has its own open file
//! description; the lock is an OFD lock (`F_OFD_SETLK` / `F_OFD_SETLKW`),
//! which belongs to the open file description, so a lease and a writer
//! conflict even between threads of this process, just as they do between
//! processes. The `foreign_*` tests take raw OFD locks with `fcntl` as a
//! tool following the kernel documentation would, and check that sevkit's
//! locks and theirs exclude each other. The process variants re-run this
//! test binary with [`CHILD_ENV`] set, which turns [`child_process_writer`]
//! into a writer.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::thread;
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg};
use nix::libc;
use sev_abi::cert_table::{CertKind, CertTable};
use sev_abi::product::Product;
use sev_firmware::snp::kds::EmulatedKds;
use sev_firmware::snp::keys::ChipEndorsementKeys;
use sev_firmware::snp::platform::default_tcb;
use sev_vmm::exits::certs::kvm::{
    GuestCertsOutcome, ReqCertsRet, SnpReqCerts, VmmError, EAGAIN, EIO, ENOSPC,
};
use sev_vmm::exits::certs::lock::LockRetry;
use sev_vmm::exits::certs::provider::{CertsProvider, ReqCertsOutcome};
use sev_vmm::exits::certs::writer::{replace_certs_file, write_certs_file, CertsWriter};
use sev_vmm::exits::certs::{CertsError, EMPTY_CERT_TABLE, MAX_CERT_TABLE_LEN};
use sev_vmm::machine::memory::{GuestMemory, MemoryLayout};

/// Environment variable that makes [`child_process_writer`] a writer.
const CHILD_ENV: &str = "SEVKIT_CERTS_TEST_CHILD";
/// Where the certificate buffers of the tests sit.
const GPA: u64 = 0x10_0000;
const PAGE: usize = 4096;

/// The emulated KDS's certificates for a seeded Genoa chip (cached under
/// Cargo's target directory: minting the chip takes seconds): the table
/// `EmulatedKds::cert_table` builds, serialized, and the VCEK.
fn kds_table() -> &'static (Vec<u8>, Vec<u8>) {
    static TABLE: OnceLock<(Vec<u8>, Vec<u8>)> = OnceLock::new();
    TABLE.get_or_init(|| {
        let chip = sevkit_testkit::cached_chip("sev-vmm-certs-test-chip", [0xCE; 32]);
        let kds = EmulatedKds::new(&chip, Product::Genoa).unwrap();
        let keys = ChipEndorsementKeys::new(&chip);
        let vcek = kds
            .vcek_cert_for(&keys, default_tcb(Product::Genoa))
            .unwrap();
        (kds.cert_table(&vcek).to_bytes().unwrap(), vcek)
    })
}

/// Synthetic tables of distinct lengths (1 to 4 pages), each byte telling
/// the variant and the entry apart.
fn variant(k: usize) -> Vec<u8> {
    let kinds = [CertKind::Ark, CertKind::Ask, CertKind::Vcek, CertKind::Crl];
    let mut t = CertTable::default();
    for (i, kind) in kinds.iter().enumerate().take(2 + k % 3) {
        let len = 300 + 997 * k + 131 * i;
        let data = (0..len).map(|j| (k * 31 + i * 7 + j) as u8).collect();
        t.push(kind.guid(), data);
    }
    t.to_bytes().unwrap()
}

fn variants(n: usize) -> Vec<Vec<u8>> {
    let v: Vec<_> = (0..n).map(variant).collect();
    let lens: HashSet<_> = v.iter().map(Vec::len).collect();
    assert_eq!(lens.len(), n, "variants differ in length");
    v
}

fn memory() -> GuestMemory {
    GuestMemory::new(MemoryLayout::q35(64 << 20, 0).unwrap()).unwrap()
}

fn read(mem: &GuestMemory, gpa: u64, len: usize) -> Vec<u8> {
    let mut buf = vec![0; len];
    mem.host_read(gpa, &mut buf).unwrap();
    buf
}

fn exit(npages: u64) -> SnpReqCerts {
    SnpReqCerts {
        gpa: GPA,
        npages,
        ret: 0,
    }
}

fn certs_file(table: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("certs.bin");
    write_certs_file(&path, table).unwrap();
    (dir, path)
}

#[test]
fn kds_table_too_small_then_retried_with_the_needed_pages() {
    let (table, vcek) = kds_table();
    assert!(table.len() > PAGE, "ARK, ASK and VCEK take two pages");
    let needed = table.len().div_ceil(PAGE) as u64;
    let (_dir, path) = certs_file(table);
    let provider = CertsProvider::new(Some(path.clone()));
    let mut mem = memory();
    mem.host_write(GPA, &vec![0xAA; 4 * PAGE]).unwrap();

    let mut e = exit(1);
    let outcome = provider.handle_exit(&mut e, &mut mem);
    assert!(matches!(outcome, ReqCertsOutcome::TooSmall { needed: n } if n == needed));
    assert_eq!((e.ret, e.npages), (ENOSPC, needed));
    let guest = GuestCertsOutcome::from_exit(&e).unwrap();
    assert_eq!(guest, GuestCertsOutcome::InvalidLen { npages: needed });
    assert_eq!(guest.vmm_error(), 1);
    assert_eq!(guest.as_vmm_error(), Some(VmmError::InvalidLen));
    assert_eq!(guest.certs_len(), Some(needed as u32 * 4096));
    assert_eq!(ReqCertsRet::NoSpace.sw_exitinfo2(), 0x1_0000_0000);
    assert_eq!(read(&mem, GPA, PAGE), vec![0xAA; PAGE], "nothing written");
    // The lock went with the answer.
    drop(CertsWriter::try_lock(&path).unwrap());

    // The guest retries with what it was told.
    let mut e = exit(e.npages);
    let lease = provider.handle_exit(&mut e, &mut mem).lease().unwrap();
    assert_eq!(e.ret, 0);
    assert_eq!(
        GuestCertsOutcome::from_exit(&e),
        Ok(GuestCertsOutcome::Completed)
    );
    assert_eq!(lease.table_bytes(), &table[..]);
    assert_eq!(lease.pages_needed(), needed);
    assert_eq!(lease.path(), Some(path.as_path()));
    let got = read(&mem, GPA, needed as usize * PAGE);
    assert_eq!(&got[..table.len()], &table[..]);
    assert!(
        got[table.len()..].iter().all(|b| *b == 0),
        "padded with zeros"
    );
    let parsed = CertTable::from_bytes(&got).unwrap();
    assert_eq!(parsed.get_kind(CertKind::Vcek), Some(&vcek[..]));
    assert_eq!(parsed.entries.len(), 3);

    // Until the report is fetched and the lease dropped, writers wait.
    assert!(lease.is_locked());
    assert!(matches!(
        CertsWriter::try_lock(&path),
        Err(CertsError::Busy { .. })
    ));
    lease.release();
    drop(CertsWriter::try_lock(&path).unwrap());
}

#[test]
fn multi_entry_table_spans_pages_and_leaves_the_rest_alone() {
    let (kds, _) = kds_table();
    let mut table = CertTable::from_bytes(kds).unwrap();
    table.push(CertKind::Crl.guid(), vec![0x5C; 3000]);
    let table = table.to_bytes().unwrap();
    let needed = table.len().div_ceil(PAGE) as u64;
    assert!(needed >= 2);
    let (_dir, path) = certs_file(&table);
    let provider = CertsProvider::new(Some(path));
    let mut mem = memory();
    mem.host_write(GPA, &vec![0xAA; 8 * PAGE]).unwrap();

    for npages in [0, needed - 1] {
        let mut e = exit(npages);
        provider.handle_exit(&mut e, &mut mem);
        assert_eq!((e.ret, e.npages), (ENOSPC, needed));
    }
    let mut e = exit(8);
    let lease = provider.handle_exit(&mut e, &mut mem).lease().unwrap();
    assert_eq!((e.ret, e.npages), (0, 8));
    let got = read(&mem, GPA, 8 * PAGE);
    let end = needed as usize * PAGE;
    assert_eq!(&got[..table.len()], &table[..]);
    assert!(got[table.len()..end].iter().all(|b| *b == 0));
    assert!(
        got[end..].iter().all(|b| *b == 0xAA),
        "pages past the table"
    );
    let parsed = lease.table().unwrap();
    let kinds: Vec<_> = parsed
        .entries
        .iter()
        .map(sev_abi::CertTableEntry::kind)
        .collect();
    assert_eq!(
        kinds,
        [CertKind::Vcek, CertKind::Ask, CertKind::Ark, CertKind::Crl]
    );
}

/// A guest as Linux's `SNP_GET_EXT_REPORT` behaves: it offers
/// `certs_len` bytes, learns the length it needs from `SW_EXITINFO2` and
/// RBX, and retries; a busy host is retried too.
#[test]
fn simulated_guest_round_trip() {
    let tables = variants(6);
    let (_dir, path) = certs_file(&tables[5]);
    let provider = CertsProvider::new(Some(path.clone()));
    let mut mem = memory();
    let mut certs_len: u32 = 0;
    let mut writer = Some(CertsWriter::lock(&path).unwrap());
    let mut rounds = Vec::new();
    let lease = loop {
        assert!(rounds.len() < 4, "{rounds:?}");
        let mut e = exit(u64::from(certs_len) / 4096);
        let outcome = provider.handle_exit(&mut e, &mut mem);
        // What KVM puts in the GHCB, and what the guest makes of it.
        let exitinfo2 = ReqCertsRet::from_errno(e.ret).unwrap().sw_exitinfo2();
        let guest = GuestCertsOutcome::from_sw_exitinfo2(exitinfo2, e.npages);
        assert_eq!(Ok(guest), GuestCertsOutcome::from_exit(&e));
        rounds.push(guest);
        match guest {
            GuestCertsOutcome::Completed => break outcome.lease().unwrap(),
            GuestCertsOutcome::InvalidLen { .. } => certs_len = guest.certs_len().unwrap(),
            // The operator finishes the update; the guest tries again.
            GuestCertsOutcome::Busy => drop(writer.take()),
            GuestCertsOutcome::Generic => panic!("{outcome:?}"),
        }
    };
    let needed = tables[5].len().div_ceil(PAGE) as u64;
    assert_eq!(
        rounds,
        [
            GuestCertsOutcome::Busy,
            GuestCertsOutcome::InvalidLen { npages: needed },
            GuestCertsOutcome::Completed
        ]
    );
    assert_eq!(u64::from(certs_len), needed * 4096);
    let got = read(&mem, GPA, certs_len as usize);
    assert_eq!(&got[..tables[5].len()], &tables[5][..]);
    assert_eq!(lease.table_bytes(), &tables[5][..]);
}

#[test]
fn no_certs_path_gives_the_empty_table() {
    let provider = CertsProvider::new(None);
    assert_eq!(provider.path(), None);
    let mut mem = memory();
    mem.host_write(GPA, &vec![0xAA; 2 * PAGE]).unwrap();
    let mut e = exit(1);
    let lease = provider.handle_exit(&mut e, &mut mem).lease().unwrap();
    assert_eq!((e.ret, e.npages), (0, 1));
    assert!(!lease.is_locked());
    assert_eq!(lease.table_bytes(), EMPTY_CERT_TABLE);
    assert_eq!(read(&mem, GPA, 24), vec![0; 24]);
    assert!(lease.table().unwrap().is_empty());
    assert_eq!(read(&mem, GPA + PAGE as u64, PAGE), vec![0xAA; PAGE]);

    // No buffer at all: nothing to miss, nothing written (as KVM's stub).
    mem.host_write(GPA, &vec![0xAA; PAGE]).unwrap();
    let mut e = exit(0);
    assert!(matches!(
        provider.handle_exit(&mut e, &mut mem),
        ReqCertsOutcome::Supplied(_)
    ));
    assert_eq!((e.ret, e.npages), (0, 0));
    assert_eq!(read(&mem, GPA, PAGE), vec![0xAA; PAGE]);
}

#[test]
fn a_file_with_an_empty_table_is_the_empty_table() {
    // Padded to a page, as some hosts write it.
    let (_dir, path) = certs_file(&[0; PAGE]);
    let provider = CertsProvider::new(Some(path));
    let mut mem = memory();
    let mut e = exit(1);
    let lease = provider.handle_exit(&mut e, &mut mem).lease().unwrap();
    assert_eq!(e.ret, 0);
    assert!(lease.is_locked());
    assert_eq!(lease.table_bytes(), EMPTY_CERT_TABLE);
    assert_eq!(lease.pages_needed(), 0);
}

fn assert_eio(provider: &CertsProvider, what: &str) -> CertsError {
    let mut mem = memory();
    mem.host_write(GPA, &vec![0xAA; PAGE]).unwrap();
    let mut e = exit(4);
    let outcome = provider.handle_exit(&mut e, &mut mem);
    assert_eq!((e.ret, e.npages), (EIO, 4), "{what}");
    let guest = GuestCertsOutcome::from_exit(&e).unwrap();
    assert_eq!(guest, GuestCertsOutcome::Generic);
    assert_eq!(guest.vmm_error(), 0xffff_ffff);
    assert_eq!(ReqCertsRet::Generic.sw_exitinfo2(), 0xffff_ffff_0000_0000);
    assert_eq!(
        read(&mem, GPA, PAGE),
        vec![0xAA; PAGE],
        "{what}: no garbage"
    );
    let ReqCertsOutcome::Failed(err) = outcome else {
        panic!("{what}: {outcome:?}")
    };
    err
}

#[test]
fn malformed_missing_or_oversized_files_are_eio() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("certs.bin");

    let err = assert_eio(&CertsProvider::new(Some(path.clone())), "missing");
    assert!(
        matches!(&err, CertsError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound),
        "{err}"
    );

    for (what, bytes) in [
        ("empty", Vec::new()),
        ("garbage", b"-----BEGIN CERTIFICATE-----\n".to_vec()),
        ("truncated", variant(2)[..variant(2).len() - 1].to_vec()),
        ("no terminator", variant(1)[..24].to_vec()),
    ] {
        std::fs::write(&path, &bytes).unwrap();
        let err = assert_eio(&CertsProvider::new(Some(path.clone())), what);
        assert!(matches!(err, CertsError::Malformed { .. }), "{what}: {err}");
        assert!(err.to_string().contains("certs.bin"), "{err}");
        // The operator's tools refuse such tables too.
        assert!(matches!(
            write_certs_file(&path, &bytes),
            Err(CertsError::Malformed { .. })
        ));
    }

    // Sparse, so the test does not write a megabyte.
    let f = std::fs::File::create(&path).unwrap();
    f.set_len(MAX_CERT_TABLE_LEN + 1).unwrap();
    let err = assert_eio(&CertsProvider::new(Some(path.clone())), "oversized");
    assert!(matches!(err, CertsError::TooLarge { len, .. } if len == MAX_CERT_TABLE_LEN + 1));
    let big = vec![0; MAX_CERT_TABLE_LEN as usize + 1];
    assert!(matches!(
        write_certs_file(&path, &big),
        Err(CertsError::TooLarge { .. })
    ));

    // A directory is an I/O error.
    let err = assert_eio(&CertsProvider::new(Some(dir.path().into())), "directory");
    assert!(matches!(err, CertsError::Io { .. }), "{err}");
    // So is a FIFO, without waiting for a writer to open it.
    let fifo = dir.path().join("fifo");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    let err = assert_eio(&CertsProvider::new(Some(fifo)), "fifo");
    assert!(err.to_string().contains("not a regular file"), "{err}");
}

#[test]
fn bad_exits_get_defined_errors() {
    let (_dir, path) = certs_file(&variant(0));
    let provider = CertsProvider::new(Some(path.clone()));
    let mut mem = memory();
    let mut run = |gpa, npages| {
        let mut e = SnpReqCerts {
            gpa,
            npages,
            ret: 0,
        };
        let outcome = provider.handle_exit(&mut e, &mut mem);
        (e, outcome)
    };

    let (e, outcome) = run(GPA + 8, 1);
    assert_eq!(e.ret, EIO);
    assert!(matches!(
        outcome,
        ReqCertsOutcome::Failed(CertsError::UnalignedGpa(g)) if g == GPA + 8
    ));
    for (gpa, npages) in [(GPA, u64::MAX), (u64::MAX - 0xFFF, 1), (GPA, 1 << 52)] {
        let (e, outcome) = run(gpa, npages);
        assert_eq!((e.ret, e.npages), (EIO, npages));
        assert!(
            matches!(
                outcome,
                ReqCertsOutcome::Failed(CertsError::BufferOverflow { .. })
            ),
            "{gpa:#x} {npages:#x}: {outcome:?}"
        );
    }
    // A huge buffer that fits the address space: only the table's pages are
    // written.
    let (e, outcome) = run(GPA, 1 << 30);
    assert_eq!(e.ret, 0, "{outcome:?}");
    drop(outcome);
    // Beyond guest RAM, or in the PCI hole.
    for gpa in [64 << 20, 0xE000_0000] {
        let (e, outcome) = run(gpa, 1);
        assert_eq!(e.ret, EIO);
        assert!(matches!(
            outcome,
            ReqCertsOutcome::Failed(CertsError::GuestMemory(_))
        ));
    }
    // Certificate pages must be shared.
    mem.set_private(GPA, 4096, true);
    let mut e = exit(1);
    let outcome = provider.handle_exit(&mut e, &mut mem);
    assert_eq!(e.ret, EIO);
    assert!(matches!(
        outcome,
        ReqCertsOutcome::Failed(CertsError::PrivatePage(GPA))
    ));
    // No failure left the file locked.
    drop(CertsWriter::try_lock(&path).unwrap());
}

#[test]
fn a_writer_makes_readers_busy() {
    let (_dir, path) = certs_file(&variant(0));
    let provider = CertsProvider::new(Some(path.clone()));
    assert_eq!(provider.retry(), LockRetry::default());
    let mut mem = memory();

    let mut writer = CertsWriter::lock(&path).unwrap();
    assert_eq!(writer.path(), path);
    for retry in [
        LockRetry::default(),
        LockRetry {
            attempts: 0,
            backoff: Duration::ZERO,
        },
    ] {
        let provider = provider.clone().with_retry(retry);
        let mut e = exit(4);
        let outcome = provider.handle_exit(&mut e, &mut mem);
        assert_eq!((e.ret, e.npages), (EAGAIN, 4));
        let ReqCertsOutcome::Failed(CertsError::Busy { attempts, .. }) = outcome else {
            panic!("{outcome:?}")
        };
        assert_eq!(attempts, retry.attempts.max(1));
        let guest = GuestCertsOutcome::from_exit(&e).unwrap();
        assert_eq!(guest, GuestCertsOutcome::Busy);
        assert_eq!(guest.vmm_error(), 2);
        assert_eq!(ReqCertsRet::Busy.sw_exitinfo2(), 0x2_0000_0000);
    }
    // Writers exclude each other too.
    assert!(matches!(
        CertsWriter::try_lock(&path),
        Err(CertsError::Busy { .. })
    ));
    writer.write(&variant(1)).unwrap();
    drop(writer);

    let mut e = exit(4);
    let lease = provider.handle_exit(&mut e, &mut mem).lease().unwrap();
    assert_eq!(e.ret, 0);
    assert_eq!(lease.table_bytes(), variant(1));
}

#[test]
fn a_lease_holds_off_writers_until_dropped() {
    let (_dir, path) = certs_file(&variant(0));
    let provider = CertsProvider::new(Some(path.clone()));
    let lease = provider.lease().unwrap();

    let (done_tx, done_rx) = mpsc::channel();
    let writers: Vec<_> = [false, true]
        .into_iter()
        .map(|by_rename| {
            let path = path.clone();
            let done = done_tx.clone();
            thread::spawn(move || {
                // This thread's open of the file is its own open file
                // description, so its lock conflicts with the lease.
                let table = variant(if by_rename { 2 } else { 1 });
                if by_rename {
                    replace_certs_file(&path, &table).unwrap();
                } else {
                    write_certs_file(&path, &table).unwrap();
                }
                done.send(by_rename).unwrap();
            })
        })
        .collect();
    // However long the writers get, they must not get past the lease.
    for _ in 0..20 {
        thread::sleep(Duration::from_millis(5));
        assert!(done_rx.try_recv().is_err(), "a writer ignored the lease");
        assert_eq!(std::fs::read(&path).unwrap(), variant(0));
    }
    assert_eq!(lease.table_bytes(), variant(0));
    drop(lease);
    for w in writers {
        w.join().unwrap();
    }
    assert_eq!(done_rx.try_iter().count(), 2);
    let last = provider.lease().unwrap();
    assert!(last.table_bytes() == variant(1) || last.table_bytes() == variant(2));
}

#[test]
fn an_unlocked_rename_leaves_leases_their_inode() {
    // A tool that replaces the file by rename without any lock: readers
    // that hold a lease keep the old inode, whose bytes nobody touches.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("certs.bin");
    replace_certs_file(&path, &variant(0)).unwrap();
    let provider = CertsProvider::new(Some(path.clone()));
    let old = provider.lease().unwrap();
    let tmp = dir.path().join("new.bin");
    std::fs::write(&tmp, variant(3)).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    assert_eq!(old.table_bytes(), variant(0));
    let new = provider.lease().unwrap();
    assert_eq!(new.table_bytes(), variant(3));
    // The two leases lock different inodes: a writer of the new file waits
    // only for `new`.
    drop(new);
    write_certs_file(&path, &variant(4)).unwrap();
    assert_eq!(old.table_bytes(), variant(0));
    drop(old);
    assert_eq!(provider.lease().unwrap().table_bytes(), variant(4));
    // Nothing but the certificate file is left in the directory.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["certs.bin"]);
}

/// A whole-file `struct flock` of type `l_type`, as a tool following the
/// kernel documentation builds it for `F_OFD_SETLK`.
fn whole_file(l_type: libc::c_int) -> libc::flock {
    libc::flock {
        l_type: l_type as libc::c_short,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: 0,
        l_len: 0,
        l_pid: 0,
    }
}

/// A foreign tool's open of the certificate file: its own open file
/// description, readable and writable (an OFD write lock needs a writable
/// descriptor).
fn foreign_open(path: &Path) -> File {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap()
}

/// `fcntl(F_OFD_SETLK)` over the whole file, without waiting.
fn foreign_setlk(file: &File, l_type: libc::c_int) -> nix::Result<()> {
    fcntl(file, FcntlArg::F_OFD_SETLK(&whole_file(l_type))).map(drop)
}

/// `fcntl(F_OFD_GETLK)`: the lock that would conflict with a whole-file
/// lock of type `l_type` (its `l_type` is `F_UNLCK` when none would).
fn foreign_getlk(file: &File, l_type: libc::c_int) -> libc::flock {
    let mut lock = whole_file(l_type);
    fcntl(file, FcntlArg::F_OFD_GETLK(&mut lock)).unwrap();
    lock
}

#[test]
fn foreign_ofd_write_lock_makes_leases_and_writers_busy() {
    let (_dir, path) = certs_file(&variant(0));
    let provider = CertsProvider::new(Some(path.clone())).with_retry(LockRetry {
        attempts: 2,
        backoff: Duration::from_micros(100),
    });
    let mut mem = memory();

    let tool = foreign_open(&path);
    foreign_setlk(&tool, libc::F_WRLCK).unwrap();
    // A lease attempt answers EAGAIN (busy) ...
    assert!(matches!(
        provider.lease(),
        Err(CertsError::Busy { attempts: 2, .. })
    ));
    let mut e = exit(4);
    assert!(matches!(
        provider.handle_exit(&mut e, &mut mem),
        ReqCertsOutcome::Failed(CertsError::Busy { .. })
    ));
    assert_eq!((e.ret, e.npages), (EAGAIN, 4));
    // ... and so does a non-blocking writer.
    assert!(matches!(
        CertsWriter::try_lock(&path),
        Err(CertsError::Busy { attempts: 1, .. })
    ));

    // A blocking writer waits for the tool's lock (F_OFD_SETLKW).
    let (done_tx, done_rx) = mpsc::channel();
    let writer = {
        let path = path.clone();
        thread::spawn(move || {
            write_certs_file(&path, &variant(1)).unwrap();
            done_tx.send(()).unwrap();
        })
    };
    for _ in 0..10 {
        thread::sleep(Duration::from_millis(5));
        assert!(done_rx.try_recv().is_err(), "a writer ignored the OFD lock");
    }
    assert_eq!(std::fs::read(&path).unwrap(), variant(0));

    // Released (F_UNLCK), the writer gets in, then readers do.
    foreign_setlk(&tool, libc::F_UNLCK).unwrap();
    writer.join().unwrap();
    done_rx.recv().unwrap();
    let mut e = exit(4);
    let lease = provider.handle_exit(&mut e, &mut mem).lease().unwrap();
    assert_eq!(e.ret, 0);
    assert_eq!(lease.table_bytes(), variant(1));
    assert!(lease.is_locked());
}

#[test]
fn foreign_ofd_locks_respect_leases_and_writers() {
    let (_dir, path) = certs_file(&variant(0));
    let provider = CertsProvider::new(Some(path.clone()));
    let tool = foreign_open(&path);

    // A lease holds a shared OFD lock over the whole file.
    let lease = provider.lease().unwrap();
    let held = foreign_getlk(&tool, libc::F_WRLCK);
    assert_eq!(held.l_type, libc::F_RDLCK as libc::c_short);
    assert_eq!(held.l_whence, libc::SEEK_SET as libc::c_short);
    assert_eq!((held.l_start, held.l_len), (0, 0), "not the whole file");
    assert_eq!(held.l_pid, -1, "not an OFD lock");
    // The tool's write lock fails with EAGAIN; a read lock coexists.
    assert_eq!(foreign_setlk(&tool, libc::F_WRLCK), Err(Errno::EAGAIN));
    foreign_setlk(&tool, libc::F_RDLCK).unwrap();
    foreign_setlk(&tool, libc::F_UNLCK).unwrap();
    drop(lease);
    foreign_setlk(&tool, libc::F_WRLCK).unwrap();
    foreign_setlk(&tool, libc::F_UNLCK).unwrap();

    // A writer holds an exclusive OFD lock over the whole file: the tool
    // can take neither lock.
    let writer = CertsWriter::try_lock(&path).unwrap();
    let held = foreign_getlk(&tool, libc::F_RDLCK);
    assert_eq!(held.l_type, libc::F_WRLCK as libc::c_short);
    assert_eq!((held.l_start, held.l_len), (0, 0), "not the whole file");
    assert_eq!(foreign_setlk(&tool, libc::F_RDLCK), Err(Errno::EAGAIN));
    assert_eq!(foreign_setlk(&tool, libc::F_WRLCK), Err(Errno::EAGAIN));
    drop(writer);
    // Dropping released it (F_UNLCK): nothing conflicts any more.
    assert_eq!(
        foreign_getlk(&tool, libc::F_WRLCK).l_type,
        libc::F_UNLCK as libc::c_short
    );
    foreign_setlk(&tool, libc::F_WRLCK).unwrap();
    // And the tool's lock is its own open file description's: this
    // process's leases are still shut out while it holds it.
    assert!(matches!(provider.lease(), Err(CertsError::Busy { .. })));
    drop(tool);
    assert_eq!(provider.lease().unwrap().table_bytes(), variant(0));
}

/// Readers that take `leases` leases each while the writers run, checking
/// every table is one of `tables` byte for byte. Busy answers are allowed
/// (they are what the guest retries on); anything else fails the test.
fn readers(
    path: &Path,
    tables: &[Vec<u8>],
    count: usize,
    leases: usize,
) -> Vec<thread::JoinHandle<usize>> {
    (0..count)
        .map(|_| {
            let provider = CertsProvider::new(Some(path.to_path_buf())).with_retry(LockRetry {
                attempts: 20,
                backoff: Duration::from_micros(100),
            });
            let tables: HashSet<Vec<u8>> = tables.iter().cloned().collect();
            thread::spawn(move || {
                let mut ok = 0;
                for _ in 0..leases {
                    match provider.lease() {
                        Ok(lease) => {
                            assert!(
                                tables.contains(lease.table_bytes()),
                                "a reader saw a table nobody wrote ({} bytes)",
                                lease.table_bytes().len()
                            );
                            ok += 1;
                        }
                        Err(CertsError::Busy { .. }) => {}
                        Err(e) => panic!("reader: {e}"),
                    }
                }
                ok
            })
        })
        .collect()
}

fn writer_loop(path: &Path, first: usize, iterations: usize, by_rename: bool) {
    let tables = variants(6);
    for i in 0..iterations {
        let table = &tables[(first + i) % tables.len()];
        if by_rename {
            replace_certs_file(path, table).unwrap();
        } else {
            write_certs_file(path, table).unwrap();
        }
    }
}

fn concurrent_threads(by_rename: bool) {
    let tables = variants(6);
    let (_dir, path) = certs_file(&tables[0]);
    let readers = readers(&path, &tables, 4, 300);
    let writers: Vec<_> = (0..3)
        .map(|w| {
            let path = path.clone();
            thread::spawn(move || writer_loop(&path, w, 60, by_rename))
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    let ok: usize = readers.into_iter().map(|r| r.join().unwrap()).sum();
    assert!(ok > 0, "no reader ever got the certificates");
    let last = CertsProvider::new(Some(path)).lease().unwrap();
    assert!(tables.iter().any(|t| t == last.table_bytes()));
}

#[test]
fn concurrent_in_place_writer_threads() {
    concurrent_threads(false);
}

#[test]
fn concurrent_renaming_writer_threads() {
    concurrent_threads(true);
}

/// Not a test on its own: with [`CHILD_ENV`] set (`<path>:<first>:<mode>`)
/// this is a writer process of [`concurrent_writer_processes`].
#[test]
fn child_process_writer() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let mut parts = spec.rsplitn(3, ':');
    let mode = parts.next().unwrap();
    let first: usize = parts.next().unwrap().parse().unwrap();
    let path = PathBuf::from(parts.next().unwrap());
    writer_loop(&path, first, 50, mode == "rename");
}

fn concurrent_processes(by_rename: bool) {
    let tables = variants(6);
    let (_dir, path) = certs_file(&tables[0]);
    let exe = std::env::current_exe().unwrap();
    let mode = if by_rename { "rename" } else { "inplace" };
    let children: Vec<_> = (0..2)
        .map(|w| {
            Command::new(&exe)
                .args(["--exact", "child_process_writer", "--test-threads", "1"])
                .env(CHILD_ENV, format!("{}:{w}:{mode}", path.display()))
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let readers = readers(&path, &tables, 3, 300);
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "a writer process failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    let ok: usize = readers.into_iter().map(|r| r.join().unwrap()).sum();
    assert!(ok > 0, "no reader ever got the certificates");
    let last = CertsProvider::new(Some(path)).lease().unwrap();
    assert!(tables.iter().any(|t| t == last.table_bytes()));
}

#[test]
fn concurrent_writer_processes_in_place() {
    concurrent_processes(false);
}

#[test]
fn concurrent_writer_processes_by_rename() {
    concurrent_processes(true);
}
