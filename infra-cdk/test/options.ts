import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { deploymentTargets } from '../lib/options';

/** A context reader over a plain object, as `-c key=value` would give (strings). */
function context(values: Record<string, unknown>) {
  return (key: string) => values[key];
}

describe('the app context', () => {
  test('selects all three environments by default, or the ones named', () => {
    assert.deepEqual(
      deploymentTargets(context({}), undefined).map((target) => target.config.name),
      ['dev', 'staging', 'prod'],
    );
    assert.deepEqual(
      deploymentTargets(context({ env: 'prod' }), undefined).map((target) => target.config.name),
      ['prod'],
    );
    assert.deepEqual(
      deploymentTargets(context({ env: 'dev, prod' }), undefined).map((target) => target.config.name),
      ['dev', 'prod'],
    );
  });

  test('pins the region and three zones, so that an offline synth needs no lookup', () => {
    const [target] = deploymentTargets(context({ env: 'prod' }), undefined);
    assert.equal(target.region, 'eu-west-1');
    assert.deepEqual(target.availabilityZones, ['eu-west-1a', 'eu-west-1b', 'eu-west-1c']);
    const [moved] = deploymentTargets(context({ env: 'prod', region: 'us-east-2' }), undefined);
    assert.deepEqual(moved.availabilityZones, ['us-east-2a', 'us-east-2b', 'us-east-2c']);
    const [listed] = deploymentTargets(
      context({ env: 'prod', region: 'us-east-1', availabilityZones: 'us-east-1a,us-east-1c,us-east-1d' }),
      undefined,
    );
    assert.deepEqual(listed.availabilityZones, ['us-east-1a', 'us-east-1c', 'us-east-1d']);
  });

  test('takes the account from the context, else from the CLI, else leaves it to deployment', () => {
    assert.equal(deploymentTargets(context({ env: 'dev' }), undefined)[0].account, undefined);
    assert.equal(deploymentTargets(context({ env: 'dev' }), '111122223333')[0].account, '111122223333');
    assert.equal(
      deploymentTargets(context({ env: 'dev', account: '444455556666' }), '111122223333')[0].account,
      '444455556666',
    );
  });

  test('overrides the stream mode and the default shard count', () => {
    const [target] = deploymentTargets(context({ env: 'prod', streamMode: 'on-demand', shardCount: '16' }), undefined);
    assert.equal(target.config.stream.mode, 'on-demand');
    assert.equal(target.config.stream.shards, 16);
  });

  test('refuses bad values, naming the key and the value', () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ env: 'qa' }, /env names an unknown environment "qa"/],
      [{ account: '12345' }, /account must be a 12-digit AWS account id, not "12345"/],
      [{ region: 'Europe' }, /region must be an AWS region such as eu-west-1, not "Europe"/],
      [{ availabilityZones: 'eu-west-1a,eu-west-1b' }, /availabilityZones must list three zones of eu-west-1/],
      [{ availabilityZones: 'eu-west-1a,eu-west-1b,us-east-1a' }, /three zones of eu-west-1/],
      [{ streamMode: 'serverless' }, /streamMode must be "provisioned" or "on-demand", not "serverless"/],
      [{ shardCount: '0' }, /shardCount must be a whole number from 1 to 1024, not "0"/],
      [{ shardCount: '2.5' }, /shardCount must be a whole number/],
      [{ shardCount: '1025' }, /shardCount must be a whole number/],
      [{ certificateArn: 'my-cert' }, /certificateArn must be an ACM certificate ARN, not "my-cert"/],
      [{ alarmEmail: 'ops' }, /alarmEmail must be an e-mail address, not "ops"/],
    ];
    for (const [values, message] of cases) {
      assert.throws(() => deploymentTargets(context(values), undefined), message);
    }
  });
});
