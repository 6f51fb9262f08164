/**
 * `MCP-Protocol-Version` (MCP 2025-11-25 transports §Protocol Version Header).
 */
import { GatewayError } from './errors.ts';

/** Revisions this gateway serves. 2024-11-05 is accepted: it differs only in transport (HTTP+SSE), and a client speaking it over Streamable HTTP sends the same messages. */
export const SUPPORTED_PROTOCOL_VERSIONS = ['2025-11-25', '2025-06-18', '2025-03-26', '2024-11-05'] as const;
export type ProtocolVersion = (typeof SUPPORTED_PROTOCOL_VERSIONS)[number];

/** MCP 2025-11-25 transports §Protocol Version Header: without the header and no other way to know, assume 2025-03-26. */
export const DEFAULT_PROTOCOL_VERSION: ProtocolVersion = '2025-03-26';

export function isSupportedProtocolVersion(v: unknown): v is ProtocolVersion {
  return typeof v === 'string' && (SUPPORTED_PROTOCOL_VERSIONS as readonly string[]).includes(v);
}

/**
 * Reads the header: undefined when absent; 400 when present and invalid or unsupported.
 * @see MCP 2025-11-25 basic/transports "Protocol Version Header"
 */
export function parseProtocolVersionHeader(value: string | string[] | undefined): ProtocolVersion | undefined {
  if (value === undefined) return undefined;
  if (isSupportedProtocolVersion(value)) return value;
  const shown = Array.isArray(value) ? value.join(',') : value;
  throw new GatewayError('unsupported_protocol_version', `Unsupported MCP-Protocol-Version: ${shown.slice(0, 40).replace(/[^\x20-\x7e]/g, '?')} (supported: ${SUPPORTED_PROTOCOL_VERSIONS.join(', ')})`);
}

/** JSON-RPC batches exist only in 2025-03-26 (removed in 2025-06-18). */
export function allowsBatches(v: ProtocolVersion): boolean {
  return v === '2025-03-26' || v === '2024-11-05';
}
