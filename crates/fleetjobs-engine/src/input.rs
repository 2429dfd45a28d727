//! An operation's input: one JSON object holding its path labels, query parameters,
//! headers and body members under their AWS member names (the HTTP adapter builds it).
//! Accessors check types and presence and answer `InvalidRequestException` otherwise.

use fleetjobs_core::{ApiError, ApiResult};
use serde_json::{Map, Value};

#[derive(Debug, Clone, Default)]
pub struct Input(pub Map<String, Value>);

fn wrong_type(name: &str, expected: &str) -> ApiError {
    ApiError::invalid(format!("Invalid type for parameter {name}, expected {expected}"))
}

impl Input {
    pub fn from_value(v: Value) -> ApiResult<Input> {
        match v {
            Value::Object(m) => Ok(Input(m)),
            _ => Err(ApiError::invalid("The request body must be a JSON object")),
        }
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name).filter(|v| !v.is_null())
    }

    pub fn str(&self, name: &str) -> ApiResult<Option<&str>> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(wrong_type(name, "a string")),
        }
    }

    pub fn req_str(&self, name: &str) -> ApiResult<&str> {
        self.str(name)?.ok_or_else(|| ApiError::invalid(format!("Missing required parameter: {name}")))
    }

    pub fn bool(&self, name: &str) -> ApiResult<Option<bool>> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::String(s)) if s == "true" || s == "false" => Ok(Some(s == "true")),
            Some(_) => Err(wrong_type(name, "a boolean")),
        }
    }

    pub fn flag(&self, name: &str) -> ApiResult<bool> {
        Ok(self.bool(name)?.unwrap_or(false))
    }

    pub fn i64(&self, name: &str) -> ApiResult<Option<i64>> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(|| wrong_type(name, "an integer")),
            Some(Value::String(s)) => s.parse().map(Some).map_err(|_| wrong_type(name, "an integer")),
            Some(_) => Err(wrong_type(name, "an integer")),
        }
    }

    pub fn object(&self, name: &str) -> ApiResult<Option<&Map<String, Value>>> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Object(m)) => Ok(Some(m)),
            Some(_) => Err(wrong_type(name, "a structure")),
        }
    }

    pub fn list(&self, name: &str) -> ApiResult<Option<&Vec<Value>>> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Array(a)) => Ok(Some(a)),
            Some(_) => Err(wrong_type(name, "a list")),
        }
    }

    /// A list of strings.
    pub fn strings(&self, name: &str) -> ApiResult<Option<Vec<&str>>> {
        let Some(list) = self.list(name)? else { return Ok(None) };
        list.iter()
            .map(|v| v.as_str().ok_or_else(|| wrong_type(name, "a list of strings")))
            .collect::<ApiResult<Vec<_>>>()
            .map(Some)
    }

    /// The required `jobId` member, validated.
    pub fn job_id(&self) -> ApiResult<&str> {
        let id = self.req_str("jobId")?;
        fleetjobs_core::validate::job_id(id, "jobId")?;
        Ok(id)
    }

    /// The required `thingName` member, validated.
    pub fn thing_name(&self) -> ApiResult<&str> {
        let name = self.req_str("thingName")?;
        fleetjobs_core::validate::thing_name(name, "thingName")?;
        Ok(name)
    }

    /// `maxResults`-style page size, validated 1..=250.
    pub fn max_results(&self, name: &str) -> ApiResult<Option<i64>> {
        let v = self.i64(name)?;
        if let Some(n) = v {
            fleetjobs_core::validate::max_results(n)?;
        }
        Ok(v)
    }
}
