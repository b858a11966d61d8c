//! Real servers for the signal tests, started and stopped by the tests themselves on free
//! loopback ports: Prometheus (Debian's `prometheus`, generated config, temp storage),
//! Redis (Debian's `redis-server`, no persistence), and a tiny exporter whose /metrics
//! values the test sets. A missing binary fails the test with a message naming
//! scripts/install-test-deps.sh; nothing is skipped.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The path of `bin`, or a panic telling how to install it.
pub fn binary(bin: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path).chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")]) {
        let p = dir.join(bin);
        if p.is_file() {
            return p;
        }
    }
    panic!("'{bin}' is not installed (needed by this test): run scripts/install-test-deps.sh");
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn wait_until(what: &str, limit: Duration, mut ok: impl FnMut() -> bool, child: &mut Child, log: &Path) {
    let start = Instant::now();
    while !ok() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "{what} exited with {status} before it was ready:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        assert!(
            start.elapsed() < limit,
            "{what} not ready after {limit:?}:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A minimal HTTP/1.1 GET returning (status, body), for readiness probes.
pub fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Some((status, body))
}

/// An exporter serving `/metrics` in the Prometheus text format with gauges the test sets.
pub struct Exporter {
    pub addr: SocketAddr,
    values: Arc<Mutex<BTreeMap<String, f64>>>,
    stop: Arc<AtomicBool>,
}

impl Exporter {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind exporter");
        let addr = listener.local_addr().expect("exporter addr");
        listener.set_nonblocking(true).expect("nonblocking");
        let values: Arc<Mutex<BTreeMap<String, f64>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        {
            let values = values.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((conn, _)) => serve(conn, &values),
                        Err(_) => std::thread::sleep(Duration::from_millis(10)),
                    }
                }
            });
        }
        Self { addr, values, stop }
    }

    /// Set gauge `series` (a metric name with optional labels, e.g. `queue{q="a"}`).
    pub fn set(&self, series: &str, value: f64) {
        self.values
            .lock()
            .expect("exporter values")
            .insert(series.to_string(), value);
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn serve(conn: TcpStream, values: &Mutex<BTreeMap<String, f64>>) {
    let _ = conn.set_nonblocking(false);
    let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
    let mut reader = BufReader::new(&conn);
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) if line == "\r\n" || line == "\n" => break,
            Ok(_) => {}
        }
    }
    let mut body = String::new();
    if let Ok(v) = values.lock() {
        for (series, value) in v.iter() {
            let name = series.split('{').next().unwrap_or(series);
            body.push_str(&format!("# TYPE {name} gauge\n{series} {value}\n"));
        }
    }
    let mut conn = conn;
    let _ = write!(
        conn,
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// A Prometheus server scraping `targets` every second.
pub struct PrometheusServer {
    child: Child,
    pub url: String,
    pub addr: SocketAddr,
    _dir: tempfile::TempDir,
}

/// Recorded samples to load into a Prometheus before it starts: one series (its labels
/// as Prometheus stores them, e.g. `rps{job="test",instance="127.0.0.1:9100"}`) and its
/// `(unix seconds, value)` points, oldest first.
pub struct Backfill<'a> {
    pub series: &'a str,
    pub points: &'a [(i64, f64)],
}

impl PrometheusServer {
    pub fn start(targets: &[SocketAddr]) -> Self {
        Self::start_with_history(targets, None)
    }

