//! The web console: `GET /` and `GET /console/*` serve hand-written HTML,
//! CSS and ES modules from `crates/http/console/`, compiled into the binary
//! so the console works offline and needs no front-end build. The pages
//! talk only to the admin API under `/api/v1`; nothing here knows the broker.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};

use crate::HttpState;

/// Where the assets are mounted.
pub const ASSET_PREFIX: &str = "/console/";

/// One embedded file.
#[derive(Debug)]
pub struct Asset {
    /// The path below [`ASSET_PREFIX`].
    pub path: &'static str,
    pub content_type: &'static str,
    pub body: &'static [u8],
}

macro_rules! asset {
    ($path:literal, $content_type:expr) => {
        Asset {
            path: $path,
            content_type: $content_type,
            body: include_bytes!(concat!("../console/", $path)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";
const HTML: &str = "text/html; charset=utf-8";

/// The page every console URL starts from.
pub const INDEX: Asset = asset!("index.html", HTML);

/// Every file under `crates/http/console/` but the index (a test checks the list is complete).
pub const ASSETS: &[Asset] = &[
    asset!("console.css", "text/css; charset=utf-8"),
    asset!("favicon.svg", "image/svg+xml"),
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("chart.js", JS),
    asset!("dom.js", JS),
    asset!("format.js", JS),
    asset!("live.js", JS),
    asset!("vhost.js", JS),
    asset!("pages/connections.js", JS),
    asset!("pages/exchanges.js", JS),
    asset!("pages/groups.js", JS),
    asset!("pages/login.js", JS),
    asset!("pages/messages.js", JS),
    asset!("pages/overview.js", JS),
    asset!("pages/queues.js", JS),
    asset!("pages/queue_actions.js", JS),
    asset!("pages/topics.js", JS),
    asset!("pages/vhosts.js", JS),
];

/// Scripts, styles, images and API calls from this origin only: API data
/// can never become script even if a page mishandled it.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'";

/// An entity tag per asset, from its bytes: browsers revalidate (the file
/// names carry no hash, so a new binary's assets must be seen at once) and
/// get 304 while the binary is unchanged.
static ETAGS: LazyLock<HashMap<&'static str, String>> = LazyLock::new(|| {
    std::iter::once(&INDEX)
        .chain(ASSETS)
        .map(|asset| {
            let digest = Sha256::digest(asset.body);
            let hex: String = digest[..12].iter().map(|byte| format!("{byte:02x}")).collect();
            (asset.path, format!("\"{hex}\""))
        })
        .collect()
});

/// The console's routes.
pub fn router() -> Router<Arc<HttpState>> {
    Router::new()
        .route("/", get(index))
        .route(&format!("{ASSET_PREFIX}{{*path}}"), get(asset))
}

async fn index(headers: HeaderMap) -> Response {
    let mut response = serve(&INDEX, &headers);
    response
        .headers_mut()
        .insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    response
}

async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    match ASSETS.iter().find(|asset| asset.path == path) {
        Some(asset) => serve(asset, &headers),
        None => (StatusCode::NOT_FOUND, "no such console asset\n").into_response(),
    }
}

fn serve(asset: &Asset, request: &HeaderMap) -> Response {
    let etag = ETAGS.get(asset.path).map(String::as_str).unwrap_or_default();
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|tag| tag.trim() == etag));
    let common = [
        (header::CACHE_CONTROL, "no-cache"),
        (header::ETAG, etag),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ];
    if fresh {
        return (StatusCode::NOT_MODIFIED, common).into_response();
    }
    (common, [(header::CONTENT_TYPE, asset.content_type)], asset.body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files_under(dir: &std::path::Path, prefix: &str, found: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).expect("read console dir") {
            let entry = entry.expect("dir entry");
            let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
            if entry.file_type().expect("file type").is_dir() {
                files_under(&entry.path(), &format!("{name}/"), found);
            } else {
                found.push(name);
            }
        }
    }

    #[test]
    fn every_file_of_the_console_directory_is_embedded() {
        let mut on_disk = Vec::new();
        files_under(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("console"), "", &mut on_disk);
        on_disk.sort();
        let mut embedded: Vec<String> = std::iter::once(&INDEX).chain(ASSETS).map(|asset| asset.path.to_owned()).collect();
        embedded.sort();
        assert_eq!(on_disk, embedded, "add new console files to ASSETS");
    }
}
