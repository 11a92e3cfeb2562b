//! A kubeconfig as the platform stores it: base64 text, decoded, split and
//! parsed into JSON values, then read the way a kubeconfig loader reads it
//! (servers, base64 certificate data, tokens). Nothing here may panic.
#![no_main]

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use kubepkg_util::yaml::parse_documents;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fn read_kubeconfig(config: &Value) {
    let current = config.get("current-context").and_then(Value::as_str);
    let named = |list: &str, name: Option<&str>| -> Option<Value> {
        config
            .get(list)?
            .as_array()?
            .iter()
            .find(|item| name.is_none() || item.get("name").and_then(Value::as_str) == name)
            .cloned()
    };
    let context = named("contexts", current);
    let context = context.as_ref().and_then(|c| c.get("context"));
    let cluster_name = context
        .and_then(|c| c.get("cluster"))
        .and_then(Value::as_str);
    let user_name = context.and_then(|c| c.get("user")).and_then(Value::as_str);
    if let Some(cluster) = named("clusters", cluster_name)
        .as_ref()
        .and_then(|c| c.get("cluster"))
    {
        let _ = cluster.get("server").and_then(Value::as_str).map(str::len);
        if let Some(ca) = cluster
            .get("certificate-authority-data")
            .and_then(Value::as_str)
        {
            let _ = STANDARD.decode(ca.trim());
        }
        let _ = cluster
            .get("insecure-skip-tls-verify")
            .and_then(Value::as_bool);
    }
    if let Some(user) = named("users", user_name)
        .as_ref()
        .and_then(|u| u.get("user"))
    {
        let _ = user.get("token").and_then(Value::as_str).map(str::len);
        for key in ["client-certificate-data", "client-key-data"] {
            if let Some(data) = user.get(key).and_then(Value::as_str) {
                let _ = STANDARD.decode(data.trim());
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let trimmed: Vec<u8> = data
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let Ok(decoded) = STANDARD.decode(&trimmed) else {
        return;
    };
    let text = String::from_utf8_lossy(&decoded);
    let Ok(documents) = parse_documents(&text) else {
        return;
    };
    for document in &documents {
        read_kubeconfig(&document.value);
    }
});
