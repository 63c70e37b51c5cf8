#!/usr/bin/env node
// The CDK app: `npx cdk synth` (all environments) or `npx cdk deploy -c env=prod Triggers-prod`.
import { App } from 'aws-cdk-lib';
import { buildApp } from '../lib/app';

buildApp(new App(), process.env.CDK_DEFAULT_ACCOUNT);
