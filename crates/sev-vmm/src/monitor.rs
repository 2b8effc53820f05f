//! The VM's monitor: the QMP server with QEMU's schemas and error classes
//! ([`qmp`]), the VM as its backend ([`backend`]), and HMP's memory dumps
//! (`xp`, `x`: [`hmp`]) over the encrypted-memory debug API.

pub mod backend;
pub mod hmp;
pub mod qmp;
