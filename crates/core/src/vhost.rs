//! Virtual hosts: isolated namespaces of exchanges, queues and bindings, and
//! the one place that knows how a vhost's resource is named inside the
//! broker. The default vhost `/` (where SQS queues, SNS topics and the admin
//! API's names live) keeps names as they are; in any other vhost `v`, the
//! queue or exchange a client calls `n` is `amq.vhost/<v percent-encoded>/<n>`
//! broker-wide, a name in the `amq.` namespace that no client of `/` may
//! declare or name. Below the front doors (queues, the router, the catalog,
//! storage) only broker-wide names exist; front doors translate on the way
//! in ([`VirtualHost::resource`]) and out ([`local_name`], [`local_text`]).
//! Names a definition holds as the client gave them (a dead-letter or
//! alternate exchange) resolve in the vhost of their holder ([`sibling`]).

use std::borrow::Cow;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

/// The vhost every broker has and which cannot be deleted.
pub const DEFAULT_VHOST: &str = "/";
/// Longest vhost name (an AMQP short string in `connection.open`).
pub const NAME_BYTES_MAX: usize = 255;
/// What every broker-wide name of a resource outside `/` starts with.
const NAMESPACE: &str = "amq.vhost/";
/// Everything but RFC 3986's unreserved characters is encoded: the encoded
/// vhost holds no `/` (so the first one after it ends it), and Rust's `{:?}`
/// leaves it unchanged (so [`local_text`] finds it in error messages).
const ENCODED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// Why a vhost name or a resource name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VhostError {
    #[error("invalid vhost name {name:?}: {reason}")]
    InvalidName { name: String, reason: &'static str },
    #[error("name '{0}' contains reserved prefix '{NAMESPACE}'")]
    ReservedName(String),
    #[error("vhost '{0}' not found")]
    NotFound(String),
    #[error("vhost '{0}' cannot be deleted")]
    Undeletable(String),
}

/// A virtual host, as clients name it in `connection.open`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VirtualHost {
    name: String,
    /// What the broker-wide names of this vhost's resources start with ("" in `/`).
    prefix: String,
}

impl Default for VirtualHost {
    fn default() -> VirtualHost {
        VirtualHost {
            name: DEFAULT_VHOST.to_owned(),
            prefix: String::new(),
        }
    }
}

