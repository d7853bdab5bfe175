//! DRF-style page-number pagination: page size, page number, whether a page exists, and the
//! `next`/`previous` links. (Locating a page's first row in the rollup is the storage's.)

/// The page size when none is asked for.
pub const DEFAULT_PAGE_SIZE: u32 = 1000;
/// Larger page sizes are clamped to this.
pub const MAX_PAGE_SIZE: u32 = 10_000;

/// A validated page size: a positive integer, clamped to [`MAX_PAGE_SIZE`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageSize(u32);

impl PageSize {
    /// The default when absent; the error names the value.
    pub fn parse(text: Option<&str>) -> Result<PageSize, String> {
        let Some(text) = text else {
            return Ok(PageSize(DEFAULT_PAGE_SIZE));
        };
        let digits = text.trim_start_matches('0');
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) || digits.is_empty() {
            return Err(format!("page_size must be a positive integer, got {text:?}"));
        }
        let value = digits.parse::<u64>().unwrap_or(u64::MAX);
        Ok(PageSize(value.min(u64::from(MAX_PAGE_SIZE)) as u32))
    }

    /// Rows per page.
    pub fn get(self) -> u32 {
        self.0
    }
}

/// A 1-based page number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageNumber(u64);

impl PageNumber {
    /// `None` for anything that is not a positive integer: the API answers those as an invalid page.
    pub fn parse(text: Option<&str>) -> Option<PageNumber> {
        let Some(text) = text else { return Some(PageNumber(1)) };
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        text.parse::<u64>().ok().filter(|&n| n >= 1).map(PageNumber)
    }

    /// The page number, from 1.
    pub fn get(self) -> u64 {
        self.0
    }

    /// Rows to skip before this page, or `None` when that overflows (a page that cannot exist).
    fn offset(self, size: PageSize) -> Option<u64> {
        (self.0 - 1).checked_mul(u64::from(size.get()))
    }

    /// Whether this page exists for `count` rows: page 1 always does, even when empty.
    fn exists(self, size: PageSize, count: u64) -> bool {
        self.0 == 1 || self.offset(size).is_some_and(|offset| offset < count)
    }

    /// Whether rows follow this page.
    fn has_next(self, size: PageSize, count: u64) -> bool {
        self.0.checked_mul(u64::from(size.get())).is_some_and(|end| end < count)
    }
}

/// A page that can exist: its number and size, and the rows before it. Every page decision of a
/// paginated read is made here: which page was asked for, whether it exists, and its links.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Page {
    number: PageNumber,
    size: PageSize,
    offset: u64,
}

/// The page asked for is not a positive integer, or lies past the last page: the API answers 404
/// `invalid_page`, like DRF.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid page")]
pub struct InvalidPage;

/// The `next` and `previous` links of a page that exists.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Navigation {
    /// The following page, if there are rows after this one.
    pub next: Option<String>,
    /// The preceding page, unless this is the first.
    pub previous: Option<String>,
}

impl Page {
    /// The page `page` (the parameter as sent; absent means 1) of `size` rows.
    pub fn parse(page: Option<&str>, size: PageSize) -> Result<Page, InvalidPage> {
        let number = PageNumber::parse(page).ok_or(InvalidPage)?;
        let offset = number.offset(size).ok_or(InvalidPage)?;
        Ok(Page { number, size, offset })
    }

    /// Rows to skip before this page.
    pub fn offset(self) -> u64 {
        self.offset
    }

    /// Rows on a full page.
    pub fn limit(self) -> u32 {
        self.size.get()
    }

    /// The links of this page when the query has `count` rows in all; a page past the end does not
    /// exist (page 1 always does, even when empty).
    pub fn navigation(self, count: u64, links: &PageLinks<'_>) -> Result<Navigation, InvalidPage> {
        if !self.number.exists(self.size, count) {
            return Err(InvalidPage);
        }
        let number = self.number.get();
        Ok(Navigation {
            next: self.number.has_next(self.size, count).then(|| links.link(number + 1)),
            previous: (number > 1).then(|| links.link(number - 1)),
        })
    }
}

/// Builds absolute links to other pages of the same request.
pub struct PageLinks<'a> {
    /// `http` or `https`.
    pub scheme: &'a str,
    /// The request's host (and port).
    pub host: &'a str,
    /// The request's path.
    pub path: &'a str,
    /// The decoded query parameters as sent, in order.
    pub params: &'a [(String, String)],
}

impl PageLinks<'_> {
    /// The URL of `page`: every parameter as sent except `page`, sorted by name (stable for repeated
    /// names), with `page` left out entirely for page 1.
    pub fn link(&self, page: u64) -> String {
        let mut params: Vec<(&str, &str)> =
            self.params.iter().filter(|(name, _)| name != "page").map(|(n, v)| (n.as_str(), v.as_str())).collect();
        let page_text = page.to_string();
        if page > 1 {
            params.push(("page", &page_text));
        }
        params.sort_by(|a, b| a.0.cmp(b.0));
        let mut url = format!("{}://{}{}", self.scheme, self.host, self.path);
        for (index, (name, value)) in params.iter().enumerate() {
            url.push(if index == 0 { '?' } else { '&' });
            encode_component(name, &mut url);
            url.push('=');
            encode_component(value, &mut url);
        }
        url
    }
}

