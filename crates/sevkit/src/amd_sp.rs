//! Which AMD-SP a command's launch runs on: the embedded software firmware
//! (on a state directory's identity, or a chip minted for the run) or a
//! running `sevkit firmware serve` (`--firmware-socket`). Only the choice
//! is made here; the launch itself is the VMM's (`sev_vmm::plan`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use sev_abi::product::Product;
use sev_firmware::{Firmware, FirmwareConfig, InProcess};
use sev_firmware_server::{Client, StateLock};
use sev_sp::AmdSp;
use sev_vmm::host::Host;
use sev_vmm::GuestMemory;

use crate::input::{invalid, InputError};

/// How long a daemon may take to answer one command.
const SOCKET_TIMEOUT: Duration = Duration::from_secs(60);

/// The embedded software AMD-SP and the lock on its state directory (held
/// for as long as the firmware runs, as `sevkit firmware serve` holds it).
pub struct Embedded {
    /// The lock on `--state`, when there is one.
    pub lock: Option<StateLock>,
    /// The firmware.
    pub firmware: Box<Firmware>,
}

impl Embedded {
    /// Opens the firmware of `product` on the identity in `state` (which
    /// `sevkit firmware init` made; locked first), or on a chip minted now
    /// (two RSA-4096 keys: seconds) without one.
    pub fn open(state: Option<&Path>, product: Product) -> Result<Self, InputError> {
        let lock = state
            .map(|dir| StateLock::acquire(dir).map_err(|e| invalid(e.to_string())))
            .transpose()?;
        let firmware = Firmware::open_existing(FirmwareConfig {
            state_dir: state.map(Path::to_path_buf),
            product,
            ..FirmwareConfig::default()
        })
        .map_err(|e| invalid(format!("software AMD-SP: {e}")))?;
        Ok(Self {
            lock,
            firmware: Box::new(firmware),
        })
    }
}

/// Where the AMD-SP of a launch is.
pub enum Sp {
    /// In this process.
    Embedded(Box<Firmware>),
    /// A `sevkit firmware serve` listening on this socket.
    Socket(PathBuf),
}

/// The host of a launch: `memory` (laid out by the machine plan) and the
/// AMD-SP, which shares it (the embedded one through a second handle on
/// the memfd, the daemon through the fd passed when connecting).
pub fn host(sp: Sp, memory: GuestMemory) -> Result<Host, InputError> {
    let sp: Box<dyn AmdSp + Send> = match sp {
        Sp::Socket(socket) => Box::new(
            Client::connect_with_memory(&socket, memory.system(), Some(SOCKET_TIMEOUT))
                .map_err(|e| invalid(format!("{}: {e}", socket.display())))?,
        ),
        Sp::Embedded(firmware) => Box::new(InProcess::new(
            *firmware,
            memory
                .system_handle()
                .map_err(|e| invalid(format!("guest memory: {e}")))?,
        )),
    };
    Ok(Host::new(sp, memory))
}
