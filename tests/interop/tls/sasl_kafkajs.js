// kafkajs with ssl: true (the test CA) and sasl PLAIN produces and consumes.
const fs = require("fs");
const { Kafka, logLevel } = require("kafkajs");

const [username, password] = process.argv.slice(2);
const kafka = new Kafka({
  clientId: "sasl-kafkajs",
  brokers: [process.env.CONVEYOR_KAFKA_TLS],
  ssl: { ca: [fs.readFileSync(process.env.CONVEYOR_TEST_CA)] },
  sasl: { mechanism: "plain", username, password },
  logLevel: logLevel.NOTHING,
});

async function main() {
  const topic = `sasl-kafkajs-${process.pid}-${Date.now()}`;
  const producer = kafka.producer();
  await producer.connect();
  await producer.send({ topic, messages: [{ value: "plain over tls" }] });
  await producer.disconnect();
  const consumer = kafka.consumer({ groupId: `${topic}-group` });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const received = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no message within 30 s")), 30000);
    consumer.run({
      eachMessage: async ({ message }) => {
        clearTimeout(timer);
        resolve(message.value.toString());
      },
    });
  });
  await consumer.disconnect();
  if (received !== "plain over tls") throw new Error(`got ${received}`);

  const wrong = new Kafka({
    clientId: "sasl-kafkajs-wrong",
    brokers: [process.env.CONVEYOR_KAFKA_TLS],
    ssl: { ca: [fs.readFileSync(process.env.CONVEYOR_TEST_CA)] },
    sasl: { mechanism: "plain", username, password: `${password}-wrong` },
    retry: { retries: 0 },
    logLevel: logLevel.NOTHING,
  });
  const admin = wrong.admin();
  try {
    await admin.connect();
    throw new Error("a wrong password was accepted");
  } catch (error) {
    if (!/SASL|authentication/i.test(`${error.name} ${error.message} ${error.type}`)) throw error;
  }
  console.log("kafkajs ssl + sasl plain ok");
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
