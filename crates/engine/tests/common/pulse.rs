//! A user-mode PulseAudio of a test's own: the sound card where there is
//! none. Devices reach it through ALSA's pulse plugin, which reads the
//! server (`PULSE_SERVER`) and the default sink and source (`PULSE_SINK`,
//! `PULSE_SOURCE`) from the process's environment — so one test per binary.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The daemon; stopped and its directory removed on drop.
pub struct Pulse {
    child: Child,
    dir: PathBuf,
}

impl Pulse {
    /// Starts it with `modules` loaded (e.g. `module-null-sink sink_name=spk`).
    pub fn start(modules: &[&str]) -> Pulse {
        let dir = std::env::temp_dir().join(format!("huddle-pulse-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let socket = dir.join("native");
        let mut command = Command::new("pulseaudio");
        command
            .args([
                "--daemonize=no",
                "-n",
                "--exit-idle-time=-1",
                "--use-pid-file=no",
            ])
            .arg(format!(
                "--load=module-native-protocol-unix auth-anonymous=1 socket={}",
                socket.display()
            ));
        for module in modules {
            command.arg(format!("--load={module}"));
        }
        let child = command
            .env("PULSE_RUNTIME_PATH", &dir)
            .env("HOME", &dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("pulseaudio (Debian package pulseaudio) must be installed");
        let pulse = Pulse { child, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !socket.exists() {
            assert!(Instant::now() < deadline, "pulseaudio did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        pulse
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.join("native")
    }
}

impl Drop for Pulse {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Points this process's sound devices at the server behind `socket`.
pub fn use_sound_server(socket: &Path) {
    // One test per binary: nothing else reads the environment meanwhile.
    std::env::set_var("PULSE_SERVER", format!("unix:{}", socket.display()));
}
