import { LazybdError } from '../errors.js';

export type ControlErrorCode =
  /** The request is not what the API takes (body, fields, JSON). */
  | 'E_CONTROL_BAD_REQUEST'
  | 'E_CONTROL_UNKNOWN_ROUTE'
  /** No daemon answers on the control socket. */
  | 'E_DAEMON_UNREACHABLE'
  /** No running daemon was found, or several and none was named. */
  | 'E_NO_DAEMON'
  | 'E_DAEMON_AMBIGUOUS'
  | 'E_CONTROL_PROTOCOL';

export class ControlError extends LazybdError {
  constructor(code: ControlErrorCode, message: string, options?: { cause?: unknown; exitStatus?: number }) {
    super(code, message, { exitStatus: 2, ...options });
  }
}
