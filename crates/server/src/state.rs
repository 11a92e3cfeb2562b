//! What every handler shares.

use crate::auth::TokenCache;
use kubepkg_platform::Platform;
use kubepkg_platform::config::ServerSettings;
use std::sync::Arc;

/// The server's shared state: the platform, the settings and the token
/// cache. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The platform every route serves.
    pub platform: Platform,
    /// The `[server]` settings.
    pub settings: Arc<ServerSettings>,
    /// Recently checked tokens.
    pub tokens: Arc<TokenCache>,
    /// Names of the configured object stores.
    pub object_stores: Arc<Vec<String>>,
    /// Names of the configured message queues.
    pub queues: Arc<Vec<String>>,
}

impl AppState {
    /// State over an open platform, serving the named object stores and
    /// queues (set up by `kubepkg_platform::init`).
    pub fn new(
        platform: Platform,
        settings: ServerSettings,
        object_stores: Vec<String>,
        queues: Vec<String>,
    ) -> AppState {
        AppState {
            platform,
            settings: Arc::new(settings),
            tokens: Arc::new(TokenCache::default()),
            object_stores: Arc::new(object_stores),
            queues: Arc::new(queues),
        }
    }
}
