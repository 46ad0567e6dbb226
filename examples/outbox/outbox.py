"""The transactional outbox with SQLite and pika.

The order service writes each order and its `order.placed` event in one
database transaction (no distributed transaction with the broker). A relay
process publishes unpublished outbox rows with publisher confirms and marks
each published only after the broker confirmed it, so an event is never
lost; the relay is SIGKILLed mid-way and restarted, and carries on where
the database says it stopped. A crash between the confirm and the mark can
publish an event twice, so the downstream consumer is idempotent by event
id. Exits non-zero unless downstream processed every event exactly once.

Run without arguments; `outbox.py relay DB QUEUE` is the relay process."""
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid

import pika

URL = os.environ.get("CONVEYOR_AMQP", "amqp://127.0.0.1:5672")
ORDERS = 400
KILL_AFTER = 100
DEADLINE_S = 60


def connect(db_path):
    """The service's database. WAL with synchronous=NORMAL: a committed
    transaction survives the crash of any process (not a power loss), the
    failure this example plays out, at a fraction of a millisecond a commit."""
    db = sqlite3.connect(db_path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    return db


def relay(db_path, queue):
    """Publishes the outbox in order; marks a row only once the broker confirmed it."""
    db = connect(db_path)
    connection = pika.BlockingConnection(pika.URLParameters(URL))
    channel = connection.channel()
    channel.confirm_delivery()  # basic_publish returns once the broker has the message durably
    while True:
        rows = db.execute("SELECT event_id, payload FROM outbox WHERE published = 0 ORDER BY seq LIMIT 50").fetchall()
        if not rows:
            break
        for event_id, payload in rows:
            channel.basic_publish(
                "", queue, payload.encode(), pika.BasicProperties(message_id=event_id, delivery_mode=2)
            )
            with db:
                db.execute("UPDATE outbox SET published = 1 WHERE event_id = ?", (event_id,))
    connection.close()


def published(db):
    return db.execute("SELECT COUNT(*) FROM outbox WHERE published = 1").fetchone()[0]


def main():
    queue = f"order-events-{uuid.uuid4().hex[:8]}"
    setup = pika.BlockingConnection(pika.URLParameters(URL))
    setup.channel().queue_declare(queue, durable=True)
    setup.close()

    workdir = tempfile.mkdtemp()
    db_path = os.path.join(workdir, "orders.db")
    db = connect(db_path)
    db.execute("CREATE TABLE orders (id TEXT PRIMARY KEY, amount INTEGER)")
    db.execute(
        "CREATE TABLE outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT UNIQUE, payload TEXT, published INTEGER)"
    )
    for n in range(ORDERS):
        order_id = f"order-{n}"
        with db:  # the order and its event commit together, or not at all
            db.execute("INSERT INTO orders VALUES (?, ?)", (order_id, n))
            db.execute(
                "INSERT INTO outbox (event_id, payload, published) VALUES (?, ?, 0)",
                (f"evt-{n}", f'{{"type": "order.placed", "order": "{order_id}"}}'),
            )

    relay_command = [sys.executable, os.path.abspath(__file__), "relay", db_path, queue]
    first = subprocess.Popen(relay_command)
    deadline = time.monotonic() + DEADLINE_S
    while published(db) < KILL_AFTER and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    killed_at = published(db)
    first.send_signal(signal.SIGKILL)
    first.wait()
    print(f"relay SIGKILLed after {killed_at} of {ORDERS} events were marked published")
    second = subprocess.Popen(relay_command)
    second.wait(timeout=DEADLINE_S)

    # Downstream: an idempotent consumer, deduplicating by event id.
    connection = pika.BlockingConnection(pika.URLParameters(URL))
    channel = connection.channel()
    processed, duplicates = set(), 0
    while len(processed) < ORDERS and time.monotonic() < deadline:
        method, properties, _body = channel.basic_get(queue, auto_ack=True)
        if method is None:
            connection.process_data_events(time_limit=0.05)
            continue
        if properties.message_id in processed:
            duplicates += 1
        processed.add(properties.message_id)
    while True:  # whatever is left can only be a duplicate
        method, properties, _body = channel.basic_get(queue, auto_ack=True)
        if method is None:
            break
        duplicates += properties.message_id in processed
        processed.add(properties.message_id)
    channel.queue_delete(queue)
    connection.close()
    marked = published(db)
    db.close()
    shutil.rmtree(workdir)

    print(f"downstream processed {len(processed)} distinct events ({duplicates} redelivered duplicates skipped)")
    failures = []
    if not KILL_AFTER <= killed_at < ORDERS:
        failures.append(f"the relay was not killed mid-way ({killed_at} published)")
    if second.returncode != 0:
        failures.append(f"the restarted relay failed ({second.returncode})")
    if processed != {f"evt-{n}" for n in range(ORDERS)}:
        failures.append(f"{ORDERS - len(processed)} events never arrived")
    if marked != ORDERS:
        failures.append("the outbox still has unpublished events")
    if failures:
        sys.exit("FAILED: " + "; ".join(failures))
    print("ok: every event of every committed order reached downstream once, across a relay crash")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "relay":
        relay(sys.argv[2], sys.argv[3])
    else:
        main()
