//! `cargo xtask <task>`: the project's two commands and their helpers.
//!
//! - `run [server flags…]`: builds and runs `huddle-server` on port 8443.
//! - `test`: installs what the tests need (saying what), then runs the
//!   format check, clippy and every test of the workspace.
//! - `bindings`: regenerates the TypeScript protocol types in `src-ui/src/protocol/`.

use std::path::PathBuf;
use std::process::{Command, ExitCode};

/// Debian packages the tests need, by the program that shows they are there.
const SYSTEM_PACKAGES: &[(&str, &str)] = &[("turnserver", "coturn"), ("python3", "python3")];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("run") => run(&args[1..]),
        Some("test") => test(),
        Some("bindings") => bindings(),
        _ => {
            eprintln!("usage: cargo xtask run [huddle-server flags] | test | bindings");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

/// A failed step, described for the person running it.
type Failed = String;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(root());
    cmd
}

fn step(name: &str, cmd: &mut Command) -> Result<(), Failed> {
    eprintln!("xtask: {name}");
    let status = cmd
        .status()
        .map_err(|e| format!("{name}: cannot start: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{name} failed ({status})"))
    }
}

fn has_program(name: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(name).is_file()))
        .unwrap_or(false)
}

/// Installs missing Debian packages with apt, as root or through sudo.
fn ensure_system_packages() -> Result<(), Failed> {
    let missing: Vec<&str> = SYSTEM_PACKAGES
        .iter()
        .filter(|(program, _)| !has_program(program))
        .map(|(_, package)| *package)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!(
        "xtask: installing Debian packages the tests need: {}",
        missing.join(" ")
    );
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0"))
        .unwrap_or(false);
    let apt = |args: &[&str]| {
        let mut cmd = if is_root {
            Command::new("apt-get")
        } else {
            Command::new("sudo")
        };
        if !is_root {
            cmd.arg("apt-get");
        }
        cmd.env("DEBIAN_FRONTEND", "noninteractive").args(args);
        cmd
    };
    step("apt-get update", &mut apt(&["update", "-q"]))?;
    let mut install = apt(&["install", "-y", "-q", "--no-install-recommends"]);
    install.args(&missing);
    step("apt-get install", &mut install)
}

fn run(flags: &[String]) -> Result<(), Failed> {
    let mut cmd = cargo();
    cmd.args(["run", "--release", "-p", "huddle-server", "--"]);
    if !flags.iter().any(|f| f.starts_with("--listen")) {
        cmd.args(["--listen", "0.0.0.0:8443"]);
    }
    cmd.args(flags);
    step("huddle-server", &mut cmd)
}

fn test() -> Result<(), Failed> {
    ensure_system_packages()?;
    step(
        "cargo fmt --check",
        cargo().args(["fmt", "--all", "--check"]),
    )?;
    step(
        "cargo clippy",
        cargo().args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]),
    )?;
    step(
        "cargo test",
        cargo().args(["test", "--workspace", "--no-fail-fast"]),
    )
}

fn bindings() -> Result<(), Failed> {
    let mut cmd = cargo();
    cmd.env("HUDDLE_BLESS", "1")
        .args(["test", "-p", "huddle-protocol", "--test", "bindings"]);
    step("regenerate TypeScript bindings", &mut cmd)
}
