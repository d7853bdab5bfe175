//! Rendered read pages, kept so that a request whose answer is already known costs no query and no
//! rendering. A page changes only with a publication or the catalog, so those are part of the key, with
//! what else decides the bytes: the requester's effective store scope (users who see the same stores
//! share entries; the user name is not part of it), the path and query exactly as sent (the page links
//! repeat the parameters in their order), and the scheme and host of those links. Bounded in bytes.

use std::sync::Mutex;

use axum::body::Bytes;
use memmap2::MmapMut;
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

const MEMORY_PAGE: usize = 4096;

/// The memory a kept body of `len` bytes takes: the whole memory pages of its mapping.
fn kept_footprint(len: usize) -> usize {
    len.next_multiple_of(MEMORY_PAGE)
}

/// A rendered body made ready for keeping: copied into whole memory pages of a mapping of its own. The
/// cache replaces bodies all the time (megabytes a second under a varied load); kept on the heap, they
/// would leave holes between the live ones that the allocator cannot hand back, and the process's
/// resident set would saw up and down by several MiB between `memory::return_free_pages` runs and creep
/// up. A dropped body's mapping is kept for the next body of as many pages (up to
/// [`SPARE_MAPPING_BYTES`] in all) or goes back to the OS at once. Where mapping fails (the process's
/// limit of mappings), the body stays on the heap.
pub fn keepable(body: Vec<u8>) -> Bytes {
    let pages = body.len().div_ceil(MEMORY_PAGE).max(1);
    let mapping = match SPARE_MAPPINGS.take(pages) {
        Some(spare) => Ok(spare),
        None => MmapMut::map_anon(pages * MEMORY_PAGE),
    };
    match mapping {
        Ok(mut mapping) => {
            mapping[..body.len()].copy_from_slice(&body);
            Bytes::from_owner(KeptBody { mapping: Some(mapping), len: body.len() })
        }
        Err(_) => Bytes::from(body),
    }
}

/// A kept body: the first `len` bytes of its mapping.
struct KeptBody {
    /// Taken only on drop.
    mapping: Option<MmapMut>,
    len: usize,
}

impl AsRef<[u8]> for KeptBody {
    fn as_ref(&self) -> &[u8] {
        &self.mapping.as_ref().expect("present until dropped")[..self.len]
    }
}

impl Drop for KeptBody {
    fn drop(&mut self) {
        if let Some(mapping) = self.mapping.take() {
            SPARE_MAPPINGS.give_back(mapping);
        }
    }
}

/// What the spare mappings may hold: mapping and unmapping a body's pages for every page stored cost a
/// third of the throughput of misses (the unmapping stops every core to flush its address cache);
/// reused, a body costs a copy. Resident beyond the cache's bound.
const SPARE_MAPPING_BYTES: usize = 1 << 20;
/// Bodies of more pages are mapped and unmapped each time (few pages are that large).
const SPARE_MAX_PAGES: usize = 64;

/// Mappings of dropped bodies, by their number of pages.
struct SpareMappings {
    /// `(mappings of n + 1 pages at [n], their bytes in all)`.
    kept: Mutex<(Vec<Vec<MmapMut>>, usize)>,
}

static SPARE_MAPPINGS: SpareMappings = SpareMappings { kept: Mutex::new((Vec::new(), 0)) };

impl SpareMappings {
    fn take(&self, pages: usize) -> Option<MmapMut> {
        if pages > SPARE_MAX_PAGES {
            return None;
        }
        let mut kept = self.kept.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (by_pages, bytes) = &mut *kept;
        let mapping = by_pages.get_mut(pages - 1)?.pop()?;
        *bytes -= mapping.len();
        Some(mapping)
    }

    fn give_back(&self, mapping: MmapMut) {
        let pages = mapping.len() / MEMORY_PAGE;
        if pages > SPARE_MAX_PAGES {
            return;
        }
        let mut kept = self.kept.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (by_pages, bytes) = &mut *kept;
        if *bytes + mapping.len() <= SPARE_MAPPING_BYTES {
            if by_pages.is_empty() {
                by_pages.resize_with(SPARE_MAX_PAGES, Vec::new);
            }
            *bytes += mapping.len();
            by_pages[pages - 1].push(mapping);
        }
        // Otherwise dropped here, after the lock: unmapped.
    }
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
        assert_eq!(kept_footprint(1), 4096);
        assert_eq!(kept_footprint(4096), 4096);
        assert_eq!(kept_footprint(4097), 8192);
        let rendered: Vec<u8> = (0..5000u32).map(|n| (n % 251) as u8).collect();
        let body = keepable(rendered.clone());
        assert_eq!(body, rendered, "the body itself is unchanged");
        let cache = PageCache::new(1 << 20);
        cache.insert(key(StoreScope::All, "/v"), body);
        assert_eq!(cache.weight(), (8192 + "localhost".len() + "/v".len()) as u64 + ENTRY_OVERHEAD);
    }

    #[test]
    fn a_reused_mapping_holds_only_the_new_body_and_spares_stay_bounded() {
        let bodies: Vec<Bytes> = (0..1000).map(|n| keepable(vec![b'a'; 100 + n * 7])).collect();
        drop(bodies);
        assert!(SPARE_MAPPINGS.kept.lock().unwrap().1 <= SPARE_MAPPING_BYTES);
        for len in [1, 3000, 4096, 4097, 20_000] {
            let body = keepable(vec![b'b'; len]);
            assert_eq!(body.len(), len);
            assert!(body.iter().all(|&byte| byte == b'b'), "no byte of an earlier body shows");
        }
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
