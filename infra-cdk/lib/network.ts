import { Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { Construct } from 'constructs';
import { EnvironmentConfig } from './environments';

/** Subnet group names, so that every construct places itself by intent rather than by subnet type. */
export const SUBNETS = {
  /** The internet-facing load balancer and the NAT gateways. */
  public: 'public',
  /** The ECS tasks: no public address, out to the internet (webhooks) through NAT. */
  services: 'services',
  /** PostgreSQL and Redis: no route out of the VPC at all. */
  data: 'data',
} as const;

export interface NetworkProps {
  readonly config: EnvironmentConfig;
}

/** A VPC over the stack's three availability zones. */
export class Network extends Construct {
  readonly vpc: ec2.Vpc;

  constructor(scope: Construct, id: string, props: NetworkProps) {
    super(scope, id);
    this.vpc = new ec2.Vpc(this, 'Vpc', {
      ipAddresses: ec2.IpAddresses.cidr('10.40.0.0/16'),
      // The stack lists its three zones (TriggersStack.availabilityZones), so this holds offline too.
      maxAzs: 3,
      natGateways: props.config.natGateways,
      subnetConfiguration: [
        { name: SUBNETS.public, subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24 },
        { name: SUBNETS.services, subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS, cidrMask: 20 },
        { name: SUBNETS.data, subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 24 },
      ],
    });
    // CloudFormation's linter prefers zones looked up at deployment; these are listed on purpose.
    Validations.of(this.vpc).acknowledge({
      id: 'CloudFormation-Validate::W3010',
      reason: 'availability zones are listed so that an offline synth spreads over three',
    });
    // DynamoDB and S3 (ECR's image layers) through free gateway endpoints: the busiest AWS traffic
    // stays off the NAT gateways and their per-GB charge.
    this.vpc.addGatewayEndpoint('DynamoDb', { service: ec2.GatewayVpcEndpointAwsService.DYNAMODB });
    this.vpc.addGatewayEndpoint('S3', { service: ec2.GatewayVpcEndpointAwsService.S3 });
  }

  /** The subnets of one group. */
  subnets(group: (typeof SUBNETS)[keyof typeof SUBNETS]): ec2.SubnetSelection {
    return { subnetGroupName: group };
  }
}
