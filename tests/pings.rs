//! `notify:` pings through the durable outbox, against a real Python HTTP server on
//! 127.0.0.1 that the test stops and restarts: what a run's end wrote is delivered, in
//! order, across 3 receiver outages and 20 kill -9s of the daemon (at most one duplicate per
//! kill, found by the `X-Runner-Ping-Id` header); start, success and `exit_status`
//! failures go to the healthchecks.io URLs.

mod common;
use common::*;

use nix::sys::signal::Signal;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const LONG: Duration = Duration::from_secs(60);

/// Logs each POST (path, ping id, body) as a JSON line, then answers 200: a kill between
/// the two is a duplicate to the sender, never a loss.
const SERVER: &str = r#"
import http.server, json, sys
port, log = int(sys.argv[1]), sys.argv[2]
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n).decode("utf-8", "replace")
        with open(log, "a") as f:
            f.write(json.dumps({"path": self.path, "id": self.headers.get("X-Runner-Ping-Id"), "body": body}) + "\n")
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"OK")
    def log_message(self, *a):
        pass
http.server.HTTPServer.allow_reuse_address = True
srv = http.server.HTTPServer(("127.0.0.1", port), H)
if len(sys.argv) > 4:
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(sys.argv[3], sys.argv[4])
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
srv.serve_forever()
"#;

struct Server {
    child: Child,
}

impl Server {
    fn start(script: &Path, port: u16, log: &Path) -> Server {
        Server::start_tls(script, port, log, &[])
    }

