// Waits for a condition instead of sleeping a fixed time: a fixed sleep that is long enough on a quiet
// machine is too short on a loaded CI runner. Polls every `intervalMs` until `condition` holds, and fails
// with `what` after `timeoutMs` (generous: the wait ends as soon as the condition holds).
export async function waitFor(condition: () => boolean | Promise<boolean>, what: string, { timeoutMs = 10_000, intervalMs = 10 } = {}): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await condition()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
