// AWS SDK v3 and message move tasks: a message dead-lettered after
// maxReceiveCount goes back to its source queue with StartMessageMoveTask,
// ListMessageMoveTasks follows the task to COMPLETED, and the SDK raises
// ResourceNotFoundException for an unknown source.
const assert = require('assert');
const {
  SQSClient, CreateQueueCommand, GetQueueAttributesCommand, SendMessageCommand, ReceiveMessageCommand,
  StartMessageMoveTaskCommand, ListMessageMoveTasksCommand,
} = require('@aws-sdk/client-sqs');

const sqs = new SQSClient({
  region: 'us-east-1',
  endpoint: `http://${process.env.CONVEYOR_HTTP}`,
  credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
});
const DEADLINE_MS = 20000;

async function arnOf(QueueUrl) {
  const { Attributes } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['QueueArn'] }));
  return Attributes.QueueArn;
}

async function run() {
  const suffix = `${process.pid}-${Date.now()}`;
  const dlq = (await sqs.send(new CreateQueueCommand({ QueueName: `sdk-dlq-${suffix}` }))).QueueUrl;
  const dlqArn = await arnOf(dlq);
  const RedrivePolicy = JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount: 1 });
  const source = (await sqs.send(new CreateQueueCommand({ QueueName: `sdk-src-${suffix}`, Attributes: { RedrivePolicy } }))).QueueUrl;
  await sqs.send(new SendMessageCommand({ QueueUrl: source, MessageBody: 'poison' }));
  const deadline = Date.now() + DEADLINE_MS;
  for (;;) {
    const { Attributes } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: dlq, AttributeNames: ['ApproximateNumberOfMessages'] }));
    if (Attributes.ApproximateNumberOfMessages === '1') break;
    assert.ok(Date.now() < deadline, 'the message never reached the DLQ');
    await sqs.send(new ReceiveMessageCommand({ QueueUrl: source, VisibilityTimeout: 0 }));
  }

  const { TaskHandle } = await sqs.send(new StartMessageMoveTaskCommand({ SourceArn: dlqArn }));
  assert.ok(TaskHandle, 'a task handle');
  let task;
  for (;;) {
    [task] = (await sqs.send(new ListMessageMoveTasksCommand({ SourceArn: dlqArn }))).Results;
    if (task.Status === 'COMPLETED') break;
    assert.ok(Date.now() < deadline && task.Status === 'RUNNING', `task: ${JSON.stringify(task)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.strictEqual(task.ApproximateNumberOfMessagesMoved, 1);
  assert.strictEqual(task.ApproximateNumberOfMessagesToMove, 1);
  const { Messages } = await sqs.send(new ReceiveMessageCommand({ QueueUrl: source, WaitTimeSeconds: 5 }));
  assert.deepStrictEqual(Messages.map((message) => message.Body), ['poison'], 'back in its source queue');

  await assert.rejects(
    sqs.send(new StartMessageMoveTaskCommand({ SourceArn: `${dlqArn}-missing` })),
    (error) => error.name === 'ResourceNotFoundException' && error.$metadata.httpStatusCode === 404,
  );
  console.log('move task sdk v3: ok');
}

run().catch((error) => {
  console.error(error);
  process.exit(1);
});
