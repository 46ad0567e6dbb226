//! The web console's files through the HTTP router, in process: `/` is the
//! HTML page, and every file it references — stylesheet, icon, the entry
//! module and, transitively, every module that one imports — answers 200
//! with its content type, so no page of the console can fail to load.

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use conveyor_core::{Broker, BrokerConfig};
use conveyor_http::{HttpState, router};
use tower::ServiceExt;

/// Most files the walk follows (the console has a few dozen).
const FILES_MAX: usize = 200;

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

fn get(runtime: &tokio::runtime::Runtime, router: &Router, path: &str, if_none_match: Option<&str>) -> Answer {
    let mut request = Request::get(path);
    if let Some(tag) = if_none_match {
        request = request.header(header::IF_NONE_MATCH, tag);
    }
    let request = request.body(Body::empty()).expect("request");
    let router = router.clone();
    runtime.block_on(async move {
        let response = router.oneshot(request).await.expect("router");
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.expect("body");
        Answer {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    })
}

/// The values of `attribute="…"` in an HTML page.
fn attribute_values(html: &str, attribute: &str) -> Vec<String> {
    let marker = format!("{attribute}=\"");
    html.split(&marker)
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(str::to_owned)
        .collect()
}

/// The module specifiers of a module's static `import … from '…'` lines.
fn imports(module: &str) -> Vec<String> {
    module
        .lines()
        .map(str::trim)
        .filter(|line| line.starts_with("import ") || line.starts_with("} from "))
        .filter_map(|line| {
            let quote = line.rfind(['\'', '"'])?;
            let start = line[..quote].rfind(['\'', '"'])?;
            Some(line[start + 1..quote].to_owned())
        })
        .collect()
}

/// `specifier` resolved against the module at `base` (both absolute paths).
fn resolve(base: &str, specifier: &str) -> String {
    if specifier.starts_with('/') {
        return specifier.to_owned();
    }
    let mut parts: Vec<&str> = base.split('/').collect();
    parts.pop();
    for part in specifier.split('/') {
        match part {
            "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    parts.join("/")
}

fn expected_content_type(path: &str) -> &'static str {
    match path.rsplit('.').next() {
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("html") => "text/html; charset=utf-8",
        other => panic!("the console references an unexpected kind of file: {path} ({other:?})"),
    }
}

#[test]
fn the_index_and_every_file_it_loads_answer_200_with_their_content_type() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = Arc::new(Broker::open(BrokerConfig::new(dir.path())).expect("open broker"));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let router = router(HttpState::new(broker));

    let index = get(&runtime, &router, "/", None);
    assert_eq!(index.status, StatusCode::OK);
    assert_eq!(index.headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
    assert!(index.body.contains("<title>Conveyor console</title>"), "{}", index.body);
    let policy = index.headers[header::CONTENT_SECURITY_POLICY].to_str().expect("csp");
    assert!(policy.contains("script-src 'self'"), "{policy}");

    let mut queue: VecDeque<String> = attribute_values(&index.body, "href")
        .into_iter()
        .chain(attribute_values(&index.body, "src"))
        .filter(|path| path.starts_with("/console/"))
        .collect();
    assert!(
        queue.iter().any(|path| path.ends_with(".js")),
        "the page loads no module: {queue:?}"
    );
    assert!(
        queue.iter().any(|path| path.ends_with(".css")),
        "the page loads no stylesheet: {queue:?}"
    );
    let mut seen = BTreeSet::new();
    while let Some(path) = queue.pop_front() {
        if !seen.insert(path.clone()) {
            continue;
        }
        assert!(seen.len() <= FILES_MAX, "more than {FILES_MAX} files: {seen:?}");
        let answer = get(&runtime, &router, &path, None);
        assert_eq!(answer.status, StatusCode::OK, "{path}");
        assert_eq!(answer.headers[header::CONTENT_TYPE], expected_content_type(&path), "{path}");
        assert_eq!(answer.headers[header::CACHE_CONTROL], "no-cache", "{path}");
        if path.ends_with(".js") {
            queue.extend(imports(&answer.body).iter().map(|specifier| resolve(&path, specifier)));
        }
    }
    // The pages themselves: every section's module is reached from the entry module.
    for page in ["overview", "topics", "groups", "queues", "exchanges", "connections"] {
        assert!(seen.contains(&format!("/console/pages/{page}.js")), "{page} not loaded: {seen:?}");
    }
}

#[test]
fn an_unchanged_asset_revalidates_with_304_and_an_unknown_one_is_404() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = Arc::new(Broker::open(BrokerConfig::new(dir.path())).expect("open broker"));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let router = router(HttpState::new(broker));

    let first = get(&runtime, &router, "/console/app.js", None);
    assert_eq!(first.status, StatusCode::OK);
    let etag = first.headers[header::ETAG].to_str().expect("etag").to_owned();
    let again = get(&runtime, &router, "/console/app.js", Some(&etag));
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    assert!(again.body.is_empty());
    let other = get(&runtime, &router, "/console/app.js", Some("\"something-else\""));
    assert_eq!(other.status, StatusCode::OK);

    assert_eq!(get(&runtime, &router, "/console/nope.js", None).status, StatusCode::NOT_FOUND);
    assert_eq!(get(&runtime, &router, "/console/../Cargo.toml", None).status, StatusCode::NOT_FOUND);
}
