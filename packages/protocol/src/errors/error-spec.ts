/**
 * One entry of the error catalogue. `status` is the HTTP status the operator plane answers with;
 * `message` is the neutral text a caller sees. Detail (which check failed, and why) never goes in
 * the message: it goes to the audit log and the server log.
 */
export interface ErrorSpec {
  readonly status: number;
  readonly message: string;
}

export type Catalogue = Readonly<Record<string, ErrorSpec>>;
