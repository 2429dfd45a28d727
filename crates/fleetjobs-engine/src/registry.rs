//! What is left of the untyped registry operations: the pagination-token helper that the
//! jobs and executions operations still use until they are typed (then this file goes).

use serde_json::{json, Value};

/// Add a pagination token member when there is a next page.
pub(crate) fn with_token(mut out: Value, member: &str, next: Option<String>) -> Value {
    if let Some(t) = next {
        out[member] = json!(t);
    }
    out
}
