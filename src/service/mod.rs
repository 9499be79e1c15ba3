//! The operations teams and operators perform (enrol, show, close, record, list due), each
//! validating first and then changing the store in one transaction. Shared by the CLI and
//! the HTTP API.

pub mod checkin;
pub mod enrolment;
pub mod erasure;
pub mod evaluation;
pub mod family;
pub mod handover;
pub mod import;
pub mod invites;
pub mod keys;
pub mod members;
pub mod record;
pub mod signals;

use crate::audit::{Actor, Entry};
use crate::clock::SharedClock;
use crate::config::Config;
use crate::crypto::{CryptoError, Dek, FieldPlace};
use crate::domain::FieldError;
use crate::keyring::{Keyring, KeyringError};
use crate::store::{OpenMode, Store, StoreError};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum OpError {
    #[error("invalid input: {}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<FieldError>),
    #[error("{what} {reference} not found")]
    NotFound {
        what: &'static str,
        reference: String,
    },
    #[error("{0}")]
    Conflict(String),
    /// The acting team may see the family but is not responsible for it now.
    #[error("{0}")]
    NotResponsible(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error(transparent)]
    Keyring(#[from] KeyringError),
    #[error("the plan cannot be scheduled: {0}")]
    Plan(#[from] crate::domain::plan::PlanError),
}

impl OpError {
    pub fn invalid(field: &str, message: &str) -> OpError {
        OpError::Invalid(vec![FieldError::new(field, message)])
    }
}

impl From<FieldError> for OpError {
    fn from(e: FieldError) -> Self {
        OpError::Invalid(vec![e])
    }
}

impl From<sqlx::Error> for OpError {
    fn from(e: sqlx::Error) -> Self {
        OpError::Store(StoreError::Sql(e))
    }
}

/// Everything an operation needs: config, clock, store and keys.
#[derive(Clone)]
pub struct App {
    pub config: Arc<Config>,
    pub clock: SharedClock,
    pub store: Store,
    pub keyring: Arc<Keyring>,
    /// Who the operations are performed for; recorded in the audit trail.
    pub actor: Actor,
    /// The municipality whose team acts (an API team token): it changes only the families
    /// it is responsible for now. `None` for the operator, the system and administrators.
    pub team: Option<String>,
    /// The daemon's own condition (sweep, dispatch), for readiness and status.
    pub health: Arc<crate::health::Health>,
}

impl App {
    pub async fn open(config: Config, clock: SharedClock, mode: OpenMode) -> Result<App, OpError> {
        if mode == OpenMode::CreateAndMigrate {
            create_private_dir(&config.state_dir).map_err(|e| {
                OpError::Conflict(format!(
                    "cannot create state_dir {}: {e}",
                    config.state_dir.display()
                ))
            })?;
        }
        let store = Store::open(&config.database, mode).await?;
        let keyring = Keyring::open(
            &config.crypto,
            &store,
            clock.now().timestamp(),
            mode == OpenMode::CreateAndMigrate,
        )
        .await?;
        Ok(App {
            config: Arc::new(config),
            clock,
            store,
            keyring: Arc::new(keyring),
            actor: Actor::Operator,
            team: None,
            health: Arc::default(),
        })
    }

    /// The same installation, acting for someone else (an API token, the system).
    pub fn acting_as(&self, actor: Actor) -> App {
        App {
            actor,
            ..self.clone()
        }
    }

    /// The same installation (store, keys, clock, health) under a newly loaded config:
    /// what SIGHUP swaps in.
    pub fn with_config(&self, config: Config) -> App {
        App {
            config: Arc::new(config),
            ..self.clone()
        }
    }

    /// The same installation, acting for a municipality's team (see [`App::team`]).
    pub fn for_team(&self, team: Option<String>) -> App {
        App {
            team,
            ..self.clone()
        }
    }

    /// The one rule for changing a family: only the team responsible for it now. Before a
    /// move's date that is the sending team (the receiving one may read); from the date on
    /// the receiving team (the sending one may still read until it acknowledges). Checked
    /// by every operation that changes a family (close, evaluate, erase, move, reassign,
    /// record, flag ack/resolve, family update) inside its transaction, so the API and every other caller get it.
    pub fn require_responsible(
        &self,
        f: &crate::store::families::FamilyRow,
    ) -> Result<(), OpError> {
        match &self.team {
            Some(team) if *team != f.municipality => Err(OpError::NotResponsible(format!(
                "only the team responsible for family {} now may change it",
                f.reference
            ))),
            _ => Ok(()),
        }
    }

    /// Appends an audit entry for this app's actor in the caller's transaction.
    pub async fn audit(
        &self,
        conn: &mut crate::store::Conn,
        entry: &Entry<'_>,
    ) -> Result<(), OpError> {
        crate::audit::append(
            conn,
            &self.keyring,
            &self.actor,
            self.now().timestamp(),
            entry,
        )
        .await?;
        Ok(())
    }

    /// Runs `script` with `entry` appended to the audit chain in the same round trip when
    /// this process knows the chain's head (else appended right after): the rows each
    /// statement of the script changed.
    pub(crate) async fn audited<'a>(
        &self,
        conn: &mut crate::store::Conn,
        mut script: crate::store::round_trip::Script<'a>,
        entry: &Entry<'a>,
    ) -> Result<Vec<u64>, OpError> {
        let at = self.now().timestamp();
        let pushed = crate::audit::push_append(&mut script, &self.keyring, &self.actor, at, entry);
        let changed = script.run(conn).await?;
        match pushed {
            Some(p) => {
                p.settle(&changed, conn, &self.keyring, &self.actor, at, entry)
                    .await?
            }
            None => {
                crate::audit::append(conn, &self.keyring, &self.actor, at, entry).await?;
            }
        }
        Ok(changed)
    }

    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }

    /// A family's data key; `None` for an erased family.
    pub async fn family_dek(
        &self,
        conn: &mut crate::store::Conn,
        f: &crate::store::families::FamilyRow,
    ) -> Result<Option<Dek>, OpError> {
        match (f.kek_id, f.wrapped_dek.as_deref()) {
            (Some(kek_id), Some(w)) => {
                Ok(Some(self.keyring.dek(conn, kek_id, w, &f.reference).await?))
            }
            _ => Ok(None),
        }
    }
}

/// Creates the state folder (and parents) readable by the service user only.
pub fn create_private_dir(path: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if path.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
}

/// Seals a serialisable value as JSON under the family's data key.
pub fn seal_json<T: serde::Serialize>(
    dek: &Dek,
    value: &T,
    place: &FieldPlace,
) -> Result<Vec<u8>, OpError> {
    let bytes = zeroize::Zeroizing::new(
        serde_json::to_vec(value).map_err(|e| OpError::Conflict(format!("cannot encode: {e}")))?,
    );
    Ok(dek.try_seal(&bytes, place)?)
}

/// Opens a sealed JSON value; failures name the place, never the content.
pub fn open_json<T: serde::de::DeserializeOwned>(
    dek: &Dek,
    sealed: &[u8],
    place: &FieldPlace,
) -> Result<T, OpError> {
    let bytes = dek.open(sealed, place)?;
    serde_json::from_slice(&bytes).map_err(|_| {
        OpError::Store(StoreError::Corrupt(format!(
            "sealed {}.{} of {} does not decode",
            place.table, place.column, place.family
        )))
    })
}
