//! An SNS subscription as the core keeps it: a binding from the topic's
//! fanout exchange to the subscribed queue, whose key is the subscription id
//! and whose arguments hold its attributes, so the catalog persists them
//! with the binding:
//!
//! | SNS | binding |
//! |---|---|
//! | subscription id (last part of the ARN) | binding key |
//! | endpoint `arn:aws:sqs:…:QUEUE` | destination `Queue(QUEUE)` |
//! | `RawMessageDelivery` | argument `sns.raw_message_delivery` (`true`/`false`; its presence marks the binding as a subscription) |
//! | `FilterPolicy` | argument `sns.filter_policy` (the JSON as given), absent when none |
//! | `FilterPolicyScope` | argument `sns.filter_policy_scope`, absent for the default `MessageAttributes` |

use conveyor_core::exchange::{Binding, Destination, FieldTable, HeaderValue};
use serde_json::{Map, Value};
use tracing::warn;

use super::error::SnsError;
use super::filter_policy::{FilterPolicy, Scope};

const RAW_ARGUMENT: &str = "sns.raw_message_delivery";
const FILTER_POLICY_ARGUMENT: &str = "sns.filter_policy";
const FILTER_SCOPE_ARGUMENT: &str = "sns.filter_policy_scope";

/// One subscription of a topic to a queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub id: String,
    pub queue: String,
    pub raw_message_delivery: bool,
    /// The policy's JSON as the client gave it (checked when set).
    pub filter_policy: Option<String>,
    pub filter_policy_scope: Scope,
}

impl Subscription {
    pub fn new(id: String, queue: String) -> Subscription {
        Subscription {
            id,
            queue,
            raw_message_delivery: false,
            filter_policy: None,
            filter_policy_scope: Scope::MessageAttributes,
        }
    }

    /// The subscription a binding is, if it is one (a queue bound to the
    /// topic's exchange over AMQP is not).
    pub fn from_binding(binding: &Binding) -> Option<Subscription> {
        let Destination::Queue(queue) = &binding.destination else {
            return None;
        };
        let text = |name: &str| match binding.arguments.get(name) {
            Some(HeaderValue::String(text)) => Some(text.clone()),
            _ => None,
        };
        let raw = text(RAW_ARGUMENT)?;
        Some(Subscription {
            id: binding.binding_key.clone(),
            queue: queue.clone(),
            raw_message_delivery: raw == "true",
            filter_policy: text(FILTER_POLICY_ARGUMENT),
            filter_policy_scope: text(FILTER_SCOPE_ARGUMENT)
                .and_then(|scope| Scope::parse(&scope))
                .unwrap_or(Scope::MessageAttributes),
        })
    }

    pub fn to_binding(&self) -> Binding {
        let mut arguments = FieldTable::new();
        arguments.insert(RAW_ARGUMENT.to_owned(), HeaderValue::String(self.raw_message_delivery.to_string()));
        if let Some(policy) = &self.filter_policy {
            arguments.insert(FILTER_POLICY_ARGUMENT.to_owned(), HeaderValue::String(policy.clone()));
        }
        if self.filter_policy_scope != Scope::MessageAttributes {
            arguments.insert(
                FILTER_SCOPE_ARGUMENT.to_owned(),
                HeaderValue::String(self.filter_policy_scope.as_str().to_owned()),
            );
        }
        Binding::new(Destination::Queue(self.queue.clone()), self.id.clone()).with_arguments(arguments)
    }

    /// The subscription's filter, parsed (once per publish, not per message).
    pub fn filter(&self) -> Filter {
        let Some(text) = self.filter_policy.as_deref() else {
            return Filter::All;
        };
        match FilterPolicy::parse(text, self.filter_policy_scope) {
            Ok(policy) => Filter::Policy(policy, self.filter_policy_scope),
            Err(reason) => {
                // Policies are checked when set, so only a policy stored by
                // another version gets here: deliver nothing rather than all.
                warn!(subscription = self.id, %reason, "stored filter policy does not parse; delivering nothing");
                Filter::Nothing
            }
        }
    }

    /// Sets one attribute (Subscribe's `Attributes`, SetSubscriptionAttributes).
    pub fn set_attribute(&mut self, name: &str, value: &str) -> Result<(), SnsError> {
        match name {
            "RawMessageDelivery" => {
                self.raw_message_delivery = match value.to_ascii_lowercase().as_str() {
                    "true" => true,
                    "false" => false,
                    _ => return Err(invalid_attribute(name, "must be true or false")),
                };
            }
            "FilterPolicy" => {
                if value.is_empty() {
                    self.filter_policy = None;
                } else {
                    FilterPolicy::parse(value, self.filter_policy_scope).map_err(|reason| invalid_attribute(name, &reason))?;
                    self.filter_policy = Some(value.to_owned());
                }
            }
            "FilterPolicyScope" => {
                let scope = Scope::parse(value).ok_or_else(|| invalid_attribute(name, "must be MessageAttributes or MessageBody"))?;
                if let Some(policy) = &self.filter_policy {
                    FilterPolicy::parse(policy, scope).map_err(|reason| invalid_attribute(name, &reason))?;
                }
                self.filter_policy_scope = scope;
            }
            _ => {
                return Err(SnsError::InvalidParameter(format!(
                    "Invalid parameter: AttributeName Reason: {name} is not a subscription attribute Conveyor supports \
                     (RawMessageDelivery, FilterPolicy, FilterPolicyScope)"
                )));
            }
        }
        Ok(())
    }

