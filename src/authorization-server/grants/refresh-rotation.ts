/**
 * Refresh-token rotation that never forks the token family and whose answer survives a crash
 * (OAuth 2.1 §4.3.1, RFC 9700 §2.2.2 and §4.14.2).
 *
 * oidc-provider rotates a refresh token in three separate writes: it consumes the old token, saves
 * its successor, and answers. Here, within one token request:
 * 1. the adapter defers the consumption and the successor's write (it records them in the
 *    request's RotationContext instead of writing);
 * 2. when oidc-provider has built a 200 answer, `consumeAndWrite` commits the consumption, the
 *    successor and a `RefreshRotation` record (old token → successor) in one transaction, and only
 *    if the old token was still unconsumed; nothing is answered before that commit;
 * 3. a later request presenting the rotated-out token is a retry of a lost answer, and gets the
 *    same successor (with a fresh access token of the same grant), while the successor is unused
 *    and either the first answer never left (a crash between commit and answer: whatever the
 *    restart time) or it left at most `refreshGraceSeconds` ago. Any other use of a rotated-out
 *    token is reuse: the adapter reports it consumed, and oidc-provider revokes the whole grant,
 *    access tokens included (revocation.ts).
 * Two rotations racing on one token (two requests, or two instances) cannot both commit: the loser
 * answers with the winner's successor, so the family never forks.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { KoaContextWithOIDC } from 'oidc-provider';
import type { ModelStore, ModelWrite } from '../../storage/store.ts';

/** The model that maps a rotated-out refresh token to its successor. */
export const ROTATION_MODEL = 'RefreshRotation';

/** What one token request did to refresh tokens, filled in by the adapter. */
export interface RotationContext {
  /** The refresh token this request presented (the first one it looked up). */
  presented?: string;
  /** Set when the presented token was rotated already and its answer may be given again. */
  replaySuccessor?: string;
  /** The deferred consumption of `presented` (ms). */
  consumedAt?: number;
  /** The deferred write of the successor. */
  successor?: ModelWrite;
}

const scope = new AsyncLocalStorage<RotationContext>();

/** The rotation context of the token request being served, if any. */
export function currentRotation(): RotationContext | undefined {
  return scope.getStore();
}

export interface RotationOptions {
  models: ModelStore;
  now: () => number;
  refreshGraceSeconds: number;
  tokenPath: string;
  /** Runs right after a rotation committed, before its answer is sent (crash tests only). */
  afterCommit?: () => void;
  onError?: (err: unknown) => void;
}

export interface RefreshRotation {
  /**
   * The successor to hand out again for a rotated-out token, or undefined when presenting it is
   * reuse (no rotation record, successor used or gone, or the answer left longer than the grace
   * window ago).
   */
  replayableSuccessor(presented: string): Promise<string | undefined>;
  /** Koa middleware for oidc-provider (`provider.use`) that commits rotations as described above. */
  middleware(ctx: KoaContextWithOIDC, next: () => Promise<void>): Promise<void>;
}

/** The rotation state of one authorization server. @see https://www.rfc-editor.org/rfc/rfc9700#section-4.14.2 */
export function createRefreshRotation(o: RotationOptions): RefreshRotation {
  const { models, now } = o;
  const graceMs = o.refreshGraceSeconds * 1000;
  // When this process sent each recent answer: known at once, before the stored `sentAt` is
  // committed, and lost in a crash, exactly like an answer that never left. Bounded by the window.
  const sent = new Map<string, number>();
  // Kept a minute at least, well past the commit of the stored `sentAt` that takes over.
  const keepMs = Math.max(graceMs, 60_000);
  const forgetOld = () => {
    const horizon = now() - keepMs;
    for (const [id, at] of sent) {
      if (at >= horizon && sent.size < 100_000) break;
      sent.delete(id);
    }
  };

  async function replayableSuccessor(presented: string): Promise<string | undefined> {
    const rotation = await models.find(ROTATION_MODEL, presented);
    const successor = typeof rotation?.successor === 'string' ? rotation.successor : undefined;
    if (!successor) return undefined;
    const next = await models.find('RefreshToken', successor);
    if (!next || next.consumed !== undefined) return undefined;
    const sentAt = sent.get(presented) ?? (typeof rotation!.sentAt === 'number' ? rotation!.sentAt : undefined);
    if (sentAt !== undefined && now() - sentAt >= graceMs) return undefined;
    return successor;
  }

  async function middleware(ctx: KoaContextWithOIDC, next: () => Promise<void>): Promise<void> {
    if (ctx.method !== 'POST' || ctx.path !== o.tokenPath) return next();
    const rotation: RotationContext = {};
    await scope.run(rotation, next);
    const presented = rotation.presented;
    const body = ctx.body as { refresh_token?: string } | undefined;
    if (presented === undefined || ctx.status !== 200 || typeof body?.refresh_token !== 'string') return;
    if (rotation.replaySuccessor) {
      body.refresh_token = rotation.replaySuccessor;
      return;
    }
    const successor = rotation.successor;
    if (rotation.consumedAt === undefined || !successor) return;
    const record: ModelWrite = {
      model: ROTATION_MODEL, id: presented,
      // grantId: revoking the grant (Store.revokeByGrantId) removes the record with it.
      payload: { successor: successor.id, grantId: successor.payload.grantId },
      expiresAt: successor.expiresAt,
    };
    if (await models.consumeAndWrite('RefreshToken', presented, rotation.consumedAt, [successor, record])) {
      o.afterCommit?.();
      // The grace window of a replay runs from when the answer left, not from the commit.
      forgetOld();
      sent.set(presented, now());
      ctx.res.once('finish', () => {
        models.upsert(ROTATION_MODEL, presented, { ...record.payload, sentAt: sent.get(presented) ?? now() }, record.expiresAt)
          .catch((err: unknown) => o.onError?.(err));
      });
      return;
    }
    // Another request rotated the same token first: its successor is the answer.
    const winner = await replayableSuccessor(presented);
    if (winner) {
      body.refresh_token = winner;
      return;
    }
    ctx.status = 400;
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { error: 'invalid_grant', error_description: 'refresh token already used' };
  }

  return { replayableSuccessor, middleware };
}
