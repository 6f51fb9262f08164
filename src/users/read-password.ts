/**
 * Reads a password for the CLI without it ever being an argv value (argv is visible to every
 * local user in `ps`): from piped stdin (first line), or from a TTY prompt with echo off.
 */
/** The password from piped stdin (first line) or a hidden TTY prompt. */
export async function readPassword(input: NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?: (on: boolean) => unknown }, output: NodeJS.WritableStream, prompt = 'Password: '): Promise<string> {
  if (!input.isTTY) {
    let data = '';
    for await (const chunk of input) {
      data += chunk.toString();
      const nl = data.indexOf('\n');
      if (nl !== -1) return data.slice(0, nl).replace(/\r$/, '');
    }
    return data.replace(/\r?\n$/, '');
  }
  output.write(prompt);
  input.setRawMode?.(true);
  return new Promise((resolve, reject) => {
    let value = '';
    const onData = (buf: Buffer) => {
      for (const ch of buf.toString('utf8')) {
        if (ch === '\r' || ch === '\n') { done(); output.write('\n'); resolve(value); return; }
        if (ch === '\u0003') { done(); reject(new Error('cancelled')); return; }
        if (ch === '\u007f' || ch === '\b') value = value.slice(0, -1);
        else value += ch;
      }
    };
    const done = () => { input.setRawMode?.(false); input.removeListener('data', onData as never); (input as NodeJS.ReadStream).pause?.(); };
    input.on('data', onData as never);
    (input as NodeJS.ReadStream).resume?.();
  });
}

