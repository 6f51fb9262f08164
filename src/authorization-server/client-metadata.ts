/**
 * Client metadata, type-checked before oidc-provider's client schema reads it: RFC 7591 §2 and
 * OpenID Connect Dynamic Client Registration 1.0 §2 give every field a JSON type (string, array
 * of strings, boolean, number, JWK Set). oidc-provider assumes those types and turns an object
 * where a string belongs (`"id_token_signed_response_alg": {"toString": 1}`) into a silent 500.
 * Here such a value gets RFC 7591 §3.2.2 `invalid_client_metadata` naming the field and the type
 * it must have.
 *
 * One validator for every way metadata arrives: a registration request (RFC 7591 §3.1), a client
 * ID metadata document (draft-ietf-oauth-client-id-metadata-document §4.1, the same metadata
 * fields) and `mcp-warden clients add`. Policy on the values (which redirect URIs, which auth
 * methods) stays in provider.ts; this module only decides whether the shapes are right.
 */
import { AuthorizationServerError } from './errors.ts';

type FieldType = 'string' | 'string[]' | 'boolean' | 'integer' | 'jwks';

/** Fields whose type the RFCs name, beyond the suffix rules below. @see RFC 7591 §2, OIDC Registration §2 */
const FIELD_TYPES: Record<string, FieldType> = {
  client_id: 'string',
  client_secret: 'string',
  client_name: 'string',
  client_uri: 'string',
  logo_uri: 'string',
  tos_uri: 'string',
  policy_uri: 'string',
  jwks_uri: 'string',
  initiate_login_uri: 'string',
  sector_identifier_uri: 'string',
  backchannel_logout_uri: 'string',
  backchannel_client_notification_endpoint: 'string',
  software_id: 'string',
  software_version: 'string',
  software_statement: 'string',
  token_endpoint_auth_method: 'string',
  application_type: 'string',
  subject_type: 'string',
  scope: 'string',
  backchannel_token_delivery_mode: 'string',
  tls_client_auth_subject_dn: 'string',
  tls_client_auth_san_dns: 'string',
  tls_client_auth_san_uri: 'string',
  tls_client_auth_san_ip: 'string',
  tls_client_auth_san_email: 'string',
  redirect_uris: 'string[]',
  post_logout_redirect_uris: 'string[]',
  request_uris: 'string[]',
  grant_types: 'string[]',
  response_types: 'string[]',
  response_modes: 'string[]',
  contacts: 'string[]',
  default_acr_values: 'string[]',
  authorization_details_types: 'string[]',
  require_auth_time: 'boolean',
  require_pushed_authorization_requests: 'boolean',
  require_signed_request_object: 'boolean',
  dpop_bound_access_tokens: 'boolean',
  tls_client_certificate_bound_access_tokens: 'boolean',
  backchannel_logout_session_required: 'boolean',
  backchannel_user_code_parameter: 'boolean',
  use_mtls_endpoint_aliases: 'boolean',
  default_max_age: 'integer',
  client_id_issued_at: 'integer',
  client_secret_expires_at: 'integer',
  jwks: 'jwks',
};

const DESCRIBE: Record<FieldType, string> = {
  string: 'a string',
  'string[]': 'an array of strings',
  boolean: 'true or false',
  integer: 'a non-negative integer',
  jwks: 'a JWK Set: an object whose "keys" is an array of JWK objects (RFC 7517 §5)',
};

/**
 * The type a field must have, by name: the table above, then the families the specs define by
 * suffix (every `*_alg`, `*_enc`, `*_uri`, `*_method` is a string; RFC 7591 §2.2 language-tagged
 * human-readable fields such as `client_name#fr` are strings).
 */
function typeOf(field: string): FieldType | undefined {
  const base = field.includes('#') ? field.slice(0, field.indexOf('#')) : field;
  if (base !== field) return FIELD_TYPES[base] === 'string' ? 'string' : undefined;
  const known = FIELD_TYPES[field];
  if (known) return known;
  if (/_(alg|enc|uri|method)$/.test(field)) return 'string';
  return undefined;
}

function hasType(value: unknown, type: FieldType): boolean {
  switch (type) {
    case 'string': return typeof value === 'string';
    case 'string[]': return Array.isArray(value) && value.every((v) => typeof v === 'string');
    case 'boolean': return typeof value === 'boolean';
    case 'integer': return Number.isSafeInteger(value) && (value as number) >= 0;
    case 'jwks': {
      if (!value || typeof value !== 'object' || Array.isArray(value)) return false;
      const keys = (value as { keys?: unknown }).keys;
      return Array.isArray(keys) && keys.every((k) => k !== null && typeof k === 'object' && !Array.isArray(k));
    }
  }
}

function shown(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) {
    const bad = value.find((v) => typeof v !== 'string');
    return bad === undefined ? 'an array' : `an array containing ${bad === null ? 'null' : typeof bad === 'object' ? (Array.isArray(bad) ? 'an array' : 'an object') : `a ${typeof bad}`}`;
  }
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

/**
 * Checks that `metadata` is a JSON object and that every field whose type the specs define has
 * that type. Fields we do not know are left alone (oidc-provider drops unrecognised metadata).
 * @throws AuthorizationServerError invalid_client_metadata naming the first field at fault
 * @see RFC 7591 §2 (client metadata), §3.2.2 (invalid_client_metadata)
 */
export function assertClientMetadataTypes(metadata: unknown, source = 'client metadata'): asserts metadata is Record<string, unknown> {
  if (!metadata || typeof metadata !== 'object' || Array.isArray(metadata)) {
    throw new AuthorizationServerError('invalid_client_metadata', `${source} must be a JSON object`);
  }
  for (const [field, value] of Object.entries(metadata)) {
    if (value === undefined) continue;
    const type = typeOf(field);
    if (type && !hasType(value, type)) {
      throw new AuthorizationServerError('invalid_client_metadata', `${field} must be ${DESCRIBE[type]}, not ${shown(value)}`, {
        reason: `${source}: ${field} has the wrong JSON type`,
      });
    }
  }
}
