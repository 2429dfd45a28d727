use serde_json::json;

use super::*;

fn keypair() -> (SigningKey, TrustStore) {
    let (private, public) = generate_keypair();
    let key = signing_key_from_str(&private).unwrap();
    let mut trust = TrustStore::new();
    trust.insert_str("ops", &public).unwrap();
    (key, trust)
}

fn document() -> Value {
    json!({
        "operation": "install",
        "packageName": "app",
        "files": [{"fileName": "app.bin", "fileSource": {"url": "https://h/app.bin"},
                   "checksum": {"inline": {"value": "ab"}, "hashAlgorithm": "SHA256"}}],
        "autoStart": true,
        "retries": 3,
        "note": "héllo \"world\"\n"
    })
}

#[test]
fn round_trip() {
    let (key, trust) = keypair();
    let signed = sign(&document(), "ops", &key);
    assert!(is_signed(&signed));
    assert_eq!(signed[SIGNATURE_MEMBER]["alg"], "ed25519");
    assert_eq!(signed[SIGNATURE_MEMBER]["keyId"], "ops");
    assert_eq!(verify(&signed, &trust).unwrap(), document());
    assert_eq!(enforce(&signed, &trust, true).unwrap(), document());
}

#[test]
fn signature_survives_reserialization_and_key_order() {
    let (key, trust) = keypair();
    let signed = sign(&document(), "ops", &key);
    // the same members in another order, pretty-printed and parsed again
    let mut reordered = serde_json::Map::new();
    let members = signed.as_object().unwrap();
    for k in members.keys().rev() {
        reordered.insert(k.clone(), members[k].clone());
    }
    let text = serde_json::to_string_pretty(&Value::Object(reordered)).unwrap();
    let reparsed: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(verify(&reparsed, &trust).unwrap(), document());
}

#[test]
fn any_change_breaks_the_signature() {
    let (key, trust) = keypair();
    let signed = sign(&document(), "ops", &key);
    let tamper = |f: &dyn Fn(&mut Value)| {
        let mut doc = signed.clone();
        f(&mut doc);
        verify(&doc, &trust).unwrap_err()
    };
    let changes: [&dyn Fn(&mut Value); 6] = [
        &|d| d["packageName"] = json!("evil"),
        &|d| d["files"][0]["fileSource"]["url"] = json!("https://evil/app.bin"),
        &|d| d["autoStart"] = json!("true"),
        &|d| d["retries"] = json!(4),
        &|d| {
            d.as_object_mut().unwrap().insert("launchCommand".into(), json!("rm -rf /"));
        },
        &|d| {
            d.as_object_mut().unwrap().remove("note");
        },
    ];
    for change in changes {
        assert!(matches!(tamper(change), SignatureError::BadSignature(k) if k == "ops"));
    }
}

#[test]
fn unknown_key_missing_and_malformed_signatures() {
    let (key, trust) = keypair();
    let signed = sign(&document(), "someone-else", &key);
    assert!(matches!(verify(&signed, &trust), Err(SignatureError::UnknownKey(k)) if k == "someone-else"));
    assert!(matches!(verify(&document(), &trust), Err(SignatureError::Missing)));
    assert!(matches!(enforce(&document(), &trust, true), Err(SignatureError::Missing)));
    assert_eq!(enforce(&document(), &trust, false).unwrap(), document());
    assert!(matches!(verify(&json!([1]), &trust), Err(SignatureError::NotAnObject)));

    let mut doc = sign(&document(), "ops", &key);
    doc[SIGNATURE_MEMBER]["alg"] = json!("rsa");
    assert!(matches!(verify(&doc, &trust), Err(SignatureError::UnsupportedAlgorithm(_))));
    doc[SIGNATURE_MEMBER] = json!({"alg": "ed25519", "keyId": "ops", "sig": "not base64!"});
    assert!(matches!(verify(&doc, &trust), Err(SignatureError::Malformed(_))));
    doc[SIGNATURE_MEMBER] = json!({"alg": "ed25519", "keyId": "ops", "sig": "AAAA"});
    assert!(matches!(verify(&doc, &trust), Err(SignatureError::Malformed(_))));
    doc[SIGNATURE_MEMBER] = json!("signed, trust me");
    assert!(matches!(verify(&doc, &trust), Err(SignatureError::Malformed(_))));
    // a bad signature also fails when signatures are optional
    let mut doc = sign(&document(), "ops", &key);
    doc["packageName"] = json!("evil");
    assert!(matches!(enforce(&doc, &trust, false), Err(SignatureError::BadSignature(_))));
}

