/**
 * `--config FILE` or `--demo`: the one way every operator command (start, users, clients, keys,
 * consents, audit, explain, secrets) turns its options into a validated Config.
 */
import { buildDemoConfig } from '../config/demo.ts';
import { loadConfigFile } from '../config/load.ts';
import type { Config } from '../config/schema.ts';
import { UsageError } from './options.ts';

export function configFromOptions(values: { config?: string | undefined; demo?: boolean | undefined }, env: NodeJS.ProcessEnv): Config {
  if (values.config && values.demo) throw new UsageError('give either --config FILE or --demo, not both');
  if (values.config) return loadConfigFile(values.config, env);
  if (values.demo) return buildDemoConfig(env);
  throw new UsageError('say which configuration to read: --config FILE, or --demo for the npm start setup');
}
