// @ts-check
/**
 * The demo MCP server that `npm start` protects: a small notes service over stdio, built with
 * the official SDK. Read tools for everyone; write and delete tools meant for admins, so the
 * policy has something to decide. It knows nothing of OAuth: the gateway does all of that.
 *
 * It reports the downstream credential it was started with (`whoami`), so tests can show that
 * each user's session gets that user's credential without printing a secret whole.
 *
 * Plain JavaScript (types in JSDoc) on purpose: the gateway starts one of these per session (or
 * per user, with share: per-user), and running it through tsx's loader cost ~38 MB PSS and ~0.5 s
 * of start-up per child (docs/benchmarks.md, "Footprint").
 */
import { McpServer, ResourceTemplate } from '@modelcontextprotocol/server';
import { StdioServerTransport } from '@modelcontextprotocol/server/stdio';
import { createHash } from 'node:crypto';
import { z } from 'zod';

/** @typedef {{ id: string, title: string, body: string }} Note */

/** @type {Map<string, Note>} */
const notes = new Map([
  ['1', { id: '1', title: 'Welcome', body: 'mcp-warden asks of every request: is that allowed?' }],
  ['2', { id: '2', title: 'Roles', body: 'alice is an admin; bob is a member.' }],
]);
let nextId = 3;

const server = new McpServer({ name: 'warden-demo-notes', version: '1.0.0' });
/** @param {string} t */
const text = (t) => ({ content: [{ type: /** @type {const} */ ('text'), text: t }] });

server.registerTool('list_notes', { description: 'List every note (id and title).', annotations: { readOnlyHint: true } }, async () =>
  text([...notes.values()].map((n) => `${n.id}: ${n.title}`).join('\n')),
);

server.registerTool(
  'read_note',
  { description: 'Read one note by id.', inputSchema: z.object({ id: z.string() }), annotations: { readOnlyHint: true } },
  async ({ id }) => {
    const note = notes.get(id);
    return note ? text(`${note.title}\n\n${note.body}`) : { ...text(`no note ${id}`), isError: true };
  },
);

server.registerTool(
  'search_notes',
  { description: 'Find notes whose title or body contains a word.', inputSchema: z.object({ query: z.string() }), annotations: { readOnlyHint: true } },
  async ({ query }) => {
    const q = query.toLowerCase();
    const hits = [...notes.values()].filter((n) => `${n.title} ${n.body}`.toLowerCase().includes(q));
    return text(hits.map((n) => `${n.id}: ${n.title}`).join('\n') || 'no match');
  },
);

server.registerTool(
  'create_note',
  { description: 'Create a note (admin).', inputSchema: z.object({ title: z.string(), body: z.string() }) },
  async ({ title, body }) => {
    const id = String(nextId++);
    notes.set(id, { id, title, body });
    return text(`created note ${id}`);
  },
);

server.registerTool(
  'delete_note',
  { description: 'Delete a note by id (admin).', inputSchema: z.object({ id: z.string() }), annotations: { destructiveHint: true } },
  async ({ id }) => (notes.delete(id) ? text(`deleted note ${id}`) : { ...text(`no note ${id}`), isError: true }),
);

server.registerTool(
  'whoami',
  { description: 'Which downstream credential this session was started with (a fingerprint, never the secret).', annotations: { readOnlyHint: true } },
  async () => {
    const credential = process.env.NOTES_API_TOKEN;
    if (!credential) return text('credential: none');
    // The demo downstream credential's label is safe to show; a secret is only fingerprinted.
    const label = process.env.NOTES_API_USER ?? 'unknown';
    const fingerprint = createHash('sha256').update(credential).digest('hex').slice(0, 12);
    return text(`user: ${label}\ncredential-sha256: ${fingerprint}`);
  },
);

server.registerResource(
  'note',
  new ResourceTemplate('notes://note/{id}', { list: async () => ({ resources: [...notes.values()].map((n) => ({ uri: `notes://note/${n.id}`, name: n.title })) }) }),
  { description: 'A note as a resource', mimeType: 'text/plain' },
  async (uri, { id }) => {
    const note = notes.get(String(id));
    return { contents: [{ uri: uri.href, mimeType: 'text/plain', text: note ? note.body : '' }] };
  },
);

server.registerResource('audit-log', 'notes://admin/audit', { description: 'Who changed what (admin)', mimeType: 'text/plain' }, async (uri) => ({
  contents: [{ uri: uri.href, mimeType: 'text/plain', text: 'no changes recorded' }],
}));

server.registerPrompt('summarize', { description: 'Summarize the notes', argsSchema: z.object({ style: z.string().optional() }) }, ({ style }) => ({
  messages: [{ role: /** @type {const} */ ('user'), content: { type: /** @type {const} */ ('text'), text: `Summarize these notes${style ? ` in a ${style} style` : ''}.` } }],
}));

server.registerPrompt('purge_plan', { description: 'Plan a clean-up of old notes (admin)' }, () => ({
  messages: [{ role: /** @type {const} */ ('user'), content: { type: /** @type {const} */ ('text'), text: 'Propose which notes to delete.' } }],
}));

await server.connect(new StdioServerTransport());
