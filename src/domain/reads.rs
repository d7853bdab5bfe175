//! Reads of published data: which rows a request asks for, and the page it gets.

use std::sync::Arc;

use crate::domain::Minute;
use crate::domain::catalog::{Catalog, UserCredentials};
use crate::domain::keys::{DeviceKey, StoreKey};
use crate::domain::publication::PublicationMark;
use crate::domain::tokens::TokenGrant;

/// A request for published rows: for one device (its own bins), or for stores (their rollup).
#[derive(Clone, Debug)]
pub struct RowsQuery {
    /// Whose rows.
    pub source: RowSource,
    /// First and last minute included.
    pub first: Minute,
    /// The last minute included.
    pub last: Minute,
    /// Rows skipped before the page.
    pub offset: u64,
    /// Rows on the page at most.
    pub limit: u32,
}

/// A store's minute rows or rollup pieces over a range (see `domain::buckets::plan`).
#[derive(Clone, Copy, Debug)]
pub struct RollupRequest {
    /// The store.
    pub store: StoreKey,
    /// What to read.
    pub range: crate::domain::buckets::SourceRange,
}

/// Whose rows a query reads.
#[derive(Clone, Debug)]
pub enum RowSource {
    /// These stores, in store-code order.
    Stores(Vec<StoreKey>),
    /// One device's own bins.
    Device(DeviceKey),
}

/// One published row: a store's (or a device's) counts for one minute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MinuteRow {
    /// The store of the row (the device's store for device rows).
    pub store: StoreKey,
    /// The UTC minute.
    pub minute: Minute,
    /// People in.
    pub entries: i64,
    /// People out.
    pub exits: i64,
    /// People inside at the end of the minute (0 for device rows, which have no occupancy).
    pub occupancy: i64,
}

/// A page of rows and the count of all of them.
#[derive(Clone, Debug, Default)]
pub struct RowsPage {
    /// Rows matching the query on all pages.
    pub count: u64,
    /// This page's rows, in (store order, minute) order.
    pub rows: Vec<MinuteRow>,
}

/// What a read request needs before its query.
#[derive(Clone, Debug)]
pub struct RequestContext {
    /// The account of the name the request signs in with, if there is one.
    pub user: Option<UserCredentials>,
    /// The stores and devices.
    pub catalog: Arc<Catalog>,
    /// What is published, for ETags and Last-Modified.
    pub mark: PublicationMark,
}

/// What a read request signed in with an API token needs before its query.
#[derive(Clone, Debug)]
pub struct TokenContext {
    /// The stored token with this hash and its user's account, if there is one.
    pub token: Option<(TokenGrant, UserCredentials)>,
    /// The stores and devices.
    pub catalog: Arc<Catalog>,
    /// What is published, for ETags and Last-Modified.
    pub mark: PublicationMark,
}
