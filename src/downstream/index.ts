/** Placeholder until issue 5 lands: downstream credentials are built here. */
import type { Config } from '../config/schema.ts';
import type { SqliteDatabase } from '../storage/sqlite/database.ts';
import type { Logger } from '../log.ts';
import { noDownstreamCredentials, type DownstreamCredentials } from './types.ts';

export type { DownstreamCredentials } from './types.ts';

export interface DownstreamOptions {
  config: Config;
  db: SqliteDatabase;
  logger: Logger;
  env: NodeJS.ProcessEnv;
}

export async function createDownstreamCredentials(_options: DownstreamOptions): Promise<DownstreamCredentials> {
  return noDownstreamCredentials;
}
