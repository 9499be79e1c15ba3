//! `[api]` and `[web]`: the HTTP listener, its limits and the team workspace.

use super::*;

#[derive(Debug, Deserialize)]
pub(super) struct RawApi {
    #[serde(default = "d_listen")]
    pub(super) listen: String,
    #[serde(default = "d_rate")]
    pub(super) rate_limit: u32,
    #[serde(default = "d_burst")]
    pub(super) burst: u32,
    #[serde(default = "d_max_connections")]
    pub(super) max_connections: u32,
    #[serde(default = "d_header_timeout")]
    pub(super) header_timeout: String,
    #[serde(default = "d_token_lifetime")]
    pub(super) token_lifetime: String,
    #[serde(default)]
    pub(super) metrics_admin_only: bool,
}

pub(super) fn d_token_lifetime() -> String {
    "P90D".into()
}

pub(super) fn d_listen() -> String {
    "127.0.0.1:8080".into()
}

pub(super) fn d_rate() -> u32 {
    20
}

pub(super) fn d_burst() -> u32 {
    40
}

pub(super) fn d_max_connections() -> u32 {
    256
}

pub(super) fn d_header_timeout() -> String {
    "PT10S".into()
}

impl Default for RawApi {
    fn default() -> Self {
        RawApi {
            listen: d_listen(),
            rate_limit: d_rate(),
            burst: d_burst(),
            max_connections: d_max_connections(),
            header_timeout: d_header_timeout(),
            token_lifetime: d_token_lifetime(),
            metrics_admin_only: false,
        }
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct RawWeb {
    #[serde(default)]
    pub(super) base_url: Option<String>,
    #[serde(default = "d_session_idle")]
    pub(super) session_idle: String,
}

pub(super) fn d_session_idle() -> String {
    "PT30M".into()
}

impl Default for RawWeb {
    fn default() -> Self {
        RawWeb {
            base_url: None,
            session_idle: d_session_idle(),
        }
    }
}

/// The team workspace under `/team/` (served on the API listener).
#[derive(Clone, Debug)]
pub struct WebConfig {
    /// Where teams reach the daemon, without a trailing slash, e.g. `https://nazorg.example.nl`;
    /// every link in a mail starts with it. Default: `http://` + `api.listen`.
    pub base_url: String,
    /// A session ends after this long without a request.
    pub session_idle: IsoDuration,
}

impl WebConfig {
    /// Cookies get `Secure` when the workspace is reached over https.
    pub fn secure_cookies(&self) -> bool {
        self.base_url.starts_with("https://")
    }
}

/// The HTTP API: where it listens and how much one token may ask.
#[derive(Clone, Copy, Debug)]
pub struct ApiConfig {
    pub listen: std::net::SocketAddr,
    /// Sustained requests per second per token.
    pub rate_limit: u32,
    /// Requests a token may make at once before the rate applies.
    pub burst: u32,
    /// Open connections served at once; further clients wait in the listen backlog.
    pub max_connections: u32,
    /// How long a client may take to send a request's headers (slow clients hold a
    /// connection slot otherwise).
    pub header_timeout: std::time::Duration,
    /// How long a token lives when `token create` is given no `--expires`.
    pub token_lifetime: IsoDuration,
    /// `GET /metrics` needs an admin token (else it answers anyone who reaches the listener).
    pub metrics_admin_only: bool,
}
