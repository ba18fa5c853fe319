//! Tests that need a process environment of their own (`SSL_CERT_FILE`,
//! `HTTPS_PROXY`): the test binary runs one ignored test again in a child
//! process with the variables set, so no test changes the environment of
//! the tests running beside it.

use std::process::Command;

/// Runs the current test binary's ignored test `name` (an exact name) with
/// `env` added, and panics with its output unless it passed.
pub fn rerun_with_env(name: &str, env: &[(&str, &str)]) {
    let output = Command::new(std::env::current_exe().expect("this test binary"))
        .args([name, "--exact", "--ignored", "--nocapture"])
        .envs(env.iter().copied())
        .output()
        .expect("run the child test");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "child test {name} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
