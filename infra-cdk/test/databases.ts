import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { referencedId, referencedIds, resources, single, synthesize } from './helpers';

/** The logical ids of the VPC's isolated ("data") subnets. */
function dataSubnetIds(template: ReturnType<typeof synthesize>['template']): string[] {
  return Object.entries(resources(template, 'AWS::EC2::Subnet'))
    .filter(([, subnet]) =>
      subnet.Properties.Tags.some((tag: any) => tag.Key === 'aws-cdk:subnet-name' && tag.Value === 'data'),
    )
    .map(([id]) => id)
    .sort();
}

describe('PostgreSQL on RDS', () => {
  test('is encrypted with the customer-managed key, private, TLS-only, in the isolated subnets', () => {
    const { template } = synthesize('prod');
    const key = single(template, 'AWS::KMS::Key');
    const database = single(template, 'AWS::RDS::DBInstance');
    assert.equal(database.Properties.StorageEncrypted, true);
    assert.equal(referencedId(database.Properties.KmsKeyId), key.id);
    assert.equal(database.Properties.PubliclyAccessible, false);
    assert.equal(database.Properties.Engine, 'postgres');
    const parameters = single(template, 'AWS::RDS::DBParameterGroup');
    assert.equal(parameters.Properties.Parameters['rds.force_ssl'], '1');
    const subnetGroup = single(template, 'AWS::RDS::DBSubnetGroup');
    assert.deepEqual(
      [...referencedIds(subnetGroup.Properties.SubnetIds)].sort(),
      dataSubnetIds(template),
    );
    assert.equal(dataSubnetIds(template).length, 3);
  });

  test('keeps its credentials in Secrets Manager, generated, never in the template', () => {
    const { template } = synthesize('prod');
    const database = single(template, 'AWS::RDS::DBInstance');
    assert.match(JSON.stringify(database.Properties.MasterUserPassword), /resolve:secretsmanager/);
    const secret = single(template, 'AWS::SecretsManager::Secret', (p) =>
      p.GenerateSecretString?.SecretStringTemplate?.includes('"username":"triggers"'),
    );
    assert.equal(secret.Properties.GenerateSecretString.GenerateStringKey, 'password');
    // Letters and digits only, so that the password stands unescaped in TRIGGERS_DATABASE_URL.
    assert.ok(secret.Properties.GenerateSecretString.ExcludeCharacters.includes('@'));
    assert.ok(secret.Properties.GenerateSecretString.ExcludeCharacters.includes(':'));
    assert.ok(secret.Properties.GenerateSecretString.ExcludeCharacters.includes('/'));
  });

  test('is Multi-AZ and deletion-protected in prod; single-AZ and disposable in dev', () => {
    const prod = single(synthesize('prod').template, 'AWS::RDS::DBInstance');
    assert.equal(prod.Properties.MultiAZ, true);
    assert.equal(prod.Properties.DeletionProtection, true);
    assert.equal(prod.DeletionPolicy, 'Retain');
    assert.equal(prod.Properties.BackupRetentionPeriod, 14);
    const staging = single(synthesize('staging').template, 'AWS::RDS::DBInstance');
    assert.equal(staging.Properties.MultiAZ, true);
    assert.equal(staging.DeletionPolicy, 'Snapshot');
    const dev = single(synthesize('dev').template, 'AWS::RDS::DBInstance');
    assert.equal(dev.Properties.MultiAZ, false);
    assert.equal(dev.Properties.DeletionProtection, false);
    assert.equal(dev.DeletionPolicy, 'Delete');
    assert.notEqual(dev.Properties.DBInstanceClass, prod.Properties.DBInstanceClass);
  });
});

describe('Redis on ElastiCache', () => {
  test('encrypts in transit (required) and at rest with the customer-managed key, with an AUTH token', () => {
    const { template } = synthesize('prod');
    const key = single(template, 'AWS::KMS::Key');
    const redis = single(template, 'AWS::ElastiCache::ReplicationGroup');
    assert.equal(redis.Properties.TransitEncryptionEnabled, true);
    assert.equal(redis.Properties.TransitEncryptionMode, 'required');
    assert.equal(redis.Properties.AtRestEncryptionEnabled, true);
    assert.equal(referencedId(redis.Properties.KmsKeyId), key.id);
    // A dynamic reference to the generated token: resolved by CloudFormation, absent from the template.
    const token = JSON.stringify(redis.Properties.AuthToken);
    assert.match(token, /\{\{resolve:secretsmanager:/);
    const tokenSecret = single(template, 'AWS::SecretsManager::Secret', (p) =>
      String(p.Description).includes('Redis AUTH token'),
    );
    assert.ok(referencedIds(redis.Properties.AuthToken).has(tokenSecret.id));
  });

  test('is in the isolated subnets, and replicated with automatic failover in prod only', () => {
    const { template } = synthesize('prod');
    const subnets = single(template, 'AWS::ElastiCache::SubnetGroup');
    assert.deepEqual([...referencedIds(subnets.Properties.SubnetIds)].sort(), dataSubnetIds(template));
    const prod = single(template, 'AWS::ElastiCache::ReplicationGroup');
    assert.equal(prod.Properties.NumCacheClusters, 3);
    assert.equal(prod.Properties.AutomaticFailoverEnabled, true);
    assert.equal(prod.Properties.MultiAZEnabled, true);
    const dev = single(synthesize('dev').template, 'AWS::ElastiCache::ReplicationGroup');
    assert.equal(dev.Properties.NumCacheClusters, 1);
    assert.equal(dev.Properties.AutomaticFailoverEnabled, false);
  });
});

describe('the data security groups', () => {
  test('PostgreSQL admits both roles; Redis admits the ingest edge only; nothing else reaches either', () => {
    const { template } = synthesize('prod');
    const groups = resources(template, 'AWS::EC2::SecurityGroup');
    const idOf = (description: string) =>
      Object.entries(groups).find(([, group]) => group.Properties.GroupDescription === description)![0];
    const postgres = idOf('PostgreSQL: reachable from the Triggers services only');
    const redis = idOf('Redis: reachable from the Triggers ingest edge only');
    const ingest = idOf('triggers ingest tasks');
    const consume = idOf('triggers consume tasks');
    const sourcesOf = (groupId: string) =>
      Object.values(resources(template, 'AWS::EC2::SecurityGroupIngress'))
        .filter((rule) => referencedId(rule.Properties.GroupId) === groupId)
        .map((rule) => [referencedId(rule.Properties.SourceSecurityGroupId), rule.Properties.FromPort]);
    assert.deepEqual(sourcesOf(postgres).sort(), [[consume, 5432], [ingest, 5432]].sort());
    assert.deepEqual(sourcesOf(redis), [[ingest, 6379]]);
    for (const id of [postgres, redis]) {
      assert.equal(groups[id].Properties.SecurityGroupIngress, undefined, 'no inline (CIDR) ingress');
    }
  });
});