/// Percent-encodes like Python's `urllib.parse.quote_plus` (what DRF's links use): unreserved
/// characters stay, a space becomes `+`, every other byte is `%XX`.
fn encode_component(text: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' | b'~' => out.push(byte as char),
            b' ' => out.push('+'),
            _ => {
                out.push('%');
                out.push(HEX[usize::from(byte >> 4)] as char);
                out.push(HEX[usize::from(byte & 15)] as char);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()
    }

    #[test]
    fn page_size_defaults_clamps_and_rejects() {
        assert_eq!(PageSize::parse(None).unwrap().get(), 1000);
        assert_eq!(PageSize::parse(Some("4")).unwrap().get(), 4);
        assert_eq!(PageSize::parse(Some("20000")).unwrap().get(), 10_000);
        assert_eq!(PageSize::parse(Some("99999999999999999999999")).unwrap().get(), 10_000);
        for bad in ["0", "-1", "abc", "", "1.5", "+5", "000"] {
            assert!(PageSize::parse(Some(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn page_numbers_and_existence() {
        let size = PageSize::parse(Some("4")).unwrap();
        let page = |text| PageNumber::parse(Some(text));
        assert_eq!(PageNumber::parse(None).unwrap().get(), 1);
        for bad in ["0", "-1", "x", "", "1.0", "99999999999999999999999"] {
            assert!(page(bad).is_none(), "{bad:?}");
        }
        assert!(page("1").unwrap().exists(size, 0));
        assert!(page("2").unwrap().exists(size, 6));
        assert!(!page("3").unwrap().exists(size, 6));
        assert!(page("1").unwrap().has_next(size, 6));
        assert!(!page("2").unwrap().has_next(size, 6));
        assert!(!page("18446744073709551615").unwrap().exists(size, 6));
    }

    #[test]
    fn a_page_exists_up_to_the_last_row_and_links_its_neighbours() {
        let size = PageSize::parse(Some("4")).unwrap();
        let params = params(&[("page", "2"), ("page_size", "4")]);
        let links = PageLinks { scheme: "http", host: "h", path: "/p", params: &params };
        let page = |text| Page::parse(Some(text), size);

        let second = page("2").unwrap();
        assert_eq!((second.offset(), second.limit()), (4, 4));
        assert_eq!(
            second.navigation(9, &links).unwrap(),
            Navigation {
                next: Some("http://h/p?page=3&page_size=4".into()),
                previous: Some("http://h/p?page_size=4".into())
            }
        );
        assert_eq!(second.navigation(8, &links).unwrap().next, None, "exactly full: no next page");
        assert_eq!(second.navigation(4, &links), Err(InvalidPage), "past the end");

        let first = Page::parse(None, size).unwrap();
        assert_eq!(first.offset(), 0);
        assert_eq!(first.navigation(0, &links).unwrap(), Navigation::default(), "page 1 exists even when empty");
        assert_eq!(first.navigation(5, &links).unwrap().previous, None);

        for bad in ["0", "x", "", "-1"] {
            assert_eq!(page(bad), Err(InvalidPage), "{bad:?}");
        }
        assert_eq!(page("18446744073709551615"), Err(InvalidPage), "an offset that overflows cannot exist");
    }

    #[test]
    fn links_match_the_seed_document() {
        let params = params(&[
            ("datetime_gte", "2023-10-26T12:05:00Z"),
            ("datetime_lte", "2023-10-26T12:30:00Z"),
            ("store_code", "116500"),
            ("page_size", "4"),
        ]);
        let links = PageLinks {
            scheme: "http",
            host: "api.opap.bespot.io",
            path: "/api/bi/acquisition-metrics/visits/",
            params: &params,
        };
        assert_eq!(
            links.link(2),
            "http://api.opap.bespot.io/api/bi/acquisition-metrics/visits/?datetime_gte=2023-10-26T12%3A05%3A00Z&datetime_lte=2023-10-26T12%3A30%3A00Z&page=2&page_size=4&store_code=116500"
        );
    }

    #[test]
    fn link_to_page_one_drops_page_and_keeps_the_rest_as_sent() {
        let params = params(&[("page", "3"), ("z", "a b+c"), ("page_size", "20000"), ("a", "")]);
        let links = PageLinks { scheme: "https", host: "h:8080", path: "/p", params: &params };
        assert_eq!(links.link(1), "https://h:8080/p?a=&page_size=20000&z=a+b%2Bc");
        assert_eq!(links.link(2), "https://h:8080/p?a=&page=2&page_size=20000&z=a+b%2Bc");
    }
}
