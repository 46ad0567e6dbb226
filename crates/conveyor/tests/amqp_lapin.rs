//! lapin (the Rust AMQP 0-9-1 client) against a spawned `conveyor serve`:
//! publisher confirms, a consumer with a prefetch window, acks, a nack with
//! requeue coming back flagged redelivered, and a topic exchange.

mod support;

use std::time::Duration;

use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicGetOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
    ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties, ExchangeKind};
use support::Server;
use tokio::sync::mpsc;

/// Bounds every wait on the broker.
const WAIT: Duration = Duration::from_secs(30);

#[test]
fn lapin_publishes_with_confirms_consumes_within_prefetch_and_routes_by_topic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path());
    let url = format!("amqp://guest:guest@{}/%2f", server.amqp_addr);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        tokio::time::timeout(WAIT * 2, scenario(&url))
            .await
            .expect("the scenario finished in time");
    });
}

async fn scenario(url: &str) {
    let connection = Connection::connect(url, ConnectionProperties::default()).await.expect("connect");
    let channel = connection.create_channel().await.expect("channel");
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirm.select");
    channel
        .queue_declare(
            "lapin-jobs".into(),
            QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("declare");
    for index in 0..10 {
        let confirm = channel
            .basic_publish(
                "".into(),
                "lapin-jobs".into(),
                BasicPublishOptions::default(),
                format!("job-{index}").as_bytes(),
                BasicProperties::default().with_delivery_mode(2),
            )
            .await
            .expect("publish")
            .await
            .expect("confirm");
        assert!(confirm.is_ack(), "publish {index} was not confirmed");
    }

    // A consumer with prefetch 4 receives everything in publish order, acking each.
    let consumer_channel = connection.create_channel().await.expect("channel");
    consumer_channel.basic_qos(4, BasicQosOptions::default()).await.expect("qos");
    let consumer = consumer_channel
        .basic_consume(
            "lapin-jobs".into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("consume");
    let (sender, mut received) = mpsc::unbounded_channel();
    consumer.set_delegate(move |delivery: lapin::message::DeliveryResult| {
        let sender = sender.clone();
        async move {
            if let Ok(Some(delivery)) = delivery {
                // lapin may run delegate calls concurrently: the delivery tag gives the broker's order.
                let _ = sender.send((delivery.delivery_tag, String::from_utf8_lossy(&delivery.data).into_owned()));
                delivery.ack(BasicAckOptions::default()).await.expect("ack");
            }
        }
    });
    let mut bodies = Vec::new();
    while bodies.len() < 10 {
        let body = tokio::time::timeout(WAIT, received.recv())
            .await
            .expect("a delivery in time")
            .expect("consumer open");
        bodies.push(body);
    }
    bodies.sort();
    let in_delivery_order: Vec<String> = bodies.into_iter().map(|(_, body)| body).collect();
    let expected: Vec<String> = (0..10).map(|index| format!("job-{index}")).collect();
    assert_eq!(in_delivery_order, expected, "delivered in publish order");

    // nack with requeue: the message comes back flagged redelivered.
    channel
        .queue_declare("lapin-retry".into(), QueueDeclareOptions::default(), FieldTable::default())
        .await
        .expect("declare");
    channel
        .basic_publish(
            "".into(),
            "lapin-retry".into(),
            BasicPublishOptions::default(),
            b"again",
            BasicProperties::default(),
        )
        .await
        .expect("publish")
        .await
        .expect("confirm");
    let first = channel
        .basic_get("lapin-retry".into(), BasicGetOptions::default())
        .await
        .expect("get")
        .expect("a message");
    assert!(!first.delivery.redelivered);
    first
        .delivery
        .nack(BasicNackOptions {
            requeue: true,
            ..BasicNackOptions::default()
        })
        .await
        .expect("nack");
    let second = channel
        .basic_get("lapin-retry".into(), BasicGetOptions::default())
        .await
        .expect("get")
        .expect("the message again");
    assert!(second.delivery.redelivered, "a requeued message is flagged redelivered");
    assert_eq!(second.delivery.data, b"again");
    second.delivery.ack(BasicAckOptions::default()).await.expect("ack");

    // A topic exchange routes by pattern.
    channel
        .exchange_declare(
            "lapin-events".into(),
            ExchangeKind::Topic,
            ExchangeDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("exchange");
    channel
        .queue_declare("lapin-shipped".into(), QueueDeclareOptions::default(), FieldTable::default())
        .await
        .expect("declare");
    channel
        .queue_bind(
            "lapin-shipped".into(),
            "lapin-events".into(),
            "#.shipped".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("bind");
    for key in ["order.shipped", "order.placed"] {
        channel
            .basic_publish(
                "lapin-events".into(),
                key.into(),
                BasicPublishOptions::default(),
                key.as_bytes(),
                BasicProperties::default(),
            )
            .await
            .expect("publish")
            .await
            .expect("confirm");
    }
    let routed = channel
        .basic_get("lapin-shipped".into(), BasicGetOptions { no_ack: true })
        .await
        .expect("get")
        .expect("the shipped event");
    assert_eq!(routed.delivery.data, b"order.shipped");
    let nothing = channel
        .basic_get("lapin-shipped".into(), BasicGetOptions { no_ack: true })
        .await
        .expect("get");
    assert!(nothing.is_none(), "order.placed matched #.shipped");
    connection.close(200, "done".into()).await.expect("close");
}
