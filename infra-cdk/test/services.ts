import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  containerOf,
  environmentOf,
  referencedId,
  referencedIds,
  resources,
  single,
  synthesize,
} from './helpers';

describe('the ECS services', () => {
  test('two Fargate services run the same image with the two role commands', () => {
    const { template } = synthesize('prod');
    assert.equal(Object.keys(resources(template, 'AWS::ECS::Service')).length, 2);
    const ingest = containerOf(template, 'ingest');
    const consume = containerOf(template, 'consume');
    assert.deepEqual(ingest.Image, consume.Image);
    assert.deepEqual(ingest.EntryPoint, ['/bin/sh', '-c']);
    assert.match(ingest.Command[0], /; exec triggers ingest$/);
    assert.match(consume.Command[0], /; exec triggers consume$/);
  });

  test('the services configuration names exactly the stack resources (CLI contract settings)', () => {
    const { template } = synthesize('prod');
    const stream = single(template, 'AWS::Kinesis::Stream');
    const tableNames = Object.values(resources(template, 'AWS::DynamoDB::Table')).map((t) => t.Properties.TableName);
    const queueNames = Object.values(resources(template, 'AWS::SQS::Queue')).map((q) => q.Properties.QueueName);
    for (const role of ['ingest', 'consume'] as const) {
      const environment = environmentOf(containerOf(template, role));
      assert.equal(environment.TRIGGERS_BACKEND, 'aws');
      assert.equal(environment.TRIGGERS_LISTEN, '0.0.0.0:8080');
      assert.equal(environment.TRIGGERS_ALLOW_PRIVATE_WEBHOOKS, 'false');
      assert.equal(environment.AWS_REGION, 'eu-west-1');
      assert.equal(referencedId(environment.TRIGGERS_STREAM_NAME), stream.id);
      const tablePrefix = environment.TRIGGERS_TABLE_PREFIX as string;
      const queuePrefix = environment.TRIGGERS_QUEUE_PREFIX as string;
      assert.deepEqual([`${tablePrefix}events`, `${tablePrefix}leases`].sort(), [...tableNames].sort());
      assert.deepEqual([`${queuePrefix}dlq`, `${queuePrefix}retry`], [...queueNames].sort());
      const database = single(template, 'AWS::RDS::DBInstance');
      assert.equal(referencedId(environment.PGHOST), database.id);
      assert.equal(environment.PGDATABASE, database.Properties.DBName);
    }
    const ingest = environmentOf(containerOf(template, 'ingest'));
    assert.equal(ingest.TRIGGERS_ADMIN_LISTEN, '0.0.0.0:8081');
    assert.equal(referencedId(ingest.REDIS_HOST), single(template, 'AWS::ElastiCache::ReplicationGroup').id);
  });

  test('secrets come from Secrets Manager; only ingest gets the Redis token and the admin token', () => {
    const { template } = synthesize('prod');
    const secretNames = (role: 'ingest' | 'consume') =>
      containerOf(template, role)
        .Secrets.map((secret: any) => secret.Name)
        .sort();
    assert.deepEqual(secretNames('ingest'), ['PGPASSWORD', 'PGUSER', 'REDIS_AUTH_TOKEN', 'TRIGGERS_ADMIN_TOKEN']);
    assert.deepEqual(secretNames('consume'), ['PGPASSWORD', 'PGUSER']);
    const consume = containerOf(template, 'consume');
    assert.doesNotMatch(consume.Command[0], /REDIS/);
    assert.equal(environmentOf(consume).REDIS_HOST, undefined);
    for (const role of ['ingest', 'consume'] as const) {
      const environment = JSON.stringify(containerOf(template, role).Environment);
      assert.doesNotMatch(environment, /PASSWORD|TOKEN/, 'no secret travels as a plain variable');
    }
  });

  test('tasks run in the private subnets without public addresses, hardened', () => {
    const { template } = synthesize('prod');
    const serviceSubnets = Object.entries(resources(template, 'AWS::EC2::Subnet'))
      .filter(([, subnet]) => subnet.Properties.Tags.some((tag: any) => tag.Value === 'services'))
      .map(([id]) => id)
      .sort();
    assert.equal(serviceSubnets.length, 3);
    for (const service of Object.values(resources(template, 'AWS::ECS::Service'))) {
      const network = service.Properties.NetworkConfiguration.AwsvpcConfiguration;
      assert.equal(network.AssignPublicIp, 'DISABLED');
      assert.deepEqual([...referencedIds(network.Subnets)].sort(), serviceSubnets);
      assert.equal(service.Properties.LaunchType, 'FARGATE');
      assert.deepEqual(service.Properties.DeploymentConfiguration.DeploymentCircuitBreaker, {
        Enable: true,
        Rollback: true,
      });
    }
    for (const role of ['ingest', 'consume'] as const) {
      const container = containerOf(template, role);
      assert.equal(container.ReadonlyRootFilesystem, true);
      assert.equal(container.LinuxParameters.InitProcessEnabled, true);
      assert.deepEqual(container.Ulimits, [{ Name: 'nofile', SoftLimit: 65536, HardLimit: 65536 }]);
      assert.equal(container.Privileged, undefined);
    }
  });

  test('liveness: each container probes /healthz on its public port', () => {
    const { template } = synthesize('prod');
    for (const role of ['ingest', 'consume'] as const) {
      const check = containerOf(template, role).HealthCheck;
      assert.match(check.Command.join(' '), /\/dev\/tcp\/127\.0\.0\.1\/8080/);
      assert.match(check.Command.join(' '), /GET \/healthz HTTP\/1\.0/);
    }
  });
});

