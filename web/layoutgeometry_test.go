package web_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/huddle-rtc/huddle/web"
)

// TestLayoutGeometry runs layout.js in chromium over many stage sizes and
// tile counts: tiles are 16:9, inside the stage, never overlap, and the
// block of tiles spans the stage's width or height; the spotlight keeps
// every tile inside and apart too.
func TestLayoutGeometry(t *testing.T) {
	mux := http.NewServeMux()
	mux.Handle("/", web.Handler())
	mux.HandleFunc("/layouttest.html", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, `<!doctype html><meta charset="utf-8"><script type="module">
import * as layout from '/layout.js';
window.layout = layout;
</script>`)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	b := newBrowser(t, "layout")
	b.dumpLogsOnFailure()
	b.mustDo(20*time.Second, "open the test page",
		chromedp.Navigate(srv.URL+"/layouttest.html"),
		chromedp.Poll[chromedp.Void](`!!window.layout`, chromedp.WithPollingTimeout(10*time.Second)))
	res, err := eval[struct {
		Cases    int      `json:"cases"`
		Failures []string `json:"failures"`
	}](b, `(() => {
		const { gridRects, spotlightRects } = window.layout;
		const failures = [];
		let cases = 0;
		const fail = (s) => { if (failures.length < 20) failures.push(s); };
		const inside = (r, box) => r.x >= box.x - 0.5 && r.y >= box.y - 0.5 && r.x + r.w <= box.x + box.w + 0.5 && r.y + r.h <= box.y + box.h + 0.5;
		const overlap = (a, b) => a.x + a.w > b.x + 0.5 && b.x + b.w > a.x + 0.5 && a.y + a.h > b.y + 0.5 && b.y + b.h > a.y + 0.5;
		const gap = 10;
		for (let w = 280; w <= 2000; w += 97) for (let h = 200; h <= 1200; h += 89) for (let n = 1; n <= 16; n++) {
			cases++;
			const box = { x: 0, y: 0, w, h };
			const rs = gridRects(n, box, gap);
			const tag = n + ' in ' + w + 'x' + h;
			if (rs.length !== n) fail(tag + ': ' + rs.length + ' rects');
			let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
			rs.forEach((r, i) => {
				if (Math.abs(r.w / r.h - 16 / 9) > 0.01) fail(tag + ': tile ' + i + ' not 16:9');
				if (!inside(r, box)) fail(tag + ': tile ' + i + ' outside');
				for (let j = i + 1; j < n; j++) if (overlap(r, rs[j])) fail(tag + ': tiles ' + i + ' and ' + j + ' overlap');
				x0 = Math.min(x0, r.x); y0 = Math.min(y0, r.y); x1 = Math.max(x1, r.x + r.w); y1 = Math.max(y1, r.y + r.h);
			});
			if (x1 - x0 < w - 1 && y1 - y0 < h - 1) fail(tag + ': tiles span only ' + Math.round(x1 - x0) + 'x' + Math.round(y1 - y0));
			const s = spotlightRects(n - 1, box, gap);
			const all = [s.featured, ...s.strip];
			all.forEach((r, i) => {
				if (!inside(r, box)) fail(tag + ' spotlight: tile ' + i + ' outside');
				for (let j = i + 1; j < all.length; j++) if (overlap(r, all[j])) fail(tag + ' spotlight: tiles ' + i + ' and ' + j + ' overlap');
			});
			if (n > 1 && s.strip.some((r) => r.w * r.h >= s.featured.w * s.featured.h)) fail(tag + ' spotlight: featured not the largest');
		}
		return { cases, failures };
	})()`)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Failures) > 0 {
		t.Fatalf("%d layouts checked; failures:\n%v", res.Cases, res.Failures)
	}
	t.Logf("%d layouts checked", res.Cases)
}
