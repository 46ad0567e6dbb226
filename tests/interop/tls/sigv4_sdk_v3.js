// The AWS SDK v3 against the SQS door with SigV4 checked: the right keys
// work, a wrong secret raises SignatureDoesNotMatch.
const { SQSClient, CreateQueueCommand, SendMessageCommand, ReceiveMessageCommand } = require('@aws-sdk/client-sqs');

const endpoint = `http://${process.env.CONVEYOR_HTTP}`;
const client = (secretAccessKey) =>
  new SQSClient({ region: 'us-east-1', endpoint, credentials: { accessKeyId: 'AKIAALICE0000000000', secretAccessKey }, maxAttempts: 1 });

async function main() {
  const alice = client('alice-secret');
  const { QueueUrl } = await alice.send(new CreateQueueCommand({ QueueName: `sdk-v3-signed-${process.pid}` }));
  await alice.send(new SendMessageCommand({ QueueUrl, MessageBody: 'signed by the SDK v3' }));
  const received = await alice.send(new ReceiveMessageCommand({ QueueUrl, WaitTimeSeconds: 5 }));
  if (!received.Messages || received.Messages[0].Body !== 'signed by the SDK v3') {
    throw new Error(`received ${JSON.stringify(received.Messages)}`);
  }
  try {
    await client('wrong-secret').send(new SendMessageCommand({ QueueUrl, MessageBody: 'forged' }));
    throw new Error('a wrong secret was accepted');
  } catch (error) {
    if (error.name !== 'SignatureDoesNotMatch') throw error;
  }
  console.log('SigV4 with the AWS SDK v3 ok');
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
