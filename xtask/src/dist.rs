//! `cargo xtask dist`: `huddle-server` for operators, with the browser UI
//! inside, as versioned archives and a checksum file (issue 16):
//!
//! - `huddle-server-VERSION-x86_64-linux.tar.gz` and `…-aarch64-linux.tar.gz`,
//!   linked by zig (`cargo zigbuild`) against glibc 2.28, so they run on
//!   every distribution since 2018–2019 (Debian 10, Ubuntu 20.04, RHEL 8),
//!   not only on the Debian 12 that builds them;
//! - `huddle-server-VERSION-x86_64-windows.zip` (mingw-w64, as
//!   `cross.rs` builds it; the C++ runtime linked in);
//! - `SHA256SUMS`, in `sha256sum`'s format (`sha256sum -c SHA256SUMS`).
//!
//! Each archive holds a folder of the same name with the server and the
//! README. All in `target/dist/archives/` (under the build cache), from the
//! `dist` profile. macOS is not among them: the server compiles for it, but its
//! Redis TLS reads the keychain's roots (Security and CoreFoundation), and
//! those frameworks come only with Apple's SDK, which this machine cannot
//! fetch.
//!
//! Each archive is checked before it is listed: the Linux x86-64 server is
//! started and must serve the UI's page (not the "UI is not built into this
//! binary" text); the others must be executables for their machine (the
//! ELF or PE header's machine field).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{cross, root, step, target_dir, Failed};

/// The glibc the Linux builds link against (zig's target suffix).
const GLIBC: &str = "2.28";

