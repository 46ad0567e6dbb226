//! Hostile AMQP clients against a real `conveyor serve`: 2,000 channels
//! that each start a 100 MiB body and never finish it; `tx.select` and a
//! million publishes without a commit; a resource alarm that must hold the
//! body frames of a publish in progress, not only its method. In each, the
//! broker keeps serving other clients and `/health` answers 200.

mod support;

use std::io::{ErrorKind, Write};
use std::time::Duration;

use amq_protocol::frame::AMQPFrame;
use amq_protocol::protocol::{AMQPClass, channel, queue, tx};
use lapin::BasicProperties;
use lapin::options::BasicGetOptions;
use support::lapin_client::{confirming_channel, declare, publish_confirmed, url};
use support::raw_amqp::{FRAME_MAX, RawAmqp, channel_open, encode, method, publish_start, queue_declare};
use support::{Server, eventually, http_send, metric, rss_bytes, start_with_config};

/// Bounds every wait on the broker.
const WAIT: Duration = Duration::from_secs(30);
const MIB: u64 = 1024 * 1024;

/// Another client is served: lapin publishes with a confirm and gets the
/// message back; `/health` is 200.
fn served(server: &Server, queue: &str) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        tokio::time::timeout(WAIT, async {
            let (connection, channel) = confirming_channel(&url(server)).await;
            declare(&channel, queue, false).await;
            assert!(publish_confirmed(&channel, "", queue, b"still here", BasicProperties::default()).await);
            let got = channel
                .basic_get(queue.into(), BasicGetOptions { no_ack: true })
                .await
                .expect("get")
                .expect("a message");
            assert_eq!(got.delivery.data, b"still here");
            connection.close(200, "bye".into()).await.expect("close");
        })
        .await
        .expect("served in time");
    });
    assert_eq!(server.http_get("/health").0, 200);
}

fn alarms(server: &Server) -> serde_json::Value {
    let (status, body) = server.http_get("/api/v1/alarms");
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).expect("json")
}

fn ready(server: &Server, queue: &str) -> u64 {
    let (status, body) = server.http_get(&format!("/api/v1/queues/{queue}"));
    assert_eq!(status, 200, "{body}");
    let detail: serde_json::Value = serde_json::from_str(&body).expect("json");
    detail["messages_ready"].as_u64().expect("messages_ready")
}

#[test]
fn two_thousand_channels_each_starting_a_100_mib_body_stay_within_the_connection_budget() {
    const CHANNELS: u16 = 2_000;
    // A 64 MiB budget (the default is 256 MiB) keeps the test quick; the rule is the same.
    let budget = 64 * MIB;
    let (_dir, server) = start_with_config(&format!("[limits]\nconnection_buffer_bytes_max = {budget}\n"));
    served(&server, "bystander");
    let rss_before = rss_bytes(server.pid());

    let mut abuser = RawAmqp::connect(server.amqp_addr, CHANNELS);
    let mut opening = Vec::new();
    for id in 1..=CHANNELS {
        opening.push(channel_open(id));
        opening.extend(publish_start(id, "nowhere", 100 * MIB));
    }
    abuser.send(&opening);
    // Body frames round-robin over the channels until the broker stops
    // reading (a write blocks); bounded well past budget plus socket buffers.
    abuser.stream.set_write_timeout(Some(Duration::from_secs(2))).expect("timeout");
    let piece = vec![b'x'; FRAME_MAX - 8];
    let frames: Vec<Vec<u8>> = (1..=CHANNELS).map(|id| encode(&[AMQPFrame::Body(id, piece.clone())])).collect();
    let mut written = 0u64;
    let mut stalled = false;
    'writing: for round in 0.. {
        for frame in &frames {
            match abuser.stream.write_all(frame) {
                Ok(()) => written += frame.len() as u64,
                Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    stalled = true;
                    break 'writing;
                }
                Err(error) => panic!("writing body frames: {error}"),
            }
            if written > budget + 256 * MIB {
                break 'writing;
            }
        }
        assert!(round < 1_000, "bounded");
    }
    assert!(stalled, "the broker stopped reading; {written} bytes were written");
    assert!(
        written < budget + 64 * MIB,
        "{written} bytes read past a {budget}-byte budget (socket buffers aside)"
    );
    let held = alarms(&server)["held_bytes"].as_u64().expect("held_bytes");
    assert!(
        held >= budget / 2 && held <= budget + FRAME_MAX as u64,
        "the broker holds {held} bytes for the connection, budget {budget}"
    );
    let grown = rss_bytes(server.pid()).saturating_sub(rss_before);
    assert!(grown < budget + 48 * MIB, "RSS grew by {grown} bytes, budget {budget}");

    // Other clients are served meanwhile, and after the abuser goes.
    served(&server, "bystander");
    // A client that goes away while not being read: its connection ends
    // and what it held is given back.
    abuser.abort();
    assert!(
        eventually(WAIT, || alarms(&server)["held_bytes"] == 0),
        "released with the connection"
    );
    served(&server, "bystander");
}