#[test]
fn signing_replaces_an_old_signature_and_sign_document_takes_key_text() {
    let (private, public) = generate_keypair();
    let mut trust = TrustStore::new();
    trust.insert_str("k2", &public).unwrap();
    let (old_key, _) = keypair();
    let first = sign(&document(), "ops", &old_key);
    let second = sign_document(&first, "k2", &private).unwrap();
    assert_eq!(verify(&second, &trust).unwrap(), document());
    assert!(matches!(sign_document(&json!("x"), "k2", &private), Err(SignatureError::NotAnObject)));
    assert!(matches!(sign_document(&document(), "k2", "short"), Err(SignatureError::InvalidKey(_))));
}

#[test]
fn canonical_form() {
    let doc = json!({"b": [2, {"z": null, "a": true}], "a": "x\u{1}\"", "é": 1.5, "A": -0});
    assert_eq!(canonical_json(&doc), r#"{"A":0,"a":"x\u0001\"","b":[2,{"a":true,"z":null}],"é":1.5}"#);
}

#[test]
fn pem_keys_as_openssl_writes_them() {
    // `openssl genpkey -algorithm ed25519` / `openssl pkey -pubout` for RFC 8032 test 1
    let private_pem = "-----BEGIN PRIVATE KEY-----\n\
        MC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g\n\
        -----END PRIVATE KEY-----\n";
    let public_pem = "-----BEGIN PUBLIC KEY-----\n\
        MCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\n\
        -----END PUBLIC KEY-----\n";
    let key = signing_key_from_str(private_pem).unwrap();
    let public = verifying_key_from_str(public_pem).unwrap();
    assert_eq!(key.verifying_key(), public);
    assert_eq!(public_key_pem(&public), public_pem);
    assert_eq!(public_key_base64(&public), "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=");
    assert!(matches!(verifying_key_from_str(private_pem), Err(SignatureError::InvalidKey(_))));
}

#[test]
fn trust_store_from_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let (private, public) = generate_keypair();
    let key = signing_key_from_str(&private).unwrap();
    std::fs::write(dir.path().join("fleet-ops.pub"), format!("{public}\n")).unwrap();
    std::fs::write(dir.path().join("backup.pem"), public_key_pem(&key.verifying_key())).unwrap();
    std::fs::write(dir.path().join("README.md"), "not a key").unwrap();
    let trust = TrustStore::from_dir(dir.path()).unwrap();
    assert_eq!(trust.key_ids().collect::<Vec<_>>(), ["backup", "fleet-ops"]);
    assert_eq!(trust.len(), 2);
    assert!(verify(&sign(&document(), "fleet-ops", &key), &trust).is_ok());

    std::fs::write(dir.path().join("broken.pub"), "garbage").unwrap();
    assert!(matches!(TrustStore::from_dir(dir.path()), Err(SignatureError::InvalidKey(m)) if m.contains("broken.pub")));
    assert!(matches!(TrustStore::from_dir(&dir.path().join("nope")), Err(SignatureError::KeyFile { .. })));
    let only = TrustStore::from_files(&[dir.path().join("backup.pem")]).unwrap();
    assert_eq!(only.key_ids().collect::<Vec<_>>(), ["backup"]);
    assert!(!only.is_empty());
}
