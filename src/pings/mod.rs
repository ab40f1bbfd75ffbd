//! `notify:`: healthchecks.io-style pings for a job's start, success and failure, kept in a
//! durable outbox under `state_dir` until a receiver answers 2xx (`outbox`), and sent by a
//! worker task of the daemon that never holds up the event loop (`worker`, `http`).
//!
//! Not `crate::sd_notify` (systemd readiness).

pub mod http;
pub mod outbox;
pub mod worker;

use serde::Deserialize;

pub use outbox::Outbox;

/// The most bytes of a run's output tail sent as a ping's body.
pub const MAX_BODY: usize = 10 << 10;

/// What a run's end or start is, for `on:`.
#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    Start,
    Success,
    Failure,
}

/// `notify:` as written, on a job or in `defaults:`.
#[derive(Deserialize, Debug, Clone, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RawNotify {
    pub url: String,
    pub on: Option<Vec<Event>>,
    pub exit_status: Option<bool>,
}

/// `notify:` resolved: where and when a job pings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notify {
    /// The check's URL without a trailing `/`; `/start` and `/fail` are appended to it.
    pub url: String,
    pub start: bool,
    pub success: bool,
    pub failure: bool,
    /// A failure pings `URL/<exit status>` instead of `URL/fail` (when it exited).
    pub exit_status: bool,
}

impl Notify {
    /// Checks `raw` (the URL's scheme and characters); the error names the fix.
    pub fn resolve(raw: &RawNotify) -> Result<Notify, String> {
        let url = raw.url.trim().trim_end_matches('/');
        let rest = url.strip_prefix("http://").or_else(|| url.strip_prefix("https://"));
        let Some(rest) = rest else {
            return Err(format!(
                "notify.url `{}` is not an http:// or https:// URL; write the check's ping URL, like https://hc-ping.com/<uuid>",
                raw.url
            ));
        };
        if rest.is_empty() || rest.starts_with('/') {
            return Err(format!(
                "notify.url `{}` has no host; write the check's ping URL, like https://hc-ping.com/<uuid>",
                raw.url
            ));
        }
        if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!(
                "notify.url `{}` holds a space or control character; percent-encode it (%20)",
                raw.url
            ));
        }
        let on = raw.on.clone().unwrap_or_else(|| vec![Event::Success, Event::Failure]);
        if on.is_empty() {
            return Err("notify.on is empty; list any of start, success, failure (or drop `notify:`)".into());
        }
        Ok(Notify {
            url: url.to_string(),
            start: on.contains(&Event::Start),
            success: on.contains(&Event::Success),
            failure: on.contains(&Event::Failure),
            exit_status: raw.exit_status.unwrap_or(false),
        })
    }

    /// Whether pings go through an outside client (`curl`/`wget`).
    pub fn needs_tls(&self) -> bool {
        self.url.starts_with("https://")
    }

    /// The URL a ping for `event` goes to, healthchecks.io's convention: `/start`, the URL
    /// itself, `/fail` or `/<exit status>`.
    pub fn url_for(&self, event: Event, exit_code: Option<i32>) -> String {
        match (event, exit_code) {
            (Event::Start, _) => format!("{}/start", self.url),
            (Event::Success, _) => self.url.clone(),
            (Event::Failure, Some(code)) if self.exit_status && code > 0 => format!("{}/{}", self.url, code.min(255)),
            (Event::Failure, _) => format!("{}/fail", self.url),
        }
    }

    /// Whether `on:` asks for `event`.
    pub fn wants(&self, event: Event) -> bool {
        match event {
            Event::Start => self.start,
            Event::Success => self.success,
            Event::Failure => self.failure,
        }
    }
}

/// Pings waiting per job: `(job, count, bytes)`, for `runner status`.
pub fn waiting(state_dir: &std::path::Path) -> std::io::Result<Vec<(String, usize, u64)>> {
    let pending = Outbox::new(state_dir).pending()?;
    Ok(pending.into_iter().map(|(job, e)| (job, e.len(), e.iter().map(|e| e.bytes).sum())).collect())
}

/// What `runner check` says of pings: the https client, or an error naming the jobs that
/// need one when there is none. None when no job pings over https.
pub fn check_client<'a>(jobs: impl Iterator<Item = (&'a str, &'a Notify)>) -> Option<Result<String, String>> {
    let tls: Vec<&str> = jobs.filter(|(_, n)| n.needs_tls()).map(|(j, _)| j).collect();
    if tls.is_empty() {
        return None;
    }
    Some(match http::Client::find() {
        Some(c) => Ok(format!("https pings go through {}", c.path().display())),
        None => Err(format!(
            "job(s) {} ping an https:// URL, which needs curl or wget on PATH; install one (apt-get install curl), or use http://",
            tls.join(", ")
        )),
    })
}

/// Sends one success ping for `job` now, past the outbox (`runner notify-test`): what the
/// receiver answered, or why it failed.
pub async fn send_test(job: &str, n: &Notify) -> std::io::Result<String> {
    let now_ms = jiff::Timestamp::now().as_millisecond();
    let ping = outbox::Ping {
        id: format!("{job}-{now_ms}-test"),
        url: n.url_for(Event::Success, Some(0)),
        body: format!("runner notify-test for job {job}\n").into_bytes(),
    };
    http::send(&ping, http::Client::find().as_ref()).await?;
    Ok(ping.url)
}

/// The last [`MAX_BODY`] bytes of `tail`.
pub fn body_of(tail: &[u8]) -> &[u8] {
    &tail[tail.len().saturating_sub(MAX_BODY)..]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(url: &str, on: Option<Vec<Event>>, exit_status: bool) -> Notify {
        Notify::resolve(&RawNotify { url: url.into(), on, exit_status: Some(exit_status) }).unwrap()
    }

    #[test]
    fn urls_follow_the_healthchecks_convention() {
        let a = n("http://h:8000/ping/abc/", None, false);
        assert_eq!(a.url_for(Event::Start, None), "http://h:8000/ping/abc/start");
        assert_eq!(a.url_for(Event::Success, Some(0)), "http://h:8000/ping/abc");
        assert_eq!(a.url_for(Event::Failure, Some(3)), "http://h:8000/ping/abc/fail");
        assert!(!a.start && a.success && a.failure);
        let b = n("https://h/x", Some(vec![Event::Start, Event::Failure]), true);
        assert_eq!(b.url_for(Event::Failure, Some(3)), "https://h/x/3");
        assert_eq!(b.url_for(Event::Failure, None), "https://h/x/fail");
        assert!(b.start && !b.success && b.needs_tls());
    }

    #[test]
    fn bad_urls_name_the_fix() {
        for bad in ["ftp://h/x", "http://", "http:///x", "http://h/a b"] {
            let e = Notify::resolve(&RawNotify { url: bad.into(), ..Default::default() }).unwrap_err();
            assert!(e.contains("notify.url"), "{e}");
        }
    }
}
