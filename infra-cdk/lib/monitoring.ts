import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';
import { Data } from './data';
import { EnvironmentConfig } from './environments';
import { appMetric } from './metrics';
import { Services } from './services';

/** The thresholds the product sets for its alarms. */
export const ALARMS = {
  /** Failed requests or delivery attempts above this share of all of them... */
  errorRatePercent: 5,
  /** ...for this long, in one-minute periods. */
  errorRateMinutes: 10,
  /** p95 latency above this (end to end, and of the ingest API)... */
  p95LatencyMs: 5_000,
  /** ...for this long. */
  latencyMinutes: 5,
  /** The slowest shard reader this far behind the tip... */
  iteratorAgeMs: 60_000,
  /** ...for this long. */
  iteratorAgeMinutes: 5,
  /** 5xx answers the load balancer itself generated (no healthy target, target reset) in five minutes. */
  loadBalancer5xxPerFiveMinutes: 10,
  /** Unhealthy targets for this many minutes. */
  unhealthyMinutes: 3,
} as const;

export interface MonitoringProps {
  readonly config: EnvironmentConfig;
  readonly data: Data;
  readonly services: Services;
  readonly alarmEmail: string | undefined;
}

/** The product's alarms (to one SNS topic) and a dashboard of the pipeline. */
export class Monitoring extends Construct {
  readonly topic: sns.Topic;
  readonly alarms: cloudwatch.Alarm[] = [];
  readonly dashboard: cloudwatch.Dashboard;

