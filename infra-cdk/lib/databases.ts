import { Duration, RemovalPolicy, SecretValue } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as elasticache from 'aws-cdk-lib/aws-elasticache';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as rds from 'aws-cdk-lib/aws-rds';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { EnvironmentConfig, hasDeletionProtection } from './environments';
import { Network, SUBNETS } from './network';
import { GENERATED_SECRET_EXCLUDES } from './service-config';

/** The PostgreSQL database and user the services connect as. */
export const DATABASE_NAME = 'triggers';
export const DATABASE_USER = 'triggers';
export const POSTGRES_PORT = 5432;
export const REDIS_PORT = 6379;

export interface DatabasesProps {
  readonly config: EnvironmentConfig;
  readonly network: Network;
  readonly key: kms.IKey;
  /** Who may open connections to PostgreSQL (both roles: customers, keys, subscriptions). */
  readonly postgresClients: readonly ec2.ISecurityGroup[];
  /** Who may open connections to Redis (the ingest edge: rate limits, idempotency). */
  readonly redisClients: readonly ec2.ISecurityGroup[];
}

/** PostgreSQL on RDS and Redis on ElastiCache, in the isolated data subnets. */
export class Databases extends Construct {
  readonly postgres: rds.DatabaseInstance;
  /** The RDS-generated secret: fields `username`, `password`, `host`, `port`, `dbname`. */
  readonly postgresSecret: secretsmanager.ISecret;
  readonly redis: elasticache.CfnReplicationGroup;
  /** The Redis AUTH token, a plain-string secret. */
  readonly redisAuthToken: secretsmanager.Secret;

  constructor(scope: Construct, id: string, props: DatabasesProps) {
    super(scope, id);
    const { config, network, key } = props;
    const vpc = network.vpc;

    const postgresSecurityGroup = new ec2.SecurityGroup(this, 'PostgresSecurityGroup', {
      vpc,
      description: 'PostgreSQL: reachable from the Triggers services only',
      allowAllOutbound: false,
    });
    for (const client of props.postgresClients) {
      // Through `connections`, so a client whose egress is restricted also gets the matching egress rule.
      postgresSecurityGroup.connections.allowFrom(client, ec2.Port.tcp(POSTGRES_PORT), 'Triggers services to PostgreSQL');
    }
    const parameterGroup = new rds.ParameterGroup(this, 'PostgresParameters', {
      engine: rds.DatabaseInstanceEngine.postgres({ version: rds.PostgresEngineVersion.VER_17 }),
      description: 'Triggers: TLS required',
      parameters: { 'rds.force_ssl': '1' },
    });
    this.postgres = new rds.DatabaseInstance(this, 'Postgres', {
      engine: rds.DatabaseInstanceEngine.postgres({ version: rds.PostgresEngineVersion.VER_17 }),
      instanceType: new ec2.InstanceType(config.database.instanceType),
      vpc,
      vpcSubnets: network.subnets(SUBNETS.data),
      securityGroups: [postgresSecurityGroup],
      port: POSTGRES_PORT,
      multiAz: config.database.multiAz,
      databaseName: DATABASE_NAME,
      credentials: rds.Credentials.fromGeneratedSecret(DATABASE_USER, {
        excludeCharacters: GENERATED_SECRET_EXCLUDES,
      }),
      storageEncrypted: true,
      storageEncryptionKey: key,
      storageType: rds.StorageType.GP3,
      allocatedStorage: config.database.allocatedStorageGiB,
      maxAllocatedStorage: config.database.maxAllocatedStorageGiB,
      parameterGroup,
      backupRetention: Duration.days(config.database.backupRetentionDays),
      deletionProtection: hasDeletionProtection(config),
      removalPolicy: config.databaseRemoval,
      publiclyAccessible: false,
      autoMinorVersionUpgrade: true,
      cloudwatchLogsExports: ['postgresql'],
    });
    this.postgresSecret = this.postgres.secret!;

    const redisSecurityGroup = new ec2.SecurityGroup(this, 'RedisSecurityGroup', {
      vpc,
      description: 'Redis: reachable from the Triggers ingest edge only',
      allowAllOutbound: false,
    });
    for (const client of props.redisClients) {
      redisSecurityGroup.connections.allowFrom(client, ec2.Port.tcp(REDIS_PORT), 'Triggers ingest to Redis');
    }
    const subnetGroup = new elasticache.CfnSubnetGroup(this, 'RedisSubnets', {
      description: 'Triggers Redis: the isolated data subnets',
      subnetIds: vpc.selectSubnets(network.subnets(SUBNETS.data)).subnetIds,
    });
    this.redisAuthToken = new secretsmanager.Secret(this, 'RedisAuthToken', {
      description: `Triggers ${config.name}: the Redis AUTH token`,
      generateSecretString: { passwordLength: 64, excludeCharacters: GENERATED_SECRET_EXCLUDES },
      removalPolicy: config.databaseRemoval === RemovalPolicy.DESTROY ? RemovalPolicy.DESTROY : RemovalPolicy.RETAIN,
    });
    const replicated = config.redis.nodes > 1;
    this.redis = new elasticache.CfnReplicationGroup(this, 'Redis', {
      replicationGroupDescription: `Triggers ${config.name}: rate limits and idempotency keys`,
      engine: 'redis',
      engineVersion: '7.1',
      cacheNodeType: config.redis.nodeType,
      numCacheClusters: config.redis.nodes,
      automaticFailoverEnabled: replicated,
      multiAzEnabled: replicated,
      port: REDIS_PORT,
      cacheSubnetGroupName: subnetGroup.ref,
      securityGroupIds: [redisSecurityGroup.securityGroupId],
      atRestEncryptionEnabled: true,
      kmsKeyId: key.keyArn,
      transitEncryptionEnabled: true,
      transitEncryptionMode: 'required',
      // A CloudFormation dynamic reference: the token is resolved at deployment and never appears in the template.
      authToken: SecretValue.secretsManager(this.redisAuthToken.secretArn).unsafeUnwrap(),
      snapshotRetentionLimit: config.databaseRemoval === RemovalPolicy.DESTROY ? 0 : 7,
      autoMinorVersionUpgrade: true,
    });
    this.redis.applyRemovalPolicy(config.databaseRemoval);
  }

  /** The Redis primary endpoint's host name. */
  get redisHost(): string {
    return this.redis.attrPrimaryEndPointAddress;
  }

  /** The Redis primary endpoint's port. */
  get redisPort(): string {
    return this.redis.attrPrimaryEndPointPort;
  }
}
