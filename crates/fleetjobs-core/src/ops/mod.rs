//! Request and response types of the control-plane operations, one file per resource group.
//!
//! Each operation has a request type (`Deserialize`, AWS member names in camelCase; path
//! labels, query parameters and headers arrive merged with the body members by the HTTP
//! adapter) with one `check(&self, now)` that applies the validation rules, and a response
//! type (`Serialize`) shaped as the botocore output shape. serde is the only wire knowledge
//! here: the types do not know JSON or HTTP, and the engine's operations take and return them.

pub mod authorization;
pub mod ca_certificates;
pub mod certificates;
pub mod console;
pub mod dynamic_groups;
pub mod endpoint;
pub mod event_configurations;
pub mod executions;
pub mod indexing;
pub mod job_templates;
pub mod jobs;
pub mod policies;
pub mod tags;
pub mod thing_groups;
pub mod thing_types;
pub mod things;

use serde::{Serialize, Serializer};

use crate::{ApiError, ApiResult, Millis};

/// A control-plane timestamp: epoch seconds with a millisecond fraction on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timestamp(pub Millis);

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.0 as f64 / 1000.0)
    }
}

impl From<Millis> for Timestamp {
    fn from(ms: Millis) -> Self {
        Timestamp(ms)
    }
}

/// The answer of an operation whose output shape has no members: `{}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Empty {}

/// One page of `items` from an opaque token (an offset into the ordered list): the page and
/// the token of the next one, if any.
pub fn page<T>(
    items: Vec<T>,
    token: Option<&str>,
    size: Option<i64>,
    default_size: usize,
) -> ApiResult<(Vec<T>, Option<String>)> {
    let start = match token {
        None => 0,
        Some(t) => t.parse::<usize>().map_err(|_| ApiError::invalid("The nextToken is invalid"))?,
    };
    let size = size.and_then(|m| usize::try_from(m).ok()).unwrap_or(default_size);
    let total = items.len();
    let page: Vec<T> = items.into_iter().skip(start).take(size).collect();
    let next = (start + size < total).then(|| (start + size).to_string());
    Ok((page, next))
}

/// A `maxResults` page size: 1..=250.
pub fn check_max_results(value: Option<i64>) -> ApiResult<()> {
    value.map_or(Ok(()), crate::validate::max_results)
}

/// A `pageSize` of the marker-paged lists: 1..=250.
pub fn check_page_size(value: Option<i64>) -> ApiResult<()> {
    match value {
        Some(n) if !(1..=250).contains(&n) => Err(ApiError::invalid("pageSize must be between 1 and 250")),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_fractional_seconds() {
        assert_eq!(serde_json::to_string(&Timestamp(1_700_000_000_123)).unwrap(), "1700000000.123");
        assert_eq!(serde_json::to_string(&Empty {}).unwrap(), "{}");
    }

    #[test]
    fn pages_follow_the_token() {
        let (p, next) = page((0..5).collect(), None, Some(2), 50).unwrap();
        assert_eq!((p, next.as_deref()), (vec![0, 1], Some("2")));
        let (p, next) = page((0..5).collect(), Some("4"), Some(2), 50).unwrap();
        assert_eq!((p, next), (vec![4], None));
        assert_eq!(page::<i32>(vec![], Some("x"), None, 50).unwrap_err().code, crate::ErrorCode::InvalidRequest);
    }
}
