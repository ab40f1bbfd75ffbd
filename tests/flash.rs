//! What a run costs the flash, measured at the disk (issue 29): `state_dir` alone on an ext4
//! loop device of 4 KiB blocks mounted `commit=1`, a per-second job with `fsync: always`,
//! the sectors the device wrote (`/sys/block/loopN/stat`) between two points after warm-up.
//! Then a SIGKILL and a power cut (the tmpfs copies gone): every run the ring held is in
//! `runner status`. Needs root, losetup and mkfs.ext4 (a skip outside CI, a failure under
//! CI=true).

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const BLOCK: f64 = 4096.0;

/// The budget a run may cost at the disk, in 4 KiB blocks. The ring's record is one block,
/// rewritten in place; every write(2) to a file on ext4 also changes its mtime and i_version,
/// which the journal commits (descriptor, inode table block, commit block: 3 blocks) once per
/// commit interval that saw a write, lazytime or not. A per-second run shares a `commit=1`
/// commit with its neighbour about half the time (2.5 blocks a run, measured with a bare
/// pwrite + fdatasync loop); a run with a commit of its own costs 4. Before issue 29 a run
/// cost 8.75 blocks (the job file's rename in `state_dir`).
const BUDGET_BLOCKS: f64 = 4.0;

/// An ext4 image on a loop device mounted at `at`; unmounted and detached on drop.
struct Loop {
    dev: String,
    at: PathBuf,
}

impl Loop {
    fn mount(image: &Path, at: &Path, options: &str) -> Loop {
        std::fs::File::create(image).unwrap().set_len(64 << 20).unwrap();
        let mkfs = Command::new("mkfs.ext4")
            .args(["-q", "-F", "-b", "4096", "-E", "lazy_itable_init=0,lazy_journal_init=0"])
            .arg(image)
            .output()
            .unwrap();
        assert!(mkfs.status.success(), "mkfs.ext4: {}", stderr(&mkfs));
        let o = Command::new("losetup").args(["-f", "--show"]).arg(image).output().unwrap();
        assert!(o.status.success(), "losetup: {}", stderr(&o));
        let dev = stdout(&o).trim().to_string();
        std::fs::create_dir_all(at).unwrap();
        let l = Loop { dev, at: at.to_path_buf() };
        let m = Command::new("mount").args(["-o", options]).arg(&l.dev).arg(at).output().unwrap();
        assert!(m.status.success(), "mount: {}", stderr(&m));
        // runner refuses a state dir writable by others; a fresh ext4 root is 0755 root's.
        l
    }

    /// Sectors (512 bytes) the device has written since it was set up.
    fn sectors_written(&self) -> u64 {
        let name = Path::new(&self.dev).file_name().unwrap().to_string_lossy().into_owned();
        let stat = std::fs::read_to_string(format!("/sys/block/{name}/stat")).unwrap();
        stat.split_whitespace().nth(6).unwrap().parse().unwrap()
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.at).status();
        let _ = Command::new("losetup").args(["-d", &self.dev]).status();
    }
}

/// Whether this test can set up a loop device; says what is missing otherwise.
fn prerequisites() -> bool {
    if !nix::unistd::geteuid().is_root() {
        skip_missing("root (loop devices and mount)");
        return false;
    }
    for tool in ["losetup", "mkfs.ext4", "mount", "umount"] {
        if !have(tool) {
            skip_missing(&format!("{tool} (apt-get install util-linux e2fsprogs mount)"));
            return false;
        }
    }
    if !Path::new("/dev/loop-control").exists() {
        skip_missing("/dev/loop-control (the loop driver)");
        return false;
    }
    true
}

fn ring_runs(s: &Scratch, c: &Path) -> u64 {
    let o = s.runner(c).args(["logs", "--json", "--job", "tick"]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    stdout(&o)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["kind"] == "run")
        .count() as u64
}

fn status_runs(s: &Scratch, c: &Path) -> u64 {
    let o = s.runner(c).args(["status", "--json"]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", stderr(&o)));
    let jobs = v["jobs"].as_array().unwrap();
    jobs.iter().find(|j| j["name"] == "tick").unwrap()["runs"].as_u64().unwrap_or(0)
}

#[test]
fn a_run_costs_the_flash_a_few_blocks_and_a_sigkill_loses_none() {
    if skip_emulated("loop devices and disk statistics of the host") || !prerequisites() {
        return;
    }
    let s = Scratch::new("flash");
    let c = s.write(
        "supervisor.yaml",
        "version: 1\nlog:\n  fsync: always\njobs:\n  tick:\n    schedule: \"* * * * * *\"\n    run: \"true\"\n",
    );
    // state_dir is the mount itself: nothing else writes to the device.
    let dev = Loop::mount(&s.path("ext4.img"), &s.path("state"), "commit=1");
    let mut d = Daemon::start(&s, &c);
    let long = Duration::from_secs(60);
    // Warm-up: the ring made (written in full once) and the job's first copy in state_dir.
    wait_for(long, "three runs", || ring_runs(&s, &c) >= 3);
    std::thread::sleep(Duration::from_millis(1500));
    let (sectors0, runs0) = (dev.sectors_written(), ring_runs(&s, &c));
    wait_for(long, "sixteen more runs", || ring_runs(&s, &c) >= runs0 + 16);
    // The last run's journal commit lands within commit=1's second.
    std::thread::sleep(Duration::from_millis(1500));
    let (sectors1, runs1) = (dev.sectors_written(), ring_runs(&s, &c));
    let blocks = (sectors1 - sectors0) as f64 * 512.0 / BLOCK / (runs1 - runs0) as f64;
    println!("{} runs: {:.0} bytes at the disk a run ({blocks:.2} blocks of 4 KiB)", runs1 - runs0, blocks * BLOCK);
    assert!(blocks <= BUDGET_BLOCKS, "{blocks:.2} blocks a run at the disk, over {BUDGET_BLOCKS}");

    // SIGKILL: every run the ring holds is in status, from the tmpfs copy and the ring.
    d.child.kill().unwrap();
    d.child.wait().unwrap();
    remove_daemon_cgroups(d.child.id());
    let held = ring_runs(&s, &c);
    assert!(held >= runs1, "{held} runs in the ring");
    assert_eq!(status_runs(&s, &c), held, "after a SIGKILL, every run the ring holds is counted");
    // A power cut: runtime_dir's copies gone, state_dir's copy as the job's first run left it.
    std::fs::remove_dir_all(s.path("run/state")).unwrap();
    assert_eq!(status_runs(&s, &c), held, "after a power cut, every run the ring holds is counted");
    drop(dev);
}
