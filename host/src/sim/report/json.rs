//! The scorecard as JSON (`--output json`): byte-identical for the same scenario and seed
//! (wall-clock figures only with `--timings`).

use super::Report;

pub fn render(r: &Report) -> String {
    let mut s = serde_json::to_string_pretty(r).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    s.push('\n');
    s
}
