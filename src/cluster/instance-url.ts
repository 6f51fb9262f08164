/**
 * Where one instance reaches another (`cluster.instanceUrl`, and the URL each instance announces in
 * the session directory): http(s), a host and a port, nothing else. One check for both ends: the
 * configuration refuses what a peer would refuse to send a hop to, so a deployment cannot start
 * with an address its peers will treat as a dead instance's.
 */

/**
 * An instance URL as the hop needs it: http(s), a host, no credentials, path, query or fragment,
 * read with the WHATWG URL parser the hop itself uses (so what passes here cannot make it throw).
 * Its origin (WHATWG URL §origin: scheme, host and a port other than the scheme's default), or
 * undefined.
 * @see https://url.spec.whatwg.org/#concept-url-origin
 */
export function parseInstanceUrl(text: unknown): string | undefined {
  if (typeof text !== 'string' || !/^https?:\/\/[^/?#\s]+$/.test(text)) return undefined;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return undefined;
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.username || url.password || url.pathname !== '/' || url.search || url.hash || !url.hostname) return undefined;
  return url.origin;
}
