//! Detects AMD vectors and peer tools; see `sevkit-testenv`.

fn main() {
    sevkit_testenv::emit(std::path::Path::new(env!("CARGO_MANIFEST_DIR")));
}
