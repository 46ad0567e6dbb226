//! `/metrics` read by the Prometheus client library's own text parser after
//! real Kafka and AMQP traffic.

mod support;

use support::{Server, run_script};

#[test]
fn metrics_parse_as_prometheus_text_and_move_with_traffic() {
    let (_dir, server) = Server::start_in_tempdir();
    run_script(&server, "metrics/metrics_prometheus.py", &[]);
}
