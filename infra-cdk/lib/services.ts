import * as fs from 'node:fs';
import * as path from 'node:path';
import { Duration, RemovalPolicy, Size } from 'aws-cdk-lib';
import * as appscaling from 'aws-cdk-lib/aws-applicationautoscaling';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { DockerImageAsset, Platform } from 'aws-cdk-lib/aws-ecr-assets';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { grantConsume, grantIngest } from './access';
import { Data } from './data';
import { Databases } from './databases';
import { EnvironmentConfig, ServiceSize } from './environments';
import { Network, SUBNETS } from './network';
import {
  ADMIN_PORT,
  PUBLIC_PORT,
  Role,
  SECRET_VARIABLES,
  ServiceEndpoints,
  healthProbe,
  serviceCommand,
  servesAdminApi,
  serviceEnvironment,
  usesRedis,
} from './service-config';

/**
 * The services close a connection that has not sent a complete request head within 10 s (API
 * contract), idle keep-alive connections included. The load balancer must give up on an idle
 * connection first, or it may send a request down a connection the service is closing (a 502).
 */
export const SERVICE_HEADER_READ_TIMEOUT = Duration.seconds(10);
export const LOAD_BALANCER_IDLE_TIMEOUT = Duration.seconds(SERVICE_HEADER_READ_TIMEOUT.toSeconds() - 1);

/** Ingest scales out when its tasks' average CPU passes this. */
export const INGEST_CPU_TARGET_PERCENT = 60;

/**
 * Consumer scaling on the stream's iterator age (how far the slowest reader is behind the tip): add a
 * task past 30 s, two past 2 min, remove one under 5 s. More consumers than shards would sit idle.
 */
export const CONSUMER_SCALING_STEPS: appscaling.ScalingInterval[] = [
  { upper: 5_000, change: -1 },
  { lower: 30_000, change: +1 },
  { lower: 120_000, change: +2 },
];

/** The problem document the public load balancer answers for `/metrics` (see `Services`). */
export const METRICS_NOT_PUBLIC = {
  type: 'urn:triggers:problem:not-found',
  title: 'Not Found',
  status: 404,
  detail: 'metrics are not served on the public endpoint',
};

export interface ServicesProps {
  readonly config: EnvironmentConfig;
  readonly network: Network;
  readonly data: Data;
  readonly databases: Databases;
  readonly endpoints: ServiceEndpoints;
  /** The ACM certificate of the public (and admin) HTTPS listener. */
  readonly certificateArn: string;
  readonly adminToken: secretsmanager.ISecret;
  readonly ingestSecurityGroup: ec2.ISecurityGroup;
  readonly consumeSecurityGroup: ec2.ISecurityGroup;
}

/**
 * ECS Fargate: `triggers ingest` behind an internet-facing ALB (HTTPS) and an internal ALB for the
 * admin API, and `triggers consume`; one container image, two commands, two task roles.
 */
export class Services extends Construct {
  readonly cluster: ecs.Cluster;
  readonly ingest: ecs.FargateService;
  readonly consume: ecs.FargateService;
  readonly publicLoadBalancer: elbv2.ApplicationLoadBalancer;
  readonly adminLoadBalancer: elbv2.ApplicationLoadBalancer;
  readonly publicTargetGroup: elbv2.ApplicationTargetGroup;
  readonly adminTargetGroup: elbv2.ApplicationTargetGroup;

