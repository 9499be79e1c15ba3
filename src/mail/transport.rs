//! Where rendered messages go: a directory of `.eml` files, or an SMTP relay.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::message::{OutgoingMessage, build, sha256_hex};
use super::{MailError, SendError};

/// TCP connect timeout for SMTP.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Upper bound for one whole SMTP transaction (connect, TLS, AUTH, DATA).
const SEND_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest sanitised key prefix in an `.eml` file name.
const MAX_STEM: usize = 80;

/// A configured mail transport.
pub enum Transport {
    /// One `.eml` file per message in `dir` (development, dry runs, audits).
    File { dir: PathBuf },
    /// An SMTP relay. `endpoint` is the credential-free description for logs.
    Smtp {
        transport: AsyncSmtpTransport<Tokio1Executor>,
        endpoint: String,
    },
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

/// TLS mode of an `smtp(s)://` URL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TlsMode {
    /// Implicit TLS (`smtps://`).
    Wrapper,
    /// STARTTLS, fail if not offered.
    Required,
    /// STARTTLS when offered, else plain.
    Opportunistic,
    /// Plain text; loopback hosts only.
    None,
}

impl TlsMode {
    fn as_str(self) -> &'static str {
        match self {
            TlsMode::Wrapper => "implicit",
            TlsMode::Required => "required",
            TlsMode::Opportunistic => "opportunistic",
            TlsMode::None => "none",
        }
    }
}

/// The SMTP password (from `mail.url` or `mail.password_file`). Zeroized on drop; `Debug`
/// never prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(zeroize::Zeroizing<String>);

impl Password {
    pub fn new(s: String) -> Password {
        Password(zeroize::Zeroizing::new(s))
    }

    /// The password itself, for the SMTP AUTH exchange only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// The parsed pieces of an SMTP URL.
#[derive(Debug, PartialEq, Eq)]
struct SmtpUrl {
    implicit_tls: bool,
    host: String,
    port: u16,
    tls: TlsMode,
    /// `user[:password]` from the URL.
    userinfo: Option<(String, Option<String>)>,
}

impl SmtpUrl {
    fn endpoint(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.implicit_tls {
            format!("smtps://{host}:{}", self.port)
        } else {
            format!("smtp://{host}:{}?tls={}", self.port, self.tls.as_str())
        }
    }
}

fn bad_url(reason: impl Into<String>) -> MailError {
    MailError::BadUrl {
        reason: reason.into(),
    }
}

fn percent_decode(s: &str, what: &str) -> Result<String, MailError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| bad_url(format!("invalid percent-encoding in {what}")))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| bad_url(format!("{what} is not valid UTF-8")))
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}

/// The user and password to authenticate with, if any; refuses every combination that
/// would send a password without TLS or leaves it ambiguous.
fn credentials(
    url: &SmtpUrl,
    file: Option<&Password>,
) -> Result<Option<(String, Password)>, MailError> {
    let pair = match (&url.userinfo, file) {
        (None, None) => return Ok(None),
        (None, Some(_)) => {
            return Err(bad_url(
                "a password file is given but the URL names no user (smtp://USER@host…)",
            ));
        }
        (Some((_, None)), None) => {
            return Err(bad_url(
                "a user name without a password: put the password in mail.password_file (or the systemd credential smtp-password)",
            ));
        }
        (Some((_, Some(_))), Some(_)) => {
            return Err(bad_url(
                "the password is given twice (in the URL and in a password file): keep only the file",
            ));
        }
        (Some((user, None)), Some(p)) => (user.clone(), p.clone()),
        (Some((user, Some(p))), None) => (user.clone(), Password::new(p.clone())),
    };
    match url.tls {
        TlsMode::Wrapper | TlsMode::Required => Ok(Some(pair)),
        TlsMode::Opportunistic | TlsMode::None => Err(bad_url(
            "credentials need TLS: use smtp://…?tls=required (STARTTLS) or smtps://; a password is never sent over a connection that may be plain",
        )),
    }
}

