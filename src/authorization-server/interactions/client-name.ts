/**
 * Client names are claims: a client that registered itself (RFC 7591 §2 `client_name`) or
 * describes itself (a Client ID Metadata Document) chooses its own name, so the sign-in pages show
 * it as what the application calls itself, and warn when it imitates the name of a client an
 * administrator registered (MCP 2025-11-25 Security Best Practices §Confused Deputy: the user must
 * be able to tell which application they are authorizing).
 *
 * Imitation is judged on a skeleton of each name (after Unicode TR39's confusable skeletons, with
 * a small table of the look-alikes that matter in Latin-script names): compatibility-normalised,
 * case-folded, accents, spaces, punctuation and invisible characters dropped, and look-alike
 * letters and digits folded together. A self-asserted name whose skeleton contains a
 * pre-registered name's skeleton imitates it ("Claude Desktop (official)" imitates "Claude
 * Desktop"; so do "CLAUDE  desktop" and "Сlaude Desktop" with a Cyrillic С).
 */

/** Look-alikes folded into one Latin letter (Cyrillic, Greek, digits, ligature-like pairs). */
const CONFUSABLES: Record<string, string> = {
  'а': 'a', 'α': 'a', '@': 'a',
  'в': 'b', 'β': 'b', 'ь': 'b',
  'с': 'c', 'ϲ': 'c',
  'ԁ': 'd',
  'е': 'e', 'ё': 'e', 'ε': 'e', '3': 'e',
  'һ': 'h', 'н': 'h', 'η': 'n',
  'і': 'l', 'ї': 'l', 'ι': 'l', 'i': 'l', '1': 'l', '|': 'l', 'ӏ': 'l', '!': 'l',
  'ј': 'j',
  'к': 'k', 'κ': 'k',
  'м': 'm',
  'о': 'o', 'ο': 'o', 'σ': 'o', '0': 'o',
  'р': 'p', 'ρ': 'p',
  'ԛ': 'q',
  'г': 'r',
  'ѕ': 's', '5': 's', '$': 's',
  'т': 't', 'τ': 't', '7': 't',
  'υ': 'u', 'ц': 'u',
  'ν': 'v', 'ѵ': 'v',
  'ԝ': 'w', 'ω': 'w', 'ш': 'w',
  'х': 'x', 'χ': 'x',
  'у': 'y', 'γ': 'y',
  'ᴢ': 'z', '2': 'z',
};

/** The skeleton two names are compared by. */
export function nameSkeleton(name: string): string {
  const folded = name.normalize('NFKD').toLowerCase().replace(/\p{M}/gu, '');
  let out = '';
  for (const ch of folded) {
    const mapped = CONFUSABLES[ch] ?? ch;
    if (/^[a-z0-9]$/.test(mapped)) out += mapped;
  }
  // Pairs that render like one letter.
  return out.replace(/rn/g, 'm').replace(/vv/g, 'w').replace(/cl/g, 'd');
}

/** Skeletons shorter than this are too common to call an imitation. */
const MIN_SKELETON = 4;

/**
 * The pre-registered name `name` imitates, if any: its skeleton contains that name's skeleton.
 * Returns the first such name, as the administrator spelled it.
 */
export function imitatedName(name: string, preRegisteredNames: readonly string[]): string | undefined {
  const skeleton = nameSkeleton(name);
  for (const candidate of preRegisteredNames) {
    const target = nameSkeleton(candidate);
    if (target.length >= MIN_SKELETON && skeleton.includes(target)) return candidate;
  }
  return undefined;
}
