/**
 * The one error type of the account pages: an HTTP status, a title and a message a person can act
 * on, rendered as a page in one place (routes.ts). `reason` is for the log only.
 */
export class AccountError extends Error {
  override name = 'AccountError';
  constructor(
    readonly status: number,
    readonly title: string,
    message: string,
    readonly reason?: string,
  ) {
    super(message);
  }
}
