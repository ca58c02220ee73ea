// The embedded server's max payload: its default and bounds, apart from the server code (the CLI checks the option at start-up).

/**
 * The largest message the embedded server takes, headers included (nats-server's own default is
 * 1 MiB; a 640x640 RGB float32 image is 4.9 MB). Bigger tensors go by reference anyway (claim check).
 */
export const DEFAULT_MAX_PAYLOAD = 8 * 1024 * 1024;
/** nats-server refuses a max payload above its max_pending (64 MiB by default). */
export const MAX_MAX_PAYLOAD = 64 * 1024 * 1024;

export function checkMaxPayload(bytes: number): number {
  if (!Number.isInteger(bytes) || bytes < 1024 || bytes > MAX_MAX_PAYLOAD) {
    throw new RangeError(`max payload must be a whole number of bytes from 1024 to ${MAX_MAX_PAYLOAD} (64 MiB, nats-server's max_pending), got ${bytes}`);
  }
  return bytes;
}
