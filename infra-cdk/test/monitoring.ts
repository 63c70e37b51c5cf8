import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { referencedId, referencedIds, resources, single, synthesize } from './helpers';

type Template = ReturnType<typeof synthesize>['template'];

/** The product alarm with this logical-id prefix (the CDK appends a hash). */
function alarm(template: Template, name: string) {
  const found = Object.entries(resources(template, 'AWS::CloudWatch::Alarm')).filter(([id]) =>
    id.startsWith(`Monitoring${name}`),
  );
  assert.equal(found.length, 1, `alarm ${name}`);
  return found[0][1].Properties;
}

/** The metrics of an alarm's math expression, by their id in the expression. */
function metricsOf(properties: any): Record<string, any> {
  return Object.fromEntries(
    properties.Metrics.filter((entry: any) => entry.MetricStat).map((entry: any) => [entry.Id, entry.MetricStat]),
  );
}

describe('the alarms', () => {
  const { template } = synthesize('prod');
  const topic = single(template, 'AWS::SNS::Topic');

  test('API error rate above 5% for 10 minutes (5xx over requests, on the public load balancer)', () => {
    const properties = alarm(template, 'ApiErrorRate');
    assert.equal(properties.Threshold, 5);
    assert.equal(properties.ComparisonOperator, 'GreaterThanThreshold');
    assert.equal(properties.EvaluationPeriods, 10);
    assert.equal(properties.DatapointsToAlarm, 10);
    const expression = properties.Metrics.find((entry: any) => entry.Expression);
    assert.match(expression.Expression, /100 \* \(FILL\(target5xx, 0\) \+ FILL\(elb5xx, 0\)\) \/ requests/);
    const metrics = metricsOf(properties);
    assert.equal(metrics.requests.Metric.MetricName, 'RequestCount');
    assert.equal(metrics.target5xx.Metric.MetricName, 'HTTPCode_Target_5XX_Count');
    assert.equal(metrics.elb5xx.Metric.MetricName, 'HTTPCode_ELB_5XX_Count');
    for (const metric of Object.values(metrics)) assert.equal(metric.Period, 60);
  });

  test('delivery error rate above 5% for 10 minutes (failed attempts over all attempts)', () => {
    const properties = alarm(template, 'DeliveryErrorRate');
    assert.equal(properties.Threshold, 5);
    assert.equal(properties.EvaluationPeriods, 10);
    assert.equal(properties.DatapointsToAlarm, 10);
    const metrics = metricsOf(properties);
    assert.equal(metrics.ok.Metric.MetricName, 'DeliveriesSucceeded');
    assert.equal(metrics.failed.Metric.MetricName, 'DeliveriesFailed');
    for (const metric of Object.values(metrics)) {
      assert.equal(metric.Metric.Namespace, 'Triggers');
      assert.equal(metric.Metric.Dimensions[0].Name, 'StreamName');
      assert.equal(referencedId(metric.Metric.Dimensions[0].Value), single(template, 'AWS::Kinesis::Stream').id);
      assert.equal(metric.Period, 60);
    }
  });

  test('p95 latency above 5 s: end to end, and of the ingest API', () => {
    const endToEnd = alarm(template, 'EndToEndLatencyP95');
    assert.equal(endToEnd.MetricName, 'EndToEndLatency');
    assert.equal(endToEnd.Namespace, 'Triggers');
    assert.equal(endToEnd.ExtendedStatistic, 'p95');
    assert.equal(endToEnd.Threshold, 5000);
    assert.equal(endToEnd.EvaluationPeriods, 5);
    const api = alarm(template, 'IngestLatencyP95');
    assert.equal(api.MetricName, 'TargetResponseTime');
    assert.equal(api.ExtendedStatistic, 'p95');
    assert.equal(api.Threshold, 5);
  });

  test('DLQ growth: any increase of the dead-letter queue in five minutes', () => {
    const properties = alarm(template, 'DeadLetterQueueGrowth');
    assert.equal(properties.Threshold, 0);
    assert.equal(properties.ComparisonOperator, 'GreaterThanThreshold');
    assert.equal(properties.EvaluationPeriods, 1);
    assert.match(properties.Metrics.find((entry: any) => entry.Expression).Expression, /^DIFF\(/);
    const dlq = single(template, 'AWS::SQS::Queue', (p) => p.QueueName.endsWith('dlq'));
    for (const metric of Object.values(metricsOf(properties))) {
      assert.equal(metric.Metric.Namespace, 'AWS/SQS');
      assert.ok(referencedIds(metric.Metric.Dimensions).has(dlq.id));
      assert.equal(metric.Period, 300);
    }
  });

  test('iterator age above a minute for 5 minutes', () => {
    const properties = alarm(template, 'IteratorAge');
    assert.equal(properties.MetricName, 'GetRecords.IteratorAgeMilliseconds');
    assert.equal(properties.Statistic, 'Maximum');
    assert.equal(properties.Threshold, 60000);
    assert.equal(properties.EvaluationPeriods, 5);
  });

  test('ALB 5xx and unhealthy hosts', () => {
    const loadBalancer5xx = alarm(template, 'LoadBalancer5xx');
    assert.equal(loadBalancer5xx.MetricName, 'HTTPCode_ELB_5XX_Count');
    assert.equal(loadBalancer5xx.Statistic, 'Sum');
    assert.equal(loadBalancer5xx.Period, 300);
    assert.equal(loadBalancer5xx.Threshold, 9);
    for (const name of ['PublicUnhealthyHosts', 'AdminUnhealthyHosts']) {
      const properties = alarm(template, name);
      assert.equal(properties.MetricName, 'UnHealthyHostCount');
      assert.equal(properties.Threshold, 0);
      assert.equal(properties.EvaluationPeriods, 3);
    }
  });

  test('every product alarm notifies the alarm topic, on alarm and on recovery', () => {
    const productAlarms = Object.entries(resources(template, 'AWS::CloudWatch::Alarm')).filter(([id]) =>
      id.startsWith('Monitoring'),
    );
    assert.equal(productAlarms.length, 9);
    for (const [, { Properties }] of productAlarms) {
      assert.deepEqual(Properties.AlarmActions, [{ Ref: topic.id }]);
      assert.deepEqual(Properties.OKActions, [{ Ref: topic.id }]);
      assert.equal(Properties.TreatMissingData, 'notBreaching');
    }
  });

  test('an e-mail address from the context subscribes to the topic', () => {
    const withEmail = synthesize('staging', { alarmEmail: 'oncall@example.com' }).template;
    withEmail.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: 'oncall@example.com' });
    assert.equal(Object.keys(resources(template, 'AWS::SNS::Subscription')).length, 0);
  });
});

describe('the dashboard', () => {
  test('shows ingest rate, delivery success, latency, queue depth and lag', () => {
    const { template } = synthesize('prod');
    const dashboard = single(template, 'AWS::CloudWatch::Dashboard');
    assert.equal(dashboard.Properties.DashboardName, 'triggers-prod');
    const body = JSON.stringify(dashboard.Properties.DashboardBody);
    for (const title of ['Ingest rate', 'Delivery success', 'Latency', 'Queue depth', 'Consumer lag']) {
      assert.ok(body.includes(title), title);
    }
    for (const metric of [
      'EventsAccepted',
      'DeliveriesSucceeded',
      'DeliveriesFailed',
      'EndToEndLatency',
      'ApproximateNumberOfMessagesVisible',
      'GetRecords.IteratorAgeMilliseconds',
    ]) {
      assert.ok(body.includes(metric), metric);
    }
  });
});