describe('the load balancers', () => {
  test('the public one is internet-facing, HTTPS on 443 with the certificate parameter and TLS 1.2+', () => {
    const { template } = synthesize('prod');
    const publicLoadBalancer = single(template, 'AWS::ElasticLoadBalancingV2::LoadBalancer', (p) => p.Scheme === 'internet-facing');
    const listeners = Object.values(resources(template, 'AWS::ElasticLoadBalancingV2::Listener')).filter(
      (listener) => referencedId(listener.Properties.LoadBalancerArn) === publicLoadBalancer.id,
    );
    assert.deepEqual(listeners.map((listener) => listener.Properties.Port).sort(), [443, 80]);
    const https = listeners.find((listener) => listener.Properties.Port === 443)!;
    assert.equal(https.Properties.Protocol, 'HTTPS');
    assert.deepEqual(https.Properties.Certificates, [{ CertificateArn: { Ref: 'CertificateArn' } }]);
    // ELBSecurityPolicy-TLS13-1-2-…: TLS 1.3 and 1.2, nothing older.
    assert.match(https.Properties.SslPolicy, /^ELBSecurityPolicy-TLS13-1-2-/);
    const http = listeners.find((listener) => listener.Properties.Port === 80)!;
    assert.equal(http.Properties.DefaultActions[0].Type, 'redirect');
    assert.equal(http.Properties.DefaultActions[0].RedirectConfig.Protocol, 'HTTPS');
    assert.ok(
      publicLoadBalancer.Properties.LoadBalancerAttributes.some(
        (attribute: any) => attribute.Key === 'routing.http.drop_invalid_header_fields.enabled' && attribute.Value === 'true',
      ),
    );
  });

  test('the load balancers give up on idle connections before the services do (10 s head timeout)', () => {
    const { template } = synthesize('prod');
    for (const loadBalancer of Object.values(resources(template, 'AWS::ElasticLoadBalancingV2::LoadBalancer'))) {
      const idle = loadBalancer.Properties.LoadBalancerAttributes.find(
        (attribute: any) => attribute.Key === 'idle_timeout.timeout_seconds',
      );
      assert.ok(Number(idle.Value) < 10);
    }
  });

  test('the public listener answers /metrics itself, with a problem document', () => {
    const { template } = synthesize('prod');
    const rule = single(template, 'AWS::ElasticLoadBalancingV2::ListenerRule');
    assert.deepEqual(rule.Properties.Conditions[0].PathPatternConfig.Values, ['/metrics', '/metrics/*']);
    const response = rule.Properties.Actions[0].FixedResponseConfig;
    assert.equal(response.StatusCode, '404');
    assert.equal(response.ContentType, 'application/problem+json');
    assert.equal(JSON.parse(response.MessageBody).status, 404);
  });

  test('no admin listener is public: 8081 only on the internal load balancer, open to the VPC range only', () => {
    const { template } = synthesize('prod');
    const loadBalancers = resources(template, 'AWS::ElasticLoadBalancingV2::LoadBalancer');
    const listeners = Object.values(resources(template, 'AWS::ElasticLoadBalancingV2::Listener'));
    const adminListeners = listeners.filter((listener) => listener.Properties.Port === 8081);
    assert.equal(adminListeners.length, 1);
    const adminLoadBalancer = loadBalancers[referencedId(adminListeners[0].Properties.LoadBalancerArn)!];
    assert.equal(adminLoadBalancer.Properties.Scheme, 'internal');
    assert.equal(adminListeners[0].Properties.Protocol, 'HTTPS');
    for (const listener of listeners) {
      const scheme = loadBalancers[referencedId(listener.Properties.LoadBalancerArn)!].Properties.Scheme;
      if (scheme === 'internet-facing') assert.notEqual(listener.Properties.Port, 8081);
    }
    // Every rule that admits anything on 8081 names a security group or the VPC's own range.
    const vpc = single(template, 'AWS::EC2::VPC');
    const inline = Object.values(resources(template, 'AWS::EC2::SecurityGroup')).flatMap(
      (group) => group.Properties.SecurityGroupIngress ?? [],
    );
    const separate = Object.values(resources(template, 'AWS::EC2::SecurityGroupIngress')).map((rule) => rule.Properties);
    const admitting8081 = [...inline, ...separate].filter((rule) => rule.FromPort <= 8081 && rule.ToPort >= 8081);
    assert.ok(admitting8081.length > 0);
    for (const rule of admitting8081) {
      assert.notEqual(rule.CidrIp, '0.0.0.0/0');
      assert.equal(rule.CidrIpv6, undefined);
      if (rule.CidrIp !== undefined) assert.deepEqual(rule.CidrIp, { 'Fn::GetAtt': [vpc.id, 'CidrBlock'] });
    }
    // The admin load balancer sits in the private service subnets.
    const serviceSubnets = Object.entries(resources(template, 'AWS::EC2::Subnet'))
      .filter(([, subnet]) => subnet.Properties.Tags.some((tag: any) => tag.Value === 'services'))
      .map(([id]) => id)
      .sort();
    assert.deepEqual([...referencedIds(adminLoadBalancer.Properties.Subnets)].sort(), serviceSubnets);
  });

  test('health checks: the public targets on /readyz, the admin targets on /healthz', () => {
    const { template } = synthesize('prod');
    const publicTargets = single(template, 'AWS::ElasticLoadBalancingV2::TargetGroup', (p) => p.Port === 8080);
    assert.equal(publicTargets.Properties.HealthCheckPath, '/readyz');
    assert.equal(publicTargets.Properties.TargetType, 'ip');
    const adminTargets = single(template, 'AWS::ElasticLoadBalancingV2::TargetGroup', (p) => p.Port === 8081);
    assert.equal(adminTargets.Properties.HealthCheckPath, '/healthz');
    assert.equal(adminTargets.Properties.HealthCheckPort, '8080');
    const ingestService = single(template, 'AWS::ECS::Service', (p) => p.LoadBalancers?.length > 0);
    assert.deepEqual(
      ingestService.Properties.LoadBalancers.map((entry: any) => [entry.ContainerPort, referencedId(entry.TargetGroupArn)]).sort(),
      [
        [8080, publicTargets.id],
        [8081, adminTargets.id],
      ],
    );
  });
});

