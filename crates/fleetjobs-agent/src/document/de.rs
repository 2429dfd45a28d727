//! Deserializing job documents into the schema types: [`typed`] turns a wrong type into a
//! [`DocumentError`] naming the field (`steps[1].action.input.handler`), and the
//! `deserialize_with` helpers keep the leniencies the real clients rely on: booleans and
//! integers given as strings, `""` for an unset optional template parameter, `null` = absent.

use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use serde::de::{self, DeserializeOwned, Deserializer, SeqAccess, Unexpected, Visitor};
use serde::Deserialize;
use serde_json::Value;

use super::paths::valid_package_name;
use super::{error, missing};
use crate::plan::DocumentError;

/// `doc` as `T`. The error names the field path; a missing field reads as
/// "required field `steps[0].action.name` is missing".
pub(super) fn typed<T: DeserializeOwned>(doc: &Value) -> Result<T, DocumentError> {
    serde_path_to_error::deserialize(doc).map_err(|e| {
        let path = e.path();
        let at_root = path.iter().next().is_none();
        let inner = e.inner().to_string();
        // serde reports a missing field at its parent; name the field itself, as people write it.
        if let Some(field) = inner.strip_prefix("missing field `").and_then(|f| f.strip_suffix('`')) {
            return if at_root { missing(field) } else { missing(&format!("{path}.{field}")) };
        }
        if at_root {
            error(inner)
        } else {
            error(format!("`{path}`: {inner}"))
        }
    })
}

// ---- strings ----

/// A required string that is not blank (returned as written).
pub(super) fn nonblank<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    d.deserialize_str(NonBlank)
}

/// An optional string that, when present, is not blank.
pub(super) fn opt_nonblank<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    d.deserialize_option(OptionOf(NonBlank))
}

/// An optional string where `""` means "not set" (substituted optional template parameters).
pub(super) fn blank_as_none<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.filter(|s| !s.trim().is_empty()))
}

struct NonBlank;

impl Visitor<'_> for NonBlank {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a non-empty string")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<String, E> {
        if s.trim().is_empty() {
            Err(E::invalid_value(Unexpected::Str(s), &self))
        } else {
            Ok(s.to_owned())
        }
    }
}

/// A package name usable as one directory name (see [`valid_package_name`]), trimmed.
pub(super) fn package_name<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let name = nonblank(d)?;
    let name = name.trim();
    if valid_package_name(name) {
        Ok(name.to_owned())
    } else {
        Err(de::Error::invalid_value(
            Unexpected::Str(name),
            &"a package name (letters, digits, `.`, `_`, `-`; at most 128)",
        ))
    }
}

/// An `http://` or `https://` URL with a host, trimmed. A code-signed document whose
/// `${aws:iot:code-sign-signature:…}` placeholder was not substituted has an object here.
pub(super) fn http_url<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    d.deserialize_str(HttpUrl)
}

struct HttpUrl;

impl Visitor<'_> for HttpUrl {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an http(s) URL string (an unsubstituted code-signing placeholder?)")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<String, E> {
        if is_http_url(s) {
            Ok(s.trim().to_owned())
        } else {
            Err(E::invalid_value(Unexpected::Str(s), &"an http(s) URL"))
        }
    }
}

/// `true` when `url` is an `http://` or `https://` URL with a host.
pub(super) fn is_http_url(url: &str) -> bool {
    let lower = url.trim().to_ascii_lowercase();
    ["http://", "https://"]
        .iter()
        .any(|scheme| lower.strip_prefix(scheme).is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/')))
}

/// `hashAlgorithm`: SHA256 in any case, with or without a dash.
pub(super) fn sha256_algorithm<'de, D: Deserializer<'de>>(d: D) -> Result<(), D::Error> {
    let algorithm = nonblank(d)?;
    if algorithm.trim().to_ascii_lowercase().replace('-', "") == "sha256" {
        Ok(())
    } else {
        Err(de::Error::invalid_value(Unexpected::Str(&algorithm), &"SHA256 (the only algorithm supported)"))
    }
}

/// A sha256 digest as 64 hex digits, normalized to lower case.
pub(super) fn sha256_hex<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let value = nonblank(d)?;
    let v = value.trim().to_ascii_lowercase();
    if v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(v)
    } else {
        Err(de::Error::invalid_value(Unexpected::Str(&value), &"a sha256 digest (64 hex digits)"))
    }
}

// ---- booleans and integers, also as strings ----

