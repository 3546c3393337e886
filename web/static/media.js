// Local camera and microphone.

/**
 * Asks for camera and microphone. A meeting is still worth joining without
 * them (to watch and listen), so failure is not an error: the result carries
 * a warning to show instead.
 *
 * @returns {Promise<{stream: MediaStream|null, warning: string|null}>}
 */
export async function getLocalMedia() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    // Browsers only offer cameras to secure pages: https, or localhost.
    return { stream: null, warning: 'This page is not secure (https or localhost), so the browser offers no camera or microphone. You joined without them.' };
  }
  const video = { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30 } };
  const audio = { echoCancellation: true, noiseSuppression: true, autoGainControl: true };
  try {
    return { stream: await navigator.mediaDevices.getUserMedia({ video, audio }), warning: null };
  } catch (both) {
    // A person with a microphone but no camera (or the other way round)
    // should still be heard or seen: try each alone.
    for (const [constraints, missing] of [[{ audio }, 'camera'], [{ video }, 'microphone']]) {
      try {
        const stream = await navigator.mediaDevices.getUserMedia(constraints);
        return { stream, warning: `No ${missing}: ${describe(both)}` };
      } catch { /* try the next */ }
    }
    return { stream: null, warning: `Joined without camera and microphone: ${describe(both)}` };
  }
}

function describe(err) {
  switch (err && err.name) {
    case 'NotAllowedError': return 'permission was denied.';
    case 'NotFoundError': return 'no device was found.';
    case 'NotReadableError': return 'the device is in use by another program.';
    default: return (err && err.message) || String(err);
  }
}

/** The protocol's source name for a local track. */
export function sourceOf(track) {
  return track.kind === 'video' ? 'camera' : 'microphone';
}

export function stopStream(stream) {
  if (stream) for (const t of stream.getTracks()) t.stop();
}
