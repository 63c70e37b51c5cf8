import assert from 'node:assert/strict';
import { spawnSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { GENERATED_SECRET_EXCLUDES, healthProbe, serviceCommand } from '../lib/service-config';
import { temporaryDirectory } from './helpers';

/**
 * Runs a role's real container command under /bin/sh with a stand-in `triggers` on PATH that prints
 * its arguments and the settings it was started with.
 */
function runCommand(role: 'ingest' | 'consume', environment: Record<string, string>) {
  const bin = temporaryDirectory('triggers-bin-');
  const stub = path.join(bin, 'triggers');
  fs.writeFileSync(
    stub,
    '#!/bin/sh\n' +
      'echo "args=$*"\n' +
      'echo "database=${TRIGGERS_DATABASE_URL-unset}"\n' +
      'echo "redis=${TRIGGERS_REDIS_URL-unset}"\n' +
      'echo "password=${PGPASSWORD-unset}"\n' +
      'echo "token=${REDIS_AUTH_TOKEN-unset}"\n',
    { mode: 0o755 },
  );
  const { entryPoint, command } = serviceCommand(role);
  return spawnSync(entryPoint[0]!, [...entryPoint.slice(1), ...command], {
    env: { PATH: `${bin}:/usr/bin:/bin`, ...environment },
    encoding: 'utf8',
    timeout: 10_000,
  });
}

const DATABASE = { PGUSER: 'triggers', PGPASSWORD: 'Secret123', PGHOST: 'db.internal', PGPORT: '5432', PGDATABASE: 'triggers' };
const REDIS = { REDIS_AUTH_TOKEN: 'Token456', REDIS_HOST: 'cache.internal', REDIS_PORT: '6379' };

describe('the container command', () => {
  test('ingest: builds both URLs, drops the raw secrets, and becomes `triggers ingest`', () => {
    const result = runCommand('ingest', { ...DATABASE, ...REDIS });
    assert.equal(result.status, 0, result.stderr);
    assert.deepEqual(result.stdout.trim().split('\n'), [
      'args=ingest',
      'database=postgres://triggers:Secret123@db.internal:5432/triggers?sslmode=require',
      'redis=rediss://:Token456@cache.internal:6379',
      'password=unset',
      'token=unset',
    ]);
  });

  test('consume: builds the database URL only', () => {
    const result = runCommand('consume', DATABASE);
    assert.equal(result.status, 0, result.stderr);
    assert.deepEqual(result.stdout.trim().split('\n'), [
      'args=consume',
      'database=postgres://triggers:Secret123@db.internal:5432/triggers?sslmode=require',
      'redis=unset',
      'password=unset',
      'token=unset',
    ]);
  });

  test('a missing part stops the start with the variable named, instead of a half-empty URL', () => {
    const { PGPASSWORD: _, ...withoutPassword } = DATABASE;
    const result = runCommand('consume', withoutPassword);
    assert.notEqual(result.status, 0);
    assert.match(result.stderr, /PGPASSWORD/);
    assert.equal(result.stdout, '');
  });

  test('generated secrets leave out every character a URL would need escaped', () => {
    for (const character of ':/@?#%&=+ "\'') assert.ok(GENERATED_SECRET_EXCLUDES.includes(character), character);
    for (const character of 'aZ09') assert.ok(!GENERATED_SECRET_EXCLUDES.includes(character), character);
  });
});

describe('the health probe', () => {
  let server: http.Server;
  let port: number;
  let silent: http.Server;
  let silentPort: number;

  before(async () => {
    server = http.createServer((request, response) => {
      response.statusCode = request.url === '/healthz' ? 200 : 503;
      response.end();
    });
    // Accepts connections and never answers: a hung process.
    silent = http.createServer(() => {});
    await Promise.all([
      new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve)),
      new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve)),
    ]);
    port = (server.address() as AddressInfo).port;
    silentPort = (silent.address() as AddressInfo).port;
  });

  after(() => {
    server.close();
    silent.closeAllConnections();
    silent.close();
  });

  /** Runs the probe as ECS would (`CMD` dropped) and resolves with its exit status. */
  function probe(pathname: '/healthz' | '/readyz', probePort: number): Promise<number | null> {
    const [, ...argv] = healthProbe(pathname, probePort);
    return new Promise((resolve, reject) => {
      const child = spawn(argv[0]!, argv.slice(1), { stdio: 'ignore' });
      child.on('error', reject);
      child.on('exit', (code) => resolve(code));
    });
  }

  test('passes on a 200', async () => {
    assert.equal(await probe('/healthz', port), 0);
  });

  test('fails on any other status', async () => {
    assert.notEqual(await probe('/readyz', port), 0);
  });

  test('fails when nothing listens', async () => {
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const closedPort = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    assert.notEqual(await probe('/healthz', closedPort), 0);
  });

  test('gives up on a process that accepts and never answers (timeout exits 124)', async () => {
    assert.equal(await probe('/healthz', silentPort), 124);
  });
});
