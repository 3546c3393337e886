// A small line chart of a participant's bitrate over the last samples,
// drawn on a canvas (no library: the page has no build step).
export function drawChart(canvas, samples) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || 160, h = canvas.clientHeight || 36;
  if (canvas.width !== w * dpr) { canvas.width = w * dpr; canvas.height = h * dpr; }
  const g = canvas.getContext('2d');
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, w, h);
  if (samples.length < 2) return 0;
  const top = Math.max(...samples, 1);
  g.strokeStyle = '#2f6fde';
  g.lineWidth = 1.5;
  g.beginPath();
  samples.forEach((v, i) => {
    const x = (i / (samples.length - 1)) * (w - 2) + 1;
    const y = h - 2 - (v / top) * (h - 4);
    if (i === 0) g.moveTo(x, y); else g.lineTo(x, y);
  });
  g.stroke();
  return samples.length;
}

// kbps formats bits per second for people.
export function kbps(bps) {
  if (!bps) return '0 kb/s';
  return bps >= 1e6 ? (bps / 1e6).toFixed(2) + ' Mb/s' : Math.round(bps / 1e3) + ' kb/s';
}
