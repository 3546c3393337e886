// Plain-language errors: what happened and what to do, for the failures a
// person meets (devices, network, the server's codes). Technical detail, if
// any, goes to the console, not into the sentence.

/** A camera or microphone failure, in words. what: "Camera", "Microphone", ... */
export function plainMediaError(err, what) {
  switch (err && err.name) {
    case 'NotAllowedError':
    case 'SecurityError':
      return `${what} blocked: allow it in the address bar, then turn it on again.`;
    case 'NotFoundError':
    case 'OverconstrainedError':
      return `${what} not found: plug one in or pick another in the device settings.`;
    case 'NotReadableError':
    case 'AbortError':
      return `${what} busy: another program is using it. Close that program and try again.`;
    default:
      console.warn(`huddle: ${what}`, err);
      return `${what} could not start (${(err && err.message) || err}).`;
  }
}

/** Screen sharing failures, in words; null when the person cancelled. */
export function plainShareError(err) {
  switch (err && err.name) {
    case 'NotAllowedError':
      return null; // cancelled in the picker, or sharing is disallowed; nothing to say
    case 'NotSupportedError':
    case 'TypeError':
      return 'This browser cannot share a screen from this page.';
    default:
      return `Screen sharing did not start (${(err && err.message) || err}).`;
  }
}

/**
 * Rewrites network-level messages into sentences. Messages already meant
 * for people pass unchanged.
 */
export function plainNetworkError(text) {
  if (/Failed to fetch|NetworkError|Load failed/i.test(text)) {
    return 'The server is unreachable. Check your network connection, then try again.';
  }
  if (/could not reach the signaling server/i.test(text)) {
    return 'The server is unreachable. Check your network connection, then try again.';
  }
  const lost = /^lost the connection to the server/i.exec(text);
  if (lost) return 'Lost the connection to the server. Check your network connection, then join again.';
  if (/no ICE path|media connection failed/i.test(text)) {
    return 'Audio and video cannot get through to the server (a firewall may block them). The call may not work.';
  }
  return text;
}
