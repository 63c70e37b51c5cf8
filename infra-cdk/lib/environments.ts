import { RemovalPolicy } from 'aws-cdk-lib';

/** The deployment environments, selected with `-c env=<name>`. */
export const ENV_NAMES = ['dev', 'staging', 'prod'] as const;
export type EnvName = (typeof ENV_NAMES)[number];

/** How a Kinesis stream is billed and sized. */
export type StreamMode = 'provisioned' | 'on-demand';

/** Size and scaling range of one ECS service. */
export interface ServiceSize {
  /** Fargate CPU units (1024 = one vCPU). */
  readonly cpu: number;
  /** Fargate memory in MiB (must suit `cpu`). */
  readonly memoryMiB: number;
  /** Fewest running tasks (also the desired count at deployment). */
  readonly minTasks: number;
  /** Most running tasks auto scaling may start. */
  readonly maxTasks: number;
}

/** Everything that differs between dev, staging and prod. Sizes are starting points, not measurements. */
export interface EnvironmentConfig {
  readonly name: EnvName;
  /** Region deployed to, unless `-c region=` says otherwise. */
  readonly region: string;
  /** NAT gateways (one per AZ in prod, so losing an AZ does not cut the consumers off from webhooks). */
  readonly natGateways: number;
  readonly ingest: ServiceSize & {
    /** ALB requests per task per minute that auto scaling aims at. */
    readonly requestsPerTaskPerMinute: number;
  };
  /** Consumers: more tasks than shards sit idle (one lease per shard), so `maxTasks` should not exceed the shards. */
  readonly consume: ServiceSize;
  readonly stream: {
    readonly mode: StreamMode;
    /** Default of the `ShardCount` stack parameter in provisioned mode. */
    readonly shards: number;
    /** Kinesis retention: how far back `triggers checkpoint rewind` can go. */
    readonly retentionHours: number;
  };
  readonly database: {
    readonly instanceType: string;
    readonly multiAz: boolean;
    readonly allocatedStorageGiB: number;
    readonly maxAllocatedStorageGiB: number;
    readonly backupRetentionDays: number;
  };
  readonly redis: {
    readonly nodeType: string;
    /** Nodes in the replication group: 1 is a single primary; more adds replicas with automatic failover. */
    readonly nodes: number;
  };
  /** What deleting the stack does to the stream, tables and queues. */
  readonly dataRemoval: RemovalPolicy;
  /** What deleting the stack does to PostgreSQL and Redis (SNAPSHOT keeps a final snapshot). */
  readonly databaseRemoval: RemovalPolicy;
  /** Days CloudWatch keeps the services' logs. */
  readonly logRetentionDays: number;
}

/** The three environments. dev is small and disposable; staging rehearses prod's topology at a smaller size. */
export const ENVIRONMENTS: Readonly<Record<EnvName, EnvironmentConfig>> = {
  dev: {
    name: 'dev',
    region: 'eu-west-1',
    natGateways: 1,
    ingest: { cpu: 512, memoryMiB: 1024, minTasks: 1, maxTasks: 2, requestsPerTaskPerMinute: 30_000 },
    consume: { cpu: 512, memoryMiB: 1024, minTasks: 1, maxTasks: 2 },
    stream: { mode: 'provisioned', shards: 2, retentionHours: 24 },
    database: {
      instanceType: 't4g.micro',
      multiAz: false,
      allocatedStorageGiB: 20,
      maxAllocatedStorageGiB: 50,
      backupRetentionDays: 1,
    },
    redis: { nodeType: 'cache.t4g.micro', nodes: 1 },
    dataRemoval: RemovalPolicy.DESTROY,
    databaseRemoval: RemovalPolicy.DESTROY,
    logRetentionDays: 7,
  },
  staging: {
    name: 'staging',
    region: 'eu-west-1',
    natGateways: 1,
    ingest: { cpu: 1024, memoryMiB: 2048, minTasks: 2, maxTasks: 4, requestsPerTaskPerMinute: 60_000 },
    consume: { cpu: 1024, memoryMiB: 2048, minTasks: 2, maxTasks: 4 },
    stream: { mode: 'provisioned', shards: 4, retentionHours: 24 },
    database: {
      instanceType: 't4g.medium',
      multiAz: true,
      allocatedStorageGiB: 50,
      maxAllocatedStorageGiB: 200,
      backupRetentionDays: 7,
    },
    redis: { nodeType: 'cache.t4g.small', nodes: 2 },
    dataRemoval: RemovalPolicy.DESTROY,
    databaseRemoval: RemovalPolicy.SNAPSHOT,
    logRetentionDays: 30,
  },
  prod: {
    name: 'prod',
    region: 'eu-west-1',
    natGateways: 3,
    ingest: { cpu: 2048, memoryMiB: 4096, minTasks: 3, maxTasks: 12, requestsPerTaskPerMinute: 120_000 },
    consume: { cpu: 1024, memoryMiB: 2048, minTasks: 4, maxTasks: 8 },
    stream: { mode: 'provisioned', shards: 8, retentionHours: 168 },
    database: {
      instanceType: 'r7g.large',
      multiAz: true,
      allocatedStorageGiB: 100,
      maxAllocatedStorageGiB: 1000,
      backupRetentionDays: 14,
    },
    redis: { nodeType: 'cache.r7g.large', nodes: 3 },
    dataRemoval: RemovalPolicy.RETAIN,
    databaseRemoval: RemovalPolicy.RETAIN,
    logRetentionDays: 90,
  },
};

/**
 * Whether deleting the stack deletes everything. Only then may the customer-managed key go too: a key
 * deleted under a retained table or snapshot would leave that data unreadable.
 */
export function isDisposable(config: EnvironmentConfig): boolean {
  return config.dataRemoval === RemovalPolicy.DESTROY && config.databaseRemoval === RemovalPolicy.DESTROY;
}

/** Retained data is also protected against deletion where AWS offers it (tables, the database). */
export function hasDeletionProtection(config: EnvironmentConfig): boolean {
  return config.dataRemoval === RemovalPolicy.RETAIN;
}
