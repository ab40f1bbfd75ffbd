//! Packaging, as root on this machine: build the .deb and .rpm with `packaging/build`, lint
//! them, and install, upgrade, remove and purge each inside an overlay of / in a private
//! mount namespace, so the host is never changed. The installed binary is started the way
//! the unit starts it, and READY=1 and WATCHDOG=1 must arrive.

mod common;
use common::have;

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Under CI a missing prerequisite fails; elsewhere the test says so and returns.
fn prerequisites() -> bool {
    let mut missing = Vec::new();
    if !nix::unistd::geteuid().is_root() {
        missing.push("root".to_string());
    }
    for cmd in ["unshare", "chroot", "dpkg", "lintian", "rpm", "cargo-deb", "cargo-generate-rpm"] {
        if !have(cmd) {
            missing.push(cmd.to_string());
        }
    }
    if missing.is_empty() {
        return true;
    }
    common::skip_missing(&format!("{} (.ci/run installs them)", missing.join(", ")));
    false
}

fn run(cmd: &mut Command) -> String {
    let o = cmd.output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "{cmd:?} failed:\n{text}");
    text
}

fn scratch(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("pkg-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn only(dir: &Path, ext: &str) -> PathBuf {
    let v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    assert_eq!(v.len(), 1, "one .{ext} in {}: {v:?}", dir.display());
    v.into_iter().next().unwrap()
}

#[test]
fn deb_and_rpm_build_lint_install_upgrade_and_purge() {
    if !prerequisites() {
        return;
    }
    let out = run(Command::new("bash").arg(format!("{ROOT}/packaging/build")).current_dir(ROOT));
    println!("{out}");
    let pkg = Path::new(ROOT).join("target/packaging");
    let deb1 = only(&pkg, "deb");
    let rpm1 = only(&pkg, "rpm");

    // The binary loads on glibc 2.34 (Ubuntu 22.04, RHEL 9): no DT_RELR (build.rs), whose
    // glibc 2.36 requirement dpkg-shlibdeps would not even see.
    let binary = std::fs::read(Path::new(ROOT).join("target/release/runner")).unwrap();
    assert!(!binary.windows(17).any(|w| w == b"GLIBC_ABI_DT_RELR"), "the binary needs glibc 2.36 (DT_RELR)");
    let requires = run(Command::new("rpm").args(["-qp", "--requires"]).arg(&rpm1));
    assert!(!requires.contains("GLIBC_ABI_DT_RELR"), "{requires}");
    // Nor libgcc_s: its unwinder is linked in (build.rs).
    assert!(!requires.contains("libgcc_s"), "{requires}");

    // A newer build of each, for the upgrade.
    let next = scratch("next");
    run(Command::new("cargo")
        .args(["deb", "--no-build", "--no-strip", "--deb-revision", "2", "--output"])
        .arg(&next)
        .current_dir(ROOT));
    run(Command::new("cargo")
        .args(["generate-rpm", "--set-metadata", "release = \"2\"", "--output"])
        .arg(&next)
        .current_dir(ROOT));
    let deb2 = only(&next, "deb");
    let rpm2 = only(&next, "rpm");

    // lintian: no errors (warnings are fixed or overridden with a reason in
    // packaging/debian/lintian-overrides).
    // Its cache files (mldbm-*, which it never removes) go to a directory of the test's own.
    let lint_tmp = scratch("lintian");
    let lint = run(Command::new("lintian").env("TMPDIR", &lint_tmp).args(["--fail-on", "error,warning"]).arg(&deb1));
    assert!(!lint.lines().any(|l| l.starts_with("E:") || l.starts_with("W:")), "{lint}");

    // The README's pages under docs/ go beside it, so its links work where it is installed.
    let listing = run(Command::new("dpkg-deb").arg("-c").arg(&deb1));
    let rpm_files = run(Command::new("rpm").arg("-qlp").arg(&rpm1));
    for page in std::fs::read_dir(Path::new(ROOT).join("docs")).unwrap() {
        let name = page.unwrap().file_name().to_string_lossy().into_owned();
        let installed = format!("/usr/share/doc/runner/docs/{name}");
        assert!(listing.contains(&format!(".{installed}")), "the .deb lacks {installed}:\n{listing}");
        assert!(rpm_files.lines().any(|l| l == installed), "the .rpm lacks {installed}:\n{rpm_files}");
    }

    // The config is %config(noreplace), and the scriptlets are there.
    let rpm_q = run(Command::new("rpm").args(["-qp", "--scripts", "--configfiles"]).arg(&rpm1));
    assert!(rpm_q.contains("/etc/supervisor.yaml"), "{rpm_q}");
    assert!(rpm_q.contains("postinstall scriptlet"), "{rpm_q}");
    let flags = run(Command::new("rpm").args(["-qp", "--qf", "[%{FILENAMES} %{FILEFLAGS:fflags}\\n]"]).arg(&rpm1));
    assert!(flags.lines().any(|l| l == "/etc/supervisor.yaml cn"), "noreplace flags: {flags}");
    if have("rpmlint") {
        let o = Command::new("rpmlint").arg(&rpm1).output().unwrap();
        println!("rpmlint (advice for Fedora-style packaging, not enforced):\n{}", String::from_utf8_lossy(&o.stdout));
    }

    // Install, upgrade, remove, purge the .deb in an overlay; listen for sd_notify from the
    // binary started inside it.
    let s = scratch("deb");
    let sock_dir = s.join("notify");
    std::fs::create_dir_all(&sock_dir).unwrap();
    let sock = UnixDatagram::bind(sock_dir.join("notify.sock")).unwrap();
    let listener = std::thread::spawn({
        let sock_dir = sock_dir.clone();
        move || {
            let (mut ready, mut watchdog) = (false, false);
            let deadline = Instant::now() + Duration::from_secs(600);
            let mut buf = [0u8; 1024];
            sock.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
            while !(ready && watchdog) && Instant::now() < deadline {
                if let Ok(n) = sock.recv(&mut buf) {
                    let m = String::from_utf8_lossy(&buf[..n]);
                    ready |= m.contains("READY=1");
                    watchdog |= ready && m.contains("WATCHDOG=1");
                }
            }
            if ready && watchdog {
                std::fs::write(sock_dir.join("done"), "").unwrap();
            }
            (ready, watchdog)
        }
    });
    let script = format!("{ROOT}/tests/packaging/install-deb.sh");
    // A bounded wait: a stuck install must fail the test, not hang CI.
    let text = run(Command::new("timeout")
        .args(["300", "unshare", "-m", "bash", &script])
        .arg(&s)
        .arg(&deb1)
        .arg(&deb2)
        .arg(&sock_dir));
    println!("{text}");
    assert!(text.lines().any(|l| l == "ok"), "{text}");
    assert!(text.contains("Overall exposure level"), "{text}");
    assert_eq!(listener.join().unwrap(), (true, true));

    let s = scratch("rpm");
    let script = format!("{ROOT}/tests/packaging/install-rpm.sh");
    let text =
        run(Command::new("timeout").args(["300", "unshare", "-m", "bash", &script]).arg(&s).arg(&rpm1).arg(&rpm2));
    println!("{text}");
    assert!(text.lines().any(|l| l == "ok"), "{text}");

    // The overlays really were private: the host's dpkg never heard of the package.
    let host = Command::new("dpkg-query").args(["-W", "-f=${Status}", "runner"]).output().unwrap();
    assert!(!String::from_utf8_lossy(&host.stdout).contains("installed"), "the host got the package");
    for d in ["deb", "rpm", "next", "lintian"] {
        let _ = std::fs::remove_dir_all(scratch_path(d));
    }
}

fn scratch_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("pkg-{name}-{}", std::process::id()))
}
