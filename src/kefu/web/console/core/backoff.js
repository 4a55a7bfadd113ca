// How long to wait before trying again after the server answered `unavailable` (its database away, protocol §2):
// at least the server's retry_after, growing with each try, with jitter so a recovering server is not hit by
// every console at once.

const CEILING_MS = 30000;

export function backoffMs(retryAfterS, tries) {
  const least = (retryAfterS || 1) * 1000;
  return least + Math.random() * (Math.min(CEILING_MS, least * 2 ** Math.min(tries, 4)) - least);
}
