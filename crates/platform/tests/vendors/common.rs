//! Adapters pointed at simulators, with backoff short enough for tests.

use kubepkg_platform::core::{Platform, PlatformOptions, WaitOptions};
use kubepkg_platform::crypto::Keyring;
use kubepkg_platform::provider::http::{AccessKeyConfig, HttpOptions};
use kubepkg_platform::store::Store;
use kubepkg_util::retry::RetryPolicy;
use kubepkg_util::secret::Secret;
use kubepkg_vendor_sim::SimHandle;
use std::time::Duration;

pub use crate::core_common::{assert_absent, capture_logs, cleanup};

/// Client knobs for tests: throttling retried quickly, 4 attempts.
pub fn http() -> HttpOptions {
    HttpOptions {
        retry: RetryPolicy::default()
            .initial_delay(Duration::from_millis(10))
            .max_delay(Duration::from_millis(50))
            .max_attempts(4),
        ..HttpOptions::default()
    }
}

/// Polls every 20 ms (doubling to 200 ms) for at most 20 s.
pub fn wait() -> WaitOptions {
    WaitOptions {
        deadline: Duration::from_secs(20),
        initial_interval: Duration::from_millis(20),
        max_interval: Duration::from_millis(200),
    }
}

/// A platform over a fresh in-memory store.
pub async fn platform() -> Platform {
    let _ = capture_logs();
    let keys = Keyring::new("test", Keyring::generate_key()).expect("keyring");
    let store = Store::open("sqlite::memory:", keys).await.expect("store");
    let options = PlatformOptions {
        max_retries: 1,
        ..PlatformOptions::default()
    };
    Platform::with_store(store, options)
        .await
        .expect("platform")
}

/// The account of a key-signed simulator (with `secret` instead of its
/// own when given).
pub fn account(sim: &SimHandle, secret: Option<&str>) -> AccessKeyConfig {
    AccessKeyConfig {
        endpoint: sim.endpoint.clone(),
        region: sim.region.clone(),
        key_id: sim.key_id.clone(),
        secret: Secret::new(secret.unwrap_or(&sim.secret).to_string()),
        http: http(),
    }
}

/// The TKE adapter for a simulator.
pub fn tke(sim: &SimHandle, secret: Option<&str>) -> kubepkg_platform::provider::tke::Tke {
    kubepkg_platform::provider::tke::Tke::new(account(sim, secret)).expect("tke adapter")
}

/// The ACK adapter for a simulator.
pub fn ack(sim: &SimHandle, secret: Option<&str>) -> kubepkg_platform::provider::ack::Ack {
    kubepkg_platform::provider::ack::Ack::new(account(sim, secret)).expect("ack adapter")
}

/// A unique platform cluster name.
pub fn unique(prefix: &str) -> String {
    kubepkg_testenv::unique_name(prefix)
}

/// The Rancher adapter for a simulator (with `token` instead of its key when given).
pub fn rancher(
    sim: &SimHandle,
    token: Option<&str>,
) -> kubepkg_platform::provider::rancher::Rancher {
    use kubepkg_platform::provider::rancher::{Rancher, RancherConfig};
    Rancher::new(RancherConfig {
        endpoint: sim.endpoint.clone(),
        token: Secret::new(token.unwrap_or(&sim.secret).to_string()),
        http: http(),
    })
    .expect("rancher adapter")
}

/// The Harbor adapter for a simulator (with `password` instead of the
/// admin's when given; `user` instead of `admin` when given).
pub fn harbor(
    sim: &SimHandle,
    user: Option<&str>,
    password: Option<&str>,
) -> kubepkg_platform::provider::harbor::Harbor {
    use kubepkg_image_api::config::{RegistryConfig, RegistryKind};
    let config = RegistryConfig::new(&sim.endpoint)
        .kind(RegistryKind::Harbor)
        .allow_http(true)
        .max_retries(3)
        .credentials(
            user.unwrap_or(&sim.key_id),
            Secret::new(password.unwrap_or(&sim.secret).to_string()),
        );
    kubepkg_platform::provider::harbor::Harbor::new(&config).expect("harbor adapter")
}

/// The TKEStack registry adapter for a simulator (with `token` instead of
/// its own when given).
pub fn tkestack(
    sim: &SimHandle,
    token: Option<&str>,
) -> kubepkg_platform::provider::tkestack::TkeStack {
    use kubepkg_platform::provider::tkestack::{TkeStack, TkeStackConfig};
    TkeStack::new(TkeStackConfig {
        endpoint: sim.endpoint.clone(),
        token: Secret::new(token.unwrap_or(&sim.secret).to_string()),
        tenant_id: Some("default".into()),
        http: http(),
    })
    .expect("tkestack adapter")
}

/// The ACR adapter for a simulator (its instance found through
/// ListInstance).
pub fn acr(sim: &SimHandle, secret: Option<&str>) -> kubepkg_platform::provider::acr::Acr {
    kubepkg_platform::provider::acr::Acr::new(account(sim, secret), None).expect("acr adapter")
}
