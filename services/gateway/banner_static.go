package gateway

import (
	"bytes"
	"embed"
	"html/template"
	"io/fs"
	"net/http"
	"sync"

	"github.com/ringback/ringback/services/internal/logging"
)

// web holds the banner's browser side: widget.js (the script a company's
// page embeds) and demo.html (the demo page's template).
//
//go:embed web
var webFiles embed.FS

// bannerCSP is the demo page's Content-Security-Policy: scripts and
// connections to the gateway only; inline styles (the page's and the
// widget's) are allowed, inline scripts are not.
const bannerCSP = "default-src 'self'; script-src 'self'; connect-src 'self'; style-src 'self' 'unsafe-inline'; " +
	"img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// webAssets are the files served from web/, read once.
type webAssets struct {
	files fs.FS
	once  sync.Once
	js    []byte             // nil: not built in
	demo  *template.Template // nil: not built in or does not parse
	err   error              // why demo is nil
}

func embeddedWeb() *webAssets {
	sub, _ := fs.Sub(webFiles, "web") // cannot fail: "web" is a valid path
	return &webAssets{files: sub}
}

func (a *webAssets) load() {
	a.once.Do(func() {
		a.js, _ = fs.ReadFile(a.files, "widget.js")
		src, err := fs.ReadFile(a.files, "demo.html")
		if err != nil {
			a.err = err
			return
		}
		a.demo, a.err = template.New("demo.html").Parse(string(src))
	})
}

// widget serves the banner script. Any page may load it (it only calls the
// campaign's endpoints, which check the page's origin).
func (b *bannerAPI) widget(w http.ResponseWriter, _ *http.Request) {
	b.web.load()
	if b.web.js == nil {
		writeError(w, ErrorDetail{Code: ReasonNotFound, HTTPStatus: http.StatusNotFound, Message: "this gateway has no widget.js built in"})
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/javascript; charset=utf-8")
	h.Set("Cache-Control", "public, max-age=300")
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(b.web.js)
}

// demoPage is what demo.html is rendered with.
type demoPage struct {
	CampaignID string
	PublicKey  string
	Lang       string // "en" or "es"
}

// demo renders the demo page for the demo campaign: the one the
// DemoCampaign hook names (make run creates one), else
// RINGBACK_DEMO_CAMPAIGN.
func (b *bannerAPI) demo(w http.ResponseWriter, r *http.Request) {
	id := ""
	if b.demoCampaign != nil {
		id = b.demoCampaign()
	}
	if id == "" {
		id = b.demoDefault
	}
	if id == "" {
		writeError(w, ErrorDetail{Code: ReasonNotFound, HTTPStatus: http.StatusNotFound,
			Message: "no demo campaign: set RINGBACK_DEMO_CAMPAIGN to the id of a campaign (make run creates one)"})
		return
	}
	c := b.campaign(w, r, id)
	if c == nil {
		return
	}
	b.web.load()
	if b.web.demo == nil {
		b.log.Error("banner demo page", logging.Err(b.web.err))
		writeError(w, ErrorDetail{Code: ReasonNotFound, HTTPStatus: http.StatusNotFound, Message: "this gateway has no demo page built in"})
		return
	}
	lang := r.URL.Query().Get("lang")
	if lang != "es" {
		lang = "en"
	}
	var buf bytes.Buffer
	if err := b.web.demo.Execute(&buf, demoPage{CampaignID: c.pc.GetId(), PublicKey: c.pc.GetPublicKey(), Lang: lang}); err != nil {
		b.log.Error("banner demo page", logging.Err(err))
		writeError(w, ErrorDetail{Code: ReasonInternal, HTTPStatus: http.StatusInternalServerError, Message: "internal error"})
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", bannerCSP)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	_, _ = w.Write(buf.Bytes())
}
