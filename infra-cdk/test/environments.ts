import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ENV_NAMES } from '../lib/environments';
import { containerOf, resources, single, synthesize } from './helpers';

describe('every environment', () => {
  for (const env of ENV_NAMES) {
    test(`${env}: a VPC over three availability zones, public, service and isolated data subnets in each`, () => {
      const { template } = synthesize(env);
      const subnets = Object.values(resources(template, 'AWS::EC2::Subnet'));
      assert.equal(subnets.length, 9);
      const zones = new Set(subnets.map((subnet) => subnet.Properties.AvailabilityZone));
      assert.deepEqual([...zones].sort(), ['eu-west-1a', 'eu-west-1b', 'eu-west-1c']);
      for (const group of ['public', 'services', 'data']) {
        const inGroup = subnets.filter((subnet) =>
          subnet.Properties.Tags.some((tag: any) => tag.Key === 'aws-cdk:subnet-name' && tag.Value === group),
        );
        assert.equal(new Set(inGroup.map((subnet) => subnet.Properties.AvailabilityZone)).size, 3, group);
      }
      // The data subnets have no route out of the VPC.
      const routes = Object.values(resources(template, 'AWS::EC2::Route'));
      assert.ok(routes.every((route) => !JSON.stringify(route.Properties.RouteTableId).includes('dataSubnet')));
    });
  }
});

describe('the environments differ as they should', () => {
  test('sizes: dev is small, prod is large', () => {
    const cpu = (env: 'dev' | 'prod') =>
      single(synthesize(env).template, 'AWS::ECS::TaskDefinition', (p) =>
        p.ContainerDefinitions[0].Command[0].endsWith('exec triggers ingest'),
      ).Properties.Cpu;
    assert.equal(cpu('dev'), '512');
    assert.equal(cpu('prod'), '2048');
    const redisNode = (env: 'dev' | 'prod') =>
      single(synthesize(env).template, 'AWS::ElastiCache::ReplicationGroup').Properties.CacheNodeType;
    assert.equal(redisNode('dev'), 'cache.t4g.micro');
    assert.equal(redisNode('prod'), 'cache.r7g.large');
  });

  test('NAT gateways: one in dev and staging, one per zone in prod', () => {
    const nats = (env: 'dev' | 'staging' | 'prod') =>
      Object.keys(resources(synthesize(env).template, 'AWS::EC2::NatGateway')).length;
    assert.equal(nats('dev'), 1);
    assert.equal(nats('staging'), 1);
    assert.equal(nats('prod'), 3);
  });

  test('removal: dev deletes everything with the stack, prod keeps its data and its key', () => {
    const dev = synthesize('dev').template;
    const prod = synthesize('prod').template;
    for (const type of ['AWS::Kinesis::Stream', 'AWS::SQS::Queue', 'AWS::KMS::Key', 'AWS::RDS::DBInstance']) {
      for (const resource of Object.values(resources(dev, type))) assert.equal(resource.DeletionPolicy, 'Delete', type);
      for (const resource of Object.values(resources(prod, type))) assert.equal(resource.DeletionPolicy, 'Retain', type);
    }
    // Staging drops its stream and queues but keeps snapshots, so its key must outlive the stack.
    const staging = synthesize('staging').template;
    assert.equal(single(staging, 'AWS::KMS::Key').DeletionPolicy, 'Retain');
    assert.equal(single(staging, 'AWS::ElastiCache::ReplicationGroup').DeletionPolicy, 'Snapshot');
    assert.equal(synthesize('prod').stack.terminationProtection, true);
    assert.equal(synthesize('dev').stack.terminationProtection, false);
  });

  test('names: each environment has its own prefix, so environments can share an account', () => {
    for (const env of ENV_NAMES) {
      const { template } = synthesize(env);
      const environment = containerOf(template, 'consume').Environment;
      const prefix = environment.find((entry: any) => entry.Name === 'TRIGGERS_TABLE_PREFIX').Value;
      assert.equal(prefix, `triggers-${env}-`);
      assert.equal(single(template, 'AWS::Kinesis::Stream').Properties.Name, `triggers-${env}-events`);
    }
  });
});