/// Parse `smtp://[user[:password]@]host[:port][?tls=required|opportunistic|none]`
/// or `smtps://[user:password@]host[:port]`. Error reasons never echo the URL,
/// so credentials cannot leak into logs.
fn parse_smtp_url(url: &str) -> Result<SmtpUrl, MailError> {
    let url = url.trim();
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| bad_url("expected smtp://host[:port] or smtps://host[:port]"))?;
    let implicit_tls = match scheme.to_ascii_lowercase().as_str() {
        "smtp" => false,
        "smtps" => true,
        _ => return Err(bad_url("scheme must be smtp or smtps")),
    };
    if rest.contains('#') {
        return Err(bad_url("fragments are not allowed"));
    }
    let (before_query, query) = match rest.split_once('?') {
        Some((a, q)) => (a, Some(q)),
        None => (rest, None),
    };
    let authority = match before_query.split_once('/') {
        Some((a, "")) => a,
        Some(_) => return Err(bad_url("a path is not allowed")),
        None => before_query,
    };

    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let userinfo = match userinfo {
        None => None,
        Some(u) => {
            let (user, pass) = match u.split_once(':') {
                Some((user, pass)) => (user, Some(percent_decode(pass, "password")?)),
                None => (u, None),
            };
            let user = percent_decode(user, "user name")?;
            if user.is_empty() {
                return Err(bad_url("empty user name"));
            }
            Some((user, pass))
        }
    };

    let (host, port_str) = if let Some(stripped) = hostport.strip_prefix('[') {
        let (h, after) = stripped
            .split_once(']')
            .ok_or_else(|| bad_url("unterminated IPv6 literal"))?;
        if h.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(bad_url("invalid IPv6 literal"));
        }
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or_else(|| bad_url("garbage after IPv6 literal"))?,
            ),
        };
        (h.to_owned(), port)
    } else {
        match hostport.split_once(':') {
            Some((h, p)) => (h.to_owned(), Some(p)),
            None => (hostport.to_owned(), None),
        }
    };
    if host.is_empty() {
        return Err(bad_url("missing host"));
    }
    if !host.contains(':')
        && !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_')
    {
        return Err(bad_url("invalid host name"));
    }
    let port = match port_str {
        None => {
            if implicit_tls {
                465
            } else {
                25
            }
        }
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => n,
            _ => return Err(bad_url("invalid port")),
        },
    };

    let mut tls_param: Option<String> = None;
    if let Some(q) = query {
        for pair in q.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "tls" => tls_param = Some(v.to_ascii_lowercase()),
                _ => return Err(bad_url(format!("unknown query parameter {k:?}"))),
            }
        }
    }
    let tls = if implicit_tls {
        match tls_param.as_deref() {
            None | Some("required") | Some("implicit") => TlsMode::Wrapper,
            Some(_) => return Err(bad_url("smtps:// always uses implicit TLS; drop ?tls=")),
        }
    } else {
        match tls_param.as_deref() {
            None | Some("opportunistic") => TlsMode::Opportunistic,
            Some("required") => TlsMode::Required,
            Some("none") => TlsMode::None,
            Some(_) => return Err(bad_url("tls must be required, opportunistic or none")),
        }
    };
    if tls == TlsMode::None && !is_loopback(&host) {
        return Err(bad_url(
            "tls=none is only allowed for a loopback host (localhost, 127.0.0.1, ::1)",
        ));
    }

    Ok(SmtpUrl {
        implicit_tls,
        host,
        port,
        tls,
        userinfo,
    })
}

/// Classify a lettre SMTP error for the outbox: 5xx is permanent, everything
/// else (connection refused, timeouts, network, TLS hiccups, 4xx) is retried.
fn classify(err: &lettre::transport::smtp::Error) -> SendError {
    if err.is_permanent() {
        SendError::Permanent(err.to_string())
    } else {
        SendError::Transient(err.to_string())
    }
}