/// One operator's platform.
struct Platform {
    /// Rust's target triple.
    target: &'static str,
    /// The archive's platform name.
    name: &'static str,
    /// How the executable's header names the machine.
    machine: Machine,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Machine {
    ElfX86_64,
    ElfAarch64,
    PeX86_64,
}

const PLATFORMS: [Platform; 3] = [
    Platform {
        target: "x86_64-unknown-linux-gnu",
        name: "x86_64-linux",
        machine: Machine::ElfX86_64,
    },
    Platform {
        target: "aarch64-unknown-linux-gnu",
        name: "aarch64-linux",
        machine: Machine::ElfAarch64,
    },
    Platform {
        target: cross::WINDOWS,
        name: "x86_64-windows",
        machine: Machine::PeX86_64,
    },
];

/// `cargo xtask dist`.
pub fn main() -> Result<(), Failed> {
    crate::build_ui()?;
    let version = env!("CARGO_PKG_VERSION");
    let out = target_dir().join("dist/archives");
    std::fs::create_dir_all(&out).map_err(Failed::io(out.display()))?;
    let mut sums = String::new();
    for platform in &PLATFORMS {
        let exe = build(platform)?;
        let found = machine_of(&exe)?;
        if found != Some(platform.machine) {
            return Err(Failed::check(format!(
                "{}: built for {found:?}, not {:?}",
                exe.display(),
                platform.machine
            )));
        }
        if platform.machine == Machine::ElfX86_64 {
            serves_the_ui(&exe)?;
        }
        let stem = format!("huddle-server-{version}-{}", platform.name);
        let archive = if platform.machine == Machine::PeX86_64 {
            let path = out.join(format!("{stem}.zip"));
            let read = |p: &Path| std::fs::read(p).map_err(Failed::io(p.display()));
            let files = [
                (format!("{stem}/huddle-server.exe"), read(&exe)?),
                (
                    format!("{stem}/README.md"),
                    read(&root().join("README.md"))?,
                ),
            ];
            write_zip(&path, &files)?;
            path
        } else {
            let path = out.join(format!("{stem}.tar.gz"));
            tar_gz(&path, &stem, &exe)?;
            path
        };
        let bytes = std::fs::read(&archive).map_err(Failed::io(archive.display()))?;
        let name = archive
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        sums.push_str(&format!("{}  {name}\n", sha256_hex(&bytes)));
        println!(
            "{:>6.1} MB  {}",
            bytes.len() as f64 / 1e6,
            archive.display()
        );
    }
    let sums_path = out.join("SHA256SUMS");
    std::fs::write(&sums_path, &sums).map_err(Failed::io(sums_path.display()))?;
    println!("{sums}");
    println!("checksums: {}", sums_path.display());
    Ok(())
}

/// Builds the server for `platform` with the `dist` profile; its path.
fn build(platform: &Platform) -> Result<PathBuf, Failed> {
    step(
        &format!("rustup target add {}", platform.target),
        Command::new("rustup").args(["target", "add", platform.target]),
    )?;
    let dir = target_dir().join(platform.target).join("dist");
    if platform.machine == Machine::PeX86_64 {
        crate::ensure_system_packages(cross::BUILD_PACKAGES)?;
        step(
            &format!("cargo build --target {} -p huddle-server", platform.target),
            crate::cargo().args([
                "build",
                "--profile",
                "dist",
                "--target",
                platform.target,
                "-p",
                "huddle-server",
            ]),
        )?;
        return Ok(dir.join("huddle-server.exe"));
    }
    let zig = cross::zig_tools()?;
    let target = format!("{}.{GLIBC}", platform.target);
    step(
        &format!("cargo zigbuild --target {target} -p huddle-server"),
        Command::new(zig.join("cargo-zigbuild"))
            .current_dir(root())
            .env("PATH", cross::path_with(&zig))
            .args([
                "build",
                "--profile",
                "dist",
                "--target",
                &target,
                "-p",
                "huddle-server",
            ]),
    )?;
    Ok(dir.join("huddle-server"))
}

/// The machine an executable is for, by its ELF or PE header.
fn machine_of(exe: &Path) -> Result<Option<Machine>, Failed> {
    let bytes = std::fs::read(exe).map_err(Failed::io(exe.display()))?;
    let u16_at = |at: usize| {
        bytes
            .get(at..at + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let u32_at = |at: usize| {
        bytes
            .get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    if bytes.starts_with(b"\x7fELF") {
        return Ok(match u16_at(18) {
            Some(0x3e) => Some(Machine::ElfX86_64),
            Some(0xb7) => Some(Machine::ElfAarch64),
            _ => None,
        });
    }
    if bytes.starts_with(b"MZ") {
        // The PE header's offset is at 0x3c; its machine field follows
        // the "PE\0\0" signature.
        let pe = u32_at(0x3c).map_or(0, |p| p as usize);
        if bytes.get(pe..pe + 4) == Some(b"PE\0\0") && u16_at(pe + 4) == Some(0x8664) {
            return Ok(Some(Machine::PeX86_64));
        }
    }
    Ok(None)
}

/// Starts `exe` on a free port and asks for `/`: the UI's page must come
/// back, not the text a server without the UI answers.
fn serves_the_ui(exe: &Path) -> Result<(), Failed> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(Failed::io("a free port"))?
        .port();
    let mut server = crate::spawn_server(exe, u32::from(port))?;
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let page = loop {
        match get_root(port) {
            Ok(page) => break Ok(page),
            Err(e) if std::time::Instant::now() > until => break Err(e),
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(100)),
        }
    };
    let _ = server.kill();
    let _ = server.wait();
    let page = page.map_err(Failed::io(format!(
        "{} did not answer on port {port}",
        exe.display()
    )))?;
    if page.to_ascii_lowercase().contains("<!doctype html") {
        eprintln!("xtask: {} serves the UI", exe.display());
        Ok(())
    } else {
        Err(Failed::check(format!(
            "{} does not serve the UI: {page:.200}",
            exe.display()
        )))
    }
}

fn get_root(port: u16) -> std::io::Result<String> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
    stream.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    Ok(answer)
}

/// `archive`: a gzipped tar holding `stem/huddle-server` and the README.
fn tar_gz(archive: &Path, stem: &str, exe: &Path) -> Result<(), Failed> {
    let staging = target_dir().join("dist/staging").join(stem);
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging).map_err(Failed::io(staging.display()))?;
    for (from, to) in [
        (exe.to_owned(), staging.join("huddle-server")),
        (root().join("README.md"), staging.join("README.md")),
    ] {
        std::fs::copy(&from, &to).map_err(Failed::io(from.display()))?;
    }
    let parent = staging
        .parent()
        .ok_or(Failed::check("no staging directory"))?;
    step(
        &format!("tar {}", archive.display()),
        Command::new("tar")
            .arg("-czf")
            .arg(archive)
            .args(["--owner=0", "--group=0", "-C"])
            .arg(parent)
            .arg(stem),
    )
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Writes a zip archive of `files` (name, contents), each deflated (the
/// format of PKWARE's APPNOTE: each file's local header and data, then the
/// central directory and its end record). Windows opens it without any tool.
fn write_zip(path: &Path, files: &[(String, Vec<u8>)]) -> Result<(), Failed> {
    let too_big = || Failed::check("too big for a zip without zip64");
    // 1980-01-01 00:00 in MS-DOS time: reproducible archives.
    let (time, date) = (0u16, (1u16 << 5) | 1);
    let mut zip = Vec::new();
    let mut directory = Vec::new();
    for (name, body) in files {
        let mut deflater =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        deflater.write_all(body).map_err(Failed::io("deflate"))?;
        let packed = deflater.finish().map_err(Failed::io("deflate"))?;
        let crc = crc32fast::hash(body);
        let packed_len = u32::try_from(packed.len()).map_err(|_| too_big())?;
        let len = u32::try_from(body.len()).map_err(|_| too_big())?;
        let name_len = u16::try_from(name.len())
            .map_err(|_| Failed::check("a zip entry's name is too long"))?;
        let offset = u32::try_from(zip.len()).map_err(|_| too_big())?;
        let common = |out: &mut Vec<u8>| {
            out.extend(20u16.to_le_bytes()); // version needed: 2.0
            out.extend(0u16.to_le_bytes()); // flags
            out.extend(8u16.to_le_bytes()); // deflated
            out.extend(time.to_le_bytes());
            out.extend(date.to_le_bytes());
            out.extend(crc.to_le_bytes());
            out.extend(packed_len.to_le_bytes());
            out.extend(len.to_le_bytes());
            out.extend(name_len.to_le_bytes());
            out.extend(0u16.to_le_bytes()); // extra field length
        };
        zip.extend(0x0403_4b50u32.to_le_bytes());
        common(&mut zip);
        zip.extend(name.as_bytes());
        zip.extend(&packed);
        directory.extend(0x0201_4b50u32.to_le_bytes());
        directory.extend(20u16.to_le_bytes()); // made by: MS-DOS, 2.0
        common(&mut directory);
        directory.extend(0u16.to_le_bytes()); // comment length
        directory.extend(0u16.to_le_bytes()); // disk
        directory.extend(0u16.to_le_bytes()); // internal attributes
        directory.extend(0u32.to_le_bytes()); // external attributes
        directory.extend(offset.to_le_bytes());
        directory.extend(name.as_bytes());
    }
    let entries = u16::try_from(files.len()).map_err(|_| too_big())?;
    let directory_at = u32::try_from(zip.len()).map_err(|_| too_big())?;
    let directory_len = u32::try_from(directory.len()).map_err(|_| too_big())?;
    zip.extend(directory);
    zip.extend(0x0605_4b50u32.to_le_bytes());
    zip.extend(0u16.to_le_bytes()); // this disk
    zip.extend(0u16.to_le_bytes()); // the directory's disk
    zip.extend(entries.to_le_bytes()); // entries on this disk
    zip.extend(entries.to_le_bytes());
    zip.extend(directory_len.to_le_bytes());
    zip.extend(directory_at.to_le_bytes());
    zip.extend(0u16.to_le_bytes()); // comment length
    std::fs::write(path, zip).map_err(Failed::io(path.display()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_zip_holds_its_files_deflated_with_their_checksums() {
        let dir = std::env::temp_dir().join(format!("xtask-zip-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.zip");
        let body: Vec<u8> = (0..10_000u32).map(|i| (i % 7) as u8).collect();
        let files = [
            ("d/file.bin".to_owned(), body.clone()),
            ("d/second".to_owned(), b"two".to_vec()),
        ];
        write_zip(&path, &files).unwrap();
        let zip = std::fs::read(&path).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        // The end record names two entries and where the directory is.
        let end = zip.len() - 22;
        assert_eq!(&zip[end..end + 4], &0x0605_4b50u32.to_le_bytes());
        assert_eq!(&zip[end + 10..end + 12], &2u16.to_le_bytes());
        let at = u32::from_le_bytes(zip[end + 16..end + 20].try_into().unwrap()) as usize;
        assert_eq!(&zip[at..at + 4], &0x0201_4b50u32.to_le_bytes());
        // The first local entry: name, then the deflated data, which
        // inflates back to the body with the recorded CRC.
        assert_eq!(&zip[..4], &0x0403_4b50u32.to_le_bytes());
        assert_eq!(&zip[30..40], b"d/file.bin");
        let packed = u32::from_le_bytes(zip[18..22].try_into().unwrap()) as usize;
        let mut inflated = Vec::new();
        flate2::read::DeflateDecoder::new(&zip[40..40 + packed])
            .read_to_end(&mut inflated)
            .unwrap();
        assert_eq!(inflated, body);
        let crc = u32::from_le_bytes(zip[14..18].try_into().unwrap());
        assert_eq!(crc, crc32fast::hash(&body));
    }

    #[test]
    fn machines_are_read_from_the_headers() {
        let dir = std::env::temp_dir().join(format!("xtask-machine-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut elf = vec![0u8; 64];
        elf[..4].copy_from_slice(b"\x7fELF");
        elf[18] = 0xb7;
        let mut pe = vec![0u8; 0x90];
        pe[..2].copy_from_slice(b"MZ");
        pe[0x3c] = 0x80;
        pe[0x80..0x84].copy_from_slice(b"PE\0\0");
        pe[0x84..0x86].copy_from_slice(&0x8664u16.to_le_bytes());
        for (bytes, machine) in [
            (elf, Some(Machine::ElfAarch64)),
            (pe, Some(Machine::PeX86_64)),
            (b"#!/bin/sh\n".to_vec(), None),
        ] {
            let path = dir.join("exe");
            std::fs::write(&path, bytes).unwrap();
            assert_eq!(machine_of(&path).unwrap(), machine);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