  constructor(scope: Construct, id: string, props: ServicesProps) {
    super(scope, id);
    const { config, network, data, databases } = props;
    const vpc = network.vpc;

    this.cluster = new ecs.Cluster(this, 'Cluster', {
      vpc,
      containerInsightsV2: ecs.ContainerInsights.ENABLED,
    });
    // One asset for both roles: synth stages the build context (the repository root, less what
    // .dockerignore leaves out) without building it; `cdk deploy` builds and pushes it.
    const image = ecs.ContainerImage.fromDockerImageAsset(
      new DockerImageAsset(this, 'Image', { directory: repositoryRoot(), platform: Platform.LINUX_AMD64 }),
    );

    // Each role receives only the secrets it uses: the database's to both, Redis' and the admin
    // token to the ingest edge alone.
    const secretsFor = (role: Role): Record<string, ecs.Secret> => {
      const secrets: Record<string, ecs.Secret> = {
        [SECRET_VARIABLES.databaseUser]: ecs.Secret.fromSecretsManager(databases.postgresSecret, 'username'),
        [SECRET_VARIABLES.databasePassword]: ecs.Secret.fromSecretsManager(databases.postgresSecret, 'password'),
      };
      if (usesRedis(role)) {
        secrets[SECRET_VARIABLES.redisAuthToken] = ecs.Secret.fromSecretsManager(databases.redisAuthToken);
      }
      if (servesAdminApi(role)) {
        secrets[SECRET_VARIABLES.adminToken] = ecs.Secret.fromSecretsManager(props.adminToken);
      }
      return secrets;
    };

    const ingestTask = this.taskDefinition('ingest', config.ingest, image, props.endpoints, secretsFor('ingest'), config);
    grantIngest(ingestTask.taskRole, data);
    const consumeTask = this.taskDefinition('consume', config.consume, image, props.endpoints, secretsFor('consume'), config);
    grantConsume(consumeTask.taskRole, data);

    const serviceDefaults = {
      cluster: this.cluster,
      vpcSubnets: network.subnets(SUBNETS.services),
      assignPublicIp: false,
      circuitBreaker: { enable: true, rollback: true },
      minHealthyPercent: 100,
      maxHealthyPercent: 200,
      enableExecuteCommand: false,
      propagateTags: ecs.PropagatedTagSource.SERVICE,
    };
    this.ingest = new ecs.FargateService(this, 'IngestService', {
      ...serviceDefaults,
      taskDefinition: ingestTask,
      desiredCount: config.ingest.minTasks,
      securityGroups: [props.ingestSecurityGroup],
      healthCheckGracePeriod: Duration.seconds(60),
    });
    this.consume = new ecs.FargateService(this, 'ConsumeService', {
      ...serviceDefaults,
      taskDefinition: consumeTask,
      desiredCount: config.consume.minTasks,
      securityGroups: [props.consumeSecurityGroup],
    });

    // The public edge: HTTPS only (HTTP redirects), TLS 1.2 or newer, invalid header fields dropped.
    const publicSecurityGroup = new ec2.SecurityGroup(this, 'PublicLoadBalancerSecurityGroup', {
      vpc,
      description: 'Triggers public load balancer: HTTPS from anywhere',
      allowAllOutbound: false,
    });
    this.publicLoadBalancer = new elbv2.ApplicationLoadBalancer(this, 'PublicLoadBalancer', {
      vpc,
      internetFacing: true,
      vpcSubnets: network.subnets(SUBNETS.public),
      securityGroup: publicSecurityGroup,
      idleTimeout: LOAD_BALANCER_IDLE_TIMEOUT,
      dropInvalidHeaderFields: true,
      http2Enabled: true,
    });
    const https = this.publicLoadBalancer.addListener('Https', {
      port: 443,
      protocol: elbv2.ApplicationProtocol.HTTPS,
      certificates: [elbv2.ListenerCertificate.fromArn(props.certificateArn)],
      sslPolicy: elbv2.SslPolicy.RECOMMENDED_TLS,
      open: true,
    });
    this.publicLoadBalancer.addRedirect({ sourcePort: 80, targetPort: 443 });
    this.publicTargetGroup = new elbv2.ApplicationTargetGroup(this, 'PublicTargets', {
      vpc,
      port: PUBLIC_PORT,
      protocol: elbv2.ApplicationProtocol.HTTP,
      targetType: elbv2.TargetType.IP,
      // Traffic goes only to tasks whose dependencies answer; a task that is merely alive is not enough.
      healthCheck: {
        path: '/readyz',
        healthyHttpCodes: '200',
        interval: Duration.seconds(15),
        timeout: Duration.seconds(5),
        healthyThresholdCount: 2,
        unhealthyThresholdCount: 3,
      },
      deregistrationDelay: Duration.seconds(30),
      targets: [this.ingest.loadBalancerTarget({ containerName: CONTAINER_NAME, containerPort: PUBLIC_PORT })],
    });
    https.addTargetGroups('Ingest', { targetGroups: [this.publicTargetGroup] });
    // `/metrics` carries per-customer figures; in the aws mode they also go to CloudWatch, and anyone
    // inside the VPC can scrape a task directly. The internet gets a problem document instead.
    https.addAction('MetricsNotPublic', {
      priority: 10,
      conditions: [elbv2.ListenerCondition.pathPatterns(['/metrics', '/metrics/*'])],
      action: elbv2.ListenerAction.fixedResponse(404, {
        contentType: 'application/problem+json',
        messageBody: JSON.stringify(METRICS_NOT_PUBLIC),
      }),
    });

    // The admin API: an internal load balancer in the services' subnets, reachable from the VPC only.
    const adminSecurityGroup = new ec2.SecurityGroup(this, 'AdminLoadBalancerSecurityGroup', {
      vpc,
      description: 'Triggers admin load balancer: HTTPS from inside the VPC only',
      allowAllOutbound: false,
    });
    adminSecurityGroup.addIngressRule(ec2.Peer.ipv4(vpc.vpcCidrBlock), ec2.Port.tcp(ADMIN_PORT), 'admin API from the VPC');
    this.adminLoadBalancer = new elbv2.ApplicationLoadBalancer(this, 'AdminLoadBalancer', {
      vpc,
      internetFacing: false,
      vpcSubnets: network.subnets(SUBNETS.services),
      securityGroup: adminSecurityGroup,
      idleTimeout: LOAD_BALANCER_IDLE_TIMEOUT,
      dropInvalidHeaderFields: true,
    });
    const admin = this.adminLoadBalancer.addListener('Admin', {
      port: ADMIN_PORT,
      protocol: elbv2.ApplicationProtocol.HTTPS,
      certificates: [elbv2.ListenerCertificate.fromArn(props.certificateArn)],
      sslPolicy: elbv2.SslPolicy.RECOMMENDED_TLS,
      // Never 0.0.0.0/0: the security group above admits the VPC's own range only.
      open: false,
    });
    this.adminTargetGroup = new elbv2.ApplicationTargetGroup(this, 'AdminTargets', {
      vpc,
      port: ADMIN_PORT,
      protocol: elbv2.ApplicationProtocol.HTTP,
      targetType: elbv2.TargetType.IP,
      // The admin listener has no health route of its own; the process's liveness is on the public port.
      healthCheck: {
        path: '/healthz',
        port: String(PUBLIC_PORT),
        healthyHttpCodes: '200',
        interval: Duration.seconds(15),
        timeout: Duration.seconds(5),
      },
      deregistrationDelay: Duration.seconds(30),
      targets: [this.ingest.loadBalancerTarget({ containerName: CONTAINER_NAME, containerPort: ADMIN_PORT })],
    });
    admin.addTargetGroups('Ingest', { targetGroups: [this.adminTargetGroup] });
    this.ingest.connections.allowFrom(adminSecurityGroup, ec2.Port.tcp(PUBLIC_PORT), 'admin load balancer health checks');

    const ingestScaling = this.ingest.autoScaleTaskCount({
      minCapacity: config.ingest.minTasks,
      maxCapacity: config.ingest.maxTasks,
    });
    ingestScaling.scaleOnCpuUtilization('Cpu', {
      targetUtilizationPercent: INGEST_CPU_TARGET_PERCENT,
      scaleOutCooldown: Duration.seconds(60),
      scaleInCooldown: Duration.seconds(300),
    });
    ingestScaling.scaleOnRequestCount('Requests', {
      requestsPerTarget: config.ingest.requestsPerTaskPerMinute,
      targetGroup: this.publicTargetGroup,
      scaleOutCooldown: Duration.seconds(60),
      scaleInCooldown: Duration.seconds(300),
    });
    const consumeScaling = this.consume.autoScaleTaskCount({
      minCapacity: config.consume.minTasks,
      maxCapacity: config.consume.maxTasks,
    });
    consumeScaling.scaleOnMetric('IteratorAge', {
      metric: data.stream.metricGetRecordsIteratorAgeMilliseconds({ statistic: 'Maximum', period: Duration.minutes(1) }),
      scalingSteps: CONSUMER_SCALING_STEPS,
      adjustmentType: appscaling.AdjustmentType.CHANGE_IN_CAPACITY,
      evaluationPeriods: 3,
      // Lease balancing moves shards one at a time; give it time before judging the new count.
      cooldown: Duration.seconds(180),
    });
  }

