import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { repositoryRoot } from '../lib/services';
import { synthesize } from './helpers';

describe('the container image', () => {
  const dockerfile = fs.readFileSync(path.join(repositoryRoot(), 'Dockerfile'), 'utf8');
  const instructions = dockerfile
    .split('\n')
    .filter((line) => /^[A-Z]+\s/.test(line))
    .map((line) => line.split(/\s+/)[0]);

  test('the Dockerfile builds the triggers binary in release mode, then copies it into a slim image', () => {
    const stages = dockerfile.split('\n').filter((line) => line.startsWith('FROM '));
    assert.equal(stages.length, 2);
    assert.match(stages[0]!, / AS build$/);
    assert.match(stages[1]!, /-slim$/);
    assert.match(dockerfile, /cargo build --release --locked --bin triggers/);
    assert.match(dockerfile, /COPY --from=build \/usr\/local\/bin\/triggers/);
  });

  test('the runtime runs as a non-root user', () => {
    const users = dockerfile.split('\n').filter((line) => line.startsWith('USER '));
    assert.equal(users.length, 1);
    assert.ok(instructions.lastIndexOf('USER') > instructions.lastIndexOf('FROM'));
    const user = users[0]!.slice('USER '.length).split(':')[0]!;
    assert.notEqual(user, 'root');
    assert.notEqual(user, '0');
  });

  test('synth stages the build context without building it: the workspace, not target/, node_modules or .git', () => {
    const { outdir, stack } = synthesize('prod');
    const manifest = JSON.parse(fs.readFileSync(path.join(outdir, `${stack.artifactId}.assets.json`), 'utf8'));
    const images = Object.values(manifest.dockerImages) as any[];
    assert.equal(images.length, 1, 'one image for both roles');
    const context = path.join(outdir, images[0].source.directory);
    const staged = fs.readdirSync(context);
    for (const wanted of ['Dockerfile', 'Cargo.toml', 'Cargo.lock', 'cli', 'schemas', 'stream', 'ingest']) {
      assert.ok(staged.includes(wanted), `${wanted} is in the build context`);
    }
    for (const unwanted of ['target', 'node_modules', '.git', 'infra-cdk', 'triggers-data']) {
      assert.ok(!staged.includes(unwanted), `${unwanted} is not in the build context`);
    }
    // Every workspace member is there, so `cargo build --locked` finds the whole workspace.
    const members = fs
      .readFileSync(path.join(repositoryRoot(), 'Cargo.toml'), 'utf8')
      .match(/members = \[([^\]]*)\]/)![1]!
      .match(/"([^"]+)"/g)!
      .map((member) => member.slice(1, -1));
    for (const member of members) assert.ok(fs.existsSync(path.join(context, member, 'Cargo.toml')), member);
  });
});
