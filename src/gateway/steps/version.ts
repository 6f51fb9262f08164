/**
 * Step 4, version: `MCP-Protocol-Version` (MCP 2025-11-25 transports §Protocol Version Header).
 * The one rule for POST, GET and DELETE:
 *  - absent: the session's negotiated version, else 2025-03-26 (the clause's backwards-compatibility default);
 *  - present and invalid or unsupported: 400;
 *  - present and supported: accepted, also when it differs from the version negotiated for the
 *    session. The clause requires 400 only for invalid or unsupported versions, and real clients
 *    (java-sdk issue #883) send an older header after negotiating a newer one.
 * Within a session the negotiated version (lifecycle §Version Negotiation) is the one that
 * governs: it decides batches, stream priming, and the header sent upstream.
 */
import type { IncomingMessage } from 'node:http';
import { GatewayError } from '../errors.ts';
import { allowsBatches, DEFAULT_PROTOCOL_VERSION, parseProtocolVersionHeader, type ProtocolVersion } from '../protocol-version.ts';

/**
 * The header's version, undefined when absent.
 * @throws GatewayError unsupported_protocol_version (400) for an invalid or unsupported value
 */
export function readProtocolVersion(req: IncomingMessage): ProtocolVersion | undefined {
  return parseProtocolVersionHeader(req.headers['mcp-protocol-version']);
}

/** The version that governs a request: the session's negotiated one, else the header's, else the default. */
export function governingVersion(negotiated: ProtocolVersion | undefined, header: ProtocolVersion | undefined): ProtocolVersion {
  return negotiated ?? header ?? DEFAULT_PROTOCOL_VERSION;
}

/**
 * JSON-RPC batches exist only in 2025-03-26 (removed in 2025-06-18).
 * @throws GatewayError batch_not_allowed (400)
 */
export function checkBatchAllowed(version: ProtocolVersion, batch: boolean): void {
  if (batch && !allowsBatches(version)) throw new GatewayError('batch_not_allowed', `Invalid Request: JSON-RPC batches are not accepted for protocol version ${version}`);
}
