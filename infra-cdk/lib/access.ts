import * as iam from 'aws-cdk-lib/aws-iam';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { Data } from './data';
import { APP_METRICS } from './metrics';

/**
 * The IAM boundaries between the roles, in one place. Each role gets the data-plane actions its
 * commands use and nothing that creates, deletes or reconfigures a resource (the stack owns those).
 */

/**
 * `triggers ingest`: appends to the stream, writes and reads events (pending rows, queries, GDPR
 * erasure), and removes an erased subject's parked deliveries from the DLQ. It cannot read the stream
 * or touch the lease table: leases and checkpoints belong to the consumers alone.
 */
export function grantIngest(grantee: iam.IGrantable, data: Data): void {
  data.stream.grantWrite(grantee);
  // `/readyz` asks whether the stream is active.
  data.stream.grant(grantee, 'kinesis:DescribeStreamSummary');
  data.eventsTable.grantReadWriteData(grantee);
  data.deadLetterQueue.grantConsumeMessages(grantee);
  grantPutMetricData(grantee);
}

/**
 * `triggers consume`: reads the stream (never writes it), holds leases and checkpoints, records
 * delivery outcomes on events, drains and feeds the retry queue, and parks deliveries in the DLQ
 * (it sends there but never reads or deletes from it).
 */
export function grantConsume(grantee: iam.IGrantable, data: Data): void {
  data.stream.grantRead(grantee);
  data.eventsTable.grantReadWriteData(grantee);
  data.leasesTable.grantReadWriteData(grantee);
  data.retryQueue.grantSendMessages(grantee);
  data.retryQueue.grantConsumeMessages(grantee);
  data.deadLetterQueue.grantSendMessages(grantee);
  grantPutMetricData(grantee);
}

/** PutMetricData into the application's namespace only. */
function grantPutMetricData(grantee: iam.IGrantable): void {
  iam.Grant.addToPrincipal({
    grantee,
    actions: ['cloudwatch:PutMetricData'],
    // CloudWatch has no metric ARNs; the namespace condition is the boundary.
    resourceArns: ['*'],
    conditions: { StringEquals: { 'cloudwatch:namespace': APP_METRICS.namespace } },
  });
}

export interface OperatorRoleProps {
  readonly data: Data;
  readonly adminToken: secretsmanager.ISecret;
}

/**
 * A role for people running the operator commands (`triggers checkpoint`, `stream`, `dlq`) against
 * the AWS resources directly, as the CLI contract allows in the aws mode. Anyone in the account whom
 * IAM allows `sts:AssumeRole` on it can take it; the services never do.
 */
export class OperatorRole extends Construct {
  readonly role: iam.Role;

  constructor(scope: Construct, id: string, props: OperatorRoleProps) {
    super(scope, id);
    const { data } = props;
    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.AccountRootPrincipal(),
      description: 'Triggers operators: checkpoints, resharding, dead letters',
    });
    data.stream.grantRead(this.role);
    data.stream.grant(this.role, 'kinesis:UpdateShardCount', 'kinesis:SplitShard', 'kinesis:MergeShards');
    data.leasesTable.grantReadWriteData(this.role);
    data.eventsTable.grantReadWriteData(this.role);
    data.retryQueue.grantSendMessages(this.role);
    data.deadLetterQueue.grantConsumeMessages(this.role);
    data.deadLetterQueue.grantPurge(this.role);
    props.adminToken.grantRead(this.role);
  }
}
