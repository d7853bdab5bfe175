//! Request contexts shared between requests while the database says nothing changed: each engine
//! supplies the version (SQLite's `data_version`, PostgreSQL's change notices), this keeps what was
//! read as of it.

use std::collections::HashMap;
use std::sync::Arc;

use crate::domain::catalog::{Catalog, UserCredentials};
use crate::domain::publication::PublicationMark;
use crate::domain::reads::RequestContext;

/// The catalog and publication mark as of one version, and the accounts of the names asked for. A new
/// version empties it.
#[derive(Default)]
pub(crate) struct ContextSnapshot {
    version: Option<i64>,
    catalog: Option<Arc<Catalog>>,
    mark: PublicationMark,
    users: HashMap<String, Option<UserCredentials>>,
}

/// Accounts kept per snapshot: a flood of made-up names cannot grow it further.
const SNAPSHOT_USERS: usize = 4096;

impl ContextSnapshot {
    pub(crate) fn get(&self, version: i64, username: &str) -> Option<RequestContext> {
        if self.version != Some(version) {
            return None;
        }
        let user = self.users.get(username)?.clone();
        Some(RequestContext { user, catalog: self.catalog.clone()?, mark: self.mark })
    }

    /// Keeps `context`, read after `version` was current (so at least that new, and it may stand for it).
    pub(crate) fn put(&mut self, version: i64, username: &str, context: &RequestContext) {
        if self.version != Some(version) {
            *self = ContextSnapshot {
                version: Some(version),
                catalog: Some(context.catalog.clone()),
                mark: context.mark,
                users: HashMap::new(),
            };
        }
        if self.users.len() < SNAPSHOT_USERS {
            self.users.insert(username.to_owned(), context.user.clone());
        }
    }
}
