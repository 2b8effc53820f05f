//! The machine a guest runs on: its memory (q35's layout in one memfd,
//! with the encryption view), the SNP CPUID page built from the vCPU model,
//! and a small built-in guest image for demonstrations and tests.

pub mod cpuid;
pub mod demo_image;
pub mod memory;
