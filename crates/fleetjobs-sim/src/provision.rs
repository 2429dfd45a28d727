//! Provisioning a simulated fleet through the public `iot` API: a policy, one thing group, N
//! things in it, and one certificate shared by every thing.
//!
//! One shared certificate, not one per thing: AWS IoT lets a certificate be attached to many
//! things (a non-exclusive `attach-thing-principal`), and a device's thing is its client id
//! while that thing is attached to the certificate (`iot:Connection.Thing.ThingName`). So N
//! devices cost N `create-thing` + N `add-thing-to-thing-group` + N `attach-thing-principal`
//! calls and one key pair, and the policy still confines each connection to its own thing's
//! topics through the `${iot:Connection.Thing.ThingName}` variable. Rerunning against the
//! same server reuses the things, the group and the policy (a new certificate is attached).
//!
//! The certificate's key is the server's choice (`create-keys-and-certificate`: RSA-2048 by
//! default, as AWS) or, with [`DeviceKeyType::EcP256`], an EC P-256 key made here and certified
//! through `create-certificate-from-csr`, as a device that keeps its key would do. The key type
//! sets the client's cost per full handshake: an RSA-2048 signature costs the simulator about
//! 1 ms of CPU, a P-256 one a few tens of microseconds.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use reqwest::Method;
use serde_json::{json, Value};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::api::{Api, ApiError};

/// What provisioning made: everything a device needs besides the server's CA.
#[derive(Debug, Clone)]
pub struct Fleet {
    pub group_name: String,
    pub group_arn: String,
    pub things: Vec<String>,
    pub certificate_arn: String,
    pub certificate_pem: String,
    pub private_key_pem: String,
}

/// How the shared certificate's key is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceKeyType {
    /// The server makes it (`create-keys-and-certificate`), of the type it is configured for.
    #[default]
    Server,
    /// An EC P-256 key made here, certified through `create-certificate-from-csr`.
    EcP256,
}

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("a provisioning task failed: {0}")]
    Task(String),
    #[error("{0} answered without {1}")]
    Missing(&'static str, &'static str),
    #[error("making the device key or its CSR: {0}")]
    Key(#[from] rcgen::Error),
}

/// The name of simulated thing `i` of fleet `prefix`.
pub fn thing_name(prefix: &str, i: usize) -> String {
    format!("{prefix}-{i:06}")
}

/// The policy every simulated device gets: connect as its own thing, use its own Jobs topics.
pub fn policy_document(arn_prefix: &str) -> Value {
    let thing = "${iot:Connection.Thing.ThingName}";
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "iot:Connect", "Resource": format!("{arn_prefix}:client/{thing}")},
            {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"],
             "Resource": format!("{arn_prefix}:topic/$aws/things/{thing}/jobs/*")},
            {"Effect": "Allow", "Action": "iot:Subscribe",
             "Resource": format!("{arn_prefix}:topicfilter/$aws/things/{thing}/jobs/*")}
        ]
    })
}

/// Ignore "already exists": rerunning reuses what an earlier run made.
fn tolerate_existing(r: Result<Value, ApiError>) -> Result<Value, ApiError> {
    match r {
        Err(e) if e.code() == Some("ResourceAlreadyExistsException") => Ok(Value::Null),
        other => other,
    }
}

fn text(v: &Value, key: &'static str, op: &'static str) -> Result<String, ProvisionError> {
    v.get(key).and_then(Value::as_str).map(String::from).ok_or(ProvisionError::Missing(op, key))
}

