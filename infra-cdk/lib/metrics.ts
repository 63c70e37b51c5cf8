import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';

/**
 * The CloudWatch metrics the aws backend publishes (PutMetricData) that AWS cannot see by itself, and
 * that the alarms and the dashboard read. Every one carries the dimension `StreamName` (the process's
 * `TRIGGERS_STREAM_NAME`), so that environments sharing an account never mix their figures.
 */
export const APP_METRICS = {
  namespace: 'Triggers',
  dimension: 'StreamName',
  /** Count: events accepted with a 202 (batch items included). */
  eventsAccepted: 'EventsAccepted',
  /** Count: delivery attempts answered 2xx (or 410, which resolves the event). */
  deliveriesSucceeded: 'DeliveriesSucceeded',
  /** Count: delivery attempts that failed (any other status, a timeout, a connection error). */
  deliveriesFailed: 'DeliveriesFailed',
  /** Milliseconds, one value per delivered event: from `received_at` to the endpoint's 2xx. */
  endToEndLatency: 'EndToEndLatency',
} as const;

/** One of the application's metrics for the stream `streamName`. */
export function appMetric(
  name: Exclude<keyof typeof APP_METRICS, 'namespace' | 'dimension'>,
  streamName: string,
  options: { statistic: string; period?: Duration; label?: string },
): cloudwatch.Metric {
  return new cloudwatch.Metric({
    namespace: APP_METRICS.namespace,
    metricName: APP_METRICS[name],
    dimensionsMap: { [APP_METRICS.dimension]: streamName },
    statistic: options.statistic,
    period: options.period ?? Duration.minutes(1),
    label: options.label,
  });
}