  private taskDefinition(
    role: Role,
    size: ServiceSize,
    image: ecs.ContainerImage,
    endpoints: ServiceEndpoints,
    secrets: Record<string, ecs.Secret>,
    config: EnvironmentConfig,
  ): ecs.FargateTaskDefinition {
    const title = role === 'ingest' ? 'Ingest' : 'Consume';
    const task = new ecs.FargateTaskDefinition(this, `${title}Task`, {
      cpu: size.cpu,
      memoryLimitMiB: size.memoryMiB,
      runtimePlatform: {
        cpuArchitecture: ecs.CpuArchitecture.X86_64,
        operatingSystemFamily: ecs.OperatingSystemFamily.LINUX,
      },
    });
    const logGroup = new logs.LogGroup(this, `${title}Logs`, {
      retention: retentionDays(config.logRetentionDays),
      removalPolicy: config.dataRemoval === RemovalPolicy.RETAIN ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
    });
    const { entryPoint, command } = serviceCommand(role);
    task.addContainer(CONTAINER_NAME, {
      image,
      entryPoint,
      command,
      environment: serviceEnvironment(role, endpoints),
      secrets,
      portMappings: servesAdminApi(role)
          ? [{ containerPort: PUBLIC_PORT, name: 'public' }, { containerPort: ADMIN_PORT, name: 'admin' }]
          : [{ containerPort: PUBLIC_PORT, name: 'public' }],
      logging: ecs.LogDrivers.awsLogs({
        streamPrefix: role,
        logGroup,
        // A slow log pipeline must never block the service; a full buffer drops lines instead.
        mode: ecs.AwsLogDriverMode.NON_BLOCKING,
        maxBufferSize: Size.mebibytes(25),
      }),
      // Liveness: ECS replaces a task whose process stops answering.
      healthCheck: {
        command: healthProbe('/healthz'),
        interval: Duration.seconds(15),
        timeout: Duration.seconds(5),
        retries: 3,
        startPeriod: Duration.seconds(30),
      },
      readonlyRootFilesystem: true,
      linuxParameters: new ecs.LinuxParameters(this, `${title}Linux`, { initProcessEnabled: true }),
      // Each listener holds up to 10,000 connections (TRIGGERS_MAX_CONNECTIONS), each a descriptor.
      ulimits: [{ name: ecs.UlimitName.NOFILE, softLimit: 65_536, hardLimit: 65_536 }],
      // Graceful shutdown finishes in-flight deliveries (one attempt timeout) and releases leases.
      stopTimeout: Duration.seconds(role === 'consume' ? 60 : 30),
    });
    return task;
  }
}

/** The container's name in both task definitions. */
export const CONTAINER_NAME = 'triggers';

/** The repository root: the Docker build context, found from this file so that it does not depend on the working directory. */
export function repositoryRoot(): string {
  let directory = __dirname;
  for (;;) {
    if (fs.existsSync(path.join(directory, 'Dockerfile')) && fs.existsSync(path.join(directory, 'Cargo.toml'))) {
      return directory;
    }
    const parent = path.dirname(directory);
    if (parent === directory) throw new Error(`no Dockerfile beside a Cargo.toml above ${__dirname}`);
    directory = parent;
  }
}

function retentionDays(days: number): logs.RetentionDays {
  const known = Object.values(logs.RetentionDays).filter((value): value is number => typeof value === 'number');
  if (!known.includes(days)) throw new Error(`log retention of ${days} days is not one CloudWatch offers`);
  return days as logs.RetentionDays;
}
