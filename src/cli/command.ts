/** The shape of one `mcp-warden <command>`: what it is given and what it returns. */
export interface CommandContext {
  args: string[];
  env: NodeJS.ProcessEnv;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  /**
   * Parse and validate the invocation, then return 0 without doing anything (no config, store,
   * network or server): what the docs tests use to check every documented command line.
   */
  checkOnly?: boolean;
}

/** A command returns its exit code. Errors it throws are printed as one line, never as a stack. */
export type Command = (ctx: CommandContext) => Promise<number>;