/// A boolean given as a JSON boolean or as the string `"true"` / `"false"` (the Device
/// Client only understands the strings; documents written for its docs use booleans).
pub(super) fn flag<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    d.deserialize_option(OptionOf(Flag))
}

fn parse_flag_str(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

struct Flag;

impl Visitor<'_> for Flag {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("true or false (a boolean or the string \"true\"/\"false\")")
    }

    fn visit_bool<E: de::Error>(self, b: bool) -> Result<bool, E> {
        Ok(b)
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<bool, E> {
        parse_flag_str(s).ok_or_else(|| E::invalid_value(Unexpected::Str(s), &self))
    }
}

/// A non-negative integer given as a JSON number or a numeric string (`"delay": "3"`).
pub(super) fn count<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    d.deserialize_option(OptionOf(Count))
}

struct Count;

impl Visitor<'_> for Count {
    type Value = u32;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a non-negative integer (a number or a numeric string)")
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<u32, E> {
        u32::try_from(n).map_err(|_| E::invalid_value(Unexpected::Unsigned(n), &self))
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<u32, E> {
        u32::try_from(n).map_err(|_| E::invalid_value(Unexpected::Signed(n), &self))
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<u32, E> {
        s.trim().parse().map_err(|_| E::invalid_value(Unexpected::Str(s), &self))
    }
}

/// `allowStdErr`: a boolean (or `"true"` / `"false"`), or a line count (Device Client) where
/// `0` allows none.
pub(super) fn allow_stderr<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    d.deserialize_option(OptionOf(AllowStdErr))
}

struct AllowStdErr;

impl Visitor<'_> for AllowStdErr {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a boolean or a non-negative line count")
    }

    fn visit_bool<E: de::Error>(self, b: bool) -> Result<bool, E> {
        Ok(b)
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<bool, E> {
        Count.visit_u64(n).map(|n| n > 0)
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<bool, E> {
        Count.visit_i64(n).map(|n| n > 0)
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<bool, E> {
        match parse_flag_str(s) {
            Some(b) => Ok(b),
            None => Count.visit_str(s).map(|n| n > 0),
        }
    }
}

/// The Fleetjobs extension `timeoutSeconds`: a positive integer (number or numeric string).
pub(super) fn timeout<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    match count(d)? {
        Some(0) => Err(de::Error::invalid_value(Unexpected::Unsigned(0), &"a positive number of seconds")),
        other => Ok(other.map(|s| Duration::from_secs(u64::from(s)))),
    }
}

// ---- arrays ----

/// A required array with at least one element.
pub(super) fn non_empty_array<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    d.deserialize_seq(Array { non_empty: true, item: PhantomData })
}

/// An optional array (absent or `null` → `None`).
pub(super) fn opt_array<'de, D, T>(d: D) -> Result<Option<Vec<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    d.deserialize_option(OptionOf(Array { non_empty: false, item: PhantomData }))
}

/// Arguments: strings, with numbers and booleans taken as their JSON text (`["/var/log", 3]`).
/// Absent or `null`: none.
pub(super) fn args<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let args: Option<Vec<Arg>> = opt_array(d)?;
    Ok(args.unwrap_or_default().into_iter().map(|a| a.0).collect())
}

struct Array<T> {
    non_empty: bool,
    item: PhantomData<T>,
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for Array<T> {
    type Value = Vec<T>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(if self.non_empty { "a non-empty array" } else { "an array" })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        if self.non_empty && items.is_empty() {
            return Err(de::Error::invalid_length(0, &self));
        }
        Ok(items)
    }
}

struct Arg(String);

impl<'de> Deserialize<'de> for Arg {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ArgVisitor).map(Arg)
    }
}

struct ArgVisitor;

impl Visitor<'_> for ArgVisitor {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string (or a number or boolean)")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<String, E> {
        Ok(s.to_owned())
    }

    fn visit_bool<E: de::Error>(self, b: bool) -> Result<String, E> {
        Ok(b.to_string())
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<String, E> {
        Ok(n.to_string())
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<String, E> {
        Ok(n.to_string())
    }

    fn visit_f64<E: de::Error>(self, n: f64) -> Result<String, E> {
        // As the JSON text would print it (`1.5`, `1e300`).
        Ok(serde_json::Number::from_f64(n).map_or_else(|| n.to_string(), |n| n.to_string()))
    }
}

/// `null` → `None`, anything else through the inner visitor.
struct OptionOf<V>(V);

impl<'de, V: Visitor<'de>> Visitor<'de> for OptionOf<V> {
    type Value = Option<V::Value>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        self.0.expecting(f)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self.0).map(Some)
    }
}
