//! A job's start never holds the daemon. One job's working directory is on a FUSE mount
//! this test serves, whose lookups it holds (as a hung NFS or FUSE mount holds them): that
//! job's process waits in its `chdir`, while a per-second job keeps firing on time and
//! SIGTERM still stops the daemon. Before, the start suspended the event loop until the
//! mount let go.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use nix::sys::signal::Signal;

/// The FUSE server (tests/fuse/hold.py), unmounted and ended when dropped.
struct Mount {
    server: Child,
    at: std::path::PathBuf,
    state: std::path::PathBuf,
}

impl Mount {
    /// None (after `skip_missing`) without /dev/fuse or fusepy.
    fn serve(s: &Scratch) -> Option<Mount> {
        let python = Path::new("/usr/bin/python3");
        let fusepy = python.exists()
            && Command::new(python)
                .args(["-c", "import fusepy"])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|st| st.success());
        if !Path::new("/dev/fuse").exists() || !fusepy {
            skip_missing("/dev/fuse and fusepy (apt-get install python3-fusepy libfuse2)");
            return None;
        }
        let (at, state) = (s.path("mnt"), s.path("fuse-state"));
        std::fs::create_dir_all(&at).unwrap();
        std::fs::create_dir_all(&state).unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuse/hold.py");
        let server = Command::new(python)
            .arg(script)
            .args([&at, &state])
            .stdin(Stdio::null())
            .stderr(std::fs::File::create(s.path("fuse.log")).unwrap())
            .spawn()
            .unwrap();
        let m = Mount { server, at, state };
        wait_for(Duration::from_secs(20), "the FUSE mount", || m.state.join("ready").exists());
        Some(m)
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = std::fs::write(self.state.join("release"), "");
        std::thread::sleep(Duration::from_millis(200));
        let _ = Command::new("umount").arg("-l").arg(&self.at).status();
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

/// The fire times (seconds since the epoch) the tick job appended.
fn ticks(p: &Path) -> Vec<f64> {
    lines(p).iter().filter_map(|l| l.trim().parse().ok()).collect()
}

#[test]
fn a_start_stuck_on_a_held_mount_stops_neither_other_jobs_nor_sigterm() {
    let s = Scratch::new("start-blocked");
    let Some(mount) = Mount::serve(&s) else { return };
    let tick = s.path("tick.out");
    let c = s.write(
        "supervisor.yaml",
        &format!(
            "version: 1\njobs:\n  tick:\n    every: 1s\n    run: \"date +%s.%N >> {}\"\n  \
             stuck:\n    every: 2s\n    workdir: {}\n    run: \"true\"\n",
            tick.display(),
            mount.at.join("held").display()
        ),
    );
    let mut d = Daemon::start(&s, &c);
    wait_for(Duration::from_secs(30), "the stuck job's chdir to reach the mount", || {
        mount.state.join("asked").exists()
    });
    let held_since = Instant::now();
    let before = ticks(&tick).len();
    // Eight seconds of a held start: the per-second job fires about eight times, none late
    // by a second (on 2 noisy cores, a generous bound: when the start held the loop, no
    // fire came at all until the mount let go).
    std::thread::sleep(Duration::from_secs(8));
    let all = ticks(&tick);
    let during = &all[before.saturating_sub(1)..];
    assert!(all.len() - before >= 5, "{} fires in 8 s while a start was held:\n{}", all.len() - before, d.log_text());
    let worst = during.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);
    assert!(worst < 2.5, "a gap of {worst:.2} s between per-second fires while a start was held");
    assert!(!mount.state.join("release").exists() && held_since.elapsed() >= Duration::from_secs(8));

    // The mount still holds: SIGTERM stops the daemon all the same (the stuck start is
    // SIGKILLed; the kernel ends it once the lookup returns).
    d.signal(Signal::SIGTERM);
    let st = d.wait_exit(Duration::from_secs(30));
    assert!(st.success(), "{st:?}\n{}", d.log_text());
    assert!(!mount.state.join("release").exists(), "the mount let go before the daemon stopped");
}
