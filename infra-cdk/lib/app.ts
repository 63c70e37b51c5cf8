import { App } from 'aws-cdk-lib';
import { deploymentTargets } from './options';
import { TriggersStack, stackName } from './triggers-stack';

/** Adds one stack per environment selected by the app's context (`-c env=…`, all three by default). */
export function buildApp(app: App, defaultAccount: string | undefined): TriggersStack[] {
  const targets = deploymentTargets((key) => app.node.tryGetContext(key), defaultAccount);
  return targets.map((target) => new TriggersStack(app, stackName(target.config.name), { target }));
}
