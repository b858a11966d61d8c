//! The `history` import's answers as the policy got them: recorded during a call (for the
//! decision log) and answered again from the record (for replay), so a replayed policy
//! sees exactly the history the recorded one saw.

use std::sync::{Arc, Mutex};

use wasmscaler_sdk::Sample;

use crate::runtime::HistorySource;

/// One `history(signal, window, step)` call and its answer.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryAnswer {
    pub signal: String,
    pub window_ms: u64,
    pub step_ms: u64,
    pub answer: Result<Vec<Sample>, String>,
}

/// Passes calls through to the real source and keeps every answer.
pub struct RecordingHistory {
    inner: Arc<dyn HistorySource>,
    answers: Mutex<Vec<HistoryAnswer>>,
}

impl RecordingHistory {
    pub fn new(inner: Arc<dyn HistorySource>) -> Self {
        Self {
            inner,
            answers: Mutex::new(Vec::new()),
        }
    }

    /// The answers so far, in call order.
    pub fn take(&self) -> Vec<HistoryAnswer> {
        std::mem::take(&mut *lock(&self.answers))
    }
}

impl HistorySource for RecordingHistory {
    fn history(&self, signal: &str, window_ms: u64, step_ms: u64) -> Result<Vec<Sample>, String> {
        let answer = self.inner.history(signal, window_ms, step_ms);
        lock(&self.answers).push(HistoryAnswer {
            signal: signal.to_string(),
            window_ms,
            step_ms,
            answer: answer.clone(),
        });
        answer
    }
}

/// Answers from a record: the same question gets the recorded answer; a question the
/// recorded policy never asked has no honest answer and fails (the policy then decides
/// as it does without history, or errors).
#[derive(Debug, Clone, Default)]
pub struct RecordedHistory {
    answers: Vec<HistoryAnswer>,
}

impl RecordedHistory {
    pub fn new(answers: Vec<HistoryAnswer>) -> Self {
        Self { answers }
    }
}

impl HistorySource for RecordedHistory {
    fn history(&self, signal: &str, window_ms: u64, step_ms: u64) -> Result<Vec<Sample>, String> {
        self.answers
            .iter()
            .find(|a| a.signal == signal && a.window_ms == window_ms && a.step_ms == step_ms)
            .map(|a| a.answer.clone())
            .unwrap_or_else(|| {
                Err(format!(
                    "history('{signal}', {window_ms} ms, {step_ms} ms) is not in the decision log \
                     (the recorded policy never asked it)"
                ))
            })
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::PrefetchedHistory;

    #[test]
    fn recorded_answers_are_replayed_and_nothing_else() {
        let source = PrefetchedHistory {
            now_ms: 3_000,
            series: [(
                "load".to_string(),
                (0..4).map(|i| Sample::new(i * 1000, i as f64)).collect(),
            )]
            .into(),
        };
        let rec = RecordingHistory::new(Arc::new(source));
        let got = rec.history("load", 2_000, 1).unwrap();
        assert!(rec.history("nope", 1, 1).is_err());
        let answers = rec.take();
        assert_eq!(answers.len(), 2);
        let replay = RecordedHistory::new(answers);
        assert_eq!(replay.history("load", 2_000, 1).unwrap(), got);
        assert!(replay.history("nope", 1, 1).unwrap_err().contains("no history"));
        assert!(
            replay
                .history("load", 1_000, 1)
                .unwrap_err()
                .contains("not in the decision log")
        );
    }
}
