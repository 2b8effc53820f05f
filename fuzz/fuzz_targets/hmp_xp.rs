//! HMP's `xp /fmt addr` on arbitrary argument text over 64 KiB of flat
//! guest memory: never panics; a dump stays within the size the parsed
//! `/fmt` asks for (itself capped by `MAX_DUMP_BYTES`); a dump of memory
//! that is all there has one line per 16 bytes (8 with byte units) and no
//! "Cannot access memory".
//!
//! Input: the text after `xp` (UTF-8; other inputs are skipped). The memory
//! holds a fixed pattern, so every format has non-zero units to print.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sev_vmm::monitor::hmp::MAX_DUMP_BYTES;
use sev_vmm::debug::{Access, DebugError, MemoryDebugOps};
use sev_vmm::monitor::hmp::{hmp_xp, DumpDefaults, DumpFormat};

const MEM_SIZE: usize = 64 << 10;

/// Flat guest memory at guest physical 0, readable and writable.
struct Flat(Vec<u8>);

impl Flat {
    fn range(&self, gpa: u64, len: usize) -> Result<std::ops::Range<usize>, DebugError> {
        usize::try_from(gpa)
            .ok()
            .filter(|&s| s.checked_add(len).is_some_and(|e| e <= self.0.len()))
            .map(|s| s..s + len)
            .ok_or(DebugError::NotGuestMemory {
                gpa,
                len: len as u64,
            })
    }
}

impl MemoryDebugOps for Flat {
    fn read(&mut self, gpa: u64, buf: &mut [u8], _access: Access) -> Result<(), DebugError> {
        let r = self.range(gpa, buf.len())?;
        buf.copy_from_slice(&self.0[r]);
        Ok(())
    }

    fn write(&mut self, gpa: u64, data: &[u8], _access: Access) -> Result<(), DebugError> {
        let r = self.range(gpa, data.len())?;
        self.0[r].copy_from_slice(data);
        Ok(())
    }
}

/// Most output characters per dumped byte: `c` with byte units, 8 bytes a
/// line of `" '\xNN'"` (8 characters each) after the 17-character address
/// and before the newline.
const MAX_CHARS_PER_BYTE: u64 = 11;
/// One line's address, " Cannot access memory" and newline.
const LINE_OVERHEAD: u64 = 64;

fuzz_target!(|data: &[u8]| {
    let Ok(args) = std::str::from_utf8(data) else {
        return;
    };
    let mut mem = Flat((0..MEM_SIZE).map(|i| (i * 37 + (i >> 8)) as u8).collect());
    let spec = DumpDefaults::default().parse("xp", args);
    let result = hmp_xp(&mut mem, args);
    // Parsing errors are the same through both entries.
    if let Err(e) = &spec {
        assert!(
            result.is_err(),
            "{args:?}: parse failed ({e}) but xp succeeded"
        );
        return;
    }
    let spec = spec.unwrap();
    let Ok(out) = result else {
        return;
    };
    let size = u64::from(spec.size.expect("a dump that ran has a unit size"));
    assert_ne!(spec.format, DumpFormat::Instruction);
    let len = spec.count * size;
    assert!(len <= MAX_DUMP_BYTES, "{args:?}: dumped {len} bytes");
    let bound = len * MAX_CHARS_PER_BYTE + LINE_OVERHEAD;
    assert!(
        out.len() as u64 <= bound,
        "{args:?}: {} characters of output for {len} bytes",
        out.len()
    );
    assert!(out.len() as u64 <= MAX_DUMP_BYTES * MAX_CHARS_PER_BYTE + LINE_OVERHEAD);
    let in_memory = spec
        .addr
        .checked_add(len)
        .is_some_and(|end| end <= MEM_SIZE as u64);
    if in_memory {
        let line_size = if size == 1 { 8 } else { 16 };
        assert!(!out.contains("Cannot access memory"), "{args:?}: {out}");
        assert_eq!(
            out.lines().count() as u64,
            len.div_ceil(line_size),
            "{args:?}: {out}"
        );
    }
    // Every line starts with its address.
    let mut addr = spec.addr;
    for line in out.lines() {
        let prefix = format!("{addr:016x}:");
        assert!(
            line.starts_with(&prefix),
            "{args:?}: line {line:?}, want {prefix}"
        );
        addr = addr.wrapping_add(if size == 1 { 8 } else { 16 });
    }
});
