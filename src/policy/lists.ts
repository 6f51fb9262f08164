/**
 * The MCP list methods whose results the policy filters (docs/policy.md: a list shows only what the
 * caller may use), and where each list keeps its items' names.
 * @see MCP 2025-11-25 server/tools §Listing Tools, server/resources §Listing Resources and
 * §Resource Templates, server/prompts §Listing Prompts
 */
import type { TargetKind } from './request.ts';

export interface ListSpec {
  /** The result field holding the items. */
  readonly key: string;
  /** The item field naming it. */
  readonly field: string;
  /** The method that uses an item, checked to decide whether the item is shown. */
  readonly method: string;
  readonly kind: TargetKind;
  /** The name is an RFC 6570 URI template. */
  readonly template?: boolean;
}

export const LIST_FIELDS: Readonly<Record<string, ListSpec>> = {
  'tools/list': { key: 'tools', field: 'name', method: 'tools/call', kind: 'tool' },
  'resources/list': { key: 'resources', field: 'uri', method: 'resources/read', kind: 'resource' },
  // A template is listed when the URI standing for it (each `{…}` as one segment) could be read.
  'resources/templates/list': { key: 'resourceTemplates', field: 'uriTemplate', method: 'resources/read', kind: 'resource', template: true },
  'prompts/list': { key: 'prompts', field: 'name', method: 'prompts/get', kind: 'prompt' },
};

/** Methods whose results the policy engine filters. */
export const LIST_METHODS: ReadonlySet<string> = new Set(Object.keys(LIST_FIELDS));
