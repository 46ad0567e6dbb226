// amqplib with an amqps:// URL: the broker's certificate verified against
// the test CA; a configured user publishes with confirms and reads it back.
const fs = require("fs");
const amqp = require("amqplib");

const [user, password] = process.argv.slice(2);
const url = process.env.CONVEYOR_AMQP_TLS.replace("amqps://", `amqps://${user}:${password}@`);

async function main() {
  const connection = await amqp.connect(url, { ca: [fs.readFileSync(process.env.CONVEYOR_TEST_CA)] });
  const channel = await connection.createConfirmChannel();
  const queue = `amqps-${process.pid}-${Date.now()}`;
  await channel.assertQueue(queue, { exclusive: true });
  channel.sendToQueue(queue, Buffer.from("hello over amqps"));
  await channel.waitForConfirms();
  const message = await channel.get(queue, { noAck: true });
  if (!message || message.content.toString() !== "hello over amqps") {
    throw new Error(`got ${message && message.content.toString()}`);
  }
  await connection.close();
  console.log("amqplib over amqps ok");
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