    /// With `tls` (certificate and key files), the server speaks HTTPS.
    fn start_tls(script: &Path, port: u16, log: &Path, tls: &[&Path]) -> Server {
        let child = Command::new("python3")
            .arg(script)
            .arg(port.to_string())
            .arg(log)
            .args(tls)
            .stdout(Stdio::null())
            .spawn()
            .expect("python3 runs");
        // Up when it accepts a connection.
        wait_for(LONG, "the ping receiver to listen", || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
        Server { child }
    }

    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn received(log: &Path) -> Vec<serde_json::Value> {
    lines(log).iter().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn pending_pings(s: &Scratch) -> usize {
    std::fs::read_dir(s.path("state/outbox/tick"))
        .map(|rd| rd.flatten().filter(|e| e.file_name().to_string_lossy().ends_with(".ping")).count())
        .unwrap_or(0)
}

fn config(s: &Scratch, port: u16, enabled: bool) -> PathBuf {
    // Each run's body is its start in ns (runs of a job never overlap, so they increase; a
    // counter file would be emptied by a kill -9 mid-write). About every 4th fails with exit 3.
    s.write(
        "supervisor.yaml",
        &format!(
            "version: 1\njobs:\n  tick:\n    enabled: {enabled}\n    every: 300ms\n    run: \"n=$(date +%s%N); echo seq-$n; [ $((n % 4)) -ne 0 ] || exit 3\"\n    notify:\n      url: http://127.0.0.1:{port}/ping/abc/\n      on: [start, success, failure]\n      exit_status: true\n"
        ),
    )
}

fn kill9(d: &mut Daemon) {
    d.signal(Signal::SIGKILL);
    d.wait_exit(LONG);
}

/// The bodies of the end pings the run log shows, in order.
fn ended_runs(s: &Scratch, c: &Path) -> Vec<String> {
    let o = s.runner(c).args(["logs", "--json"]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    stdout(&o)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["job"] == "tick" && v["last_attempt"] == true)
        .filter(|v| v["outcome"] == "success" || v["outcome"] == "failure")
        .map(|v| v["output"].as_str().unwrap().trim().to_string())
        .collect()
}

#[test]
fn pings_survive_receiver_outages_and_kill_9_in_order() {
    if !have("python3") {
        return skip_missing("python3");
    }
    let s = Scratch::new("pings");
    let script = s.write("server.py", SERVER);
    let (port, log) = (free_port(), s.path("received.jsonl"));
    let c = config(&s, port, true);
    let mut server = Server::start(&script, port, &log);
    let mut d = Daemon::start(&s, &c);
    wait_for(LONG, "the first pings", || received(&log).len() >= 4);
    let mut kills = 0;
    for _ in 0..3 {
        // An outage: runs go on, their pings wait in the outbox.
        server.stop();
        wait_for(LONG, "pings to queue in the outbox", || pending_pings(&s) >= 4);
        kill9(&mut d);
        kills += 1;
        d = Daemon::start(&s, &c);
        std::thread::sleep(Duration::from_millis(500));
        server = Server::start(&script, port, &log);
        let before = received(&log).len();
        wait_for(LONG, "delivery after the outage", || received(&log).len() >= before + 6);
        kill9(&mut d);
        kills += 1;
        d = Daemon::start(&s, &c);
    }
    // 14 more kills while the receiver is up, at varied points of delivery: 20 in all.
    for i in 0..14 {
        // The emulated daemon takes a second or two to start: the varied points are counted
        // from its start there, or it would be killed before any run (16 runs, not 20).
        if emulated() {
            wait_for(LONG, "the daemon's start", || d.log_text().contains("runner started"));
        }
        std::thread::sleep(Duration::from_millis(150 + 37 * i));
        kill9(&mut d);
        kills += 1;
        d = Daemon::start(&s, &c);
    }
    // No new runs: what is left in the outbox goes out, then the daemon stops.
    d.signal(Signal::SIGTERM);
    d.wait_exit(LONG);
    let c = config(&s, port, false);
    let mut d = Daemon::start(&s, &c);
    wait_for(LONG, "the outbox to empty", || pending_pings(&s) == 0);
    d.signal(Signal::SIGTERM);
    d.wait_exit(LONG);
    server.stop();

    let got = received(&log);
    let mut seen = HashSet::new();
    let mut dups = 0;
    let mut ends = Vec::new();
    for p in &got {
        let id = p["id"].as_str().expect("every ping has an id").to_string();
        if !seen.insert(id) {
            dups += 1;
            continue;
        }
        let (path, body) = (p["path"].as_str().unwrap(), p["body"].as_str().unwrap().trim().to_string());
        match path {
            "/ping/abc/start" => assert_eq!(body, ""),
            "/ping/abc" | "/ping/abc/3" => {
                let n: u64 = body.strip_prefix("seq-").unwrap().parse().unwrap();
                assert_eq!(path == "/ping/abc/3", n.is_multiple_of(4), "{p}");
                ends.push(body);
            }
            other => panic!("unexpected ping path {other}"),
        }
    }
    assert_eq!(kills, 20);
    assert!(dups <= kills, "{dups} duplicates for {kills} kills");
    eprintln!("{} pings received, {} distinct, {dups} duplicates over {kills} kills", got.len(), seen.len());
    let runs = ended_runs(&s, &c);
    assert!(runs.len() >= 20, "{} runs ended", runs.len());
    // In the order the runs ran; every run the log shows ended was pinged (a kill between a
    // ping's write and its record leaves a ping the log lacks: at most one per kill).
    let n = |b: &String| b.strip_prefix("seq-").unwrap().parse::<u64>().unwrap();
    assert!(ends.windows(2).all(|w| n(&w[0]) < n(&w[1])), "out of order: {ends:?}");
    let delivered: HashSet<&String> = ends.iter().collect();
    let lost: Vec<&String> = runs.iter().filter(|r| !delivered.contains(r)).collect();
    assert!(lost.is_empty(), "runs that ended but were never pinged: {lost:?}");
    assert!(ends.len() - runs.len() <= kills, "{} pings for {} recorded runs", ends.len(), runs.len());
    assert!(got.iter().any(|p| p["path"] == "/ping/abc/start"));
}

#[test]
fn notify_test_status_and_check_name_what_pings_need() {
    if !have("python3") {
        return skip_missing("python3");
    }
    let s = Scratch::new("pings-cli");
    let script = s.write("server.py", SERVER);
    let (port, log) = (free_port(), s.path("received.jsonl"));
    let plain = format!(
        "version: 1\njobs:\n  beat:\n    schedule: \"@yearly\"\n    run: \"echo beat-output\"\n    notify:\n      url: http://127.0.0.1:{port}/ping/beat\n"
    );
    let c = s.write("supervisor.yaml", &plain);
    let server = Server::start(&script, port, &log);
    let o = s.runner(&c).args(["notify-test", "beat"]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("delivered"), "{}", stdout(&o));
    let got = received(&log);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["path"], "/ping/beat");
    assert!(got[0]["body"].as_str().unwrap().contains("notify-test"));
    assert!(got[0]["id"].as_str().unwrap().starts_with("beat-"));
    server.stop();

    // Receiver down: notify-test fails and says so; a run's ping waits, and status shows it.
    let o = s.runner(&c).args(["notify-test", "beat"]).output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("test ping"), "{}", stderr(&o));
    let o = s.runner(&c).args(["once", "beat"]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let o = s.runner(&c).args(["status", "--json"]).output().unwrap();
    let st: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(st["pings"][0]["job"], "beat");
    assert_eq!(st["pings"][0]["pending"], 1);
    let o = s.runner(&c).arg("status").output().unwrap();
    assert!(stdout(&o).contains("pings beat: 1 waiting"), "{}", stdout(&o));

    // A daemon delivers what `once` left, with its output as the body.
    let server = Server::start(&script, port, &log);
    let mut d = Daemon::start(&s, &c);
    wait_for(LONG, "the waiting ping", || received(&log).len() == 2);
    assert_eq!(received(&log)[1]["body"], "beat-output\n");
    d.signal(Signal::SIGTERM);
    d.wait_exit(LONG);
    server.stop();

    // A bad URL is a config error at its line and column, naming the fix.
    let bad = s.write("bad.yaml", &plain.replace(&format!("http://127.0.0.1:{port}/ping/beat"), "ftp://example.org/x"));
    let o = s.runner(&bad).arg("check").output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(
        stderr(&o)
            .contains("bad.yaml:7:12: job `beat`: notify.url `ftp://example.org/x` is not an http:// or https:// URL"),
        "{}",
        stderr(&o)
    );

    // https:// needs curl or wget: `runner check` names the one found, or fails naming the job.
    let tls = plain.replace("http://", "https://");
    let c = s.write("supervisor.yaml", &tls);
    let o = s.runner(&c).arg("check").env("PATH", s.path("empty-bin")).output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(stderr(&o).contains("beat") && stderr(&o).contains("curl or wget"), "{}", stderr(&o));
    let bin = s.path("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink("/bin/true", bin.join("wget")).unwrap();
    let o = s.runner(&c).arg("check").env("PATH", &bin).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains(&format!("https pings go through {}", bin.join("wget").display())), "{}", stdout(&o));
}

/// A test CA and a certificate for 127.0.0.1 it signed, made by openssl: (ca, cert, key).
fn test_ca(s: &Scratch) -> (PathBuf, PathBuf, PathBuf) {
    let (ca, ca_key, cert, key, csr, ext) =
        (s.path("ca.pem"), s.path("ca.key"), s.path("srv.pem"), s.path("srv.key"), s.path("srv.csr"), s.path("ext"));
    std::fs::write(&ext, "subjectAltName=IP:127.0.0.1\n").unwrap();
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    let steps: Vec<Vec<&std::ffi::OsStr>> = vec![
        ["req", "-x509"]
            .iter()
            .chain(&ec)
            .map(|a| a.as_ref())
            .chain([
                "-keyout".as_ref(),
                ca_key.as_os_str(),
                "-out".as_ref(),
                ca.as_os_str(),
                "-days".as_ref(),
                "1".as_ref(),
                "-subj".as_ref(),
                "/CN=runner test CA".as_ref(),
            ])
            .collect(),
        ["req"]
            .iter()
            .chain(&ec)
            .map(|a| a.as_ref())
            .chain([
                "-keyout".as_ref(),
                key.as_os_str(),
                "-out".as_ref(),
                csr.as_os_str(),
                "-subj".as_ref(),
                "/CN=127.0.0.1".as_ref(),
            ])
            .collect(),
        vec![
            "x509".as_ref(),
            "-req".as_ref(),
            "-in".as_ref(),
            csr.as_os_str(),
            "-CA".as_ref(),
            ca.as_os_str(),
            "-CAkey".as_ref(),
            ca_key.as_os_str(),
            "-CAcreateserial".as_ref(),
            "-out".as_ref(),
            cert.as_os_str(),
            "-days".as_ref(),
            "1".as_ref(),
            "-extfile".as_ref(),
            ext.as_os_str(),
        ],
    ];
    for args in steps {
        let o = Command::new("openssl").args(&args).output().unwrap();
        assert!(o.status.success(), "openssl {args:?}: {}", stderr(&o));
    }
    (ca, cert, key)
}

#[test]
fn https_pings_go_through_curl_with_the_box_s_ca() {
    for tool in ["python3", "openssl", "curl"] {
        if !have(tool) {
            return skip_missing(tool);
        }
    }
    let s = Scratch::new("pings-tls");
    let script = s.write("server.py", SERVER);
    let (ca, cert, key) = test_ca(&s);
    let (port, log) = (free_port(), s.path("received.jsonl"));
    let c = s.write(
        "supervisor.yaml",
        &format!(
            "version: 1\njobs:\n  tls:\n    every: 300ms\n    run: \"echo over-tls\"\n    notify:\n      url: https://127.0.0.1:{port}/ping/tls\n      on: [start, success]\n"
        ),
    );
    let server = Server::start_tls(&script, port, &log, &[&cert, &key]);
    let ca_env = ca.to_str().unwrap();
    // Without the test CA curl refuses the certificate: the ping is not delivered.
    let o = s.runner(&c).args(["notify-test", "tls"]).env_remove("CURL_CA_BUNDLE").output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let o = s.runner(&c).args(["notify-test", "tls"]).env("CURL_CA_BUNDLE", ca_env).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let o = s.runner(&c).arg("check").output().unwrap();
    assert!(stdout(&o).contains("https pings go through") && stdout(&o).contains("curl"), "{}", stdout(&o));

    let mut d = Daemon::start_with(&s, &c, &[("CURL_CA_BUNDLE", ca_env)]);
    wait_for(LONG, "pings over https", || received(&log).len() >= 5);
    d.signal(Signal::SIGTERM);
    d.wait_exit(LONG);
    server.stop();
    let got = received(&log);
    assert_eq!(
        got.len(),
        got.iter().map(|p| p["id"].as_str().unwrap()).collect::<HashSet<_>>().len(),
        "{got:?}\n{}",
        d.log_text()
    );
    // Every ping went through on its first try: none failed after the receiver had it.
    assert!(!d.log_text().contains("a ping failed"), "{}", d.log_text());
    assert!(got.iter().any(|p| p["path"] == "/ping/tls/start"), "{got:?}");
    assert!(got.iter().any(|p| p["path"] == "/ping/tls" && p["body"] == "over-tls\n"), "{got:?}");
}

/// A full outbox (1,000 pings) drops its oldest for a new ping, and the run log says so.
#[test]
fn a_full_outbox_drops_the_oldest_and_records_it() {
    let s = Scratch::new("pings-full");
    let c = s.write(
        "supervisor.yaml",
        "version: 1\njobs:\n  beat:\n    schedule: \"@yearly\"\n    run: \"echo hi\"\n    notify:\n      url: http://127.0.0.1:9/ping/beat\n",
    );
    // 1,000 pings waiting, written as the outbox writes them (docs/notify.md).
    let dir = s.path("state/outbox/beat");
    std::fs::create_dir_all(&dir).unwrap();
    for d in [s.path("state"), s.path("state/outbox"), dir.clone()] {
        std::fs::set_permissions(&d, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    }
    for seq in 1..=1000u64 {
        std::fs::write(
            dir.join(format!("{seq:020}.ping")),
            format!("runner-ping 1\nbeat-1-{seq}\nhttp://127.0.0.1:9/ping/beat\n"),
        )
        .unwrap();
    }
    let o = s.runner(&c).args(["once", "beat"]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!dir.join(format!("{:020}.ping", 1)).exists(), "the oldest is dropped");
    assert!(dir.join(format!("{:020}.ping", 1001)).exists(), "the new one is kept");
    let o = s.runner(&c).args(["status", "--json"]).output().unwrap();
    let st: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(st["pings"][0]["pending"], 1000);
    let o = s.runner(&c).args(["logs", "--json"]).output().unwrap();
    assert!(
        stdout(&o).contains("job beat: its ping outbox is full (1000 pings or 1048576 bytes); dropped the 1 oldest"),
        "{}",
        stdout(&o)
    );
}

/// A receiver that takes the connection and never answers holds back only its own job's
/// pings: the other job's arrive before the hung try's 10 s limit ends it.
#[test]
fn a_hanging_receiver_holds_back_only_its_own_job() {
    if !have("python3") {
        return skip_missing("python3");
    }
    let s = Scratch::new("pings-hang");
    let script = s.write("server.py", SERVER);
    let (port, log) = (free_port(), s.path("received.jsonl"));
    // Accepted by the kernel (the backlog), never read or answered.
    let hang = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hang_port = hang.local_addr().unwrap().port();
    let c = s.write(
        "supervisor.yaml",
        &format!(
            "version: 1\njobs:\n  a:\n    every: 500ms\n    run: \"true\"\n    notify:\n      url: http://127.0.0.1:{hang_port}/ping/a\n  b:\n    every: 500ms\n    run: \"true\"\n    notify:\n      url: http://127.0.0.1:{port}/ping/b\n"
        ),
    );
    let server = Server::start(&script, port, &log);
    let mut d = Daemon::start(&s, &c);
    wait_for(LONG, "job b's pings", || received(&log).len() >= 3);
    assert!(!d.log_text().contains("job a: a ping failed"), "b waited for a's hung try:\n{}", d.log_text());
    wait_for(LONG, "job a's try to time out", || d.log_text().contains("job a: a ping failed (no answer within 10 s)"));
    assert!(received(&log).iter().all(|p| p["path"] == "/ping/b"));
    d.signal(Signal::SIGTERM);
    d.wait_exit(LONG);
    server.stop();
    drop(hang);
}