/// Provision `count` things named `{prefix}-NNNNNN` in group `prefix`, `concurrency` calls at
/// a time; `done` counts finished things (for progress).
pub async fn provision(
    api: Arc<Api>,
    prefix: &str,
    count: usize,
    concurrency: usize,
    key_type: DeviceKeyType,
    done: Arc<AtomicUsize>,
) -> Result<Fleet, ProvisionError> {
    let group =
        tolerate_existing(api.call(Method::POST, &format!("/thing-groups/{prefix}"), "", Some(&json!({})), &[]).await)?;
    let group_arn = match group.get("thingGroupArn") {
        Some(_) => text(&group, "thingGroupArn", "CreateThingGroup")?,
        None => {
            let g = api.call(Method::GET, &format!("/thing-groups/{prefix}"), "", None, &[]).await?;
            text(&g, "thingGroupArn", "DescribeThingGroup")?
        }
    };
    // arn:aws:iot:REGION:ACCOUNT:thinggroup/NAME → arn:aws:iot:REGION:ACCOUNT
    let arn_prefix = group_arn.rsplit_once(':').map(|(p, _)| p.to_string()).unwrap_or_default();
    let policy = format!("{prefix}-policy");
    let body = json!({ "policyDocument": policy_document(&arn_prefix).to_string() });
    tolerate_existing(api.call(Method::POST, &format!("/policies/{policy}"), "", Some(&body), &[]).await)?;
    let (certificate_arn, certificate_pem, private_key_pem) = certificate(&api, prefix, key_type).await?;
    api.call(Method::PUT, &format!("/target-policies/{policy}"), "", Some(&json!({ "target": certificate_arn })), &[])
        .await?;

    let things: Vec<String> = (0..count).map(|i| thing_name(prefix, i)).collect();
    let permits = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut tasks = JoinSet::new();
    for thing in things.clone() {
        let (api, permits, done) = (api.clone(), permits.clone(), done.clone());
        let (group, cert_arn) = (prefix.to_string(), certificate_arn.clone());
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await;
            tolerate_existing(api.call(Method::POST, &format!("/things/{thing}"), "", Some(&json!({})), &[]).await)?;
            let add = json!({ "thingGroupName": group, "thingName": thing });
            api.call(Method::PUT, "/thing-groups/addThingToThingGroup", "", Some(&add), &[]).await?;
            api.call(Method::PUT, &format!("/things/{thing}/principals"), "", None, &[("x-amzn-principal", &cert_arn)])
                .await?;
            done.fetch_add(1, Ordering::Relaxed);
            Ok::<(), ApiError>(())
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined.map_err(|e| ProvisionError::Task(e.to_string()))??;
    }
    Ok(Fleet { group_name: prefix.to_string(), group_arn, things, certificate_arn, certificate_pem, private_key_pem })
}

/// The fleet's certificate, ACTIVE: (ARN, certificate PEM, private key PEM).
async fn certificate(
    api: &Api,
    prefix: &str,
    key_type: DeviceKeyType,
) -> Result<(String, String, String), ProvisionError> {
    match key_type {
        DeviceKeyType::Server => {
            let cert = api.call(Method::POST, "/keys-and-certificate", "setAsActive=true", None, &[]).await?;
            let private_key_pem = cert
                .get("keyPair")
                .and_then(|k| k.get("PrivateKey"))
                .and_then(Value::as_str)
                .map(String::from)
                .ok_or(ProvisionError::Missing("CreateKeysAndCertificate", "keyPair.PrivateKey"))?;
            Ok((
                text(&cert, "certificateArn", "CreateKeysAndCertificate")?,
                text(&cert, "certificatePem", "CreateKeysAndCertificate")?,
                private_key_pem,
            ))
        }
        DeviceKeyType::EcP256 => {
            let (csr_pem, private_key_pem) = ec_key_and_csr(prefix)?;
            let body = json!({ "certificateSigningRequest": csr_pem });
            let cert = api.call(Method::POST, "/certificates", "setAsActive=true", Some(&body), &[]).await?;
            Ok((
                text(&cert, "certificateArn", "CreateCertificateFromCsr")?,
                text(&cert, "certificatePem", "CreateCertificateFromCsr")?,
                private_key_pem,
            ))
        }
    }
}

/// A new EC P-256 key and a CSR for it (subject CN = `common_name`): (CSR PEM, key PEM).
fn ec_key_and_csr(common_name: &str) -> Result<(String, String), rcgen::Error> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name.push(rcgen::DnType::CommonName, common_name);
    let csr = params.serialize_request(&key)?;
    Ok((csr.pem()?, key.serialize_pem()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sort_in_creation_order_and_the_policy_scopes_to_the_thing() {
        assert_eq!(thing_name("sim", 7), "sim-000007");
        assert!(thing_name("sim", 9) < thing_name("sim", 10));
        let doc = policy_document("arn:aws:iot:us-east-1:123456789012").to_string();
        assert!(doc.contains("client/${iot:Connection.Thing.ThingName}"));
        assert!(doc.contains("topic/$aws/things/${iot:Connection.Thing.ThingName}/jobs/*"));
    }

    #[test]
    fn an_ec_key_comes_with_a_csr_for_it() {
        let (csr, key) = ec_key_and_csr("sim").unwrap();
        assert!(csr.starts_with("-----BEGIN CERTIFICATE REQUEST-----"), "{csr}");
        assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"), "{key}");
        let key = rcgen::KeyPair::from_pem(&key).unwrap();
        assert!(key.is_compatible(&rcgen::PKCS_ECDSA_P256_SHA256));
    }
}
