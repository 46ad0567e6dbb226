//! SNS topic actions: CreateTopic (idempotent), DeleteTopic (idempotent, as
//! in SNS), ListTopics (pages of 100), GetTopicAttributes, SetTopicAttributes.
//! A topic is a durable fanout exchange (`topic.rs`); changes go through the
//! broker, which records them in the catalog before answering.

use conveyor_core::CoreError;
use conveyor_core::exchange::{Exchange, ExchangeError};

use super::arn::{parse_topic_arn, topic_arn};
use super::error::SnsError;
use super::params::Params;
use super::subscription::Subscription;
use super::topic::Topic;
use super::xml::Xml;
use super::{Answer, Context};

/// ListTopics and the subscription listings answer this many per page, as SNS.
pub const PAGE_SIZE: usize = 100;

/// The topic `name`, or NotFound (also when an AMQP exchange has that name).
pub fn topic(context: &Context, name: &str) -> Result<Topic, SnsError> {
    context
        .state
        .broker
        .exchange(name)
        .as_ref()
        .and_then(Topic::from_exchange)
        .ok_or_else(|| SnsError::NotFound("Topic does not exist".to_owned()))
}

/// The topic a request's `TopicArn` names.
pub fn topic_of(context: &Context, params: &Params) -> Result<Topic, SnsError> {
    let name = parse_topic_arn(params.required("TopicArn")?, "TopicArn")?;
    topic(context, name)
}

pub async fn create_topic(context: &Context, params: &Params) -> Answer {
    let name = params.required("Name")?;
    let attributes = params.map("Attributes")?;
    let broker = &context.state.broker;
    let _changing = super::CHANGES.lock().await;
    match broker.exchange(name) {
        Some(existing) => match Topic::from_exchange(&existing) {
            Some(topic) if topic.has_attributes(&attributes) => {}
            Some(_) => {
                return Err(SnsError::InvalidParameter(
                    "Invalid parameter: Attributes Reason: Topic already exists with different attributes".to_owned(),
                ));
            }
            None => {
                return Err(SnsError::InvalidParameter(format!(
                    "Invalid parameter: Name Reason: an AMQP exchange named {name} exists and is not an SNS topic"
                )));
            }
        },
        None => {
            let topic = Topic::new(name, &attributes)?;
            broker.declare_exchange(topic.to_exchange()).await.map_err(|error| match error {
                CoreError::Exchange(ExchangeError::Inequivalent { .. }) => SnsError::InvalidParameter(
                    "Invalid parameter: Attributes Reason: Topic already exists with different attributes".to_owned(),
                ),
                other => SnsError::from(other),
            })?;
        }
    }
    let mut xml = Xml::new();
    xml.element("TopicArn", &topic_arn(&context.account, name));
    Ok(Some(xml))
}

pub async fn delete_topic(context: &Context, params: &Params) -> Answer {
    let name = parse_topic_arn(params.required("TopicArn")?, "TopicArn")?;
    let _changing = super::CHANGES.lock().await;
    // Deleting a topic that does not exist succeeds, as in SNS; an AMQP
    // exchange of that name is not a topic and is left alone.
    if topic(context, name).is_ok() {
        context.state.broker.delete_exchange(name, false).await?;
    }
    Ok(None)
}

pub fn list_topics(context: &Context, params: &Params) -> Answer {
    let after = params.get("NextToken").unwrap_or_default();
    let mut names = topics(&context.state.broker.exchanges())
        .into_iter()
        .map(|topic| topic.name)
        .filter(|name| name.as_str() > after);
    let mut xml = Xml::new();
    xml.open("Topics");
    let mut last = None;
    for name in names.by_ref().take(PAGE_SIZE) {
        xml.open("member")
            .element("TopicArn", &topic_arn(&context.account, &name))
            .close("member");
        last = Some(name);
    }
    xml.close("Topics");
    // The token is the last name listed: the next page starts after it.
    if names.next().is_some()
        && let Some(last) = last
    {
        xml.element("NextToken", &last);
    }
    Ok(Some(xml))
}

/// The topics among `exchanges`, in name order.
pub fn topics(exchanges: &[Exchange]) -> Vec<Topic> {
    exchanges.iter().filter_map(Topic::from_exchange).collect()
}

pub fn get_topic_attributes(context: &Context, params: &Params) -> Answer {
    let topic = topic_of(context, params)?;
    let subscriptions = context
        .state
        .broker
        .bindings(&topic.name)?
        .iter()
        .filter_map(Subscription::from_binding)
        .count()
        .to_string();
    let arn = topic_arn(&context.account, &topic.name);
    let mut attributes: Vec<(&str, &str)> = vec![
        ("TopicArn", &arn),
        ("Owner", context.account.as_str()),
        ("SubscriptionsConfirmed", &subscriptions),
        ("SubscriptionsPending", "0"),
        ("SubscriptionsDeleted", "0"),
    ];
    if !topic.attributes.contains_key("DisplayName") {
        attributes.push(("DisplayName", ""));
    }
    attributes.extend(topic.attributes.iter().map(|(name, value)| (name.as_str(), value.as_str())));
    let mut xml = Xml::new();
    xml.map("Attributes", attributes);
    Ok(Some(xml))
}

pub async fn set_topic_attributes(context: &Context, params: &Params) -> Answer {
    let name = params.required("AttributeName")?;
    let value = params.get("AttributeValue").unwrap_or_default();
    let _changing = super::CHANGES.lock().await;
    let mut topic = topic_of(context, params)?;
    topic.set_attribute(name, value)?;
    context.state.broker.redefine_exchange(topic.to_exchange()).await?;
    Ok(None)
}
