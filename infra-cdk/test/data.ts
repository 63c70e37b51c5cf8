import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Match } from 'aws-cdk-lib/assertions';
import { referencedId, resources, single, synthesize } from './helpers';

describe('the Kinesis stream', () => {
  test('is KMS-encrypted with the customer-managed key, which rotates', () => {
    const { template } = synthesize('prod');
    const key = single(template, 'AWS::KMS::Key');
    assert.equal(key.Properties.EnableKeyRotation, true);
    const stream = single(template, 'AWS::Kinesis::Stream');
    assert.equal(stream.Properties.StreamEncryption.EncryptionType, 'KMS');
    assert.equal(referencedId(stream.Properties.StreamEncryption.KeyId), key.id);
  });

  test('takes its shard count from a stack parameter in provisioned mode, defaulting per environment', () => {
    for (const [env, shards] of [['dev', 2], ['prod', 8]] as const) {
      const { template } = synthesize(env);
      const stream = single(template, 'AWS::Kinesis::Stream');
      assert.deepEqual(stream.Properties.ShardCount, { Ref: 'ShardCount' });
      assert.deepEqual(stream.Properties.StreamModeDetails, { StreamMode: 'PROVISIONED' });
      const parameter = template.toJSON().Parameters.ShardCount;
      assert.equal(parameter.Type, 'Number');
      assert.equal(parameter.Default, shards);
      assert.equal(parameter.MinValue, 1);
      assert.equal(parameter.MaxValue, 1024);
    }
  });

  test('can be on-demand instead, with no shard count at all', () => {
    const { template } = synthesize('staging', { streamMode: 'on-demand' });
    const stream = single(template, 'AWS::Kinesis::Stream');
    assert.deepEqual(stream.Properties.StreamModeDetails, { StreamMode: 'ON_DEMAND' });
    assert.equal(stream.Properties.ShardCount, undefined);
    assert.equal(template.toJSON().Parameters.ShardCount, undefined);
  });

  test('keeps records a day in dev and a week in prod (how far a rewind can reach)', () => {
    assert.equal(single(synthesize('dev').template, 'AWS::Kinesis::Stream').Properties.RetentionPeriodHours, 24);
    assert.equal(single(synthesize('prod').template, 'AWS::Kinesis::Stream').Properties.RetentionPeriodHours, 168);
  });

  test('is named <prefix>events', () => {
    const stream = single(synthesize('prod').template, 'AWS::Kinesis::Stream');
    assert.equal(stream.Properties.Name, 'triggers-prod-events');
  });
});

describe('the DynamoDB tables', () => {
  test('are exactly two, on-demand, encrypted with the customer-managed key, with point-in-time recovery', () => {
    const { template } = synthesize('prod');
    const key = single(template, 'AWS::KMS::Key');
    const tables = Object.values(resources(template, 'AWS::DynamoDB::Table'));
    assert.equal(tables.length, 2);
    for (const table of tables) {
      assert.equal(table.Properties.BillingMode, 'PAY_PER_REQUEST');
      assert.equal(table.Properties.SSESpecification.SSEEnabled, true);
      assert.equal(table.Properties.SSESpecification.SSEType, 'KMS');
      assert.equal(referencedId(table.Properties.SSESpecification.KMSMasterKeyId), key.id);
      assert.equal(table.Properties.PointInTimeRecoverySpecification.PointInTimeRecoveryEnabled, true);
    }
  });

  test('<prefix>events: customer_id and event_id, a TTL attribute, and the query and GDPR indexes', () => {
    const { template } = synthesize('prod');
    const events = single(template, 'AWS::DynamoDB::Table', (p) => p.TableName === 'triggers-prod-events');
    assert.deepEqual(events.Properties.KeySchema, [
      { AttributeName: 'customer_id', KeyType: 'HASH' },
      { AttributeName: 'event_id', KeyType: 'RANGE' },
    ]);
    assert.deepEqual(events.Properties.TimeToLiveSpecification, { AttributeName: 'expires_at', Enabled: true });
    const indexes = Object.fromEntries(
      events.Properties.GlobalSecondaryIndexes.map((index: any) => [index.IndexName, index]),
    );
    assert.deepEqual(Object.keys(indexes).sort(), ['by-status', 'by-subject', 'by-type']);
    for (const [name, partitionKey] of [
      ['by-subject', 'customer_subject'],
      ['by-type', 'customer_type'],
      ['by-status', 'customer_status'],
    ]) {
      assert.deepEqual(indexes[name].KeySchema, [
        { AttributeName: partitionKey, KeyType: 'HASH' },
        { AttributeName: 'event_id', KeyType: 'RANGE' },
      ]);
      assert.equal(indexes[name].Projection.ProjectionType, 'ALL');
    }
  });

  test('<prefix>leases: keyed by leaseKey, as KCL names it', () => {
    const { template } = synthesize('prod');
    const leases = single(template, 'AWS::DynamoDB::Table', (p) => p.TableName === 'triggers-prod-leases');
    assert.deepEqual(leases.Properties.KeySchema, [{ AttributeName: 'leaseKey', KeyType: 'HASH' }]);
    assert.equal(leases.Properties.TimeToLiveSpecification, undefined);
  });

  test('are retained and deletion-protected in prod, deleted with the stack in dev', () => {
    for (const table of Object.values(resources(synthesize('prod').template, 'AWS::DynamoDB::Table'))) {
      assert.equal(table.DeletionPolicy, 'Retain');
      assert.equal(table.Properties.DeletionProtectionEnabled, true);
    }
    for (const table of Object.values(resources(synthesize('dev').template, 'AWS::DynamoDB::Table'))) {
      assert.equal(table.DeletionPolicy, 'Delete');
      assert.equal(table.Properties.DeletionProtectionEnabled, false);
    }
  });
});

describe('the SQS queues', () => {
  test('<prefix>retry and <prefix>dlq, KMS-encrypted with the customer-managed key, TLS only, kept 14 days', () => {
    const { template } = synthesize('prod');
    const key = single(template, 'AWS::KMS::Key');
    const queues = Object.entries(resources(template, 'AWS::SQS::Queue'));
    assert.deepEqual(queues.map(([, queue]) => queue.Properties.QueueName).sort(), [
      'triggers-prod-dlq',
      'triggers-prod-retry',
    ]);
    for (const [id, queue] of queues) {
      assert.equal(referencedId(queue.Properties.KmsMasterKeyId), key.id);
      assert.equal(queue.Properties.MessageRetentionPeriod, 14 * 24 * 3600);
      template.hasResourceProperties('AWS::SQS::QueuePolicy', {
        Queues: [{ Ref: id }],
        PolicyDocument: {
          Statement: Match.arrayWith([
            Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
          ]),
        },
      });
    }
  });

  test('the retry queue redrives to the DLQ after 10 receives; the DLQ redrives nowhere', () => {
    const { template } = synthesize('prod');
    const dlq = single(template, 'AWS::SQS::Queue', (p) => p.QueueName === 'triggers-prod-dlq');
    const retry = single(template, 'AWS::SQS::Queue', (p) => p.QueueName === 'triggers-prod-retry');
    assert.equal(referencedId(retry.Properties.RedrivePolicy.deadLetterTargetArn), dlq.id);
    assert.equal(retry.Properties.RedrivePolicy.maxReceiveCount, 10);
    assert.equal(dlq.Properties.RedrivePolicy, undefined);
  });
});
