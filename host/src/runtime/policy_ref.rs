//! Policy references as written in the `wasmscaler.io/policy` annotation:
//! `cron` (built-in), `file:NAME.wasm` (policy directory), either with `@sha256:<hex>`.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PolicyRef {
    pub source: RefSource,
    /// Required digest (lowercase hex), if pinned.
    pub pin: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RefSource {
    Builtin(String),
    File(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid policy reference '{input}': {why}")]
pub struct RefError {
    pub input: String,
    pub why: String,
}

impl PolicyRef {
    /// Parse one reference.
    pub fn parse(input: &str) -> Result<Self, RefError> {
        let s = input.trim();
        let err = |why: &str| RefError {
            input: s.to_string(),
            why: why.to_string(),
        };
        if s.is_empty() {
            return Err(err("empty"));
        }
        let (body, pin) = match s.split_once("@sha256:") {
            Some((b, hex)) => {
                let hex = hex.to_ascii_lowercase();
                if hex.len() != 64 || !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
                    return Err(err("a sha256 pin must be 64 hex digits"));
                }
                (b, Some(hex))
            }
            None if s.contains('@') => return Err(err("only '@sha256:<64 hex digits>' pins are supported")),
            None => (s, None),
        };
        let source = if let Some(file) = body.strip_prefix("file:") {
            if file.is_empty() || file.contains('/') || file.contains("..") || !file.ends_with(".wasm") {
                return Err(err(
                    "file: names a .wasm file in the policy directory, without a path",
                ));
            }
            RefSource::File(file.to_string())
        } else if let Some(scheme) = body.split_once("://").map(|(s, _)| s) {
            return Err(err(&format!(
                "scheme '{scheme}://' is not supported (use a built-in name or file:NAME.wasm)"
            )));
        } else if body
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
        {
            RefSource::Builtin(body.to_string())
        } else {
            return Err(err("a built-in name is lowercase letters, digits and '-'"));
        };
        Ok(Self { source, pin })
    }

    /// Parse a comma-separated list (several policies = max of their answers).
    pub fn parse_list(input: &str) -> Result<Vec<Self>, RefError> {
        let refs: Vec<Self> = input.split(',').map(Self::parse).collect::<Result<_, _>>()?;
        Ok(refs)
    }

    /// The registry key: the built-in name or the file name.
    pub fn key(&self) -> &str {
        match &self.source {
            RefSource::Builtin(n) | RefSource::File(n) => n,
        }
    }
}

impl fmt::Display for PolicyRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            RefSource::Builtin(n) => write!(f, "{n}")?,
            RefSource::File(n) => write!(f, "file:{n}")?,
        }
        if let Some(p) = &self.pin {
            write!(f, "@sha256:{p}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_builtins_files_and_pins() {
        assert_eq!(
            PolicyRef::parse("cron").unwrap().source,
            RefSource::Builtin("cron".into())
        );
        let r = PolicyRef::parse(&format!("file:my.wasm@sha256:{}", "A".repeat(64))).unwrap();
        assert_eq!(r.source, RefSource::File("my.wasm".into()));
        assert_eq!(r.pin.as_deref(), Some("a".repeat(64).as_str()));
        assert_eq!(
            PolicyRef::parse_list("cron, knative-concurrency").unwrap().len(),
            2
        );
    }

    #[test]
    fn rejects_what_it_cannot_serve() {
        for bad in [
            "",
            "file:../x.wasm",
            "file:x",
            "oci://r/p:1",
            "Cron",
            "cron@v1",
            "cron@sha256:12",
        ] {
            assert!(PolicyRef::parse(bad).is_err(), "{bad}");
        }
        assert!(
            PolicyRef::parse("oci://r/p")
                .unwrap_err()
                .to_string()
                .contains("not supported")
        );
    }
}
