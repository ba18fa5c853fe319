//! The `vault` command.
fn main() {
    eprintln!("vault: not built yet");
    std::process::exit(2);
}
