//! SNS subscription actions: Subscribe (protocol `sqs` only; idempotent for
//! the same topic, queue and attributes), Unsubscribe,
//! ListSubscriptions(ByTopic) (pages of 100), Get/SetSubscriptionAttributes.
//! A subscription is a binding of the topic's exchange (`subscription.rs`);
//! changes go through the broker, which records them in the catalog first.

use conveyor_core::CoreError;
use conveyor_core::exchange::{Binding, ExchangeError};
use uuid::Uuid;

use super::arn::{parse_queue_arn, parse_subscription_arn, subscription_arn, topic_arn};
use super::error::SnsError;
use super::params::Params;
use super::subscription::Subscription;
use super::topic::Topic;
use super::topics::{PAGE_SIZE, topic, topic_of, topics};
use super::xml::Xml;
use super::{Answer, CHANGES, Context};
use crate::sqs::queue_arn;

/// The subscriptions of a topic, ordered by id.
fn subscriptions_of(context: &Context, topic: &Topic) -> Result<Vec<(Subscription, Binding)>, SnsError> {
    let mut subscriptions: Vec<(Subscription, Binding)> = context
        .state
        .broker
        .bindings(&topic.name)?
        .into_iter()
        .filter_map(|binding| Some((Subscription::from_binding(&binding)?, binding)))
        .collect();
    subscriptions.sort_by(|a, b| a.0.id.cmp(&b.0.id));
    Ok(subscriptions)
}

/// The subscription an ARN names, with its topic and binding.
fn find(context: &Context, arn: &str) -> Result<(Topic, Subscription, Binding), SnsError> {
    let (topic_name, id) = parse_subscription_arn(arn)?;
    let not_found = || SnsError::NotFound("Subscription does not exist".to_owned());
    let topic = topic(context, topic_name).map_err(|_| not_found())?;
    let (subscription, binding) = subscriptions_of(context, &topic)?
        .into_iter()
        .find(|(subscription, _)| subscription.id == id)
        .ok_or_else(not_found)?;
    Ok((topic, subscription, binding))
}

pub async fn subscribe(context: &Context, params: &Params) -> Answer {
    let protocol = params.required("Protocol")?;
    if protocol != "sqs" {
        return Err(SnsError::InvalidParameter(format!(
            "Invalid parameter: Protocol Reason: {protocol:?} is not supported; Conveyor delivers to SQS queues (protocol sqs) only"
        )));
    }
    let endpoint = params.required("Endpoint")?;
    let queue = parse_queue_arn(endpoint)?.to_owned();
    let attributes = params.map("Attributes")?;
    let _changing = CHANGES.lock().await;
    let topic = topic_of(context, params)?;
    if context.state.broker.queue(&queue).is_none() {
        return Err(SnsError::InvalidParameter(format!(
            "Invalid parameter: Endpoint Reason: no SQS queue named {queue}"
        )));
    }
    if topic.is_fifo() != queue.ends_with(".fifo") {
        return Err(SnsError::InvalidParameter(
            "Invalid parameter: Endpoint Reason: FIFO topics deliver to FIFO queues only, and standard topics to standard queues"
                .to_owned(),
        ));
    }
    let mut wanted = Subscription::new(Uuid::new_v4().to_string(), queue.clone());
    // The scope first, so the policy is checked against it whatever the map's order.
    if let Some(scope) = attributes.get("FilterPolicyScope") {
        wanted.set_attribute("FilterPolicyScope", scope)?;
    }
    for (name, value) in attributes.iter().filter(|(name, _)| *name != "FilterPolicyScope") {
        wanted.set_attribute(name, value)?;
    }
    let existing = subscriptions_of(context, &topic)?
        .into_iter()
        .map(|(subscription, _)| subscription)
        .find(|subscription| subscription.queue == queue);
    let id = match existing {
        // Subscribing the same queue again answers the subscription it has, as SNS does.
        Some(existing) => {
            let same = Subscription {
                id: existing.id.clone(),
                ..wanted
            };
            if attributes.is_empty() || same == existing {
                existing.id
            } else {
                return Err(SnsError::InvalidParameter(
                    "Invalid parameter: Attributes Reason: Subscription already exists with different attributes".to_owned(),
                ));
            }
        }
        None => {
            context.state.broker.bind(&topic.name, wanted.to_binding()).await?;
            wanted.id
        }
    };
    let mut xml = Xml::new();
    xml.element("SubscriptionArn", &subscription_arn(&context.account, &topic.name, &id));
    Ok(Some(xml))
}

