//! Guest memory shared as a file descriptor (a memfd), as swtpm takes its
//! data fd.
//!
//! The VMM creates the memory with [`FdMemory::memfd`], fills it, and passes
//! the fd to the firmware server in HELLO; both sides then read and write
//! the same pages with `pread`/`pwrite` (safe code, no mapping). Physical
//! address `p` is byte `p` of the file.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::FileExt;

use crate::{MemoryError, SystemMemory};
use rustix::fs::{MemfdFlags, SealFlags};

/// System memory backed by a file descriptor: addresses `0..size` are the
/// file's bytes. Accesses outside that range fail (the firmware answers
/// `INVALID_ADDRESS`) and never grow the file.
#[derive(Debug)]
pub struct FdMemory {
    file: File,
    size: u64,
}

impl FdMemory {
    /// Creates an anonymous memfd of `size` bytes (sparse: pages are
    /// allocated as they are written) whose size is sealed, so neither side
    /// can shrink or grow it afterwards.
    pub fn memfd(name: &str, size: u64) -> io::Result<Self> {
        let fd = rustix::fs::memfd_create(name, MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)?;
        rustix::fs::ftruncate(&fd, size)?;
        rustix::fs::fcntl_add_seals(&fd, SealFlags::SHRINK | SealFlags::GROW | SealFlags::SEAL)?;
        Ok(Self {
            file: File::from(fd),
            size,
        })
    }

    /// Uses `fd` as memory of `size` bytes. Fails with `InvalidInput` when
    /// the file is smaller than `size` or is not a regular file (memfds are).
    pub fn from_fd(fd: OwnedFd, size: u64) -> io::Result<Self> {
        let stat = rustix::fs::fstat(&fd)?;
        let file_type = rustix::fs::FileType::from_raw_mode(stat.st_mode);
        if file_type != rustix::fs::FileType::RegularFile {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("guest memory fd is a {file_type:?}, not a memfd or regular file"),
            ));
        }
        let actual = u64::try_from(stat.st_size).unwrap_or(0);
        if actual < size {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("guest memory fd holds {actual} bytes, HELLO declared {size}"),
            ));
        }
        Ok(Self {
            file: File::from(fd),
            size,
        })
    }

    /// Size of the address space.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// A second handle on the same memory (a `dup` of the fd), e.g. one for
    /// the VMM and one to send to the server.
    pub fn try_clone(&self) -> io::Result<Self> {
        Ok(Self {
            file: self.file.try_clone()?,
            size: self.size,
        })
    }

    /// Reads `len` bytes at `paddr` into a new vector.
    pub fn read_vec(&self, paddr: u64, len: usize) -> Result<Vec<u8>, MemoryError> {
        let mut out = vec![0u8; len];
        self.read(paddr, &mut out)?;
        Ok(out)
    }

    fn check(&self, paddr: u64, len: usize) -> Result<(), MemoryError> {
        let len = len as u64;
        match paddr.checked_add(len) {
            Some(end) if end <= self.size => Ok(()),
            _ => Err(MemoryError { paddr, len }),
        }
    }
}

impl AsFd for FdMemory {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

impl SystemMemory for FdMemory {
    fn read(&self, paddr: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        self.check(paddr, buf.len())?;
        self.file
            .read_exact_at(buf, paddr)
            .map_err(|_| MemoryError {
                paddr,
                len: buf.len() as u64,
            })
    }

    fn write(&mut self, paddr: u64, data: &[u8]) -> Result<(), MemoryError> {
        self.check(paddr, data.len())?;
        self.file
            .write_all_at(data, paddr)
            .map_err(|_| MemoryError {
                paddr,
                len: data.len() as u64,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memfd_is_shared_bounded_and_sealed() {
        let mut a = FdMemory::memfd("test", 1 << 20).unwrap();
        let b = a.try_clone().unwrap();
        a.write(0xFFF0, &[5u8; 32]).unwrap();
        assert_eq!(b.read_vec(0xFFF0, 32).unwrap(), [5u8; 32]);
        assert_eq!(b.read_vec(0, 4).unwrap(), [0u8; 4]);
        assert!(a.write((1 << 20) - 8, &[1u8; 16]).is_err());
        assert!(a.read(u64::MAX, &mut [0u8; 2]).is_err());
        assert!(rustix::fs::ftruncate(&a, 4096).is_err(), "size is sealed");
        let dup = rustix::io::dup(&a).unwrap();
        assert!(FdMemory::from_fd(dup, 2 << 20).is_err());
        let dup = rustix::io::dup(&a).unwrap();
        assert_eq!(FdMemory::from_fd(dup, 4096).unwrap().size(), 4096);
    }
}