/// File name for an outbox key: sanitised to `[A-Za-z0-9._-]` plus a short hash
/// so that distinct keys never collide after sanitising. Public so erasure can find the
/// copies of a family's messages in the mail folder.
pub fn eml_file_name(outbox_key: &str) -> String {
    let mut stem: String = outbox_key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(MAX_STEM)
        .collect();
    // No hidden files, no "..".
    while stem.starts_with('.') {
        stem.replace_range(..1, "_");
    }
    let hash = sha256_hex(outbox_key.as_bytes());
    format!("{stem}-{}.eml", &hash[..12])
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.{}.{n}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, dir.join(name))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

impl Transport {
    /// One `.eml` per message in `dir` (created if missing). The file name is
    /// derived from the outbox key; writes go to a temp file that is renamed,
    /// so sending the same message twice leaves one file.
    pub fn file(dir: PathBuf) -> Result<Transport, MailError> {
        std::fs::create_dir_all(&dir)?;
        Ok(Transport::File { dir })
    }

    /// SMTP relay from a URL:
    /// - `smtp://[user:password@]host[:port][?tls=required|opportunistic|none]`
    ///   (default port 25, default `tls=opportunistic` i.e. STARTTLS when offered;
    ///   `tls=none` only for loopback hosts: `localhost`, `127.0.0.0/8`, `::1`);
    /// - `smtps://[user:password@]host[:port]` (implicit TLS, default port 465).
    ///
    /// User and password are percent-decoded and used for AUTH. TCP connect
    /// timeout 10 s; a whole transaction is bounded at 60 s.
    pub fn smtp(url: &str) -> Result<Transport, MailError> {
        Self::smtp_with(url, None)
    }

    /// [`Transport::smtp`] with the password from a file (`mail.password_file`, or the
    /// systemd credential `smtp-password`) for the user named in the URL
    /// (`smtp://USER@host…`). Credentials are only ever sent over TLS: they need
    /// `tls=required` (STARTTLS, refused if the server does not offer it) or `smtps://`;
    /// a plain connection (`tls=none`, loopback only) never authenticates.
    pub fn smtp_with(url: &str, password: Option<&Password>) -> Result<Transport, MailError> {
        let parsed = parse_smtp_url(url)?;
        let credentials = credentials(&parsed, password)?;
        let tls_params = || {
            TlsParameters::new(parsed.host.clone())
                .map_err(|e| bad_url(format!("TLS setup for host failed: {e}")))
        };
        let tls = match parsed.tls {
            TlsMode::Wrapper => Tls::Wrapper(tls_params()?),
            TlsMode::Required => Tls::Required(tls_params()?),
            TlsMode::Opportunistic => Tls::Opportunistic(tls_params()?),
            TlsMode::None => Tls::None,
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&parsed.host)
            .port(parsed.port)
            .tls(tls)
            .timeout(Some(CONNECT_TIMEOUT));
        if let Some((user, pass)) = credentials {
            builder = builder.credentials(Credentials::new(user, pass.expose().to_string()));
        }
        Ok(Transport::Smtp {
            transport: builder.build(),
            endpoint: parsed.endpoint(),
        })
    }

    /// Deliver one message. Build problems and 5xx replies are permanent;
    /// network trouble, 4xx replies and file I/O errors are transient.
    pub async fn send(&self, msg: &OutgoingMessage, date: DateTime<Utc>) -> Result<(), SendError> {
        let email = build(msg, date).map_err(|e| SendError::Permanent(e.to_string()))?;
        match self {
            Transport::File { dir } => {
                let dir = dir.clone();
                let name = eml_file_name(&msg.outbox_key);
                let bytes = email.formatted();
                tokio::task::spawn_blocking(move || write_atomically(&dir, &name, &bytes))
                    .await
                    .map_err(|e| SendError::Transient(format!("file writer task failed: {e}")))?
                    .map_err(|e| SendError::Transient(format!("writing .eml failed: {e}")))
            }
            Transport::Smtp { transport, .. } => {
                match tokio::time::timeout(SEND_TIMEOUT, transport.send(email)).await {
                    Err(_) => Err(SendError::Transient(format!(
                        "SMTP transaction timed out after {} s",
                        SEND_TIMEOUT.as_secs()
                    ))),
                    Ok(Err(e)) => Err(classify(&e)),
                    Ok(Ok(_response)) => Ok(()),
                }
            }
        }
    }

