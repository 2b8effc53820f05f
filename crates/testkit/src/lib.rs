//! Test scaffolding shared by sevkit's crates (a dev-dependency only): [`launch`], launches through the VMM's one launch driver over any AMD-SP.

pub mod launch;
