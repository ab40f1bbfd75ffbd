//! Packaging, as root on this machine: build the .deb and .rpm with `packaging/build`, lint
//! them, and install, upgrade, remove and purge each inside an overlay of / in a private
//! mount namespace, so the host is never changed. The installed binary is started the way
//! the unit starts it, and READY=1 and WATCHDOG=1 must arrive.

mod common;
use common::{have, skip_emulated};

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Under CI a missing prerequisite fails; elsewhere the test says so and returns.
fn prerequisites() -> bool {
    let tools = ["unshare", "chroot", "dpkg", "lintian", "rpm", "cargo-deb", "cargo-generate-rpm"];
    common::root_and_tools(&tools, ".ci/run installs them")
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

/// Both tests run `packaging/build`, which regenerates target/packaging: one at a time.
static BUILDING: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn deb_and_rpm_build_lint_install_upgrade_and_purge() {
    if skip_emulated(
        "builds and installs the host's packages; the arm ones are built natively by packages_for_each_target",
    ) {
        return;
    }
    if !prerequisites() {
        return;
    }
    let _one = BUILDING.lock().unwrap_or_else(|e| e.into_inner());
    let out = common::run_tool(Command::new("bash").arg(format!("{ROOT}/packaging/build")).current_dir(ROOT));
    println!("{out}");
    let pkg = Path::new(ROOT).join("target/packaging");
    let deb1 = only(&pkg, "deb");
    let rpm1 = only(&pkg, "rpm");

    // The binary loads on glibc 2.34 (Ubuntu 22.04, RHEL 9): no DT_RELR (build.rs), whose
    // glibc 2.36 requirement dpkg-shlibdeps would not even see.
    let binary = std::fs::read(Path::new(ROOT).join("target/release/runner")).unwrap();
    assert!(!binary.windows(17).any(|w| w == b"GLIBC_ABI_DT_RELR"), "the binary needs glibc 2.36 (DT_RELR)");
    let requires = common::run_tool(Command::new("rpm").args(["-qp", "--requires"]).arg(&rpm1));
    assert!(!requires.contains("GLIBC_ABI_DT_RELR"), "{requires}");
    // Nor libgcc_s: its unwinder is linked in (build.rs).
    assert!(!requires.contains("libgcc_s"), "{requires}");

    // A newer build of each, for the upgrade.
    let next = scratch("next");
    common::run_tool(
        Command::new("cargo")
            .args(["deb", "--no-build", "--no-strip", "--deb-revision", "2", "--output"])
            .arg(&next)
            .current_dir(ROOT),
    );
    common::run_tool(
        Command::new("cargo")
            .args(["generate-rpm", "--set-metadata", "release = \"2\"", "--output"])
            .arg(&next)
            .current_dir(ROOT),
    );
    let deb2 = only(&next, "deb");
    let rpm2 = only(&next, "rpm");

    // lintian: no errors (warnings are fixed or overridden with a reason in
    // packaging/debian/lintian-overrides).
    // Its cache files (mldbm-*, which it never removes) go to a directory of the test's own.
    let lint_tmp = scratch("lintian");
    let lint = common::run_tool(
        Command::new("lintian").env("TMPDIR", &lint_tmp).args(["--fail-on", "error,warning"]).arg(&deb1),
    );
    assert!(!lint.lines().any(|l| l.starts_with("E:") || l.starts_with("W:")), "{lint}");

    // The README's pages under docs/ go beside it, so its links work where it is installed.
    let listing = common::run_tool(Command::new("dpkg-deb").arg("-c").arg(&deb1));
    let rpm_files = common::run_tool(Command::new("rpm").arg("-qlp").arg(&rpm1));
    for page in std::fs::read_dir(Path::new(ROOT).join("docs")).unwrap() {
        let name = page.unwrap().file_name().to_string_lossy().into_owned();
        let installed = format!("/usr/share/doc/runner/docs/{name}");
        assert!(listing.contains(&format!(".{installed}")), "the .deb lacks {installed}:\n{listing}");
        assert!(rpm_files.lines().any(|l| l == installed), "the .rpm lacks {installed}:\n{rpm_files}");
    }

    // The config is %config(noreplace), and the scriptlets are there.
    let rpm_q = common::run_tool(Command::new("rpm").args(["-qp", "--scripts", "--configfiles"]).arg(&rpm1));
    assert!(rpm_q.contains("/etc/supervisor.yaml"), "{rpm_q}");
    assert!(rpm_q.contains("postinstall scriptlet"), "{rpm_q}");
    let flags =
        common::run_tool(Command::new("rpm").args(["-qp", "--qf", "[%{FILENAMES} %{FILEFLAGS:fflags}\\n]"]).arg(&rpm1));
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
    let text = common::run_tool(
        Command::new("timeout")
            .args(["300", "unshare", "-m", "bash", &script])
            .arg(&s)
            .arg(&deb1)
            .arg(&deb2)
            .arg(&sock_dir),
    );
    println!("{text}");
    assert!(text.lines().any(|l| l == "ok"), "{text}");
    assert!(text.contains("Overall exposure level"), "{text}");
    assert_eq!(listener.join().unwrap(), (true, true));

    let s = scratch("rpm");
    let script = format!("{ROOT}/tests/packaging/install-rpm.sh");
    let text = common::run_tool(
        Command::new("timeout").args(["300", "unshare", "-m", "bash", &script]).arg(&s).arg(&rpm1).arg(&rpm2),
    );
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

/// The ELF machine of a binary: 62 x86_64, 183 aarch64, 40 arm.
fn elf_machine(bin: &[u8]) -> u16 {
    assert_eq!(&bin[..4], b"\x7fELF", "not an ELF file");
    u16::from_le_bytes([bin[18], bin[19]])
}

/// Whether a binary asks for a program interpreter (a dynamic loader): a PT_INTERP program
/// header. The static builds have none.
fn has_interpreter(bin: &[u8]) -> bool {
    let is64 = bin[4] == 2;
    let word = |at: usize, n: usize| bin[at..at + n].iter().rev().fold(0u64, |v, &b| (v << 8) | u64::from(b)) as usize;
    let (phoff, phentsize, phnum) =
        if is64 { (word(32, 8), word(54, 2), word(56, 2)) } else { (word(28, 4), word(42, 2), word(44, 2)) };
    (0..phnum).any(|i| word(phoff + i * phentsize, 4) == 3)
}

/// `packaging/build --target T` for the cross targets: a .deb and .rpm of the right
/// architecture and dependencies, lintian-clean, for the glibc ones; a tarball whose
/// SHA256SUMS checks and whose binary is static for the musl ones.
#[test]
fn packages_for_each_target() {
    if skip_emulated("builds the packages of every target natively") {
        return;
    }
    if !prerequisites() {
        return;
    }
    for (tool, why) in
        [("aarch64-linux-gnu-gcc", "gcc-aarch64-linux-gnu"), ("arm-linux-gnueabihf-gcc", "gcc-arm-linux-gnueabihf")]
    {
        if !have(tool) {
            common::skip_missing(&format!("{tool} ({why}; .ci/run installs it)"));
            return;
        }
    }
    for loader in ["/lib/ld-linux-aarch64.so.1", "/lib/ld-linux-armhf.so.3"] {
        if !Path::new(loader).exists() {
            common::skip_missing(&format!("{loader} (libc6:arm64 and libc6:armhf by multiarch, for dpkg-shlibdeps)"));
            return;
        }
    }
    let _one = BUILDING.lock().unwrap_or_else(|e| e.into_inner());
    let pkg = Path::new(ROOT).join("target/packaging");
    for (triple, deb_arch, rpm_arch, machine) in [
        ("aarch64-unknown-linux-gnu", "arm64", "aarch64", 183),
        ("armv7-unknown-linux-gnueabihf", "armhf", "armv7hl", 40),
    ] {
        let out = common::run_tool(
            Command::new("bash").arg(format!("{ROOT}/packaging/build")).args(["--target", triple]).current_dir(ROOT),
        );
        println!("{out}");
        let dir = pkg.join(triple);
        let deb = only(&dir, "deb");
        let rpm = only(&dir, "rpm");

        let fields =
            common::run_tool(Command::new("dpkg-deb").args(["-f"]).arg(&deb).args(["Architecture", "Depends"]));
        assert!(fields.contains(&format!("Architecture: {deb_arch}\n")), "{triple}: {fields}");
        // dpkg-shlibdeps found the foreign libc (multiarch): a versioned libc6 dependency.
        assert!(fields.contains("Depends: libc6 (>= 2."), "{triple}: {fields}");
        let unpacked = scratch(&format!("deb-{triple}"));
        common::run_tool(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&unpacked));
        let bin = std::fs::read(unpacked.join("usr/bin/runner")).unwrap();
        let _ = std::fs::remove_dir_all(&unpacked);
        assert_eq!(elf_machine(&bin), machine, "{triple}: the .deb's binary");

        let lint = common::run_tool(Command::new("lintian").args(["--fail-on", "error,warning"]).arg(&deb));
        assert!(!lint.lines().any(|l| l.starts_with("E:") || l.starts_with("W:")), "{triple}: {lint}");

        let arch = common::run_tool(Command::new("rpm").args(["-qp", "--qf", "%{ARCH}"]).arg(&rpm));
        assert_eq!(arch.trim(), rpm_arch, "{triple}");
        let requires = common::run_tool(Command::new("rpm").args(["-qp", "--requires"]).arg(&rpm));
        assert!(requires.contains("libc.so.6"), "{triple}: {requires}");
        assert!(!requires.contains("GLIBC_ABI_DT_RELR") && !requires.contains("libgcc_s"), "{triple}: {requires}");
        if have("rpmlint") {
            let o = Command::new("rpmlint").arg(&rpm).output().unwrap();
            println!("rpmlint {triple} (advice, not enforced):\n{}", String::from_utf8_lossy(&o.stdout));
        }
    }

    let version = env!("CARGO_PKG_VERSION");
    for (triple, machine) in [("x86_64-unknown-linux-musl", 62), ("aarch64-unknown-linux-musl", 183)] {
        let out = common::run_tool(
            Command::new("bash").arg(format!("{ROOT}/packaging/build")).args(["--target", triple]).current_dir(ROOT),
        );
        println!("{out}");
        let dir = pkg.join(triple);
        let name = format!("runner-{version}-{triple}");
        assert!(out.contains(&format!("{name}.tar.gz")), "{out}");
        common::run_tool(Command::new("sha256sum").args(["-c", "SHA256SUMS"]).current_dir(&dir));
        let s = scratch(&format!("tar-{triple}"));
        common::run_tool(Command::new("tar").arg("-xzf").arg(dir.join(format!("{name}.tar.gz"))).arg("-C").arg(&s));
        let top = s.join(&name);
        let sums = common::run_tool(Command::new("sha256sum").args(["-c", "SHA256SUMS"]).current_dir(&top));
        for f in
            ["runner", "supervisor.yaml", "runner.service", "man/man1/runner.1.gz", "man/man5/supervisor.yaml.5.gz"]
        {
            assert!(sums.contains(&format!("{f}: OK")), "{triple}: {f} not in SHA256SUMS:\n{sums}");
        }
        let bin = std::fs::read(top.join("runner")).unwrap();
        assert_eq!(elf_machine(&bin), machine, "{triple}");
        assert!(!has_interpreter(&bin), "{triple}: the binary is not static");
        if machine == 62 {
            // The static binary runs here, and checks the shipped config.
            let o = common::run_tool(
                Command::new(top.join("runner")).args(["check", "--config"]).arg(top.join("supervisor.yaml")),
            );
            println!("{o}");
        }
        let _ = std::fs::remove_dir_all(&s);
    }
}