#[test]
fn a_transaction_of_a_million_publishes_is_refused_past_its_limit_and_nothing_of_it_is_stored() {
    const PUBLISHES: usize = 1_000_000;
    let (_dir, server) = start_with_config("");
    let rss_before = rss_bytes(server.pid());
    let mut client = RawAmqp::connect(server.amqp_addr, 16);
    client.send(&[channel_open(1), queue_declare(1, "uncommitted")]);
    client.expect(WAIT, |_, method| {
        matches!(method, AMQPClass::Queue(queue::AMQPMethod::DeclareOk(_)))
    });
    client.send(&[method(1, AMQPClass::Tx(tx::AMQPMethod::Select(tx::Select {})))]);
    client.expect(WAIT, |_, method| matches!(method, AMQPClass::Tx(tx::AMQPMethod::SelectOk(_))));

    let mut one = encode(&publish_start(1, "uncommitted", 1));
    one.extend(encode(&[AMQPFrame::Body(1, b"x".to_vec())]));
    let chunk: Vec<u8> = one.iter().copied().cycle().take(one.len() * 10_000).collect();
    let mut writer = client.stream.try_clone().expect("clone");
    let writing = std::thread::spawn(move || {
        for _ in 0..PUBLISHES / 10_000 {
            writer.write_all(&chunk).expect("publishes");
        }
    });
    let (_, closed) = client.expect(WAIT * 2, |channel, method| {
        channel == 1 && matches!(method, AMQPClass::Channel(channel::AMQPMethod::Close(_)))
    });
    let AMQPClass::Channel(channel::AMQPMethod::Close(close)) = closed else {
        unreachable!("matched above")
    };
    assert_eq!(close.reply_code, 406, "PRECONDITION_FAILED");
    assert!(
        close.reply_text.as_str().contains("amqp_transaction_messages_max"),
        "{}",
        close.reply_text.as_str()
    );
    writing.join().expect("every publish was written: the broker read on");

    // The connection lives on: the channel is closed and a new one opens.
    client.send(&[
        method(1, AMQPClass::Channel(channel::AMQPMethod::CloseOk(channel::CloseOk {}))),
        channel_open(2),
    ]);
    client.expect(WAIT, |channel, method| {
        channel == 2 && matches!(method, AMQPClass::Channel(channel::AMQPMethod::OpenOk(_)))
    });
    assert_eq!(ready(&server, "uncommitted"), 0, "nothing of the transaction was stored");
    let grown = rss_bytes(server.pid()).saturating_sub(rss_before);
    assert!(grown < 256 * MIB, "RSS grew by {grown} bytes");
    assert_eq!(
        metric(&server, r#"conveyor_limit_reached_total{limit="amqp_transaction_messages_max"}"#),
        Some(1.0)
    );
    served(&server, "bystander");
}

#[test]
fn a_resource_alarm_holds_the_body_frames_of_a_publish_in_progress() {
    let (_dir, server) = start_with_config("");
    let mut client = RawAmqp::connect(server.amqp_addr, 16);
    client.send(&[channel_open(1), queue_declare(1, "held"), channel_open(2)]);
    client.expect(WAIT, |channel, method| {
        channel == 2 && matches!(method, AMQPClass::Channel(channel::AMQPMethod::OpenOk(_)))
    });
    // The publish's method and header go in before the alarm; a round
    // trip on channel 2 shows the broker has read them.
    let mut frames = publish_start(1, "held", 5).to_vec();
    frames.push(queue_declare(2, "held"));
    client.send(&frames);
    client.expect(WAIT, |channel, method| {
        channel == 2 && matches!(method, AMQPClass::Queue(queue::AMQPMethod::DeclareOk(_)))
    });
    let (status, body) = http_send(
        server.http_addr,
        "PUT",
        "/api/v1/alarms",
        r#"{"disk_free_min_bytes": 18446744073709551615}"#,
    );
    assert_eq!(status, 200, "{body}");
    assert!(alarms(&server)["disk_alarm"] == true);

    // The body frame is held: the connection reads nothing more, so the
    // next declare is not answered and nothing is stored.
    client.send(&[AMQPFrame::Body(1, b"hello".to_vec()), queue_declare(2, "held")]);
    let answered = client.wait_for(Duration::from_secs(1), |channel, method| {
        channel == 2 && matches!(method, AMQPClass::Queue(queue::AMQPMethod::DeclareOk(_)))
    });
    assert!(answered.is_none(), "the connection was read on during the alarm");
    assert_eq!(ready(&server, "held"), 0, "the body was not taken during the alarm");

    let (status, body) = http_send(server.http_addr, "PUT", "/api/v1/alarms", r#"{"disk_free_min_bytes": 0}"#);
    assert_eq!(status, 200, "{body}");
    client.expect(WAIT, |channel, method| {
        channel == 2 && matches!(method, AMQPClass::Queue(queue::AMQPMethod::DeclareOk(_)))
    });
    assert!(eventually(WAIT, || ready(&server, "held") == 1), "stored once the alarm cleared");
    served(&server, "bystander");
}
