//! `[database]`: the engine and where it is (SQLite file or PostgreSQL URL).

use super::*;

#[derive(Debug, Deserialize)]
pub(super) struct RawDatabase {
    pub(super) url: String,
    #[serde(default)]
    pub(super) password_file: Option<PathBuf>,
}

#[derive(Clone, Debug)]
pub struct DatabaseConfig {
    /// `sqlite://` URL with an absolute path, or the `postgres://` URL as configured.
    pub url: String,
    /// Which engine the URL's scheme chose.
    pub backend: Backend,
    /// The SQLite file (empty for PostgreSQL).
    pub sqlite_path: PathBuf,
    /// PostgreSQL only: the password is read from this file at connect time, so it stays
    /// out of the URL, the config file and the process environment (a systemd credential).
    pub password_file: Option<PathBuf>,
}

/// The database engine, chosen by the scheme of `database.url`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// One embedded file, one daemon (`sqlite://PATH`).
    Sqlite,
    /// A server shared by several daemons (`postgres://…` or `postgresql://…`).
    Postgres,
}

impl DatabaseConfig {
    /// The URL without its password, for logs and `migrate` output.
    pub fn display_url(&self) -> String {
        match self.backend {
            Backend::Sqlite => self.url.clone(),
            Backend::Postgres => redact_password(&self.url),
        }
    }
}

/// The engine a database URL names and, for SQLite, its file (relative paths resolve
/// against `base`); the error says what is wrong with the URL.
pub(super) fn parse_database_url(
    url: &str,
    base: &Path,
) -> Result<(Backend, PathBuf), &'static str> {
    if let Some(rest) = url.strip_prefix("sqlite://") {
        let file = rest.split('?').next().unwrap_or("");
        if file.is_empty() || file == ":memory:" {
            return Err("sqlite:// needs a file path");
        }
        Ok((Backend::Sqlite, resolve(base, Path::new(file))))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        if url.parse::<sqlx::postgres::PgConnectOptions>().is_err() {
            return Err("not a valid PostgreSQL URL (postgres://USER@HOST:PORT/DATABASE)");
        }
        Ok((Backend::Postgres, PathBuf::new()))
    } else {
        Err(
            "unknown scheme; expected sqlite://PATH (relative paths resolve against the config file's folder) or postgres://USER@HOST/DATABASE",
        )
    }
}

impl DatabaseConfig {
    /// A database named by URL alone (`nazorg copy-database --from/--to`): relative SQLite
    /// paths resolve against `base` (the working folder); a PostgreSQL password comes from
    /// the URL or PGPASSWORD.
    pub fn from_url(url: &str, base: &Path) -> Result<DatabaseConfig, String> {
        let url = url.trim();
        let (backend, sqlite_path) = parse_database_url(url, base).map_err(str::to_string)?;
        Ok(DatabaseConfig {
            url: match backend {
                Backend::Sqlite => format!("sqlite://{}", sqlite_path.display()),
                Backend::Postgres => url.to_string(),
            },
            backend,
            sqlite_path,
            password_file: None,
        })
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
pub(super) fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

/// Checks `[database]`: the URL names an engine; a password file only goes with PostgreSQL.
pub(super) fn validate_database(raw: &RawDatabase, base: &Path, is: &mut Issues) -> DatabaseConfig {
    let url = raw.url.trim().to_string();
    let (backend, sqlite_path) = match parse_database_url(&url, base) {
        Ok(found) => found,
        Err(message) => {
            is.push("database.url", message);
            (Backend::Sqlite, PathBuf::new())
        }
    };
    let password_file = raw.password_file.as_deref().map(|p| resolve(base, p));
    if password_file.is_some() && backend != Backend::Postgres {
        is.push(
            "database.password_file",
            "only used with a postgres:// database.url",
        );
    }
    DatabaseConfig {
        url: match backend {
            Backend::Sqlite => format!("sqlite://{}", sqlite_path.display()),
            Backend::Postgres => url,
        },
        backend,
        sqlite_path,
        password_file,
    }
}
