//! The web dashboard at `/`: plain HTML, CSS and ES modules from `assets/dashboard/`, embedded in the
//! binary with `include_bytes!`, so nothing is built before `cargo run` and nothing is fetched at run time.
//!
//! The dashboard is one more client of the public read API: it signs in with Basic auth and reads the
//! stores, visits, occupancy, summary and live occupancy endpoints. This module only serves its files.
//!
//! Caching: `/` is served with `no-cache` and an ETag, so a new binary's page is picked up at once. The page
//! loads its modules from `/dashboard/<version>/`, where the version is a hash of every asset, so those URLs
//! can be cached as immutable; a stale version answers 404 rather than mixing files of two builds.

use std::sync::LazyLock;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};

use super::error::{ApiError, ErrorCode};

struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const JAVASCRIPT: &str = "text/javascript; charset=utf-8";

macro_rules! asset {
    ($name:literal, $content_type:expr) => {
        Asset {
            name: $name,
            content_type: $content_type,
            body: include_bytes!(concat!("../../assets/dashboard/", $name)),
        }
    };
}

/// Every file the page loads, by the name it is requested under.
const ASSETS: &[Asset] = &[
    asset!("app.js", JAVASCRIPT),
    asset!("api.js", JAVASCRIPT),
    asset!("data.js", JAVASCRIPT),
    asset!("charts.js", JAVASCRIPT),
    asset!("overview.js", JAVASCRIPT),
    asset!("devices.js", JAVASCRIPT),
    asset!("style.css", "text/css; charset=utf-8"),
    asset!("favicon.svg", "image/svg+xml"),
];

const INDEX_TEMPLATE: &str = include_str!("../../assets/dashboard/index.html");
/// Where `index.html` says its assets are; replaced by the versioned prefix.
const ASSETS_PLACEHOLDER: &str = "{{assets}}";

/// A hash of the page and every asset: changes whenever any of them does.
static VERSION: LazyLock<String> = LazyLock::new(|| {
    let mut hasher = Sha256::new();
    hasher.update(INDEX_TEMPLATE.as_bytes());
    for asset in ASSETS {
        hasher.update(asset.name.as_bytes());
        hasher.update([0]);
        hasher.update(asset.body);
    }
    hasher.finalize()[..6].iter().map(|b| format!("{b:02x}")).collect()
});

static INDEX: LazyLock<String> =
    LazyLock::new(|| INDEX_TEMPLATE.replace(ASSETS_PLACEHOLDER, &format!("/dashboard/{}", *VERSION)));

/// Scripts, styles and connections from this origin only: no inline script, no CDN, no framing (the page
/// holds a sign-in form).
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
     connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'";

/// `/` (the page) and `/dashboard/<version>/<file>` (its assets).
pub fn routes() -> Router {
    let method_not_allowed =
        || async { ApiError::new(StatusCode::METHOD_NOT_ALLOWED, ErrorCode::MethodNotAllowed, "Method not allowed.") };
    Router::new()
        .route("/", get(index).fallback(method_not_allowed))
        .route("/dashboard/{version}/{file}", get(asset).fallback(method_not_allowed))
}

fn common_headers(content_type: &'static str, cache_control: &'static str) -> [(HeaderName, HeaderValue); 4] {
    [
        (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
        (header::CACHE_CONTROL, HeaderValue::from_static(cache_control)),
        (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        (header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
    ]
}

async fn index(headers: HeaderMap) -> Response {
    let etag = format!("\"{}\"", *VERSION);
    let etag_header = (header::ETAG, HeaderValue::from_str(&etag).expect("hex"));
    let csp = (header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    let common = common_headers("text/html; charset=utf-8", "no-cache");
    let unchanged = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|tag| tag.trim().trim_start_matches("W/") == etag));
    if unchanged {
        return (StatusCode::NOT_MODIFIED, common, [etag_header, csp]).into_response();
    }
    (common, [etag_header, csp], INDEX.as_str()).into_response()
}

async fn asset(Path((version, file)): Path<(String, String)>) -> Response {
    let found = ASSETS.iter().find(|asset| asset.name == file).filter(|_| version == *VERSION);
    match found {
        Some(asset) => {
            (common_headers(asset.content_type, "public, max-age=31536000, immutable"), asset.body).into_response()
        }
        None => ApiError::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, "Not found.").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    use super::*;

    async fn get(path: &str, if_none_match: Option<&str>) -> Response {
        let mut request = Request::get(path);
        if let Some(tag) = if_none_match {
            request = request.header(header::IF_NONE_MATCH, tag);
        }
        routes().oneshot(request.body(Body::empty()).unwrap()).await.unwrap()
    }

    fn header_of(response: &Response, name: HeaderName) -> &str {
        response.headers().get(name).unwrap().to_str().unwrap()
    }

    #[tokio::test]
    async fn the_page_points_at_the_versioned_assets_it_references() {
        let response = get("/", None).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(header_of(&response, header::CONTENT_TYPE), "text/html; charset=utf-8");
        assert_eq!(header_of(&response, header::CACHE_CONTROL), "no-cache");
        assert!(!INDEX.contains(ASSETS_PLACEHOLDER));
        let prefix = format!("/dashboard/{}/", *VERSION);
        for name in ["app.js", "style.css", "favicon.svg"] {
            assert!(INDEX.contains(&format!("{prefix}{name}")), "index.html does not load {name}");
        }
        let etag = header_of(&response, header::ETAG).to_owned();
        assert_eq!(get("/", Some(&etag)).await.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(get("/", Some("\"other\"")).await.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn assets_have_their_content_type_and_are_immutable_under_the_current_version_only() {
        for asset in ASSETS {
            let response = get(&format!("/dashboard/{}/{}", *VERSION, asset.name), None).await;
            assert_eq!(response.status(), StatusCode::OK, "{}", asset.name);
            assert_eq!(header_of(&response, header::CONTENT_TYPE), asset.content_type);
            assert_eq!(header_of(&response, header::CACHE_CONTROL), "public, max-age=31536000, immutable");
            let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
            assert_eq!(body.as_ref(), asset.body);
        }
        assert_eq!(get("/dashboard/000000000000/app.js", None).await.status(), StatusCode::NOT_FOUND);
        assert_eq!(get(&format!("/dashboard/{}/nope.js", *VERSION), None).await.status(), StatusCode::NOT_FOUND);
    }

    /// Every module another module imports must be served, or the page breaks only in a browser.
    #[test]
    fn every_imported_module_is_embedded() {
        for asset in ASSETS.iter().filter(|asset| asset.name.ends_with(".js")) {
            let text = std::str::from_utf8(asset.body).unwrap();
            for line in text.lines().filter(|line| line.starts_with("import ")) {
                let target = line.rsplit("'./").next().unwrap().trim_end_matches("';");
                assert!(
                    ASSETS.iter().any(|a| a.name == target),
                    "{} imports {target}, which is not embedded",
                    asset.name
                );
            }
        }
    }
}
