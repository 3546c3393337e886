// Package web holds Huddle's browser meeting page: plain HTML, CSS and ES
// modules under static/, embedded into the binary so that `huddle serve`
// needs no files beside itself and no Node build step.
//
// The signaling server mounts Handler at "/"; its own routes (/ws, /healthz,
// /api/..., /metrics) are registered on more specific patterns and win.
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed static
var staticFS embed.FS

// asset is one embedded file, read once at start-up.
type asset struct {
	body        []byte
	contentType string
	etag        string
}

// contentTypes are set explicitly rather than taken from the system's MIME
// table: a browser refuses to run an ES module served with a wrong type, and
// minimal containers often have no /etc/mime.types.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
	".png":  "image/png",
	".ico":  "image/x-icon",
	".json": "application/json",
}

// csp keeps the page to its own origin. connect-src 'self' covers the
// same-origin ws:/wss: WebSocket in CSP level 3 browsers; media comes from
// MediaStreams, which CSP does not govern.
const csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; media-src 'self' blob: mediastream:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"

// Handler serves the meeting page: index.html at "/" and the other files of
// static/ at their names ("/app.js", "/style.css", ...).
//
// Files carry a content-hash ETag and "Cache-Control: no-cache": the browser
// keeps them but revalidates on every load, so a new server version is picked
// up at once without content-hashed file names (there is no build step to
// make them).
func Handler() http.Handler {
	assets, err := loadAssets()
	if err != nil {
		// The files are compiled in; failing here means the binary is broken.
		panic("web: " + err.Error())
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		name := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
		if name == "" {
			name = "index.html"
		}
		a, ok := assets[name]
		if !ok {
			// A directory's index page (/admin/ is the dashboard).
			if a, ok = assets[name+"/index.html"]; ok {
				name += "/index.html"
			}
		}
		if !ok {
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		h.Set("Content-Type", a.contentType)
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", a.etag)
		h.Set("X-Content-Type-Options", "nosniff")
		// Invite links can carry a token in the query string: never leak it
		// to other sites through the Referer header.
		h.Set("Referrer-Policy", "no-referrer")
		if strings.HasSuffix(name, ".html") {
			h.Set("Content-Security-Policy", csp)
			h.Set("X-Frame-Options", "DENY")
		}
		// ServeContent answers If-None-Match with 304 and handles HEAD and
		// ranges. The zero modtime keeps it from sending Last-Modified.
		http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(a.body))
	})
}

// loadAssets reads every file under static/ into memory, keyed by its path
// relative to static/.
func loadAssets() (map[string]asset, error) {
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, err
	}
	assets := map[string]asset{}
	err = fs.WalkDir(sub, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := fs.ReadFile(sub, p)
		if err != nil {
			return err
		}
		ext := path.Ext(p)
		ct, ok := contentTypes[ext]
		if !ok {
			ct = mime.TypeByExtension(ext)
		}
		if ct == "" {
			ct = "application/octet-stream"
		}
		sum := sha256.Sum256(body)
		assets[p] = asset{body: body, contentType: ct, etag: `"` + hex.EncodeToString(sum[:16]) + `"`}
		return nil
	})
	return assets, err
}
