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

/// Checks `[api]`: the listen address, limits, timeouts and token lifetime.
pub(super) fn validate_api(raw: &RawApi, is: &mut Issues) -> ApiConfig {
    let listen = match raw.listen.parse::<std::net::SocketAddr>() {
        Ok(a) => a,
        Err(_) => {
            is.push("api.listen", "expected IP:PORT, e.g. \"127.0.0.1:8080\"");
            std::net::SocketAddr::from(([127, 0, 0, 1], 8080))
        }
    };
    if raw.rate_limit == 0 {
        is.push("api.rate_limit", "must be at least 1");
    }
    if raw.burst == 0 {
        is.push("api.burst", "must be at least 1");
    }
    if raw.max_connections == 0 {
        is.push("api.max_connections", "must be at least 1");
    }
    let header_timeout = match is.duration("api.header_timeout", &raw.header_timeout) {
        Some(d) if d.nominal_seconds() >= 1 && d.nominal_seconds() <= 300 => {
            std::time::Duration::from_secs(d.nominal_seconds().unsigned_abs())
        }
        Some(_) => {
            is.push(
                "api.header_timeout",
                "must be between PT1S and PT5M, e.g. \"PT10S\"",
            );
            std::time::Duration::from_secs(10)
        }
        None => std::time::Duration::from_secs(10),
    };
    let token_lifetime = is
        .duration("api.token_lifetime", &raw.token_lifetime)
        .unwrap_or(IsoDuration::days(90));
    if token_lifetime.is_zero() {
        is.push("api.token_lifetime", "must be longer than zero");
    }
    ApiConfig {
        listen,
        rate_limit: raw.rate_limit,
        burst: raw.burst,
        max_connections: raw.max_connections,
        header_timeout,
        token_lifetime,
        metrics_admin_only: raw.metrics_admin_only,
    }
}

/// Checks `[web]`: the public base URL (default: the API's `listen` address) and the
/// session idle time.
pub(super) fn validate_web(
    raw: &RawWeb,
    listen: std::net::SocketAddr,
    is: &mut Issues,
) -> WebConfig {
    let base_url = match &raw.base_url {
        None => format!("http://{listen}"),
        Some(u) => {
            let u = u.trim_end_matches('/').to_string();
            let rest = u
                .strip_prefix("https://")
                .or_else(|| u.strip_prefix("http://"));
            match rest {
                Some(host) if !host.is_empty() && !host.contains(['/', '?', '#', ' ']) => {}
                _ => is.push(
                    "web.base_url",
                    "expected http(s)://HOST[:PORT] without a path, e.g. \"https://nazorg.example.nl\"",
                ),
            }
            u
        }
    };
    let session_idle = is
        .duration("web.session_idle", &raw.session_idle)
        .unwrap_or(IsoDuration::ZERO);
    if session_idle.is_zero() {
        is.push("web.session_idle", "must be longer than zero, e.g. PT30M");
    }
    WebConfig {
        base_url,
        session_idle,
    }
}