    /// Credential-free description for logs, e.g. `file:/var/lib/nazorg/mail`
    /// or `smtp://relay.example:25?tls=opportunistic`.
    pub fn describe(&self) -> String {
        match self {
            Transport::File { dir } => format!("file:{}", dir.display()),
            Transport::Smtp { endpoint, .. } => endpoint.clone(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn sample(key: &str) -> OutgoingMessage {
        OutgoingMessage {
            outbox_key: key.to_owned(),
            from: "nazorg@veiligthuis.example".to_owned(),
            to: vec!["wijkteam@gemeente.example".to_owned()],
            cc: vec![],
            subject: "[Nazorg] Check-in F-7Q2K9X due 2027-01-15".to_owned(),
            body_text: "See Nazorg.\n".to_owned(),
            attachments: vec![],
        }
    }

    #[test]
    fn smtp_url_defaults() {
        let u = parse_smtp_url("smtps://relay.example").unwrap();
        assert_eq!(
            (u.port, u.tls, u.implicit_tls),
            (465, TlsMode::Wrapper, true)
        );
        let u = parse_smtp_url("smtp://relay.example").unwrap();
        assert_eq!((u.port, u.tls), (25, TlsMode::Opportunistic));
        let u = parse_smtp_url("smtp://relay.example:587?tls=required").unwrap();
        assert_eq!((u.port, u.tls), (587, TlsMode::Required));
        assert_eq!(u.endpoint(), "smtp://relay.example:587?tls=required");
    }

    #[test]
    fn smtp_url_tls_none_only_on_loopback() {
        for ok in [
            "smtp://127.0.0.1:2525?tls=none",
            "smtp://localhost?tls=none",
            "smtp://[::1]:2525?tls=none",
        ] {
            assert_eq!(parse_smtp_url(ok).unwrap().tls, TlsMode::None, "{ok}");
        }
        for bad in [
            "smtp://relay.example?tls=none",
            "smtp://10.0.0.1:25?tls=none",
            "smtps://127.0.0.1?tls=none",
        ] {
            assert!(
                matches!(parse_smtp_url(bad), Err(MailError::BadUrl { .. })),
                "{bad}"
            );
            assert!(
                matches!(Transport::smtp(bad), Err(MailError::BadUrl { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn smtp_url_garbage() {
        for bad in [
            "",
            "garbage",
            "http://relay.example",
            "smtp://",
            "smtp://relay.example:notaport",
            "smtp://relay.example:0",
            "smtp://relay.example:99999",
            "smtp://relay.example?tls=maybe",
            "smtp://relay.example?foo=bar",
            "smtp://relay.example/path",
            "smtp://rel ay.example",
            "smtp://[::1",
            "smtp://user@relay.example",
        ] {
            assert!(
                matches!(Transport::smtp(bad), Err(MailError::BadUrl { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn smtp_url_credentials_are_decoded_and_not_described() {
        let u = parse_smtp_url("smtps://nazorg%40gem:p%3Ass%2Fw@relay.example:2465").unwrap();
        assert_eq!(
            u.userinfo,
            Some(("nazorg@gem".to_owned(), Some("p:ss/w".to_owned())))
        );
        let t = Transport::smtp("smtps://nazorg:geheim@relay.example").unwrap();
        assert_eq!(t.describe(), "smtps://relay.example:465");
        assert!(!format!("{t:?}").contains("geheim"));
        let err = Transport::smtp("smtp://nazorg:geheim@relay.example?tls=bogus").unwrap_err();
        assert!(!err.to_string().contains("geheim"));
    }

    #[test]
    fn credentials_only_over_tls() {
        let pw = Password::new("geheim".into());
        for bad in [
            "smtp://nazorg:geheim@relay.example",
            "smtp://nazorg:geheim@relay.example?tls=opportunistic",
            "smtp://nazorg:geheim@127.0.0.1:2525?tls=none",
        ] {
            let err = Transport::smtp(bad).unwrap_err();
            assert!(
                err.to_string().contains("credentials need TLS"),
                "{bad}: {err}"
            );
            assert!(!err.to_string().contains("geheim"));
        }
        for bad in [
            "smtp://nazorg@relay.example",
            "smtp://nazorg@127.0.0.1?tls=none",
        ] {
            assert!(Transport::smtp_with(bad, Some(&pw)).is_err(), "{bad}");
        }
        for ok in [
            "smtp://nazorg:geheim@relay.example:587?tls=required",
            "smtps://nazorg:geheim@relay.example",
        ] {
            assert!(Transport::smtp(ok).is_ok(), "{ok}");
        }
        let u = parse_smtp_url("smtp://nazorg@relay.example:587?tls=required").unwrap();
        let (user, pass) = credentials(&u, Some(&pw)).unwrap().unwrap();
        assert_eq!((user.as_str(), pass.expose()), ("nazorg", "geheim"));
        assert!(credentials(&u, None).is_err(), "a user needs a password");
        let both = parse_smtp_url("smtps://nazorg:x@relay.example").unwrap();
        assert!(credentials(&both, Some(&pw)).is_err(), "two passwords");
        let none = parse_smtp_url("smtps://relay.example").unwrap();
        assert!(
            credentials(&none, Some(&pw)).is_err(),
            "a password without a user"
        );
        assert_eq!(format!("{pw:?}"), "Password(<redacted>)");
    }

    #[test]
    fn eml_names_are_sanitised_and_distinct() {
        let a = eml_file_name("reminder/C-1:due");
        let b = eml_file_name("reminder:C-1/due");
        assert_ne!(a, b);
        assert!(
            a.starts_with("reminder_C-1_due-") && a.ends_with(".eml"),
            "{a}"
        );
        let hidden = eml_file_name("../../etc/passwd");
        assert!(
            !hidden.starts_with('.') && !hidden.contains('/'),
            "{hidden}"
        );
        assert!(eml_file_name(&"x".repeat(500)).len() < 100);
    }

    #[tokio::test]
    async fn file_transport_is_idempotent_and_parses_back() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("outbox");
        let t = Transport::file(dir.clone()).unwrap();
        assert_eq!(t.describe(), format!("file:{}", dir.display()));
        let msg = sample("reminder:C-1:due");
        let date = Utc.with_ymd_and_hms(2027, 1, 15, 7, 0, 0).unwrap();
        t.send(&msg, date).await.unwrap();
        t.send(&msg, date).await.unwrap();

        let files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(files.len(), 1, "{files:?}");
        assert_eq!(files[0].extension().unwrap(), "eml");
        let raw = std::fs::read_to_string(&files[0]).unwrap();
        let id = crate::mail::message_id(&msg.outbox_key, &msg.from);
        assert!(raw.contains(&format!("Message-ID: {id}")), "{raw}");
        assert!(raw.contains(&format!("Subject: {}", msg.subject)), "{raw}");

        // A second key gives a second file.
        t.send(&sample("reminder:C-1:overdue:1"), date)
            .await
            .unwrap();
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 2);
    }

    #[tokio::test]
    async fn build_errors_are_permanent() {
        let tmp = tempfile::tempdir().unwrap();
        let t = Transport::file(tmp.path().to_path_buf()).unwrap();
        let mut msg = sample("k");
        msg.to = vec!["not-an-address".to_owned()];
        let err = t.send(&msg, Utc::now()).await.unwrap_err();
        assert!(matches!(err, SendError::Permanent(_)), "{err}");
    }

    #[tokio::test]
    async fn file_io_errors_are_transient() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("gone");
        let t = Transport::file(dir.clone()).unwrap();
        std::fs::remove_dir(&dir).unwrap();
        let err = t.send(&sample("k"), Utc::now()).await.unwrap_err();
        assert!(matches!(err, SendError::Transient(_)), "{err}");
    }

    #[tokio::test]
    async fn smtp_connection_refused_is_transient() {
        // Bind and drop to find a port nobody listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let t = Transport::smtp(&format!("smtp://127.0.0.1:{port}?tls=none")).unwrap();
        let err = t.send(&sample("k"), Utc::now()).await.unwrap_err();
        assert!(matches!(err, SendError::Transient(_)), "{err}");
    }
}
