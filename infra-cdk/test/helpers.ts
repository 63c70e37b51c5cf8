import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { buildApp } from '../lib/app';
import { EnvName } from '../lib/environments';
import { TriggersStack } from '../lib/triggers-stack';

/** The package's root (where cdk.json is), from dist/test or test. */
export const PACKAGE_ROOT = (() => {
  let directory = __dirname;
  while (!fs.existsSync(path.join(directory, 'cdk.json'))) directory = path.dirname(directory);
  return directory;
})();

/** The feature flags and context of cdk.json, which the CLI would pass to the app. */
export function cdkJsonContext(): Record<string, unknown> {
  return JSON.parse(fs.readFileSync(path.join(PACKAGE_ROOT, 'cdk.json'), 'utf8')).context;
}

export interface Synthesized {
  readonly stack: TriggersStack;
  readonly template: Template;
  readonly outdir: string;
}

const cache = new Map<string, Synthesized>();

/**
 * Synthesizes one environment as `cdk synth -c env=<env>` would (cdk.json's context included), into a
 * temporary directory removed when the process exits. Cached per environment and extra context.
 */
export function synthesize(env: EnvName, extraContext: Record<string, unknown> = {}): Synthesized {
  const key = JSON.stringify([env, extraContext]);
  const cached = cache.get(key);
  if (cached) return cached;
  const outdir = temporaryDirectory('triggers-cdk-test-');
  const app = new App({ outdir, context: { ...cdkJsonContext(), env, ...extraContext } });
  const [stack] = buildApp(app, '123456789012');
  const synthesized = { stack, template: Template.fromStack(stack), outdir };
  cache.set(key, synthesized);
  return synthesized;
}

const temporaryDirectories: string[] = [];
process.on('exit', () => {
  for (const directory of temporaryDirectories) fs.rmSync(directory, { recursive: true, force: true });
});

/** A fresh temporary directory, removed when the test process exits. */
export function temporaryDirectory(prefix: string): string {
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  temporaryDirectories.push(directory);
  return directory;
}

/** The resources of `type` in `template`, by logical id. */
export function resources(template: Template, type: string): Record<string, { Properties: any; [key: string]: any }> {
  return template.findResources(type) as Record<string, { Properties: any; [key: string]: any }>;
}

/** The only resource of `type` whose properties satisfy `match`. */
export function single(
  template: Template,
  type: string,
  match: (properties: any) => boolean = () => true,
): { id: string; Properties: any; [key: string]: any } {
  const found = Object.entries(resources(template, type)).filter(([, resource]) => match(resource.Properties ?? {}));
  if (found.length !== 1) throw new Error(`expected one ${type}, found ${found.length}`);
  const [id, resource] = found[0];
  return { id, ...resource };
}

/** The logical id referenced by `{Ref}` or `{Fn::GetAtt}`, if `value` is one. */
export function referencedId(value: unknown): string | undefined {
  if (value && typeof value === 'object') {
    const object = value as Record<string, unknown>;
    if (typeof object.Ref === 'string') return object.Ref;
    if (Array.isArray(object['Fn::GetAtt'])) return object['Fn::GetAtt'][0] as string;
  }
  return undefined;
}

/** Every logical id that `value` refers to, however deeply nested. */
export function referencedIds(value: unknown): Set<string> {
  const ids = new Set<string>();
  const walk = (node: unknown): void => {
    const id = referencedId(node);
    if (id) ids.add(id);
    if (Array.isArray(node)) node.forEach(walk);
    else if (node && typeof node === 'object') Object.values(node).forEach(walk);
  };
  walk(value);
  return ids;
}

/** A container definition's environment as a plain object. */
export function environmentOf(container: any): Record<string, unknown> {
  return Object.fromEntries((container.Environment ?? []).map((entry: any) => [entry.Name, entry.Value]));
}

/** The container definition of the task that runs `triggers <role>`. */
export function containerOf(template: Template, role: 'ingest' | 'consume'): any {
  const task = single(template, 'AWS::ECS::TaskDefinition', (properties) =>
    properties.ContainerDefinitions[0].Command.join(' ').endsWith(`exec triggers ${role}`),
  );
  return task.Properties.ContainerDefinitions[0];
}

/** The statements of the IAM policies attached to the role `roleId`. */
export function statementsOf(template: Template, roleId: string): any[] {
  return Object.values(resources(template, 'AWS::IAM::Policy'))
    .filter((policy) => policy.Properties.Roles.some((role: unknown) => referencedId(role) === roleId))
    .flatMap((policy) => policy.Properties.PolicyDocument.Statement);
}

/** The actions of a statement, always as a list. */
export function actionsOf(statement: any): string[] {
  return Array.isArray(statement.Action) ? statement.Action : [statement.Action];
}
