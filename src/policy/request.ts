/**
 * What a JSON-RPC request asks for, as far as policy is concerned: the kind of thing it touches
 * (tool, resource, prompt, or just a method) and its name or URI. Params are untrusted, so this
 * only reads them and reports a malformed request instead of guessing.
 */

export type TargetKind = 'tool' | 'resource' | 'prompt' | 'method';

export interface ParsedRequest {
  method: string;
  kind: TargetKind;
  /** Tool name, resource URI (or URI template sample) or prompt name; null for plain methods. */
  target: string | null;
  /** Tool or prompt arguments when given as an object. */
  args: Readonly<Record<string, unknown>> | undefined;
  /** Why the request cannot be checked (it is then denied), in words safe to show the caller. */
  malformed?: string;
}

function record(value: unknown): Record<string, unknown> | undefined {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

import { MAX_MATCHED_LENGTH } from './glob.ts';

/** Refusal for names and URIs longer than any pattern is tested against (they would match nothing, deny rules included). */
const TOO_LONG = `the target is longer than ${MAX_MATCHED_LENGTH} characters`;

/**
 * RFC 3986 §5.2.4 dot segments would let `notes://note/../admin/audit` match a pattern meant for
 * notes only; such URIs are refused instead of normalized, because the upstream may resolve them
 * differently from us. `%2e` is the same character (RFC 3986 §2.3).
 */
export function hasDotSegments(uri: string): boolean {
  const decoded = uri.replace(/%2e/gi, '.');
  // eslint-disable-next-line no-control-regex -- control characters are matched on purpose: such a URI is refused
  return /(^|\/)\.{1,2}(\/|$|[?#])/.test(decoded) || /[\\\u0000-\u001f]/.test(decoded);
}

/**
 * A concrete URI standing for an RFC 6570 URI template, so resource patterns can be tested
 * against templates: every `{…}` expression becomes one `_` (a single path segment).
 */
export function templateSample(uriTemplate: string): string {
  return uriTemplate.replace(/\{[^}]*\}/g, '_');
}

function resourceRequest(method: string, uri: unknown, args?: Record<string, unknown>): ParsedRequest {
  if (typeof uri !== 'string' || uri === '') {
    return { method, kind: 'resource', target: null, args, malformed: 'the request names no resource URI' };
  }
  if (uri.length > MAX_MATCHED_LENGTH) return { method, kind: 'resource', target: null, args, malformed: TOO_LONG };
  if (hasDotSegments(uri)) {
    return { method, kind: 'resource', target: uri, args, malformed: 'the resource URI has "." or ".." segments or control characters; use its canonical form' };
  }
  return { method, kind: 'resource', target: uri, args };
}

function namedRequest(method: string, kind: 'tool' | 'prompt', name: unknown, rawArgs: unknown): ParsedRequest {
  if (typeof name !== 'string' || name === '') {
    return { method, kind, target: null, args: undefined, malformed: `the request names no ${kind}` };
  }
  if (name.length > MAX_MATCHED_LENGTH) return { method, kind, target: null, args: undefined, malformed: TOO_LONG };
  const args = record(rawArgs);
  if (rawArgs !== undefined && !args) {
    return { method, kind, target: name, args: undefined, malformed: `the ${kind} arguments must be an object` };
  }
  return { method, kind, target: name, args };
}

/**
 * Classifies a JSON-RPC request for the policy engine.
 * @see MCP 2025-11-25 server/tools §Calling Tools, server/resources §Reading Resources and
 * §Subscriptions, server/prompts §Getting a Prompt, server/utilities/completion.
 */
export function parsePolicyRequest(method: string, params: unknown): ParsedRequest {
  const p = record(params);
  switch (method) {
    case 'tools/call':
      return namedRequest(method, 'tool', p?.name, p?.arguments);
    case 'prompts/get':
      return namedRequest(method, 'prompt', p?.name, p?.arguments);
    case 'resources/read':
    case 'resources/subscribe':
      return resourceRequest(method, p?.uri);
    case 'resources/unsubscribe':
      // Unsubscribing reveals nothing, so method rules alone govern it; the URI is kept for the audit.
      return { method, kind: 'method', target: typeof p?.uri === 'string' ? p.uri : null, args: undefined };
    case 'completion/complete': {
      // Completing a prompt's or a resource template's arguments reveals what they hold: it is
      // allowed exactly when the prompt or the template's resources are.
      const ref = record(p?.ref);
      if (ref?.type === 'ref/prompt') return namedRequest(method, 'prompt', ref.name, undefined);
      if (ref?.type === 'ref/resource') {
        return typeof ref.uri === 'string' ? resourceRequest(method, templateSample(ref.uri)) : resourceRequest(method, undefined);
      }
      return { method, kind: 'method', target: null, args: undefined };
    }
    default:
      return { method, kind: 'method', target: null, args: undefined };
  }
}
