import { ENV_NAMES, ENVIRONMENTS, EnvName, EnvironmentConfig, StreamMode } from './environments';

/**
 * The context keys this app reads (`-c key=value` on the command line, or `context` in cdk.json).
 * Each applies to every environment synthesized in that run.
 */
export const CONTEXT_KEYS = {
  /** `dev`, `staging`, `prod`, or a comma-separated list; all three when unset. */
  env: 'env',
  /** The AWS account to deploy to (default: the CLI's current account, if any). */
  account: 'account',
  /** The region (default: the environment's). */
  region: 'region',
  /** Three availability zones, comma-separated (default: the region's a, b and c). */
  availabilityZones: 'availabilityZones',
  /** Default of the `CertificateArn` stack parameter. */
  certificateArn: 'certificateArn',
  /** An e-mail address subscribed to the alarm topic. */
  alarmEmail: 'alarmEmail',
  /** `provisioned` or `on-demand`. */
  streamMode: 'streamMode',
  /** Default of the `ShardCount` stack parameter (provisioned mode). */
  shardCount: 'shardCount',
} as const;

/** Where and how one environment is deployed: its configuration with the context's overrides applied. */
export interface DeploymentTarget {
  readonly config: EnvironmentConfig;
  readonly account: string | undefined;
  readonly region: string;
  readonly availabilityZones: readonly string[];
  readonly certificateArn: string | undefined;
  readonly alarmEmail: string | undefined;
}

/** Reads a context value; `undefined` when unset. */
export type ContextReader = (key: string) => unknown;

/** The most shards `triggers --shards` accepts; the stack parameter keeps to the same range. */
export const MAX_SHARDS = 1024;

/**
 * Turns the context into one target per selected environment, refusing values that would synthesize
 * a broken stack (with the offending value in the message).
 */
export function deploymentTargets(read: ContextReader, defaultAccount: string | undefined): DeploymentTarget[] {
  const names = selectedEnvironments(read(CONTEXT_KEYS.env));
  const account = optionalString(read, CONTEXT_KEYS.account) ?? defaultAccount;
  if (account !== undefined && !/^\d{12}$/.test(account)) {
    throw new Error(`context ${CONTEXT_KEYS.account} must be a 12-digit AWS account id, not "${account}"`);
  }
  const certificateArn = optionalString(read, CONTEXT_KEYS.certificateArn);
  if (certificateArn !== undefined && !CERTIFICATE_ARN.test(certificateArn)) {
    throw new Error(`context ${CONTEXT_KEYS.certificateArn} must be an ACM certificate ARN, not "${certificateArn}"`);
  }
  const alarmEmail = optionalString(read, CONTEXT_KEYS.alarmEmail);
  if (alarmEmail !== undefined && !/^[^@\s]+@[^@\s]+$/.test(alarmEmail)) {
    throw new Error(`context ${CONTEXT_KEYS.alarmEmail} must be an e-mail address, not "${alarmEmail}"`);
  }
  const streamMode = optionalStreamMode(read);
  const shardCount = optionalShardCount(read);
  const regionOverride = optionalString(read, CONTEXT_KEYS.region);
  const zonesOverride = optionalList(read, CONTEXT_KEYS.availabilityZones);

  return names.map((name) => {
    const base = ENVIRONMENTS[name];
    const region = regionOverride ?? base.region;
    if (!/^[a-z]{2}(-[a-z]+)+-\d$/.test(region)) {
      throw new Error(`context ${CONTEXT_KEYS.region} must be an AWS region such as eu-west-1, not "${region}"`);
    }
    const availabilityZones = zonesOverride ?? ['a', 'b', 'c'].map((letter) => `${region}${letter}`);
    if (availabilityZones.length !== 3 || availabilityZones.some((zone) => !zone.startsWith(region))) {
      throw new Error(
        `context ${CONTEXT_KEYS.availabilityZones} must list three zones of ${region}, not "${availabilityZones.join(',')}"`,
      );
    }
    const config: EnvironmentConfig = {
      ...base,
      stream: { ...base.stream, mode: streamMode ?? base.stream.mode, shards: shardCount ?? base.stream.shards },
    };
    return { config, account, region, availabilityZones, certificateArn, alarmEmail };
  });
}

/** An ACM certificate ARN in any partition. */
export const CERTIFICATE_ARN = /^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate\/[A-Za-z0-9-]+$/;

function selectedEnvironments(value: unknown): EnvName[] {
  if (value === undefined || value === '') return [...ENV_NAMES];
  if (typeof value !== 'string') {
    throw new Error(`context ${CONTEXT_KEYS.env} must be a string such as "prod", not ${JSON.stringify(value)}`);
  }
  const names = value.split(',').map((name) => name.trim());
  for (const name of names) {
    if (!(ENV_NAMES as readonly string[]).includes(name)) {
      throw new Error(`context ${CONTEXT_KEYS.env} names an unknown environment "${name}" (known: ${ENV_NAMES.join(', ')})`);
    }
  }
  return [...new Set(names as EnvName[])];
}

function optionalString(read: ContextReader, key: string): string | undefined {
  const value = read(key);
  if (value === undefined || value === '') return undefined;
  if (typeof value !== 'string') {
    throw new Error(`context ${key} must be a string, not ${JSON.stringify(value)}`);
  }
  return value.trim();
}

function optionalList(read: ContextReader, key: string): string[] | undefined {
  const value = read(key);
  if (value === undefined || value === '') return undefined;
  if (Array.isArray(value) && value.every((item) => typeof item === 'string')) return value.map((item) => item.trim());
  if (typeof value === 'string') return value.split(',').map((item) => item.trim());
  throw new Error(`context ${key} must be a comma-separated list, not ${JSON.stringify(value)}`);
}

function optionalStreamMode(read: ContextReader): StreamMode | undefined {
  const value = optionalString(read, CONTEXT_KEYS.streamMode);
  if (value === undefined) return undefined;
  if (value !== 'provisioned' && value !== 'on-demand') {
    throw new Error(`context ${CONTEXT_KEYS.streamMode} must be "provisioned" or "on-demand", not "${value}"`);
  }
  return value;
}

function optionalShardCount(read: ContextReader): number | undefined {
  const value = read(CONTEXT_KEYS.shardCount);
  if (value === undefined || value === '') return undefined;
  const shards = typeof value === 'number' ? value : Number(value);
  if (!Number.isInteger(shards) || shards < 1 || shards > MAX_SHARDS) {
    throw new Error(`context ${CONTEXT_KEYS.shardCount} must be a whole number from 1 to ${MAX_SHARDS}, not ${JSON.stringify(value)}`);
  }
  return shards;
}
