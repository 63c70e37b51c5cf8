/**
 * How the Rust services read this stack: the one place that turns resources into the `TRIGGERS_*`
 * settings of the CLI contract (`shared/contract/CLI.md`), the container command and the health probes.
 */

/** The public API's port (`TRIGGERS_LISTEN`); `triggers consume` answers `/healthz`, `/readyz` and `/metrics` here. */
export const PUBLIC_PORT = 8080;
/** The admin API's port (`TRIGGERS_ADMIN_LISTEN`), served by `triggers ingest` only. */
export const ADMIN_PORT = 8081;

/** The two deployable roles of the `triggers` binary (its `ingest` and `consume` commands). */
export type Role = 'ingest' | 'consume';

/** Where the stack's resources are, as the services need to know them. */
export interface ServiceEndpoints {
  readonly region: string;
  /** `TRIGGERS_STREAM_NAME`. */
  readonly streamName: string;
  /** Both `TRIGGERS_TABLE_PREFIX` and `TRIGGERS_QUEUE_PREFIX`: tables `<prefix>events`, `<prefix>leases`, queues `<prefix>retry`, `<prefix>dlq`. */
  readonly namePrefix: string;
  readonly database: { readonly host: string; readonly port: string; readonly name: string };
  readonly redis: { readonly host: string; readonly port: string };
}

/** The secrets each role receives, by the environment variable ECS puts them in. */
export const SECRET_VARIABLES = {
  /** The database user and password (fields of the RDS-generated secret), both roles. */
  databaseUser: 'PGUSER',
  databasePassword: 'PGPASSWORD',
  /** The Redis AUTH token, ingest only (rate limits and idempotency live in Redis). */
  redisAuthToken: 'REDIS_AUTH_TOKEN',
  /** The admin API's bearer token, ingest only. */
  adminToken: 'TRIGGERS_ADMIN_TOKEN',
} as const;

/** Which roles talk to Redis: only the ingest edge (rate limits, idempotency keys). */
export function usesRedis(role: Role): boolean {
  return role === 'ingest';
}

/** Which roles serve the admin API (`TRIGGERS_ADMIN_LISTEN`, the admin token): only the ingest edge. */
export function servesAdminApi(role: Role): boolean {
  return role === 'ingest';
}

/** Plain (non-secret) environment of a role's container. */
export function serviceEnvironment(role: Role, endpoints: ServiceEndpoints): Record<string, string> {
  const environment: Record<string, string> = {
    TRIGGERS_BACKEND: 'aws',
    // Inside the task; the load balancer and the security groups decide who reaches it.
    TRIGGERS_LISTEN: `0.0.0.0:${PUBLIC_PORT}`,
    TRIGGERS_STREAM_NAME: endpoints.streamName,
    TRIGGERS_TABLE_PREFIX: endpoints.namePrefix,
    TRIGGERS_QUEUE_PREFIX: endpoints.namePrefix,
    // The aws default already, stated so that no config file can loosen it in production.
    TRIGGERS_ALLOW_PRIVATE_WEBHOOKS: 'false',
    TRIGGERS_LOG: 'info',
    AWS_REGION: endpoints.region,
    PGHOST: endpoints.database.host,
    PGPORT: endpoints.database.port,
    PGDATABASE: endpoints.database.name,
  };
  if (servesAdminApi(role)) {
    environment.TRIGGERS_ADMIN_LISTEN = `0.0.0.0:${ADMIN_PORT}`;
  }
  if (usesRedis(role)) {
    environment.REDIS_HOST = endpoints.redis.host;
    environment.REDIS_PORT = endpoints.redis.port;
  }
  return environment;
}

/**
 * The container's command: `/bin/sh -c` builds `TRIGGERS_DATABASE_URL` (and, for ingest,
 * `TRIGGERS_REDIS_URL`) from the parts ECS injects, then replaces itself with `triggers <role>`.
 *
 * Why a shell: RDS keeps the generated password in a JSON secret with no URL field, and ECS can only
 * inject a secret or one of its fields. The generated password and token are alphanumeric (see
 * `GENERATED_SECRET_EXCLUDES`), so they need no URL escaping. Variables are written `$NAME`, not
 * `${NAME}`, which CloudFormation's validation would take for a misplaced `Fn::Sub`. `set -u` makes a missing part fail the
 * start instead of producing a half-empty URL; `exec` hands PID 1's signals (SIGTERM on scale-in) to
 * `triggers`, which drains gracefully.
 */
export function serviceCommand(role: Role): { entryPoint: string[]; command: string[] } {
  const steps = [
    'set -eu',
    `export TRIGGERS_DATABASE_URL="postgres://$${SECRET_VARIABLES.databaseUser}:$${SECRET_VARIABLES.databasePassword}@$PGHOST:$PGPORT/$PGDATABASE?sslmode=require"`,
  ];
  const secretsToDrop: string[] = [SECRET_VARIABLES.databasePassword];
  if (usesRedis(role)) {
    steps.push(
      `export TRIGGERS_REDIS_URL="rediss://:$${SECRET_VARIABLES.redisAuthToken}@$REDIS_HOST:$REDIS_PORT"`,
    );
    secretsToDrop.push(SECRET_VARIABLES.redisAuthToken);
  }
  steps.push(`unset ${secretsToDrop.join(' ')}`, `exec triggers ${role}`);
  return { entryPoint: ['/bin/sh', '-c'], command: [steps.join('; ')] };
}

/**
 * Characters left out of generated passwords and tokens: everything but letters and digits, so that
 * they can stand in a URL unescaped (and meet ElastiCache's AUTH token rules, which forbid `@`, `"` and `/`).
 */
export const GENERATED_SECRET_EXCLUDES = ' !"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~';

/**
 * A container health check that GETs `path` on the public port. The runtime image has no curl, so the
 * probe speaks HTTP/1.0 through bash's `/dev/tcp`; `timeout` bounds it even if the service accepts and
 * then stalls.
 */
export function healthProbe(path: '/healthz' | '/readyz', port: number = PUBLIC_PORT): string[] {
  const script =
    `exec 3<>/dev/tcp/127.0.0.1/${port} && ` +
    `printf 'GET ${path} HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && ` +
    `head -n 1 <&3 | grep -q ' 200 '`;
  return ['CMD', 'timeout', '4', 'bash', '-c', script];
}
