//! Rendered read pages, kept so that a request whose answer is already known costs no query and no
//! rendering. A page changes only with a publication or the catalog, so those are part of the key, with
//! what else decides the bytes: the requester's effective store scope (users who see the same stores
//! share entries; the user name is not part of it), the path and query exactly as sent (the page links
//! repeat the parameters in their order), and the scheme and host of those links. Bounded in bytes.

use axum::body::Bytes;
use quick_cache::Weighter;
use quick_cache::sync::Cache;

use crate::domain::catalog::StoreScope;

/// What decides a rendered page's bytes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PageKey {
    /// The publication generation the page shows.
    pub generation: i64,
    /// The catalog version (stores, devices, time zones) it was rendered with.
    pub catalog_version: i64,
    /// The stores the requester may see.
    pub scope: StoreScope,
    /// The scheme of the page links.
    pub scheme: &'static str,
    /// The host of the page links.
    pub host: String,
    /// The path and query as sent.
    pub path_and_query: String,
}

/// Counts an entry by its body, key and bookkeeping.
#[derive(Clone, Copy)]
struct ByBytes;

/// What an entry costs beyond its body and key strings (key fields, the cache's slot, `Bytes`).
const ENTRY_OVERHEAD: u64 = 128;

impl Weighter<PageKey, Bytes> for ByBytes {
    fn weight(&self, key: &PageKey, body: &Bytes) -> u64 {
        let scope = match &key.scope {
            StoreScope::All => 0,
            StoreScope::Only(stores) => stores.len() * 8,
        };
        (kept_footprint(body.len()) + key.host.len() + key.path_and_query.len() + scope) as u64 + ENTRY_OVERHEAD
    }
}

/// The allocator's size word before each block (glibc: blocks are the request plus 8, in steps of 16).
const ALLOCATION_HEADER: usize = 8;
const MEMORY_PAGE: usize = 4096;

/// The bytes a kept body of `len` bytes is given: its block spans whole memory pages. The cache
/// replaces pages all the time; blocks of any size would leave holes between the live ones that are
/// smaller than a memory page, which the allocator can never hand back, and the process would grow
/// (by a third of the bound in a 10-minute soak). Holes between page-sized blocks are whole pages,
/// which `memory::return_free_pages` gives back.
fn kept_footprint(len: usize) -> usize {
    (len + ALLOCATION_HEADER).next_multiple_of(MEMORY_PAGE) - ALLOCATION_HEADER
}

/// A rendered body made ready for keeping: its buffer resized to [`kept_footprint`].
pub fn keepable(mut body: Vec<u8>) -> Bytes {
    let footprint = kept_footprint(body.len());
    if body.capacity() > footprint {
        body.shrink_to(footprint);
    } else {
        body.reserve_exact(footprint - body.len());
    }
    Bytes::from(body)
}

/// The cache of rendered pages; with a capacity of zero bytes, nothing is kept.
pub struct PageCache {
    pages: Option<Cache<PageKey, Bytes, ByBytes>>,
}

/// A page of 1000 visits rows is about 115 kB: the estimate sizes the cache's table for pages that big.
const TYPICAL_PAGE_BYTES: u64 = 64 * 1024;

impl PageCache {
    /// A cache holding at most `max_bytes` of pages and keys (0: none).
    pub fn new(max_bytes: u64) -> PageCache {
        let pages = (max_bytes > 0).then(|| {
            let estimated_items = (max_bytes / TYPICAL_PAGE_BYTES).clamp(16, 1 << 20) as usize;
            Cache::with_weighter(estimated_items, max_bytes, ByBytes)
        });
        PageCache { pages }
    }

    /// The page rendered for `key`, if it is kept.
    pub fn get(&self, key: &PageKey) -> Option<Bytes> {
        self.pages.as_ref()?.get(key)
    }

    /// Keeps a rendered page (a page larger than the whole cache is not kept).
    pub fn insert(&self, key: PageKey, body: Bytes) {
        if let Some(pages) = &self.pages {
            pages.insert(key, body);
        }
    }

    /// Whether pages are kept at all.
    pub fn enabled(&self) -> bool {
        self.pages.is_some()
    }

    /// The bytes the kept pages weigh now.
    pub fn weight(&self) -> u64 {
        self.pages.as_ref().map_or(0, |pages| pages.weight())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::keys::StoreKey;

    fn key(scope: StoreScope, query: &str) -> PageKey {
        PageKey {
            generation: 1,
            catalog_version: 1,
            scope,
            scheme: "http",
            host: "localhost".into(),
            path_and_query: query.into(),
        }
    }

    #[test]
    fn a_kept_body_takes_whole_memory_pages_and_weighs_them() {
        assert_eq!(kept_footprint(1), 4088);
        assert_eq!(kept_footprint(4088), 4088);
        assert_eq!(kept_footprint(4089), 8184);
        let body = keepable(vec![b'x'; 5000]);
        assert_eq!(body.len(), 5000, "the body itself is unchanged");
        let cache = PageCache::new(1 << 20);
        cache.insert(key(StoreScope::All, "/v"), body);
        assert_eq!(cache.weight(), (8184 + "localhost".len() + "/v".len()) as u64 + ENTRY_OVERHEAD);
    }

    #[test]
    fn pages_are_kept_per_scope_and_bounded_in_bytes() {
        let cache = PageCache::new(64 * 1024);
        let page = Bytes::from(vec![b'x'; 10_000]);
        cache.insert(key(StoreScope::Only(vec![StoreKey(1)]), "/v?a=1"), page.clone());
        assert_eq!(cache.get(&key(StoreScope::Only(vec![StoreKey(1)]), "/v?a=1")), Some(page.clone()));
        assert_eq!(cache.get(&key(StoreScope::Only(vec![StoreKey(2)]), "/v?a=1")), None, "another scope");
        assert_eq!(cache.get(&key(StoreScope::All, "/v?a=1")), None);
        for n in 0..20 {
            cache.insert(key(StoreScope::All, &format!("/v?page={n}")), page.clone());
        }
        assert!(cache.weight() <= 64 * 1024, "{}", cache.weight());
        let off = PageCache::new(0);
        off.insert(key(StoreScope::All, "/v"), page);
        assert!(!off.enabled() && off.get(&key(StoreScope::All, "/v")).is_none());
    }
}
