import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { ENV_NAMES } from '../lib/environments';
import { PACKAGE_ROOT, temporaryDirectory } from './helpers';

describe('cdk synth', () => {
  test('the CLI synthesizes dev, staging and prod offline, with no account and no validation error', () => {
    const outdir = temporaryDirectory('triggers-cdk-synth-');
    const result = spawnSync(
      path.join(PACKAGE_ROOT, 'node_modules', '.bin', 'cdk'),
      // The app is already compiled by `npm test`; the CLI runs it as cdk.json would, without recompiling.
      ['synth', '--app', 'node dist/bin/triggers.js', '--output', outdir, '--quiet', '--no-notices', '--no-version-reporting'],
      {
        cwd: PACKAGE_ROOT,
        encoding: 'utf8',
        // No AWS credentials or account: what a clean clone on a machine without AWS access has.
        env: {
          PATH: process.env.PATH,
          HOME: process.env.HOME,
          CDK_DISABLE_CLI_TELEMETRY: 'true',
          AWS_EC2_METADATA_DISABLED: 'true',
        },
        timeout: 300_000,
      },
    );
    assert.equal(result.status, 0, `cdk synth failed:\n${result.stdout}\n${result.stderr}`);
    assert.doesNotMatch(result.stderr, /\bERROR\b/);
    for (const env of ENV_NAMES) {
      const template = JSON.parse(fs.readFileSync(path.join(outdir, `Triggers-${env}.template.json`), 'utf8'));
      const types = Object.values(template.Resources).map((resource: any) => resource.Type);
      for (const type of [
        'AWS::Kinesis::Stream',
        'AWS::DynamoDB::Table',
        'AWS::SQS::Queue',
        'AWS::RDS::DBInstance',
        'AWS::ElastiCache::ReplicationGroup',
        'AWS::ECS::Service',
        'AWS::ElasticLoadBalancingV2::LoadBalancer',
        'AWS::CloudWatch::Alarm',
        'AWS::CloudWatch::Dashboard',
      ]) {
        assert.ok(types.includes(type), `${env} has ${type}`);
      }
    }
  });
});
