//! Sending one ping: `http://` in-process (a hand-written HTTP/1.1 POST over a tokio
//! `TcpStream`: it is small), `https://` through the box's own `curl` or `wget`, run as a
//! child on a blocking thread with a time limit.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::outbox::Ping;

/// The longest one try may take, connect to answer.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// The header a receiver drops duplicates by.
pub const ID_HEADER: &str = "X-Runner-Ping-Id";

/// An outside client for `https://`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Client {
    Curl(PathBuf),
    Wget(PathBuf),
}

impl Client {
    /// `curl`, else `wget`, from `PATH`.
    pub fn find() -> Option<Client> {
        let path = std::env::var_os("PATH")?;
        let find = |name: &str| std::env::split_paths(&path).map(|d| d.join(name)).find(|p| is_executable(p));
        find("curl").map(Client::Curl).or_else(|| find("wget").map(Client::Wget))
    }

    pub fn path(&self) -> &Path {
        match self {
            Client::Curl(p) | Client::Wget(p) => p,
        }
    }
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Sends `ping`; Ok only for a 2xx answer.
pub async fn send(ping: &Ping, client: Option<&Client>) -> io::Result<()> {
    if ping.url.starts_with("https://") {
        let Some(c) = client.cloned() else {
            return Err(io::Error::other("an https:// ping needs curl or wget on PATH; install one"));
        };
        let ping = ping.clone();
        return tokio::task::spawn_blocking(move || send_with(&c, &ping)).await.map_err(io::Error::other)?;
    }
    match tokio::time::timeout(TIMEOUT, post(ping)).await {
        Ok(r) => r,
        Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, format!("no answer within {} s", TIMEOUT.as_secs()))),
    }
}

/// `http://host[:port]/path` split into the address to connect to, the Host header and the
/// request target.
fn split(url: &str) -> io::Result<(String, String, String)> {
    let bad = || io::Error::new(io::ErrorKind::InvalidInput, format!("not an http:// URL: {url}"));
    let rest = url.strip_prefix("http://").ok_or_else(bad)?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() || authority.contains('@') {
        return Err(bad());
    }
    // `[::1]:8080`, `host:8080` or `host`.
    let has_port = authority.rsplit_once(':').is_some_and(|(h, p)| !h.is_empty() && !p.contains(']'));
    let addr = if has_port { authority.to_string() } else { format!("{authority}:80") };
    Ok((addr, authority.to_string(), path.to_string()))
}

async fn post(ping: &Ping) -> io::Result<()> {
    let (addr, host, path) = split(&ping.url)?;
    let mut s = TcpStream::connect(addr.as_str()).await?;
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: runner/{}\r\n{ID_HEADER}: {}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        env!("CARGO_PKG_VERSION"),
        ping.id,
        ping.body.len()
    );
    s.write_all(head.as_bytes()).await?;
    s.write_all(&ping.body).await?;
    s.flush().await?;
    // The status line is all that counts; read at most a little of the answer.
    let mut buf = [0u8; 256];
    let mut got = 0;
    while got < 12 {
        let n = s.read(&mut buf[got..]).await?;
        if n == 0 {
            break;
        }
        got += n;
    }
    status_ok(&buf[..got])
}

fn status_ok(answer: &[u8]) -> io::Result<()> {
    let line = String::from_utf8_lossy(&answer[..answer.len().min(64)]);
    let code = line.strip_prefix("HTTP/1.").and_then(|r| r.get(2..5)).and_then(|c| c.parse::<u16>().ok());
    match code {
        Some(c) if (200..300).contains(&c) => Ok(()),
        Some(c) => Err(io::Error::other(format!("the receiver answered {c}"))),
        None => Err(io::Error::other("the receiver's answer is not HTTP")),
    }
}

/// One try through curl or wget, the body on stdin (curl) or in a file (wget).
fn send_with(c: &Client, ping: &Ping) -> io::Result<()> {
    use std::process::{Command, Stdio};
    let secs = TIMEOUT.as_secs().to_string();
    let header = format!("{ID_HEADER}: {}", ping.id);
    let mut cmd = Command::new(c.path());
    match c {
        Client::Curl(_) => {
            cmd.args(["-fsS", "-o", "/dev/null", "-X", "POST", "--max-time", &secs, "-H", &header]);
            cmd.args(["--data-binary", "@-", "--", &ping.url]);
        }
        // BusyBox and GNU wget both take --post-file; the body goes through stdin's path.
        Client::Wget(_) => {
            cmd.args(["-q", "-O", "/dev/null", "-T", &secs, "--header", &header]);
            cmd.args(["--post-file", "/dev/stdin", &ping.url]);
        }
    }
    cmd.stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::piped());
    let out = crate::contain::output_of(&mut cmd, &ping.body)?;
    if out.status.success() {
        return Ok(());
    }
    let err = String::from_utf8_lossy(&out.stderr);
    Err(io::Error::other(format!("{} failed ({}): {}", c.path().display(), out.status, err.trim())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_address_host_and_target() {
        assert_eq!(
            split("http://127.0.0.1:8000/p/x").unwrap(),
            ("127.0.0.1:8000".into(), "127.0.0.1:8000".into(), "/p/x".into())
        );
        assert_eq!(split("http://h").unwrap(), ("h:80".into(), "h".into(), "/".into()));
        assert_eq!(split("http://[::1]/a").unwrap().0, "[::1]:80");
        assert!(split("https://h/").is_err());
    }

    #[test]
    fn only_2xx_delivers() {
        assert!(status_ok(b"HTTP/1.0 200 OK\r\n").is_ok());
        assert!(status_ok(b"HTTP/1.1 204 No").is_ok());
        assert!(status_ok(b"HTTP/1.1 500 x").is_err());
        assert!(status_ok(b"garbage").is_err());
    }
}
