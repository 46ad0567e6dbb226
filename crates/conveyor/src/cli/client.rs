//! The HTTP side of the client commands: one blocking agent that keeps its
//! connection, paths built from percent-encoded names, and the admin API's
//! error shape turned into the one line the user sees.

use std::time::Duration;

use anyhow::{Context, anyhow};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;

/// Longest a single request may take; a publish waits for its fsync.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// What a path segment keeps unencoded: RFC 3986's unreserved characters.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// A client of one broker's admin API (`<server>/api/v1`).
#[derive(Debug)]
pub struct Client {
    agent: ureq::Agent,
    server: String,
    /// `Basic …` when the user gave credentials.
    authorization: Option<String>,
    /// `?vhost=` on every request (`--vhost`): the AMQP virtual host the
    /// queues and exchanges named are in.
    vhost: Option<String>,
}

type Answer = Result<ureq::http::Response<ureq::Body>, ureq::Error>;

impl Client {
    /// `server` is `http://host:port`; a bare `host:port` means plain HTTP.
    /// `credentials` (user, password) go in every request as HTTP Basic.
    pub fn new(server: String, credentials: Option<(String, String)>) -> Client {
        let server = server.trim_end_matches('/');
        let server = if server.contains("://") {
            server.to_owned()
        } else {
            format!("http://{server}")
        };
        let agent = ureq::Agent::config_builder()
            // Error statuses carry the API's JSON message: read them, do not fail on them.
            .http_status_as_error(false)
            .timeout_global(Some(REQUEST_TIMEOUT))
            .build()
            .new_agent();
        let authorization = credentials.map(|(user, password)| format!("Basic {}", STANDARD.encode(format!("{user}:{password}"))));
        Client {
            agent,
            server,
            authorization,
            vhost: None,
        }
    }

    /// The same client, naming queues and exchanges in `vhost` (`/` when `None`).
    pub fn in_vhost(mut self, vhost: Option<String>) -> Client {
        self.vhost = vhost;
        self
    }

    /// Credentials, the vhost, and the header that tells the broker this is no cross-site form.
    fn with_headers<B>(&self, request: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        let request = request.header("x-requested-with", "conveyor-cli");
        let request = match &self.vhost {
            Some(vhost) => request.query("vhost", vhost),
            None => request,
        };
        match &self.authorization {
            Some(value) => request.header("authorization", value),
            None => request,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.server)
    }

    pub fn get(&self, path: &str, query: &[(&str, String)]) -> anyhow::Result<Value> {
        let url = self.url(path);
        let mut request = self.with_headers(self.agent.get(&url));
        for (key, value) in query {
            request = request.query(*key, value);
        }
        self.answer(&url, request.call())
    }

    pub fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        let url = self.url(path);
        self.answer(&url, self.with_headers(self.agent.post(&url)).send_json(body))
    }

    pub fn patch(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        let url = self.url(path);
        self.answer(&url, self.with_headers(self.agent.patch(&url)).send_json(body))
    }

    pub fn put(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        let url = self.url(path);
        self.answer(&url, self.with_headers(self.agent.put(&url)).send_json(body))
    }

    pub fn delete(&self, path: &str, query: &[(&str, String)]) -> anyhow::Result<Value> {
        let url = self.url(path);
        let mut request = self.with_headers(self.agent.delete(&url));
        for (key, value) in query {
            request = request.query(*key, value);
        }
        self.answer(&url, request.call())
    }

    /// DELETE with a JSON body (a binding names what it removes in one).
    pub fn delete_json(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        let url = self.url(path);
        let request = self.with_headers(self.agent.delete(&url)).force_send_body();
        self.answer(&url, request.send_json(body))
    }

    /// The answer's JSON (null when it has no body), or the API's error message.
    fn answer(&self, url: &str, answer: Answer) -> anyhow::Result<Value> {
        let mut response = answer.map_err(|error| {
            anyhow!(
                "could not reach the Conveyor server at {} ({error}); is it running? (--server or CONVEYOR_SERVER)",
                self.server
            )
        })?;
        let status = response.status();
        let text = response
            .body_mut()
            .read_to_string()
            .with_context(|| format!("reading the answer of {url}"))?;
        let body = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        if status.is_success() {
            return Ok(body);
        }
        let message = match body.pointer("/error/message").and_then(Value::as_str) {
            Some(message) if status.as_u16() == 401 => format!("{message} (--user and --password, or CONVEYOR_USER and CONVEYOR_PASSWORD)"),
            Some(message) => message.to_owned(),
            None => format!("{url} answered {status}: {body}"),
        };
        Err(ApiError {
            status: status.as_u16(),
            message,
        }
        .into())
    }

    /// `get`, with `None` for a resource that does not exist (404).
    pub fn find(&self, path: &str) -> anyhow::Result<Option<Value>> {
        match self.get(path, &[]) {
            Ok(found) => Ok(Some(found)),
            Err(error) if error.downcast_ref::<ApiError>().is_some_and(|error| error.status == 404) => Ok(None),
            Err(error) => Err(error),
        }
    }
}

/// An error status from the API, with the message of its JSON error body.
#[derive(Debug)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&self.message)
    }
}

impl std::error::Error for ApiError {}

/// An API path from its segments, each percent-encoded (`["queues", "a/b"]` → `/queues/a%2Fb`).
pub fn path(segments: &[&str]) -> String {
    segments
        .iter()
        .map(|segment| format!("/{}", utf8_percent_encode(segment, SEGMENT)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_encoded_as_one_segment_each() {
        assert_eq!(path(&["queues", "jobs.dlq-1_~"]), "/queues/jobs.dlq-1_~");
        assert_eq!(path(&["queues", "a/b c#?%"]), "/queues/a%2Fb%20c%23%3F%25");
        assert_eq!(path(&["exchanges", ""]), "/exchanges/");
    }
}
