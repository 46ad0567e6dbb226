//! lapin, the Rust AMQP client, the way the integration tests drive it: a
//! connection with a channel in confirm mode, queue declarations, confirmed
//! publishes and an acking consumer. What each test checks stays in the test.

use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use tokio::sync::mpsc;

use super::Server;

/// The broker's AMQP address as a URL for the default user and vhost.
pub fn url(server: &Server) -> String {
    format!("amqp://guest:guest@{}/%2f", server.amqp_addr)
}

/// A connection and a channel on it with publisher confirms on.
pub async fn confirming_channel(url: &str) -> (Connection, Channel) {
    let connection = Connection::connect(url, ConnectionProperties::default()).await.expect("connect");
    let channel = connection.create_channel().await.expect("channel");
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirm.select");
    (connection, channel)
}

/// Declares `queue` with no arguments, durable or not.
pub async fn declare(channel: &Channel, queue: &str, durable: bool) {
    let options = QueueDeclareOptions {
        durable,
        ..QueueDeclareOptions::default()
    };
    channel
        .queue_declare(queue.into(), options, FieldTable::default())
        .await
        .expect("declare");
}

/// Publishes `body` and waits for its confirm: true when the broker acked it.
pub async fn publish_confirmed(channel: &Channel, exchange: &str, routing_key: &str, body: &[u8], properties: BasicProperties) -> bool {
    channel
        .basic_publish(
            exchange.into(),
            routing_key.into(),
            BasicPublishOptions::default(),
            body,
            properties,
        )
        .await
        .expect("publish")
        .await
        .expect("confirm")
        .is_ack()
}

/// Consumes `queue` on `channel`, acking each delivery; the bodies come out
/// of the receiver once acked.
pub async fn consume_acking(channel: &Channel, queue: &str) -> mpsc::UnboundedReceiver<Vec<u8>> {
    let consumer = channel
        .basic_consume(queue.into(), "".into(), BasicConsumeOptions::default(), FieldTable::default())
        .await
        .expect("consume");
    let (sender, delivered) = mpsc::unbounded_channel();
    consumer.set_delegate(move |delivery: lapin::message::DeliveryResult| {
        let sender = sender.clone();
        async move {
            if let Ok(Some(delivery)) = delivery {
                delivery.ack(BasicAckOptions::default()).await.expect("ack");
                let _ = sender.send(delivery.data);
            }
        }
    });
    delivered
}
