//! lapin (the Rust AMQP 0-9-1 client) against a spawned `conveyor serve`:
//! publisher confirms, a consumer with a prefetch window, acks, a nack with
//! requeue coming back flagged redelivered, and a topic exchange.

mod support;

use std::time::Duration;

use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicGetOptions, BasicNackOptions, BasicQosOptions, ExchangeDeclareOptions, QueueBindOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, ExchangeKind};
use support::Server;
use support::lapin_client::{confirming_channel, declare, publish_confirmed, url};
use tokio::sync::mpsc;

/// Bounds every wait on the broker.
const WAIT: Duration = Duration::from_secs(30);

#[test]
fn lapin_publishes_with_confirms_consumes_within_prefetch_and_routes_by_topic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path());
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        tokio::time::timeout(WAIT * 2, scenario(&url(&server)))
            .await
            .expect("the scenario finished in time");
    });
}

async fn scenario(url: &str) {
    let (connection, channel) = confirming_channel(url).await;
    declare(&channel, "lapin-jobs", true).await;
    for index in 0..10 {
        let job = format!("job-{index}");
        let persistent = BasicProperties::default().with_delivery_mode(2);
        assert!(
            publish_confirmed(&channel, "", "lapin-jobs", job.as_bytes(), persistent).await,
            "publish {index} was not confirmed"
        );
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
    declare(&channel, "lapin-retry", false).await;
    assert!(publish_confirmed(&channel, "", "lapin-retry", b"again", BasicProperties::default()).await);
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
    declare(&channel, "lapin-shipped", false).await;
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
        assert!(publish_confirmed(&channel, "lapin-events", key, key.as_bytes(), BasicProperties::default()).await);
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