describe('auto scaling', () => {
  test('ingest on CPU and on request count; consumers on the stream iterator age', () => {
    const { template } = synthesize('prod');
    const targets = resources(template, 'AWS::ApplicationAutoScaling::ScalableTarget');
    const policiesById = resources(template, 'AWS::ApplicationAutoScaling::ScalingPolicy');
    const policies = Object.values(policiesById);
    const tracking = policies
      .filter((policy) => policy.Properties.PolicyType === 'TargetTrackingScaling')
      .map((policy) => policy.Properties.TargetTrackingScalingPolicyConfiguration);
    const cpu = tracking.find((c) => c.PredefinedMetricSpecification.PredefinedMetricType === 'ECSServiceAverageCPUUtilization');
    assert.equal(cpu.TargetValue, 60);
    const requests = tracking.find((c) => c.PredefinedMetricSpecification.PredefinedMetricType === 'ALBRequestCountPerTarget');
    assert.equal(requests.TargetValue, 120000);
    const stepPolicyIds = Object.keys(policiesById).filter((id) => policiesById[id].Properties.PolicyType === 'StepScaling');
    assert.equal(stepPolicyIds.length, 2, 'one policy to scale out, one to scale in');
    const stepTargets = new Set(stepPolicyIds.map((id) => referencedId(policiesById[id].Properties.ScalingTargetId)));
    assert.equal(stepTargets.size, 1);
    const consumeTarget = targets[[...stepTargets][0]!];
    assert.equal(consumeTarget.Properties.MinCapacity, 4);
    assert.equal(consumeTarget.Properties.MaxCapacity, 8);
    const stepAlarms = Object.values(resources(template, 'AWS::CloudWatch::Alarm')).filter((alarm) =>
      stepPolicyIds.some((id) => referencedIds(alarm.Properties.AlarmActions ?? []).has(id)),
    );
    assert.equal(stepAlarms.length, 2);
    for (const alarm of stepAlarms) {
      assert.equal(alarm.Properties.MetricName, 'GetRecords.IteratorAgeMilliseconds');
      assert.equal(alarm.Properties.Namespace, 'AWS/Kinesis');
    }
  });

  test('ranges differ per environment', () => {
    const capacities = (env: 'dev' | 'prod') =>
      Object.values(resources(synthesize(env).template, 'AWS::ApplicationAutoScaling::ScalableTarget'))
        .map((target) => [target.Properties.MinCapacity, target.Properties.MaxCapacity])
        .sort();
    assert.deepEqual(capacities('dev'), [
      [1, 2],
      [1, 2],
    ]);
    assert.deepEqual(capacities('prod'), [
      [3, 12],
      [4, 8],
    ]);
  });
});
