//! The upstream reference programs (tools/conformance/*, built by
//! scripts/build-conformance.sh): one process per policy for all sequences, JSON lines in
//! and out.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use serde_json::Value;

/// Where build-conformance.sh puts the binaries (`WASMSCALER_CONFORMANCE_BIN` overrides).
pub fn bin_dir() -> PathBuf {
    std::env::var_os("WASMSCALER_CONFORMANCE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| wasmscaler_tests::root().join("target/conformance/bin"))
}

pub struct Reference {
    name: String,
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Reference {
    /// Starts `<bin_dir>/<name>`; a missing binary fails the test with the command that
    /// builds it (the conformance test never passes by skipping).
    pub fn start(name: &str) -> Reference {
        let path = bin_dir().join(name);
        let mut child = Command::new(&path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "{}: {e}; build the upstream references with scripts/build-conformance.sh \
                     (scripts/install-test-deps.sh runs it)",
                    path.display()
                )
            });
        let stdin = child.stdin.take().expect("stdin is piped");
        let stdout = BufReader::new(child.stdout.take().expect("stdout is piped"));
        Reference {
            name: name.to_string(),
            child,
            stdin,
            stdout,
        }
    }

    /// One request, one answer; an `error` in the answer fails the test.
    pub fn ask(&mut self, request: &Value) -> Value {
        let mut line = serde_json::to_string(request).expect("a JSON value serializes");
        line.push('\n');
        self.stdin
            .write_all(line.as_bytes())
            .and_then(|()| self.stdin.flush())
            .unwrap_or_else(|e| panic!("{}: writing a request: {e}", self.name));
        let mut answer = String::new();
        let n = self
            .stdout
            .read_line(&mut answer)
            .unwrap_or_else(|e| panic!("{}: reading an answer: {e}", self.name));
        assert!(n > 0, "{}: exited before answering {request}", self.name);
        let v: Value = serde_json::from_str(&answer)
            .unwrap_or_else(|e| panic!("{}: answer {answer:?} is not JSON: {e}", self.name));
        if let Some(err) = v.get("error").and_then(Value::as_str) {
            panic!("{}: {err} (request {request})", self.name);
        }
        v
    }
}

impl Drop for Reference {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
