/**
 * Enterprise-Managed Authorization (MCP ext-auth, SEP-990): the user's ID token from the
 * enterprise IdP is exchanged at the IdP (RFC 8693) for an Identity Assertion JWT Authorization
 * Grant (ID-JAG) naming this AS as audience and the MCP server as resource; the ID-JAG is then the
 * assertion of the RFC 7523 jwt-bearer grant at the AS (`grant: 'jwt_bearer'`).
 */
import { requestJwtAuthorizationGrant, type FetchLike } from '@modelcontextprotocol/client';
import { ClientError } from './errors.ts';
import type { AssertionContext } from './provider.ts';

export interface IdJagOptions {
  /** The IdP's token endpoint. */
  idpTokenEndpoint: string;
  /** This client's id (and secret, if confidential) at the IdP. */
  idpClientId: string;
  idpClientSecret?: string;
  /** The user's OpenID Connect ID token from the IdP (asked for each time: it expires). */
  idToken: () => Promise<string>;
  fetch?: FetchLike;
}

/** An `assertion` source for WardenClient that performs the IdP token exchange. */
export function idJagAssertion(options: IdJagOptions): (ctx: AssertionContext) => Promise<string> {
  return async (ctx) => {
    if (!ctx.issuer || !ctx.resource) throw new ClientError('protocol_error', 'the ID-JAG exchange needs the authorization server issuer and the resource; discovery did not provide them');
    const grant = await requestJwtAuthorizationGrant({
      tokenEndpoint: options.idpTokenEndpoint,
      audience: ctx.issuer,
      resource: ctx.resource,
      idToken: await options.idToken(),
      clientId: options.idpClientId,
      ...(options.idpClientSecret !== undefined && { clientSecret: options.idpClientSecret }),
      ...(ctx.scope !== undefined && { scope: ctx.scope }),
      ...(options.fetch !== undefined && { fetchFn: options.fetch }),
    });
    return grant.jwtAuthGrant;
  };
}
