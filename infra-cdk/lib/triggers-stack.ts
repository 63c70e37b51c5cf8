import { CfnOutput, CfnParameter, Stack, StackProps, Tags } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { OperatorRole } from './access';
import { Data } from './data';
import { DATABASE_NAME, Databases } from './databases';
import { hasDeletionProtection } from './environments';
import { Monitoring } from './monitoring';
import { Network } from './network';
import { CERTIFICATE_ARN, DeploymentTarget } from './options';
import { GENERATED_SECRET_EXCLUDES, ServiceEndpoints } from './service-config';
import { Services } from './services';

export interface TriggersStackProps extends StackProps {
  readonly target: DeploymentTarget;
}

/** The stack's name for an environment. */
export function stackName(environment: string): string {
  return `Triggers-${environment}`;
}

/** One environment of Triggers on AWS: the aws backend's resources and the two roles running on them. */
export class TriggersStack extends Stack {
  readonly target: DeploymentTarget;
  readonly data: Data;
  readonly databases: Databases;
  readonly services: Services;
  readonly monitoring: Monitoring;

  constructor(scope: Construct, id: string, props: TriggersStackProps) {
    const { target } = props;
    const { config } = target;
    super(scope, id, {
      ...props,
      env: { account: target.account, region: target.region },
      description: `Triggers (${config.name}): event ingestion and webhook triggers on the aws backend`,
      terminationProtection: hasDeletionProtection(config),
    });
    this.target = target;
    Tags.of(this).add('project', 'triggers');
    Tags.of(this).add('environment', config.name);

    const certificateArn = new CfnParameter(this, 'CertificateArn', {
      type: 'String',
      default: target.certificateArn,
      allowedPattern: CERTIFICATE_ARN.source,
      description: 'ACM certificate for the public HTTPS listener and the internal admin listener',
    }).valueAsString;

    // Table and queue prefix, and the stream's: environments can share an account without colliding.
    const namePrefix = `triggers-${config.name}-`;
    const network = new Network(this, 'Network', { config });
    this.data = new Data(this, 'Data', { config, namePrefix });

    const ingestSecurityGroup = new ec2.SecurityGroup(this, 'IngestSecurityGroup', {
      vpc: network.vpc,
      description: 'triggers ingest tasks',
      // The edge calls AWS APIs (HTTPS), PostgreSQL and Redis, nothing else: no webhooks leave from here.
      allowAllOutbound: false,
    });
    ingestSecurityGroup.addEgressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(443), 'AWS APIs');
    const consumeSecurityGroup = new ec2.SecurityGroup(this, 'ConsumeSecurityGroup', {
      vpc: network.vpc,
      description: 'triggers consume tasks',
      // Webhook endpoints may be on any port of any host; the services reject private addresses themselves.
      allowAllOutbound: true,
    });

    this.databases = new Databases(this, 'Databases', {
      config,
      network,
      key: this.data.key,
      postgresClients: [ingestSecurityGroup, consumeSecurityGroup],
      redisClients: [ingestSecurityGroup],
    });
    const adminToken = new secretsmanager.Secret(this, 'AdminToken', {
      description: `Triggers ${config.name}: the admin API's bearer token (TRIGGERS_ADMIN_TOKEN)`,
      generateSecretString: { passwordLength: 48, excludeCharacters: GENERATED_SECRET_EXCLUDES },
    });

    const endpoints: ServiceEndpoints = {
      region: this.region,
      streamName: this.data.stream.streamName,
      namePrefix,
      database: {
        host: this.databases.postgres.dbInstanceEndpointAddress,
        port: this.databases.postgres.dbInstanceEndpointPort,
        name: DATABASE_NAME,
      },
      redis: { host: this.databases.redisHost, port: this.databases.redisPort },
    };
    this.services = new Services(this, 'Services', {
      config,
      network,
      data: this.data,
      databases: this.databases,
      endpoints,
      certificateArn,
      adminToken,
      ingestSecurityGroup,
      consumeSecurityGroup,
    });
    this.monitoring = new Monitoring(this, 'Monitoring', {
      config,
      data: this.data,
      services: this.services,
      alarmEmail: target.alarmEmail,
    });
    const operators = new OperatorRole(this, 'Operators', { data: this.data, adminToken });

    new CfnOutput(this, 'PublicUrl', {
      description: 'Point your DNS name (covered by the certificate) here; customers use https://<that name>',
      value: this.services.publicLoadBalancer.loadBalancerDnsName,
    });
    new CfnOutput(this, 'AdminUrl', {
      description: 'Internal admin API (port 8081, from inside the VPC): triggers --admin-url',
      value: `https://${this.services.adminLoadBalancer.loadBalancerDnsName}:8081`,
    });
    new CfnOutput(this, 'AdminTokenSecret', {
      description: 'Secrets Manager secret holding TRIGGERS_ADMIN_TOKEN',
      value: adminToken.secretArn,
    });
    new CfnOutput(this, 'OperatorRoleArn', {
      description: 'Role for triggers checkpoint / stream / dlq against the AWS resources',
      value: operators.role.roleArn,
    });
    new CfnOutput(this, 'StreamName', { description: 'TRIGGERS_STREAM_NAME', value: this.data.stream.streamName });
    new CfnOutput(this, 'NamePrefix', { description: 'TRIGGERS_TABLE_PREFIX and TRIGGERS_QUEUE_PREFIX', value: namePrefix });
  }

  /** The three zones of the target, so that an offline synth spreads the VPC over them without a lookup. */
  override get availabilityZones(): string[] {
    return [...this.target.availabilityZones];
  }
}
