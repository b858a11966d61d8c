//! The guest's stderr: the first [`STDERR_KEPT_BYTES`] bytes of a call are kept (a panic
//! message lands there and goes into the trap error), the rest is dropped without telling
//! the guest. wasmtime-wasi's `MemoryOutputPipe` traps the guest once it is full, so a
//! policy that prints too much would fail its evaluation: printing must never do that.

use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// Bytes of guest stderr kept per call; later bytes are dropped.
pub const STDERR_KEPT_BYTES: usize = 16 << 10;

/// How much the guest may write in one `write` (what `check-write` grants). Anything
/// beyond the kept bytes is discarded, so this only sizes the guest's chunks.
const WRITE_PERMIT: usize = 64 << 10;

/// A bounded, never-full stderr sink shared between the `WasiCtx` and the host.
#[derive(Debug, Clone, Default)]
pub struct StderrCapture {
    kept: Arc<Mutex<Vec<u8>>>,
}

impl StderrCapture {
    pub fn new() -> Self {
        Self::default()
    }

    /// What the guest wrote so far (at most [`STDERR_KEPT_BYTES`]).
    pub fn contents(&self) -> Vec<u8> {
        self.lock().clone()
    }

    /// Forget what earlier calls wrote (a reused instance starts each call empty).
    pub fn clear(&self) {
        self.lock().clear();
    }

    fn keep(&self, bytes: &[u8]) {
        let mut kept = self.lock();
        let room = STDERR_KEPT_BYTES.saturating_sub(kept.len());
        kept.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    /// A poisoned lock means a host thread panicked while copying bytes; the buffer is
    /// still a valid prefix of the output.
    fn lock(&self) -> MutexGuard<'_, Vec<u8>> {
        self.kept.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl OutputStream for StderrCapture {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.keep(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(WRITE_PERMIT)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for StderrCapture {
    async fn ready(&mut self) {}
}

impl IsTerminal for StderrCapture {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for StderrCapture {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl tokio::io::AsyncWrite for StderrCapture {
    fn poll_write(self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        self.keep(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_first_bytes_and_drops_the_rest_without_an_error() {
        let mut capture = StderrCapture::new();
        for _ in 0..100 {
            capture.write(Bytes::from(vec![b'x'; 1000])).unwrap();
            assert_eq!(capture.check_write().unwrap(), WRITE_PERMIT);
        }
        assert_eq!(capture.contents().len(), STDERR_KEPT_BYTES);
        capture.clear();
        capture.write(Bytes::from_static(b"panicked at x")).unwrap();
        assert_eq!(capture.contents(), b"panicked at x");
    }
}
