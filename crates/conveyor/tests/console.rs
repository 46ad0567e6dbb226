//! The web console in a real browser: playwright-core drives Debian's
//! Chromium against a spawned `conveyor serve` (see
//! `tests/interop/console/console_playwright.js`) and saves a screenshot of
//! every page under `target/tmp/console-screenshots/`.

mod support;

use std::path::{Path, PathBuf};

use support::{Server, run_script};

/// The Chromium to drive: `CONVEYOR_TEST_CHROMIUM`, else `chromium` on the
/// PATH (Debian's package, which `scripts/test` installs).
fn chromium() -> PathBuf {
    if let Some(path) = std::env::var_os("CONVEYOR_TEST_CHROMIUM") {
        return PathBuf::from(path);
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .flat_map(|dir| ["chromium", "chromium-browser"].map(|name| dir.join(name)))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!("no chromium on the PATH: run ./scripts/test (it installs Debian's chromium) or set CONVEYOR_TEST_CHROMIUM")
        })
}

#[test]
fn the_console_lists_what_clients_created_charts_traffic_and_redrives_a_dead_letter() {
    let (_dir, server) = Server::start_in_tempdir();
    let screenshots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
    let browser = chromium();
    let output = run_script(
        &server,
        "console/console_playwright.js",
        &[&screenshots.to_string_lossy(), &browser.to_string_lossy()],
    );
    assert!(output.stdout.contains("ok"), "{}", output.stdout);
    for page in [
        "overview",
        "topics",
        "topic",
        "group",
        "queues",
        "dlq",
        "dlq-redriven",
        "exchanges",
        "connections",
    ] {
        let shot = screenshots.join(format!("{page}.png"));
        let bytes = std::fs::read(&shot).unwrap_or_else(|error| panic!("{}: {error}", shot.display()));
        assert!(bytes.starts_with(b"\x89PNG"), "{} is not a PNG", shot.display());
    }
}

#[test]
fn the_consoles_forms_declare_exchanges_queues_and_bindings_in_the_vhost_picked() {
    let (_dir, server) = Server::start_in_tempdir();
    let screenshots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("console-declare-screenshots");
    let browser = chromium();
    let output = run_script(
        &server,
        "console/declare_playwright.js",
        &[&screenshots.to_string_lossy(), &browser.to_string_lossy()],
    );
    assert!(output.stdout.contains("ok"), "{}", output.stdout);
    for page in ["declare-queues", "declare-exchanges", "declare-queue"] {
        let shot = screenshots.join(format!("{page}.png"));
        let bytes = std::fs::read(&shot).unwrap_or_else(|error| panic!("{}: {error}", shot.display()));
        assert!(bytes.starts_with(b"\x89PNG"), "{} is not a PNG", shot.display());
    }
}

#[test]
fn with_anonymous_access_off_the_console_shows_its_login_page_and_logs_in_with_a_session_cookie() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("conveyor.toml");
    std::fs::write(
        &config,
        "[auth]\nanonymous = \"never\"\n[users.admin]\npassword = \"adminpw\"\ntags = [\"administrator\"]\n",
    )
    .expect("write config");
    let config = config.to_string_lossy().into_owned();
    let server = Server::start_with(&dir.path().join("data"), &["--config", &config], &[]);
    let screenshots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
    let browser = chromium();
    let output = run_script(
        &server,
        "console/login_playwright.js",
        &[&screenshots.to_string_lossy(), &browser.to_string_lossy(), "admin", "adminpw"],
    );
    assert!(output.stdout.contains("ok"), "{}", output.stdout);
    let shot = screenshots.join("login.png");
    let bytes = std::fs::read(&shot).unwrap_or_else(|error| panic!("{}: {error}", shot.display()));
    assert!(bytes.starts_with(b"\x89PNG"), "{} is not a PNG", shot.display());
}
