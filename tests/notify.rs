//! sd_notify: READY=1 once the config is loaded, WATCHDOG=1 at half of WATCHDOG_USEC,
//! RELOADING=1 and READY=1 around a reload, STOPPING=1 at the end; path and abstract
//! sockets; STATUS= when a run starts and ends; a reader that stops reading stalls nothing,
//! and what waited is sent once it reads again. And `<N>` priority prefixes when stderr is the
//! journal stream.

mod common;
use common::*;
use nix::sys::signal::Signal;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::{Duration, Instant};

fn recv_until(sock: &UnixDatagram, want: &str, limit: Duration, seen: &mut Vec<String>) {
    let deadline = Instant::now() + limit;
    let mut buf = [0u8; 4096];
    loop {
        if seen.iter().any(|m| m.contains(want)) {
            return;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "no {want:?} within {limit:?}; got {seen:?}");
        sock.set_read_timeout(Some(left)).unwrap();
        if let Ok(n) = sock.recv(&mut buf) {
            seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
}

fn config(s: &Scratch) -> std::path::PathBuf {
    s.write("supervisor.yaml", "version: 1\njobs:\n  a:\n    every: 1h\n    run: \"true\"\n")
}

#[test]
fn lifecycle_messages_reach_a_path_socket() {
    let s = Scratch::new("notify-path");
    let sock_path = s.path("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    let c = config(&s);
    let mut d =
        Daemon::start_with(&s, &c, &[("NOTIFY_SOCKET", sock_path.to_str().unwrap()), ("WATCHDOG_USEC", "400000")]);
    let mut seen = Vec::new();
    recv_until(&sock, "READY=1", Duration::from_secs(20), &mut seen);
    assert!(seen[0].starts_with("READY=1\nSTATUS=1 job(s)"), "{seen:?}");
    // 400 ms watchdog: pings every 200 ms, so several within a few seconds.
    let t = Instant::now();
    for _ in 0..3 {
        let before = seen.iter().filter(|m| *m == "WATCHDOG=1").count();
        let deadline = Instant::now() + Duration::from_secs(10);
        while seen.iter().filter(|m| *m == "WATCHDOG=1").count() == before {
            assert!(Instant::now() < deadline, "watchdog pings stopped: {seen:?}");
            let mut buf = [0u8; 4096];
            sock.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
            if let Ok(n) = sock.recv(&mut buf) {
                seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
        }
    }
    assert!(t.elapsed() >= Duration::from_millis(350), "three pings at 200 ms spacing take at least 400 ms");

    d.signal(Signal::SIGHUP);
    recv_until(&sock, "RELOADING=1", Duration::from_secs(20), &mut seen);
    let reloading = seen.iter().find(|m| m.contains("RELOADING=1")).unwrap().clone();
    assert!(reloading.contains("MONOTONIC_USEC="), "{reloading}");
    // READY=1 again once the reload is done.
    let mut tail = Vec::new();
    recv_until(&sock, "READY=1", Duration::from_secs(20), &mut tail);

    d.signal(Signal::SIGTERM);
    let mut end = Vec::new();
    recv_until(&sock, "STOPPING=1", Duration::from_secs(20), &mut end);
    assert!(d.wait_exit(Duration::from_secs(20)).success());
}

#[test]
fn abstract_sockets_work_and_no_socket_is_fine() {
    let s = Scratch::new("notify-abstract");
    let name = format!("runner-test-{}", std::process::id());
    let sock = UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap()).unwrap();
    let c = config(&s);
    let mut d = Daemon::start_with(&s, &c, &[("NOTIFY_SOCKET", &format!("@{name}"))]);
    let mut seen = Vec::new();
    recv_until(&sock, "READY=1", Duration::from_secs(20), &mut seen);
    d.signal(Signal::SIGTERM);
    assert!(d.wait_exit(Duration::from_secs(20)).success());
    // No watchdog without WATCHDOG_USEC.
    assert!(!seen.iter().any(|m| m.contains("WATCHDOG=1")), "{seen:?}");

    // Without NOTIFY_SOCKET the daemon runs all the same.
    let mut d = Daemon::start(&s, &c);
    wait_for(Duration::from_secs(20), "startup", || d.log_text().contains("runner started"));
    d.signal(Signal::SIGTERM);
    assert!(d.wait_exit(Duration::from_secs(20)).success());
}

#[test]
fn journal_stream_without_a_journal_socket_falls_back_to_priority_prefixes() {
    use std::os::unix::fs::MetadataExt;
    let s = Scratch::new("journal-stream");
    let c = s.write("supervisor.yaml", "version: 1\njobs:\n  bad:\n    every: 1h\n    run: \"exit 3\"\n");
    let err_path = s.path("stderr");
    let f = std::fs::File::create(&err_path).unwrap();
    let meta = f.metadata().unwrap();
    let stream = format!("{}:{}", meta.dev(), meta.ino());
    let o = s.runner(&c).args(["once", "bad"]).env("JOURNAL_STREAM", &stream).stderr(f).output().unwrap();
    assert_eq!(o.status.code(), Some(3));
    let text = std::fs::read_to_string(&err_path).unwrap();
    assert!(text.lines().any(|l| l.starts_with("<3>job bad failure (exit 3)")), "{text}");
}

/// Every datagram already queued on the socket, without waiting.
fn drain_now(sock: &UnixDatagram) -> Vec<String> {
    sock.set_nonblocking(true).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = sock.recv(&mut buf) {
        got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    sock.set_nonblocking(false).unwrap();
    got
}

fn queue_limit() -> usize {
    std::fs::read_to_string("/proc/sys/net/unix/max_dgram_qlen").unwrap().trim().parse().unwrap()
}

#[test]
fn a_reader_that_stops_reading_stops_neither_jobs_nor_sigterm() {
    let s = Scratch::new("notify-stuck");
    let sock_path = s.path("notify.sock");
    // Bound, never read: the kernel queue fills after max_dgram_qlen datagrams.
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    let fires = s.path("fires");
    let c = s.write(
        "supervisor.yaml",
        &format!("version: 1\njobs:\n  tick:\n    every: 200ms\n    run: \"echo x >> {}\"\n", fires.display()),
    );
    // A ping every 50 ms and two STATUS= per run: the queue is full well within a second.
    let mut d =
        Daemon::start_with(&s, &c, &[("NOTIFY_SOCKET", sock_path.to_str().unwrap()), ("WATCHDOG_USEC", "100000")]);
    wait_for(Duration::from_secs(20), "the first fire", || !lines(&fires).is_empty());
    std::thread::sleep(Duration::from_millis(500));
    let full_at = lines(&fires).len();
    // Jobs keep firing with the reader's queue full.
    wait_for(Duration::from_secs(20), "fires with the queue full", || lines(&fires).len() >= full_at + 10);
    let t = Instant::now();
    d.signal(Signal::SIGTERM);
    assert!(d.wait_exit(Duration::from_secs(5)).success(), "{}", d.log_text());
    assert!(t.elapsed() < Duration::from_secs(5));
    // The queue did fill: the reader finds no more than the kernel holds, far fewer than sent.
    let got = drain_now(&sock);
    assert!(got.len() <= queue_limit() + 1, "{} datagrams queued: {got:?}", got.len());
    assert!(got.len() >= queue_limit(), "the queue never filled: {got:?}");
}

#[test]
fn what_waited_for_a_full_queue_is_sent_when_the_reader_reads_again() {
    let s = Scratch::new("notify-resume");
    let sock_path = s.path("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    let c = config(&s);
    let mut d = Daemon::start_with(&s, &c, &[("NOTIFY_SOCKET", sock_path.to_str().unwrap())]);
    wait_for(Duration::from_secs(20), "startup", || d.log_text().contains("runner started"));
    // Each reload sends RELOADING=1 and READY=1; nothing else is sent, so once the queue is
    // full the last READY=1 can only arrive through the retry when the reader makes room.
    let reloads = queue_limit() / 2 + 3;
    for i in 1..=reloads {
        d.signal(Signal::SIGHUP);
        wait_for(Duration::from_secs(20), "the reload", || d.log_text().matches("reloaded ").count() >= i);
    }
    // The queue is full now: a datagram of our own does not fit. (Counting what the first
    // drain gets cannot show it: the daemon's retry refills the queue as the drain reads.)
    let probe = UnixDatagram::unbound().unwrap();
    probe.set_nonblocking(true).unwrap();
    let e = probe.send_to(b"probe", &sock_path).expect_err("the queue never filled");
    assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock, "{e}");
    let mut seen = drain_now(&sock);
    let ready = |seen: &Vec<String>| seen.iter().filter(|m| m.starts_with("READY=1")).count();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 4096];
    while ready(&seen) < reloads + 1 {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "only {} of {} READY=1 arrived: {seen:?}", ready(&seen), reloads + 1);
        sock.set_read_timeout(Some(left)).unwrap();
        if let Ok(n) = sock.recv(&mut buf) {
            seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
    // In order: every RELOADING=1 before its READY=1, the last message a READY=1.
    assert!(seen.last().unwrap().starts_with("READY=1"), "{seen:?}");
    d.signal(Signal::SIGTERM);
    recv_until(&sock, "STOPPING=1", Duration::from_secs(20), &mut seen);
    assert!(d.wait_exit(Duration::from_secs(20)).success());
}

#[test]
fn status_says_a_job_is_running_while_it_runs() {
    let s = Scratch::new("notify-status");
    let sock_path = s.path("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    let out = s.path("out");
    let c = s.write(
        "supervisor.yaml",
        &format!(
            "version: 1\njobs:\n  slow:\n    every: 3s\n    run: \"echo start >> {0}; sleep 1; echo end >> {0}\"\n",
            out.display()
        ),
    );
    let mut d = Daemon::start_with(&s, &c, &[("NOTIFY_SOCKET", sock_path.to_str().unwrap())]);
    let mut seen = Vec::new();
    recv_until(&sock, "STATUS=1 job(s), 1 running", Duration::from_secs(20), &mut seen);
    // Sent when the run started, not after it: the run has not ended yet.
    let text = std::fs::read_to_string(&out).unwrap_or_default();
    assert!(!text.contains("end"), "{text:?} {seen:?}");
    let mut after = Vec::new();
    recv_until(&sock, "STATUS=1 job(s), 0 running", Duration::from_secs(20), &mut after);
    assert!(std::fs::read_to_string(&out).unwrap().contains("end"));
    d.signal(Signal::SIGTERM);
    assert!(d.wait_exit(Duration::from_secs(20)).success());
}
