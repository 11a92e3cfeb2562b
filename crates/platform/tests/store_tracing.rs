//! Every store call runs in a `tracing` span `store` with its backend,
//! operation and target, and no span or event carries a secret.
//!
//! Its own test binary: the capturing subscriber is installed for this
//! thread only, and a test running beside it on another thread could
//! register the store's callsites before it and hide them.

use std::collections::BTreeMap;
use std::sync::Arc;

use kubepkg_platform::Store;
use kubepkg_platform::crypto::Keyring;
use kubepkg_platform::store::{CredentialKind, CredentialOwner, NewCluster};
use kubepkg_util::ErrorKind;
use kubepkg_util::secret::Secret;

/// Records every span's and event's fields as text.
struct Capture {
    lines: Arc<std::sync::Mutex<Vec<String>>>,
    next: std::sync::atomic::AtomicU64,
}

#[derive(Default)]
struct Fields(String);

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        use std::fmt::Write as _;
        let _ = write!(self.0, "{}={:?} ", field.name(), value);
    }
}

impl Capture {
    fn push(&self, line: String) {
        self.lines.lock().expect("lock").push(line);
    }
}

impl tracing::Subscriber for Capture {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, attrs: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        self.push(format!("span {} {}", attrs.metadata().name(), fields.0));
        let id = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::span::Id::from_u64(id)
    }
    fn record(&self, _: &tracing::span::Id, values: &tracing::span::Record<'_>) {
        let mut fields = Fields::default();
        values.record(&mut fields);
        self.push(format!("record {}", fields.0));
    }
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        self.push(format!("event {} {}", event.metadata().target(), fields.0));
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[tokio::test]
async fn store_calls_run_in_spans_that_never_carry_secrets() {
    let lines = Arc::new(std::sync::Mutex::new(Vec::new()));
    let _guard = tracing::subscriber::set_default(Capture {
        lines: Arc::clone(&lines),
        next: std::sync::atomic::AtomicU64::new(1),
    });
    let keys = Keyring::new("k1", [0xA1; 32])
        .and_then(|k| k.with_key("k2", [0xB2; 32]))
        .expect("keyring");
    let store = Store::open("sqlite::memory:", keys).await.expect("open");
    let token = "span-secret-token-c0ffee";
    store
        .create_cluster(
            &NewCluster {
                name: "traced".into(),
                provider: "imported".into(),
                api_server: "https://traced.example.invalid".into(),
                labels: BTreeMap::from([("env".into(), "test".into())]),
                ..NewCluster::default()
            },
            CredentialKind::Token,
            &Secret::new(token.to_owned()),
        )
        .await
        .expect("create");
    store
        .credential(&CredentialOwner::Cluster("traced".into()))
        .await
        .expect("read");
    store.rotate_key("k1", "k2").await.expect("rotate");
    let missing = store.get_cluster("missing").await;
    assert_eq!(
        missing.map_err(|e| e.kind()).err(),
        Some(ErrorKind::NotFound)
    );
    store.close().await;

    let lines = lines.lock().expect("lock").clone();
    let has_span = |operation: &str, target: &str| {
        lines.iter().any(|l| {
            l.starts_with("span store ")
                && l.contains("backend=sqlite")
                && l.contains(&format!("operation=\"{operation}\""))
                && l.contains(&format!("target={target} "))
        })
    };
    assert!(has_span("create_cluster", "traced"), "{lines:#?}");
    assert!(has_span("credential", "cluster/traced"), "{lines:#?}");
    assert!(has_span("rotate_key", "k1->k2"), "{lines:#?}");
    assert!(has_span("get_cluster", "missing"), "{lines:#?}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("span store ") && l.contains("operation=\"open\"")),
        "{lines:#?}"
    );
    assert!(
        lines.iter().any(|l| l.contains("sqlite::memory:")),
        "open records its target: {lines:#?}"
    );
    for line in &lines {
        assert!(!line.contains(token), "a secret reached tracing: {line}");
    }
}
