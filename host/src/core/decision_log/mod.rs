//! The decision log: one JSON line per evaluation, with everything a policy was handed
//! and what it and the guardrails answered, so that `wasmscaler replay` can hand the
//! same contexts to another version of the policy.
//!
//! - [`schema`]: the line format (versioned), built from a [`crate::core::Outcome`].
//! - [`writer`]: the controller's writer: bounded queue, background thread, gzip files,
//!   size rotation, total-size bound, drops counted.
//! - [`reader`]: read files back (gzip or plain), errors by file and line.
//! - [`Buffer`]: the simulator's in-memory log (one per simulated entry).

pub mod reader;
pub mod schema;
pub mod writer;

use std::io::Write;

use flate2::Compression;
use flate2::write::GzEncoder;

pub use schema::{Record, SCHEMA_VERSION, Source, WorkloadId};
pub use writer::{DecisionLog, WriterError, WriterSettings};

/// Lines kept in memory, compressed or not; [`Buffer::finish`] gives bytes that can be
/// concatenated with other buffers' into one file (gzip members concatenate).
pub enum Buffer {
    Plain(Vec<u8>),
    Gzip(GzEncoder<Vec<u8>>),
}

impl Buffer {
    pub fn new(gzip: bool) -> Self {
        if gzip {
            Buffer::Gzip(GzEncoder::new(Vec::new(), Compression::default()))
        } else {
            Buffer::Plain(Vec::new())
        }
    }

    pub fn push(&mut self, r: &Record) {
        let mut line = r.to_line();
        line.push(b'\n');
        match self {
            Buffer::Plain(v) => v.extend_from_slice(&line),
            // Writing into a Vec cannot fail.
            Buffer::Gzip(e) => {
                let _ = e.write_all(&line);
            }
        }
    }

    pub fn finish(self) -> Vec<u8> {
        match self {
            Buffer::Plain(v) => v,
            Buffer::Gzip(e) => e.finish().unwrap_or_default(),
        }
    }
}