    /// A Prometheus whose storage already holds `history` (written as TSDB blocks by
    /// `promtool tsdb create-blocks-from openmetrics`, the documented backfill path), so
    /// range queries over the past see a recorded load while the scrape adds the present.
    pub fn start_with_history(targets: &[SocketAddr], history: Option<Backfill<'_>>) -> Self {
        let bin = binary("prometheus");
        let dir = tempfile::tempdir().expect("temp dir");
        if let Some(h) = history {
            backfill(dir.path(), &h);
        }
        let targets: Vec<String> = targets.iter().map(|a| format!("'{a}'")).collect();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: test\n    scrape_interval: 1s\n    static_configs:\n      - targets: [{}]\n",
            targets.join(", ")
        );
        let cfg = dir.path().join("prometheus.yml");
        std::fs::write(&cfg, config).expect("write prometheus.yml");
        let log = dir.path().join("prometheus.log");
        for _attempt in 0..3 {
            let port = free_port();
            let addr: SocketAddr = ([127, 0, 0, 1], port).into();
            let mut child = Command::new(&bin)
                .arg(format!("--config.file={}", cfg.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address={addr}"))
                .arg("--log.level=warn")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).expect("log file"))
                .spawn()
                .expect("prometheus starts");
            let start = Instant::now();
            let mut ready = false;
            while start.elapsed() < Duration::from_secs(30) {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if matches!(http_get(addr, "/-/ready"), Some((200, _))) {
                    ready = true;
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            if ready {
                return Self {
                    child,
                    url: format!("http://{addr}"),
                    addr,
                    _dir: dir,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!(
            "prometheus did not become ready:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    /// Wait until the newest value of `query` is `value`.
    pub fn wait_for(&self, query: &str, value: f64) {
        let start = Instant::now();
        let path = format!("/api/v1/query?query={}", urlencode(query));
        loop {
            if let Some((200, body)) = http_get(self.addr, &path)
                && let Ok(v) = serde_json::from_str::<serde_json::Value>(&body)
                && let Some(s) = v["data"]["result"][0]["value"][1].as_str()
                && s.parse::<f64>().ok() == Some(value)
            {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "Prometheus never saw {query} = {value}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

fn backfill(dir: &Path, h: &Backfill<'_>) {
    let name = h.series.split('{').next().unwrap_or(h.series);
    let mut text = format!("# TYPE {name} gauge\n");
    for (t, v) in h.points {
        text.push_str(&format!("{} {v} {t}\n", h.series));
    }
    text.push_str("# EOF\n");
    let input = dir.join("history.om");
    std::fs::write(&input, text).expect("write the backfill input");
    let out = Command::new(binary("promtool"))
        .args(["tsdb", "create-blocks-from", "openmetrics", "--quiet"])
        .arg(&input)
        .arg(dir.join("data"))
        .output()
        .expect("promtool runs");
    assert!(
        out.status.success(),
        "promtool backfill failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Drop for PrometheusServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A Redis server without persistence.
pub struct RedisServer {
    child: Child,
    pub port: u16,
    pub url: String,
    _dir: tempfile::TempDir,
}

impl RedisServer {
    pub fn start() -> Self {
        let bin = binary("redis-server");
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join("redis.log");
        let port = free_port();
        let mut child = Command::new(bin)
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(dir.path())
            .arg("--logfile")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        let mut probe = || resp(port, &["PING"]).is_some_and(|r| r.contains("PONG"));
        wait_until(
            "redis-server",
            Duration::from_secs(20),
            &mut probe,
            &mut child,
            &log,
        );
        Self {
            child,
            port,
            url: format!("redis://127.0.0.1:{port}/0"),
            _dir: dir,
        }
    }

    /// Run one command; the raw RESP reply.
    pub fn cmd(&self, args: &[&str]) -> String {
        resp(self.port, args).unwrap_or_else(|| panic!("redis {args:?} failed"))
    }

    /// `LLEN list` (`usize::MAX` when the reply is not a count).
    pub fn llen(&self, list: &str) -> usize {
        self.cmd(&["LLEN", list])
            .trim()
            .trim_start_matches(':')
            .parse()
            .unwrap_or(usize::MAX)
    }

    /// Stop the server (to test an unreachable queue).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One RESP command over a fresh connection (the tests' own client, independent of the
/// `redis` crate the code under test uses).
fn resp(port: u16, args: &[&str]) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    let mut msg = format!("*{}\r\n", args.len());
    for a in args {
        msg.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    s.write_all(msg.as_bytes()).ok()?;
    let mut buf = [0u8; 512];
    let n = s.read(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}