pub async fn unsubscribe(context: &Context, params: &Params) -> Answer {
    let arn = params.required("SubscriptionArn")?;
    let _changing = CHANGES.lock().await;
    let (topic, _, binding) = find(context, arn)?;
    context.state.broker.unbind(&topic.name, binding).await?;
    Ok(None)
}

fn write_subscription(xml: &mut Xml, account: &str, topic: &str, subscription: &Subscription) {
    xml.open("member")
        .element("SubscriptionArn", &subscription_arn(account, topic, &subscription.id))
        .element("Owner", account)
        .element("Protocol", "sqs")
        .element("Endpoint", &queue_arn(account, &subscription.queue))
        .element("TopicArn", &topic_arn(account, topic))
        .close("member");
}

/// One page of `(topic, subscription)` pairs, which are in (topic, id)
/// order; the token is the last pair listed as `topic:id`.
fn page(xml: &mut Xml, account: &str, all: Vec<(String, Subscription)>, after: Option<&str>) {
    // Compared as a pair: `a-b:x` sorts before `a:x` as a string but after it as a pair.
    let after = after.map(|token| token.split_once(':').unwrap_or((token, "")));
    let mut rest = all
        .into_iter()
        .filter(|(topic, subscription)| after.is_none_or(|after| (topic.as_str(), subscription.id.as_str()) > after));
    xml.open("Subscriptions");
    let mut last = None;
    for (topic, subscription) in rest.by_ref().take(PAGE_SIZE) {
        write_subscription(xml, account, &topic, &subscription);
        last = Some(format!("{topic}:{}", subscription.id));
    }
    xml.close("Subscriptions");
    if rest.next().is_some()
        && let Some(last) = last
    {
        xml.element("NextToken", &last);
    }
}

pub fn list_subscriptions(context: &Context, params: &Params) -> Answer {
    let mut all = Vec::new();
    for topic in topics(&context.state.broker.exchanges()) {
        for (subscription, _) in subscriptions_of(context, &topic)? {
            all.push((topic.name.clone(), subscription));
        }
    }
    let mut xml = Xml::new();
    page(&mut xml, &context.account, all, params.get("NextToken"));
    Ok(Some(xml))
}

pub fn list_subscriptions_by_topic(context: &Context, params: &Params) -> Answer {
    let topic = topic_of(context, params)?;
    let all = subscriptions_of(context, &topic)?
        .into_iter()
        .map(|(subscription, _)| (topic.name.clone(), subscription))
        .collect();
    let mut xml = Xml::new();
    page(&mut xml, &context.account, all, params.get("NextToken"));
    Ok(Some(xml))
}

pub fn get_subscription_attributes(context: &Context, params: &Params) -> Answer {
    let arn = params.required("SubscriptionArn")?;
    let (topic, subscription, _) = find(context, arn)?;
    let subscription_arn = subscription_arn(&context.account, &topic.name, &subscription.id);
    let topic_arn = topic_arn(&context.account, &topic.name);
    let endpoint = queue_arn(&context.account, &subscription.queue);
    let computed = subscription.attributes();
    let mut attributes: Vec<(&str, &str)> = vec![
        ("SubscriptionArn", &subscription_arn),
        ("TopicArn", &topic_arn),
        ("Owner", context.account.as_str()),
        ("Endpoint", &endpoint),
    ];
    attributes.extend(computed.iter().map(|(name, value)| (*name, value.as_str())));
    let mut xml = Xml::new();
    xml.map("Attributes", attributes);
    Ok(Some(xml))
}

pub async fn set_subscription_attributes(context: &Context, params: &Params) -> Answer {
    let arn = params.required("SubscriptionArn")?;
    let name = params.required("AttributeName")?;
    let value = params.get("AttributeValue").unwrap_or_default();
    let _changing = CHANGES.lock().await;
    let (topic, mut subscription, old) = find(context, arn)?;
    subscription.set_attribute(name, value)?;
    let new = subscription.to_binding();
    if new != old {
        // Only a queue deleted over AMQP or SQS since `find` takes the binding away meanwhile.
        context
            .state
            .broker
            .replace_binding(&topic.name, old, new)
            .await
            .map_err(|error| match error {
                CoreError::Exchange(ExchangeError::InvalidArgument { .. }) => SnsError::NotFound("Subscription does not exist".to_owned()),
                other => SnsError::from(other),
            })?;
    }
    Ok(None)
}
