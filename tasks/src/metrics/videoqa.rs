//! MSVD-QA / MSRVTT-QA top-1 accuracy (metrics.md 4).
use serde_json::Value;

/// `(raw prediction, answer)` pairs; returns `{"accuracy", "normalisation", "questions":[…]}`.
pub fn score(items: &[(String, String)]) -> Value {
    let _ = items;
    Value::Null
}
