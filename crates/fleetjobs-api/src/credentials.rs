//! Caller credentials for the tools that sign requests ([`crate::sigv4::sign`], the S3
//! document source, the fleet simulator): the AWS environment variables and shared
//! credentials files, as the AWS CLI reads them.

use std::path::Path;

#[derive(Debug, Clone, PartialEq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl Credentials {
    /// From `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`(/`AWS_SESSION_TOKEN`), else from the
    /// shared credentials file's `AWS_PROFILE` (or `default`) section.
    pub fn from_environment() -> Option<Credentials> {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        if let (Some(id), Some(secret)) = (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
            return Some(Credentials {
                access_key_id: id,
                secret_access_key: secret,
                session_token: env("AWS_SESSION_TOKEN"),
            });
        }
        let file = env("AWS_SHARED_CREDENTIALS_FILE")
            .map(std::path::PathBuf::from)
            .or_else(|| env("HOME").map(|h| Path::new(&h).join(".aws/credentials")))?;
        Self::from_file(&file, &env("AWS_PROFILE").unwrap_or_else(|| "default".into()))
    }

    /// The `profile` section of the shared credentials file at `path` (e.g. the one
    /// `fleetjobs serve` writes into its data directory); `None` if unreadable or absent.
    pub fn from_file(path: &Path, profile: &str) -> Option<Credentials> {
        Self::from_profile(&std::fs::read_to_string(path).ok()?, profile)
    }

    /// The named section of a shared credentials file.
    pub fn from_profile(text: &str, profile: &str) -> Option<Credentials> {
        let (mut section, mut id, mut secret, mut token) = (String::new(), None, None, None);
        for line in text.lines().map(str::trim) {
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                section = name.trim().to_string();
            } else if section == profile {
                if let Some((k, v)) = line.split_once('=') {
                    let v = Some(v.trim().to_string());
                    match k.trim() {
                        "aws_access_key_id" => id = v,
                        "aws_secret_access_key" => secret = v,
                        "aws_session_token" => token = v,
                        _ => {}
                    }
                }
            }
        }
        Some(Credentials { access_key_id: id?, secret_access_key: secret?, session_token: token })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_from_a_profile_section() {
        let text = "[default]\naws_access_key_id = A\naws_secret_access_key=B\n[other]\naws_access_key_id=C\n";
        let c = Credentials::from_profile(text, "default").unwrap();
        assert_eq!((c.access_key_id.as_str(), c.secret_access_key.as_str()), ("A", "B"));
        assert_eq!(Credentials::from_profile(text, "other"), None);
    }
}