  constructor(scope: Construct, id: string, props: MonitoringProps) {
    super(scope, id);
    const { config, data, services } = props;
    const streamName = data.stream.streamName;
    const minute = Duration.minutes(1);
    const publicLoadBalancer = services.publicLoadBalancer;

    // Alarm notifications carry names and figures, no customer data; the topic refuses plain HTTP.
    this.topic = new sns.Topic(this, 'Alarms', { displayName: `Triggers ${config.name} alarms`, enforceSSL: true });
    if (props.alarmEmail !== undefined) {
      this.topic.addSubscription(new subscriptions.EmailSubscription(props.alarmEmail));
    }

    const requests = publicLoadBalancer.metrics.requestCount({ period: minute, statistic: 'Sum' });
    const target5xx = publicLoadBalancer.metrics.httpCodeTarget(elbv2.HttpCodeTarget.TARGET_5XX_COUNT, {
      period: minute,
      statistic: 'Sum',
    });
    const loadBalancer5xx = publicLoadBalancer.metrics.httpCodeElb(elbv2.HttpCodeElb.ELB_5XX_COUNT, {
      period: minute,
      statistic: 'Sum',
    });
    const apiErrorRate = new cloudwatch.MathExpression({
      // The load balancer publishes no 5xx datapoint for a minute without any: FILL counts it as zero.
      expression: 'IF(requests > 0, 100 * (FILL(target5xx, 0) + FILL(elb5xx, 0)) / requests, 0)',
      usingMetrics: { requests, target5xx, elb5xx: loadBalancer5xx },
      period: minute,
      label: 'API 5xx rate (%)',
    });
    this.alarm('ApiErrorRate', apiErrorRate, {
      threshold: ALARMS.errorRatePercent,
      minutes: ALARMS.errorRateMinutes,
      description: `More than ${ALARMS.errorRatePercent}% of API requests answered 5xx for ${ALARMS.errorRateMinutes} minutes`,
    });

    const delivered = appMetric('deliveriesSucceeded', streamName, { statistic: 'Sum', label: 'delivered' });
    const failed = appMetric('deliveriesFailed', streamName, { statistic: 'Sum', label: 'failed' });
    const deliveryErrorRate = new cloudwatch.MathExpression({
      expression: 'IF(FILL(ok, 0) + FILL(failed, 0) > 0, 100 * FILL(failed, 0) / (FILL(ok, 0) + FILL(failed, 0)), 0)',
      usingMetrics: { ok: delivered, failed },
      period: minute,
      label: 'delivery failure rate (%)',
    });
    this.alarm('DeliveryErrorRate', deliveryErrorRate, {
      threshold: ALARMS.errorRatePercent,
      minutes: ALARMS.errorRateMinutes,
      description: `More than ${ALARMS.errorRatePercent}% of webhook attempts failed for ${ALARMS.errorRateMinutes} minutes`,
    });

    const endToEndP95 = appMetric('endToEndLatency', streamName, { statistic: 'p95' });
    this.alarm('EndToEndLatencyP95', endToEndP95, {
      threshold: ALARMS.p95LatencyMs,
      minutes: ALARMS.latencyMinutes,
      description: `p95 from acceptance to delivery above ${ALARMS.p95LatencyMs / 1000} s for ${ALARMS.latencyMinutes} minutes`,
    });
    // TargetResponseTime is in seconds.
    const ingestP95 = publicLoadBalancer.metrics.targetResponseTime({ period: minute, statistic: 'p95' });
    this.alarm('IngestLatencyP95', ingestP95, {
      threshold: ALARMS.p95LatencyMs / 1000,
      minutes: ALARMS.latencyMinutes,
      description: `p95 API response time above ${ALARMS.p95LatencyMs / 1000} s for ${ALARMS.latencyMinutes} minutes`,
    });

    const fiveMinutes = Duration.minutes(5);
    const dlqVisible = data.deadLetterQueue.metricApproximateNumberOfMessagesVisible({ period: fiveMinutes, statistic: 'Maximum' });
    const dlqInFlight = data.deadLetterQueue.metricApproximateNumberOfMessagesNotVisible({
      period: fiveMinutes,
      statistic: 'Maximum',
    });
    // Visible plus in flight: an operator listing the DLQ hides messages for a while without removing them.
    const dlqGrowth = new cloudwatch.MathExpression({
      expression: 'DIFF(FILL(visible, 0) + FILL(inflight, 0))',
      usingMetrics: { visible: dlqVisible, inflight: dlqInFlight },
      period: fiveMinutes,
      label: 'DLQ growth (messages per 5 minutes)',
    });
    this.alarm('DeadLetterQueueGrowth', dlqGrowth, {
      threshold: 0,
      periods: 1,
      description: 'Deliveries were parked in the dead-letter queue',
    });

    const iteratorAge = data.stream.metricGetRecordsIteratorAgeMilliseconds({ period: minute, statistic: 'Maximum' });
    this.alarm('IteratorAge', iteratorAge, {
      threshold: ALARMS.iteratorAgeMs,
      minutes: ALARMS.iteratorAgeMinutes,
      description: `The slowest consumer is more than ${ALARMS.iteratorAgeMs / 1000} s behind the stream for ${ALARMS.iteratorAgeMinutes} minutes`,
    });

    this.alarm(
      'LoadBalancer5xx',
      publicLoadBalancer.metrics.httpCodeElb(elbv2.HttpCodeElb.ELB_5XX_COUNT, { period: fiveMinutes, statistic: 'Sum' }),
      {
        threshold: ALARMS.loadBalancer5xxPerFiveMinutes - 1,
        periods: 1,
        description: `The public load balancer answered ${ALARMS.loadBalancer5xxPerFiveMinutes} or more 5xx itself in 5 minutes`,
      },
    );
    for (const [name, targetGroup] of [
      ['PublicUnhealthyHosts', services.publicTargetGroup],
      ['AdminUnhealthyHosts', services.adminTargetGroup],
    ] as const) {
      this.alarm(name, targetGroup.metrics.unhealthyHostCount({ period: minute, statistic: 'Maximum' }), {
        threshold: 0,
        minutes: ALARMS.unhealthyMinutes,
        description: `Ingest tasks failing the load balancer's health check for ${ALARMS.unhealthyMinutes} minutes`,
      });
    }

    this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
      dashboardName: `triggers-${config.name}`,
      defaultInterval: Duration.hours(3),
    });
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Ingest rate (per minute)',
        left: [
          appMetric('eventsAccepted', streamName, { statistic: 'Sum', label: 'events accepted' }),
          requests.with({ label: 'API requests' }),
          data.stream.metricIncomingRecords({ period: minute, statistic: 'Sum', label: 'stream records in' }),
        ],
        width: 12,
      }),
      new cloudwatch.GraphWidget({
        title: 'Delivery success',
        left: [delivered, failed],
        right: [
          new cloudwatch.MathExpression({
            expression: '100 - rate',
            usingMetrics: { rate: deliveryErrorRate },
            period: minute,
            label: 'success (%)',
          }),
        ],
        rightYAxis: { min: 0, max: 100 },
        width: 12,
      }),
    );
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Latency (ms)',
        left: ['p50', 'p95', 'p99'].map((statistic) =>
          appMetric('endToEndLatency', streamName, { statistic, label: `end to end ${statistic}` }),
        ),
        right: [ingestP95.with({ label: 'API p95 (s)' })],
        leftAnnotations: [{ value: ALARMS.p95LatencyMs, label: 'p95 target' }],
        width: 12,
      }),
      new cloudwatch.GraphWidget({
        title: 'Queue depth',
        left: [
          data.retryQueue.metricApproximateNumberOfMessagesVisible({ period: minute, label: 'retry (due)' }),
          data.retryQueue.metricApproximateNumberOfMessagesDelayed({ period: minute, label: 'retry (waiting)' }),
          data.deadLetterQueue.metricApproximateNumberOfMessagesVisible({ period: minute, label: 'dead letters' }),
        ],
        width: 12,
      }),
    );
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Consumer lag (iterator age, ms)',
        left: [iteratorAge],
        leftAnnotations: [{ value: ALARMS.iteratorAgeMs, label: 'alarm' }],
        width: 12,
      }),
      new cloudwatch.GraphWidget({
        title: 'Services',
        left: [
          services.ingest.metricCpuUtilization({ label: 'ingest CPU %' }),
          services.consume.metricCpuUtilization({ label: 'consume CPU %' }),
        ],
        width: 12,
      }),
    );
    this.dashboard.addWidgets(new cloudwatch.AlarmStatusWidget({ title: 'Alarms', alarms: this.alarms, width: 24 }));
  }

  /** An alarm on `metric` above `threshold`, for `minutes` one-minute periods (or `periods` of the metric's own). */
  private alarm(
    id: string,
    metric: cloudwatch.IMetric,
    options: { threshold: number; minutes?: number; periods?: number; description: string },
  ): void {
    const periods = options.periods ?? options.minutes ?? 1;
    const alarm = new cloudwatch.Alarm(this, id, {
      metric,
      threshold: options.threshold,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: periods,
      datapointsToAlarm: periods,
      // No traffic is not a failure.
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      alarmDescription: options.description,
    });
    alarm.addAlarmAction(new actions.SnsAction(this.topic));
    alarm.addOkAction(new actions.SnsAction(this.topic));
    this.alarms.push(alarm);
  }
}
