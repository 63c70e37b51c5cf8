import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { actionsOf, containerOf, referencedIds, resources, single, statementsOf, synthesize } from './helpers';

type Template = ReturnType<typeof synthesize>['template'];

/** The logical id of the task role of the task that runs `triggers <role>`. */
function taskRoleId(template: Template, role: 'ingest' | 'consume'): string {
  const task = single(template, 'AWS::ECS::TaskDefinition', (p) =>
    p.ContainerDefinitions[0].Command.join(' ').endsWith(`exec triggers ${role}`),
  );
  return [...referencedIds(task.Properties.TaskRoleArn)][0]!;
}

/** Whether `action` (an IAM action pattern, maybe with wildcards) covers `wanted`. */
function covers(action: string, wanted: string): boolean {
  const pattern = new RegExp(`^${action.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`, 'i');
  return pattern.test(wanted);
}

/** The statements of `roleId` that allow `wanted` on any resource. */
function allowing(template: Template, roleId: string, wanted: string): any[] {
  return statementsOf(template, roleId).filter(
    (statement) => statement.Effect === 'Allow' && actionsOf(statement).some((action) => covers(action, wanted)),
  );
}

describe('IAM least privilege', () => {
  const { template } = synthesize('prod');
  const stream = single(template, 'AWS::Kinesis::Stream');
  const leases = single(template, 'AWS::DynamoDB::Table', (p) => p.TableName.endsWith('leases'));
  const events = single(template, 'AWS::DynamoDB::Table', (p) => p.TableName.endsWith('events'));
  const ingest = taskRoleId(template, 'ingest');
  const consume = taskRoleId(template, 'consume');

  test('the consumer cannot write to the stream', () => {
    for (const action of ['kinesis:PutRecord', 'kinesis:PutRecords']) {
      assert.deepEqual(allowing(template, consume, action), [], `consumer may ${action}`);
    }
    assert.ok(allowing(template, consume, 'kinesis:GetRecords').some((s) => referencedIds(s.Resource).has(stream.id)));
  });

  test('the ingest edge cannot read (or write) the lease table', () => {
    for (const statement of statementsOf(template, ingest)) {
      assert.ok(!referencedIds(statement.Resource).has(leases.id), `ingest reaches the leases: ${JSON.stringify(statement)}`);
      if (actionsOf(statement).some((action) => action.startsWith('dynamodb:'))) {
        assert.notEqual(statement.Resource, '*');
      }
    }
    assert.ok(allowing(template, ingest, 'kinesis:PutRecords').some((s) => referencedIds(s.Resource).has(stream.id)));
    assert.ok(allowing(template, ingest, 'dynamodb:PutItem').some((s) => referencedIds(s.Resource).has(events.id)));
    assert.deepEqual(allowing(template, ingest, 'kinesis:GetRecords'), []);
  });

  test('the consumer holds leases and checkpoints; only it reads the retry queue', () => {
    assert.ok(allowing(template, consume, 'dynamodb:UpdateItem').some((s) => referencedIds(s.Resource).has(leases.id)));
    const retry = single(template, 'AWS::SQS::Queue', (p) => p.QueueName.endsWith('retry'));
    const dlq = single(template, 'AWS::SQS::Queue', (p) => p.QueueName.endsWith('dlq'));
    assert.ok(allowing(template, consume, 'sqs:ReceiveMessage').some((s) => referencedIds(s.Resource).has(retry.id)));
    assert.ok(!allowing(template, consume, 'sqs:ReceiveMessage').some((s) => referencedIds(s.Resource).has(dlq.id)));
    assert.ok(allowing(template, consume, 'sqs:SendMessage').some((s) => referencedIds(s.Resource).has(dlq.id)));
    assert.ok(!allowing(template, ingest, 'sqs:SendMessage').some((s) => referencedIds(s.Resource).has(retry.id)));
  });

  test('no task role may create, delete or reconfigure resources, or use wildcards on data', () => {
    const forbidden = [
      'kinesis:CreateStream',
      'kinesis:DeleteStream',
      'kinesis:UpdateShardCount',
      'dynamodb:CreateTable',
      'dynamodb:DeleteTable',
      'sqs:CreateQueue',
      'sqs:DeleteQueue',
      'sqs:PurgeQueue',
      'kms:ScheduleKeyDeletion',
      'iam:PassRole',
    ];
    for (const role of [ingest, consume]) {
      for (const action of forbidden) assert.deepEqual(allowing(template, role, action), [], `${role} may ${action}`);
      for (const statement of statementsOf(template, role)) {
        if (statement.Resource === '*') {
          assert.deepEqual(actionsOf(statement), ['cloudwatch:PutMetricData']);
          assert.deepEqual(statement.Condition, { StringEquals: { 'cloudwatch:namespace': 'Triggers' } });
        }
      }
    }
  });

  test('the consumer cannot read the admin token or the Redis token', () => {
    const executionRole = (role: 'ingest' | 'consume') => {
      const task = single(template, 'AWS::ECS::TaskDefinition', (p) =>
        p.ContainerDefinitions[0].Command.join(' ').endsWith(`exec triggers ${role}`),
      );
      return [...referencedIds(task.Properties.ExecutionRoleArn)][0]!;
    };
    const secrets = resources(template, 'AWS::SecretsManager::Secret');
    const secretId = (description: string) =>
      Object.entries(secrets).find(([, secret]) => String(secret.Properties.Description).includes(description))![0];
    const readable = (roleId: string) =>
      new Set(allowing(template, roleId, 'secretsmanager:GetSecretValue').flatMap((s) => [...referencedIds(s.Resource)]));
    const consumeReads = readable(executionRole('consume'));
    assert.ok(!consumeReads.has(secretId('admin API')));
    assert.ok(!consumeReads.has(secretId('Redis AUTH token')));
    const ingestReads = readable(executionRole('ingest'));
    assert.ok(ingestReads.has(secretId('admin API')));
    assert.ok(ingestReads.has(secretId('Redis AUTH token')));
    assert.equal(containerOf(template, 'consume').Secrets.length, 2);
  });

  test('operators get a role of their own for resharding, checkpoints and dead letters', () => {
    const operatorRole = Object.entries(resources(template, 'AWS::IAM::Role')).find(([, role]) =>
      String(role.Properties.Description).startsWith('Triggers operators'),
    )![0];
    assert.ok(allowing(template, operatorRole, 'kinesis:UpdateShardCount').length > 0);
    assert.ok(allowing(template, operatorRole, 'dynamodb:UpdateItem').some((s) => referencedIds(s.Resource).has(leases.id)));
    assert.deepEqual(allowing(template, operatorRole, 'kinesis:PutRecords'), []);
  });
});
