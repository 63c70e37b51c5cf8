import { CfnParameter, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as kinesis from 'aws-cdk-lib/aws-kinesis';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { EnvironmentConfig, hasDeletionProtection, isDisposable } from './environments';
import { MAX_SHARDS } from './options';

/**
 * The attributes of the `<prefix>events` table that the key schema, the TTL and the indexes use; the
 * DynamoDB event store adapter must write them under these names.
 */
export const EVENTS_TABLE = {
  partitionKey: 'customer_id',
  /** Time-ordered (`evt_…`), so the base table lists a customer's events by `received_at`. */
  sortKey: 'event_id',
  /** Epoch seconds after which DynamoDB deletes the item (the event retention). */
  ttlAttribute: 'expires_at',
  /**
   * Global secondary indexes, each keyed by `<customer_id>#<value>` and sorted by `event_id`, so every
   * query stays inside one customer and pages in `received_at` order with `since`/`until` as key bounds.
   */
  indexes: {
    /** `GET`/`DELETE /v1/subjects/{subject}/events` (GDPR export and erasure) and `GET /v1/events?subject=`. */
    bySubject: { name: 'by-subject', partitionKey: 'customer_subject' },
    /** `GET /v1/events?type=`. */
    byType: { name: 'by-type', partitionKey: 'customer_type' },
    /** `GET /v1/events?status=` (and the parked deliveries of a customer: `status = dead_lettered`). */
    byStatus: { name: 'by-status', partitionKey: 'customer_status' },
  },
} as const;

/** The lease table's key, in KCL's vocabulary (the fleet issue's lease store writes the other KCL attributes). */
export const LEASES_TABLE = { partitionKey: 'leaseKey' } as const;

/**
 * A retry message that was received this often without being deleted is one the consumers cannot
 * process; SQS moves it to the DLQ instead of handing it out forever. A healthy retry is received once
 * when due, and once more for each re-enqueue beyond SQS's 15-minute delay, well under this.
 */
export const RETRY_MAX_RECEIVES = 10;

export interface DataProps {
  readonly config: EnvironmentConfig;
  /** `triggers-<env>-`: the table and queue prefix, and the stream name's. */
  readonly namePrefix: string;
}

/**
 * The pipeline's AWS-native data: the Kinesis stream, the DynamoDB event and lease tables, the SQS retry
 * queue and dead-letter queue, all encrypted with one customer-managed key.
 */
export class Data extends Construct {
  readonly key: kms.Key;
  readonly stream: kinesis.Stream;
  readonly eventsTable: dynamodb.Table;
  readonly leasesTable: dynamodb.Table;
  readonly retryQueue: sqs.Queue;
  readonly deadLetterQueue: sqs.Queue;

  constructor(scope: Construct, id: string, props: DataProps) {
    super(scope, id);
    const { config, namePrefix } = props;
    const removalPolicy = config.dataRemoval;
    const deletionProtection = hasDeletionProtection(config);

    this.key = new kms.Key(this, 'Key', {
      description: `Triggers ${config.name}: stream, tables, queues, database and cache`,
      enableKeyRotation: true,
      removalPolicy: isDisposable(config) ? RemovalPolicy.DESTROY : RemovalPolicy.RETAIN,
      pendingWindow: Duration.days(isDisposable(config) ? 7 : 30),
    });

    const provisioned = config.stream.mode === 'provisioned';
    const shardCount = provisioned
      ? new CfnParameter(Stack.of(this), 'ShardCount', {
          type: 'Number',
          default: config.stream.shards,
          minValue: 1,
          maxValue: MAX_SHARDS,
          description: 'Kinesis shards (provisioned mode); reshard later with `triggers stream reshard`.',
        }).valueAsNumber
      : undefined;
    this.stream = new kinesis.Stream(this, 'Stream', {
      streamName: `${namePrefix}events`,
      streamMode: provisioned ? kinesis.StreamMode.PROVISIONED : kinesis.StreamMode.ON_DEMAND,
      shardCount,
      retentionPeriod: Duration.hours(config.stream.retentionHours),
      encryption: kinesis.StreamEncryption.KMS,
      encryptionKey: this.key,
      removalPolicy,
    });

    const tableDefaults = {
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      encryption: dynamodb.TableEncryption.CUSTOMER_MANAGED,
      encryptionKey: this.key,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      deletionProtection,
      removalPolicy,
    };
    this.eventsTable = new dynamodb.Table(this, 'EventsTable', {
      ...tableDefaults,
      tableName: `${namePrefix}events`,
      partitionKey: { name: EVENTS_TABLE.partitionKey, type: dynamodb.AttributeType.STRING },
      sortKey: { name: EVENTS_TABLE.sortKey, type: dynamodb.AttributeType.STRING },
      timeToLiveAttribute: EVENTS_TABLE.ttlAttribute,
    });
    for (const index of Object.values(EVENTS_TABLE.indexes)) {
      this.eventsTable.addGlobalSecondaryIndex({
        indexName: index.name,
        partitionKey: { name: index.partitionKey, type: dynamodb.AttributeType.STRING },
        sortKey: { name: EVENTS_TABLE.sortKey, type: dynamodb.AttributeType.STRING },
        // Queries and the GDPR export return whole events; projecting keys only would cost a read per item.
        projectionType: dynamodb.ProjectionType.ALL,
      });
    }
    this.leasesTable = new dynamodb.Table(this, 'LeasesTable', {
      ...tableDefaults,
      tableName: `${namePrefix}leases`,
      partitionKey: { name: LEASES_TABLE.partitionKey, type: dynamodb.AttributeType.STRING },
    });

    const queueDefaults = {
      encryption: sqs.QueueEncryption.KMS,
      encryptionMasterKey: this.key,
      // Reusing a data key for five minutes keeps KMS calls (and their cost) off the per-message path.
      dataKeyReuse: Duration.minutes(5),
      enforceSSL: true,
      // SQS' maximum: parked deliveries wait for an operator, and retries wait up to the schedule's end.
      retentionPeriod: Duration.days(14),
      removalPolicy,
    };
    this.deadLetterQueue = new sqs.Queue(this, 'DeadLetterQueue', {
      ...queueDefaults,
      queueName: `${namePrefix}dlq`,
    });
    this.retryQueue = new sqs.Queue(this, 'RetryQueue', {
      ...queueDefaults,
      queueName: `${namePrefix}retry`,
      // Longer than one attempt (10 s by default) plus settling it, so a retry in progress is not handed out twice.
      visibilityTimeout: Duration.minutes(2),
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: RETRY_MAX_RECEIVES },
    });
  }
}