impl VirtualHost {
    /// A vhost named `name`: 1 to 255 bytes, no control characters.
    pub fn new(name: &str) -> Result<VirtualHost, VhostError> {
        let invalid = |reason| {
            Err(VhostError::InvalidName {
                name: name.to_owned(),
                reason,
            })
        };
        if name.is_empty() {
            return invalid("empty");
        }
        if name.len() > NAME_BYTES_MAX {
            return invalid("longer than 255 bytes");
        }
        if name.chars().any(char::is_control) {
            return invalid("contains a control character");
        }
        if name == DEFAULT_VHOST {
            return Ok(VirtualHost::default());
        }
        Ok(VirtualHost {
            name: name.to_owned(),
            prefix: format!("{NAMESPACE}{}/", utf8_percent_encode(name, ENCODED)),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn is_default(&self) -> bool {
        self.prefix.is_empty()
    }

    /// The broker-wide name of this vhost's queue or exchange `name`. In
    /// `/`, names in the namespace of the other vhosts are refused, so a
    /// client of `/` can never reach into another vhost.
    pub fn resource(&self, name: &str) -> Result<String, VhostError> {
        if self.is_default() {
            if name.starts_with(NAMESPACE) {
                return Err(VhostError::ReservedName(name.to_owned()));
            }
            return Ok(name.to_owned());
        }
        Ok(format!("{}{name}", self.prefix))
    }

    /// Whether broker-wide name `resource` is one of this vhost's.
    pub fn contains(&self, resource: &str) -> bool {
        if self.is_default() {
            !resource.starts_with(NAMESPACE)
        } else {
            resource.starts_with(&self.prefix)
        }
    }
}

/// The vhost a broker-wide name is in, and the resource's name there.
pub fn split(resource: &str) -> (Cow<'_, str>, &str) {
    if let Some(rest) = resource.strip_prefix(NAMESPACE)
        && let Some((encoded, name)) = rest.split_once('/')
    {
        return (percent_decode_str(encoded).decode_utf8_lossy(), name);
    }
    (Cow::Borrowed(DEFAULT_VHOST), resource)
}

/// A broker-wide name as the clients of its vhost name it.
pub fn local_name(resource: &str) -> &str {
    split(resource).1
}

/// The broker-wide name of `name` in the vhost `resource` is in: where a
/// queue's dead-letter exchange, an exchange's alternate exchange or the
/// default exchange's routing key lead.
pub fn sibling<'a>(resource: &str, name: &'a str) -> Cow<'a, str> {
    match resource.strip_prefix(NAMESPACE).and_then(|rest| rest.find('/')) {
        Some(end) => Cow::Owned(format!("{}{name}", &resource[..NAMESPACE.len() + end + 1])),
        None => Cow::Borrowed(name),
    }
}

/// `text` (an error message) with every broker-wide name in it shown as
/// the clients of its vhost name it.
pub fn local_text(text: &str) -> Cow<'_, str> {
    if !text.contains(NAMESPACE) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(NAMESPACE) {
        out.push_str(&rest[..start]);
        let after = &rest[start + NAMESPACE.len()..];
        let encoded_len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || "-_.~%".contains(c)))
            .unwrap_or(after.len());
        if after[encoded_len..].starts_with('/') {
            rest = &after[encoded_len + 1..];
        } else {
            // Not a prefix this module wrote: keep it.
            out.push_str(NAMESPACE);
            rest = after;
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_default_vhost_keeps_names_and_refuses_the_other_vhosts_namespace() {
        let root = VirtualHost::new("/").expect("valid");
        assert!(root.is_default());
        assert_eq!(root, VirtualHost::default());
        assert_eq!(root.resource("orders").expect("valid"), "orders");
        assert_eq!(root.resource("amq.direct").expect("valid"), "amq.direct");
        assert!(matches!(root.resource("amq.vhost/x/orders"), Err(VhostError::ReservedName(_))));
        assert_eq!(split("orders"), (Cow::Borrowed("/"), "orders"));
        assert!(root.contains("orders") && !root.contains("amq.vhost/x/orders"));
    }

    #[test]
    fn a_vhost_resource_round_trips_and_names_in_two_vhosts_differ() {
        let staging = VirtualHost::new("staging").expect("valid");
        let other = VirtualHost::new("staging/eu").expect("valid");
        let queue = staging.resource("orders").expect("valid");
        assert_eq!(queue, "amq.vhost/staging/orders");
        assert_ne!(queue, other.resource("orders").expect("valid"));
        let nested = other.resource("a/b").expect("valid");
        assert_eq!(split(&nested), (Cow::Owned::<str>("staging/eu".to_owned()), "a/b"));
        assert_eq!(local_name(&nested), "a/b");
        assert!(other.contains(&nested) && !staging.contains(&nested) && !VirtualHost::default().contains(&nested));
    }

    #[test]
    fn siblings_resolve_in_the_holders_vhost() {
        let staging = VirtualHost::new("staging").expect("valid");
        let queue = staging.resource("work").expect("valid");
        assert_eq!(sibling(&queue, "dlx"), staging.resource("dlx").expect("valid"));
        assert_eq!(sibling(&queue, ""), staging.resource("").expect("valid"));
        assert_eq!(sibling("work", "dlx"), "dlx");
    }

    #[test]
    fn error_texts_show_local_names() {
        let vhost = VirtualHost::new("my vhost/1").expect("valid");
        let queue = vhost.resource("q\"1").expect("valid");
        let text = format!("no queue {queue:?} and no exchange '{}'", vhost.resource("x").expect("valid"));
        assert_eq!(local_text(&text), "no queue \"q\\\"1\" and no exchange 'x'");
        assert_eq!(local_text("plain 'amq.vhost/' text"), "plain 'amq.vhost/' text");
    }

    #[test]
    fn invalid_vhost_names_are_refused() {
        assert!(VirtualHost::new("").is_err());
        assert!(VirtualHost::new(&"v".repeat(256)).is_err());
        assert!(VirtualHost::new("a\nb").is_err());
        assert!(VirtualHost::new(&"v".repeat(255)).is_ok());
    }

    proptest! {
        #[test]
        fn any_vhost_and_name_round_trip(vhost in "[^\\p{Cc}]{1,40}", name in "\\PC{0,40}") {
            let vhost = VirtualHost::new(&vhost).expect("valid");
            let resource = vhost.resource(&name);
            prop_assume!(!name.contains(NAMESPACE));
            let Ok(resource) = resource else { return Ok(()) };
            let (found, local) = split(&resource);
            prop_assert_eq!(found.as_ref(), vhost.name());
            prop_assert_eq!(local, name.as_str());
            prop_assert!(vhost.contains(&resource));
            let quoted = format!("{resource:?}");
            prop_assert_eq!(local_text(&quoted).into_owned(), format!("{name:?}"));
        }
    }
}
