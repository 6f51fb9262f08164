// A stdio MCP server with the demo notes server's tools, prompts and resources, for the policy
// end-to-end test of filtered lists over SSE: when a list request carries a progressToken it
// sends a progress notification first, so the gateway answers with an SSE stream and filters the
// list result as one event of it. tools/list is paginated (two pages) to show cursors survive.
import { createInterface } from 'node:readline';

const send = (m) => process.stdout.write(`${JSON.stringify(m)}\n`);
const tool = (name) => ({ name, inputSchema: { type: 'object' } });
const TOOL_PAGES = { '': { tools: ['list_notes', 'read_note', 'create_note'].map(tool), nextCursor: 'page-2' }, 'page-2': { tools: ['search_notes', 'delete_note', 'whoami'].map(tool) } };

createInterface({ input: process.stdin }).on('line', (line) => {
  const m = JSON.parse(line);
  if (!m.method || m.id === undefined) return;
  const reply = (result) => send({ jsonrpc: '2.0', id: m.id, result });
  const progress = m.params?._meta?.progressToken;
  if (progress !== undefined) send({ jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: progress, progress: 1, total: 1 } });
  switch (m.method) {
    case 'initialize':
      return reply({ protocolVersion: m.params?.protocolVersion ?? '2025-11-25', capabilities: { tools: {}, prompts: {}, resources: {} }, serverInfo: { name: 'policy-upstream', version: '1.0.0' } });
    case 'ping':
      return reply({});
    case 'tools/list': {
      const page = TOOL_PAGES[m.params?.cursor ?? ''];
      if (!page) return send({ jsonrpc: '2.0', id: m.id, error: { code: -32602, message: 'invalid cursor' } });
      return reply(page);
    }
    case 'prompts/list':
      return reply({ prompts: [{ name: 'summarize' }, { name: 'purge_plan' }] });
    case 'resources/list':
      return reply({ resources: [{ uri: 'notes://note/1', name: 'note 1' }, { uri: 'notes://admin/audit', name: 'audit' }] });
    case 'resources/templates/list':
      return reply({ resourceTemplates: [{ uriTemplate: 'notes://note/{id}', name: 'note' }] });
    case 'tools/call':
      return reply({ content: [{ type: 'text', text: `called ${m.params?.name}` }] });
    default:
      return send({ jsonrpc: '2.0', id: m.id, error: { code: -32601, message: 'Method not found' } });
  }
});