    /// GetSubscriptionAttributes' attributes besides the ARNs and endpoint.
    pub fn attributes(&self) -> Vec<(&'static str, String)> {
        let mut attributes = vec![
            ("Protocol", "sqs".to_owned()),
            ("PendingConfirmation", "false".to_owned()),
            ("ConfirmationWasAuthenticated", "true".to_owned()),
            ("RawMessageDelivery", self.raw_message_delivery.to_string()),
        ];
        if let Some(policy) = &self.filter_policy {
            attributes.push(("FilterPolicy", policy.clone()));
            attributes.push(("FilterPolicyScope", self.filter_policy_scope.as_str().to_owned()));
        }
        attributes
    }
}

/// Which messages a subscription takes.
#[derive(Debug)]
pub enum Filter {
    All,
    Policy(FilterPolicy, Scope),
    Nothing,
}

impl Filter {
    /// Whether a message with these attributes (as
    /// [`attributes_as_json`](super::filter_policy::attributes_as_json) gives
    /// them) and this body passes.
    pub fn accepts(&self, attributes: &Map<String, Value>, body: &str) -> bool {
        match self {
            Filter::All => true,
            Filter::Nothing => false,
            Filter::Policy(policy, Scope::MessageAttributes) => policy.matches(attributes),
            // A body that is not a JSON object matches no body policy, as in SNS.
            Filter::Policy(policy, Scope::MessageBody) => match serde_json::from_str(body) {
                Ok(Value::Object(object)) => policy.matches(&object),
                _ => false,
            },
        }
    }
}

fn invalid_attribute(name: &str, reason: &str) -> SnsError {
    SnsError::InvalidParameter(format!("Invalid parameter: {name}: {reason}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subscription_round_trips_through_its_binding() {
        let mut subscription = Subscription::new("id-1".to_owned(), "q".to_owned());
        subscription.set_attribute("RawMessageDelivery", "true").expect("valid");
        subscription.set_attribute("FilterPolicy", r#"{"a": ["b"]}"#).expect("valid");
        let binding = subscription.to_binding();
        assert_eq!(binding.binding_key, "id-1");
        assert_eq!(Subscription::from_binding(&binding), Some(subscription));
        // A plain AMQP binding to the same queue is not a subscription.
        assert_eq!(
            Subscription::from_binding(&Binding::new(Destination::Queue("q".to_owned()), "")),
            None
        );
    }

    #[test]
    fn filters_take_everything_a_policy_or_for_body_scope_json_bodies_only() {
        let attributes: Map<String, Value> = serde_json::from_str(r#"{"a": "b"}"#).expect("json");
        let mut subscription = Subscription::new("id".to_owned(), "q".to_owned());
        assert!(subscription.filter().accepts(&Map::new(), "anything"));
        subscription.set_attribute("FilterPolicy", r#"{"a": ["b"]}"#).expect("valid");
        assert!(subscription.filter().accepts(&attributes, "x"));
        assert!(!subscription.filter().accepts(&Map::new(), "x"));
        subscription.set_attribute("FilterPolicyScope", "MessageBody").expect("valid");
        assert!(subscription.filter().accepts(&Map::new(), r#"{"a": "b"}"#));
        assert!(!subscription.filter().accepts(&attributes, "not json"));
        subscription.filter_policy = Some("{broken".to_owned());
        assert!(
            !subscription.filter().accepts(&attributes, r#"{"a": "b"}"#),
            "an unparsable stored policy delivers nothing"
        );
    }

    #[test]
    fn bad_attribute_values_are_invalid_parameter() {
        let mut subscription = Subscription::new("id".to_owned(), "q".to_owned());
        assert!(subscription.set_attribute("RawMessageDelivery", "yes").is_err());
        assert!(subscription.set_attribute("FilterPolicy", "{").is_err());
        assert!(subscription.set_attribute("FilterPolicyScope", "Nowhere").is_err());
        assert!(subscription.set_attribute("DeliveryPolicy", "{}").is_err());
        subscription.set_attribute("FilterPolicyScope", "MessageBody").expect("valid");
        subscription
            .set_attribute("FilterPolicy", r#"{"a": {"b": ["c"]}}"#)
            .expect("nested is fine in body scope");
        assert!(subscription.set_attribute("FilterPolicyScope", "MessageAttributes").is_err());
        subscription.set_attribute("FilterPolicy", "").expect("empty removes it");
        assert_eq!(subscription.filter_policy, None);
    }
}
