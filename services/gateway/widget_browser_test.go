package gateway

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"github.com/ringback/ringback/services/internal/browsertest"
	"html/template"
	"math/bits"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// The click-to-call widget (web/widget.js) and its demo page (web/demo.html)
// in headless Chromium, against a scripted fake of the public banner API:
// the visitor's number picks the script, as the simulator's numbers pick how
// a far end behaves. The pages are served under the gateway's CSP, so an
// inline script or eval would fail the test.
//
// RINGBACK_WIDGET_SCREENSHOT=/tmp/widget.png also saves the demo page, and
// the call in progress next to it (widget-connected.png).

const (
	widgetCampaign = "cmp-widget-test"
	widgetKey      = "pk_widget_test_0123456789"
	demoCSP        = "default-src 'self'; script-src 'self'; connect-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)

func TestWidgetBrowser(t *testing.T) {
	api := newFakeBannerAPI(t)
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	browser := startBrowser(t) // closes before srv: its event streams end first

	t.Run("answered after a redial, keyboard only", func(t *testing.T) {
		t.Parallel()
		p := browser.open(t, srv.URL+"/demo/banner?lang=en")
		p.screenshot("")

		// The form's accessible structure.
		if got := p.eval(`(() => { const i = document.querySelector('section.rb-c2c input[type=tel]');
			const l = document.querySelector('label[for="' + i.id + '"]');
			return [l ? l.textContent : '', i.autocomplete, i.inputMode, String(i.required),
				document.querySelector('section.rb-c2c [role=status]').getAttribute('aria-live'),
				document.querySelector('section.rb-c2c').previousElementSibling.tagName,
				String(document.querySelectorAll('#rb-c2c-style').length)].join('|') })()`); got != "Your phone number|tel|tel|true|polite|SCRIPT|1" {
			t.Errorf("form: label|autocomplete|inputmode|required|aria-live|before|styles = %q", got)
		}
		if got := p.eval(`document.querySelector('section.rb-c2c button[type=submit]').textContent`); got != "Call me" {
			t.Errorf("button: %q", got)
		}
		if got := p.eval(`document.getElementById(document.querySelector('section.rb-c2c button[type=submit]').getAttribute('aria-describedby')).textContent`); got != "By pressing Call me you agree to receive a call from this company." {
			t.Errorf("consent: %q", got)
		}

		p.record()
		p.keys("section.rb-c2c input[type=tel]", "+1 555 123 0001"+kb.Tab+"Ana"+kb.Enter)
		p.waitState("connected")
		p.screenshot("connected")
		p.waitState("ended")
		p.wantLog(
			"submitting|Sending your request…",
			"queued|Your call is queued. We'll call you in a moment…",
			"calling_you|We're calling you now…",
			"redialing|We couldn't reach you. Trying again in 2 s…",
			"redialing|We couldn't reach you. Trying again in 1 s…",
			"calling_you|We're calling you now…",
			"connecting|Connecting you to the company…",
			"connected|Connected. Enjoy your call!",
			"ended|Call ended. Thanks!",
		)
		if got := p.eval(`document.querySelector('section.rb-c2c [role=status]').textContent`); got != "Call ended. Thanks!" {
			t.Errorf("announced last: %q", got)
		}
		req := api.request(t, "+1 555 123 0001")
		if req.Key != widgetKey || req.Name != "Ana" || req.Consent != "By pressing Call me you agree to receive a call from this company." {
			t.Errorf("request: %+v", req)
		}

		// "Call me again" has the focus; Enter brings the form back.
		if got := p.eval(`document.activeElement.textContent`); got != "Call me again" {
			t.Fatalf("focus after the call: %q", got)
		}
		p.keys("", kb.Enter)
		p.waitState("idle")
		if got := p.eval(`document.activeElement.type + '|' + document.activeElement.value`); got != "tel|+1 555 123 0001" {
			t.Errorf("focus after Call me again: %q", got)
		}
	})

	t.Run("visitor unreachable, in Spanish", func(t *testing.T) {
		t.Parallel()
		p := browser.open(t, srv.URL+"/demo/banner?lang=es")
		if got := p.eval(`[document.documentElement.lang, document.querySelector('section.rb-c2c').lang,
			document.querySelector('section.rb-c2c label').textContent,
			document.querySelector('section.rb-c2c button[type=submit]').textContent].join('|')`); got != "es|es|Tu número de teléfono|Llámame" {
			t.Errorf("lang|widget lang|label|button = %q", got)
		}
		p.record()
		p.keys("section.rb-c2c input[type=tel]", "+15551230486"+kb.Enter)
		p.waitState("failed_visitor")
		p.wantLog(
			"calling_you|Te estamos llamando…",
			"redialing|No pudimos comunicarnos contigo. Lo intentaremos de nuevo en 2 s…",
			"calling_you|Te estamos llamando…",
			"failed_visitor|No pudimos comunicarnos contigo.",
		)
		if got := p.eval(`document.activeElement.textContent`); got != "Volver a llamarme" {
			t.Fatalf("focus after the call: %q", got)
		}
		p.keys("", kb.Enter)
		p.waitState("idle")
		p.clearNumber()
		p.keys("section.rb-c2c input[type=tel]", "+882 123 4567"+kb.Enter)
		p.waitError("DESTINATION_NOT_SUPPORTED", "Lo sentimos, no podemos llamar a números de ese país o red.")
	})

	t.Run("refusals", func(t *testing.T) {
		t.Parallel()
		p := browser.open(t, srv.URL+"/demo/banner")
		tel := "section.rb-c2c input[type=tel]"
		// The number is the field at fault: it is marked, described by the
		// error and focused.
		fieldErr := `(() => { const i = document.querySelector('section.rb-c2c input[type=tel]');
			const e = document.querySelector('section.rb-c2c .rb-c2c-error');
			return [i.getAttribute('aria-invalid'), i.getAttribute('aria-describedby').split(' ').includes(e.id),
				document.activeElement === i, document.querySelector('section.rb-c2c button[type=submit]').disabled].join('|') })()`

		p.keys(tel, kb.Enter)
		p.waitError("EMPTY_NUMBER", "Please enter your phone number.")
		if got := p.eval(fieldErr); got != "true|true|true|false" {
			t.Errorf("empty number: aria-invalid|described|focused|disabled = %s", got)
		}
		// The focus was on the field already: the error is announced.
		if got := p.eval(`document.querySelector('section.rb-c2c [role=status]').textContent`); got != "Please enter your phone number." {
			t.Errorf("empty number announced: %q", got)
		}
		p.keys(tel, "+882 123 4567"+kb.Enter)
		p.waitError("DESTINATION_NOT_SUPPORTED", "Sorry, we can't call numbers in that country or network.")
		if got := p.eval(fieldErr); got != "true|true|true|false" {
			t.Errorf("unsupported destination: aria-invalid|described|focused|disabled = %s", got)
		}
		p.clearNumber()
		p.keys(tel, "+15559990429"+kb.Enter)
		p.waitError("RATE_LIMITED", "Too many attempts. Please try again in 2 minutes.")
		// Not the number's fault: the number is no longer marked, and the
		// message itself takes the focus.
		if got := p.eval(`[document.querySelector('section.rb-c2c input[type=tel]').hasAttribute('aria-invalid'),
			document.activeElement.classList.contains('rb-c2c-error')].join('|')`); got != "false|true" {
			t.Errorf("rate limited: aria-invalid|error focused = %s", got)
		}
	})

	for _, noSubtle := range []bool{false, true} {
		name := "proof of work"
		if noSubtle {
			name += " without crypto.subtle (a plain http page)"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			number := "+15557770001"
			if noSubtle {
				number = "+15557770002"
			}
			p := browser.openWith(t, srv.URL+"/demo/banner", func(ctx context.Context) error {
				if !noSubtle {
					return nil
				}
				_, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{
					Source: `Object.defineProperty(Crypto.prototype, 'subtle', {get() { return undefined; }});`,
				})
				return err
			})
			if got := p.eval(`String(window.crypto.subtle === undefined)`); got != strconv.FormatBool(noSubtle) {
				t.Fatalf("crypto.subtle missing: %s", got)
			}
			p.record()
			p.keys("section.rb-c2c input[type=tel]", number+kb.Enter)
			p.waitState("ended")
			p.wantLog(
				"challenge|Checking you're not a robot…",
				"submitting|Sending your request…",
				"connected|Connected. Enjoy your call!",
				"ended|Call ended. Thanks!",
			)
			if !api.solvedBy(number) {
				t.Errorf("the server verified no proof of work from %s", number)
			}
		})
	}

	t.Run("polls when the event stream fails", func(t *testing.T) {
		t.Parallel()
		p := browser.open(t, srv.URL+"/demo/banner")
		p.record()
		p.keys("section.rb-c2c input[type=tel]", "+15551230002"+kb.Enter)
		p.waitState("ended")
		p.wantLog("calling_you|We're calling you now…", "connected|Connected. Enjoy your call!", "ended|Call ended. Thanks!")
		if n := api.pollsOf("+15551230002"); n < 3 {
			t.Errorf("GET /v1/calls/{id} asked %d times, want at least 3", n)
		}
	})

	t.Run("scheduled outside opening hours", func(t *testing.T) {
		t.Parallel()
		p := browser.openWith(t, srv.URL+"/demo/banner", func(ctx context.Context) error {
			_, err := chromedp.Call(ctx, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: "UTC"})
			return err
		})
		p.keys("section.rb-c2c input[type=tel]", "+15551230900"+kb.Enter)
		p.waitState("scheduled")
		// Tomorrow 09:00 UTC, in the visitor's words and zone.
		got := p.eval(`document.querySelector('section.rb-c2c .rb-c2c-status').textContent`)
		if !strings.HasPrefix(got, "We're closed now; we'll call you on ") || !strings.Contains(got, "9:00") {
			t.Errorf("scheduled: %q", got)
		}
	})
}

// --- the fake banner API ------------------------------------------------------

// callView is the View of the public API.
type callView struct {
	ID            string `json:"id"`
	CampaignID    string `json:"campaignId"`
	State         string `json:"state"`
	Status        string `json:"status"`
	Outcome       string `json:"outcome"`
	FailureReason string `json:"failureReason,omitempty"`
	Attempt       int    `json:"attempt"`
	MaxAttempts   int    `json:"maxAttempts"`
	NextAttemptAt string `json:"nextAttemptAt,omitempty"`
	RetryInS      *int   `json:"retryInS,omitempty"`
	FirstParty    string `json:"firstParty"`
}

// step is one view of a scripted call, sent after a pause.
type step struct {
	after time.Duration
	view  callView
}

// script is how the fake answers a number.
type script struct {
	status    int // an error instead of a call
	code      string
	challenge bool // a proof of work comes first
	noStream  bool // the event stream fails: the widget must poll
	first     callView
	steps     []step
}

type fakeCall struct {
	number, token string
	script        script
	polls         int
}

type fakeBannerAPI struct {
	t      *testing.T
	widget []byte
	demo   *template.Template
	mux    *http.ServeMux

	mu         sync.Mutex
	n          int
	calls      map[string]*fakeCall
	challenges map[string]bool
	solved     map[string]bool
	requests   map[string]bannerCallRequest // the last one of each number
}

func newFakeBannerAPI(t *testing.T) *fakeBannerAPI {
	widget, err := os.ReadFile("web/widget.js")
	if err != nil {
		t.Fatal(err)
	}
	demo, err := template.ParseFiles("web/demo.html")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeBannerAPI{t: t, widget: widget, demo: demo, mux: http.NewServeMux(),
		calls: map[string]*fakeCall{}, challenges: map[string]bool{}, solved: map[string]bool{}, requests: map[string]bannerCallRequest{}}
	f.mux.HandleFunc("GET /widget.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		w.Write(f.widget)
	})
	f.mux.HandleFunc("GET /demo/banner", f.serveDemo)
	f.mux.HandleFunc("POST /v1/campaigns/{campaign}/click2call", f.click2call)
	f.mux.HandleFunc("GET /v1/calls/{id}/events", f.events)
	f.mux.HandleFunc("GET /v1/calls/{id}", f.get)
	return f
}

func (f *fakeBannerAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) { f.mux.ServeHTTP(w, r) }

func (f *fakeBannerAPI) serveDemo(w http.ResponseWriter, r *http.Request) {
	lang := "en"
	if r.URL.Query().Get("lang") == "es" {
		lang = "es"
	}
	w.Header().Set("Content-Security-Policy", demoCSP)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	err := f.demo.Execute(w, struct{ CampaignID, PublicKey, Lang string }{widgetCampaign, widgetKey, lang})
	if err != nil {
		f.t.Errorf("render demo.html: %v", err)
	}
}

// scriptFor is the fake's repertoire, by the digits of the number.
func scriptFor(digits string) (script, bool) {
	in := func(s int) *int { return &s }
	v := func(state string, attempt int) callView {
		return callView{State: state, Status: "CALL_STATUS_DIALING", Outcome: "OUTCOME_UNSPECIFIED", Attempt: attempt, MaxAttempts: 2, FirstParty: "visitor"}
	}
	end := func(state, reason string, attempt int) callView {
		c := v(state, attempt)
		c.Status, c.FailureReason = "CALL_STATUS_COMPLETED", reason
		if reason != "" {
			c.Status = "CALL_STATUS_FAILED"
		}
		return c
	}
	redial := v("redialing", 1)
	redial.RetryInS = in(2)
	ms := time.Millisecond
	switch digits {
	case "15551230001": // answers at the second attempt
		return script{first: v("queued", 1), steps: []step{
			{300 * ms, v("calling_you", 1)}, {400 * ms, redial}, {2200 * ms, v("calling_you", 2)},
			{300 * ms, v("connecting", 2)}, {300 * ms, v("connected", 2)}, {1500 * ms, end("ended", "", 2)},
		}}, true
	case "15551230486": // busy twice
		return script{first: v("queued", 1), steps: []step{
			{200 * ms, v("calling_you", 1)}, {300 * ms, redial}, {2100 * ms, v("calling_you", 2)},
			{300 * ms, end("failed_visitor", "FAILURE_REASON_BUSY", 2)},
		}}, true
	case "15551230002":
		return script{noStream: true, first: v("queued", 1), steps: []step{
			{0, v("calling_you", 1)}, {0, v("connected", 1)}, {0, end("ended", "", 1)},
		}}, true
	case "15557770001", "15557770002":
		return script{challenge: true, first: v("calling_you", 1), steps: []step{
			{200 * ms, v("connected", 1)}, {200 * ms, end("ended", "", 1)},
		}}, true
	case "15551230900":
		s := v("scheduled", 1)
		tomorrow := time.Now().UTC().AddDate(0, 0, 1)
		s.NextAttemptAt = time.Date(tomorrow.Year(), tomorrow.Month(), tomorrow.Day(), 9, 0, 0, 0, time.UTC).Format(time.RFC3339)
		return script{first: s}, true
	case "8821234567":
		return script{status: 422, code: "DESTINATION_NOT_SUPPORTED"}, true
	case "15559990429":
		return script{status: 429, code: "RATE_LIMITED"}, true
	}
	return script{}, false
}

func digitsOf(number string) string {
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, number)
}

func writeAPIError(w http.ResponseWriter, status int, code string, extra map[string]any) {
	e := map[string]any{"code": code, "message": "fake: " + code, "http_status": status}
	for k, v := range extra {
		e[k] = v
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"error": e})
}

func (f *fakeBannerAPI) click2call(w http.ResponseWriter, r *http.Request) {
	var req bannerCallRequest
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeAPIError(w, 400, "INVALID_ARGUMENT", nil)
		return
	}
	if r.PathValue("campaign") != widgetCampaign {
		writeAPIError(w, 404, "CAMPAIGN_NOT_FOUND", nil)
		return
	}
	if req.Key != widgetKey {
		writeAPIError(w, 401, "INVALID_KEY", nil)
		return
	}
	f.mu.Lock()
	f.requests[req.Number] = req
	f.mu.Unlock()
	sc, ok := scriptFor(digitsOf(req.Number))
	switch {
	case !ok:
		writeAPIError(w, 400, "INVALID_NUMBER", nil)
		return
	case req.Consent == "":
		writeAPIError(w, 400, "INVALID_ARGUMENT", nil)
		return
	case sc.status == 429:
		w.Header().Set("Retry-After", "120")
		writeAPIError(w, 429, sc.code, nil)
		return
	case sc.status != 0:
		writeAPIError(w, sc.status, sc.code, nil)
		return
	case sc.challenge && !f.verify(req):
		var b [16]byte
		rand.Read(b[:])
		ch := hex.EncodeToString(b[:])
		f.mu.Lock()
		f.challenges[ch] = true
		f.mu.Unlock()
		writeAPIError(w, 428, "CHALLENGE_REQUIRED", map[string]any{"challenge": map[string]any{
			"challenge": ch, "bits": 8, "expiresAt": time.Now().Add(time.Minute).UTC().Format(time.RFC3339),
		}})
		return
	}
	f.mu.Lock()
	f.n++
	id, token := fmt.Sprintf("call-%d", f.n), fmt.Sprintf("tok-%d", f.n)
	f.calls[id] = &fakeCall{number: req.Number, token: token, script: sc}
	f.mu.Unlock()
	first := sc.first
	first.ID, first.CampaignID = id, widgetCampaign
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{
		"call": first, "token": token, "eventsUrl": "/v1/calls/" + id + "/events?token=" + token, "joined": false,
	})
}

// verify checks a proof of work the way the gateway does: a challenge it
// issued, once, and SHA-256(challenge + ":" + nonce) with 8 leading zero
// bits.
func (f *fakeBannerAPI) verify(req bannerCallRequest) bool {
	if req.Challenge == "" {
		return false
	}
	if _, err := strconv.ParseUint(req.Nonce, 10, 64); err != nil {
		f.t.Errorf("nonce %q is not a decimal number", req.Nonce)
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.challenges[req.Challenge] {
		f.t.Errorf("challenge %q was not issued or was used", req.Challenge)
		return false
	}
	delete(f.challenges, req.Challenge)
	sum := sha256.Sum256([]byte(req.Challenge + ":" + req.Nonce))
	zeros := 0
	for _, b := range sum {
		zeros += bits.LeadingZeros8(b)
		if b != 0 {
			break
		}
	}
	if zeros < 8 {
		f.t.Errorf("nonce %s of challenge %s: %d leading zero bits, want 8", req.Nonce, req.Challenge, zeros)
		return false
	}
	f.solved[req.Number] = true
	return true
}

func (f *fakeBannerAPI) call(r *http.Request) (string, *fakeCall) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := r.PathValue("id")
	c := f.calls[id]
	if c == nil || r.URL.Query().Get("token") != c.token {
		return id, nil
	}
	return id, c
}

func (f *fakeBannerAPI) events(w http.ResponseWriter, r *http.Request) {
	id, c := f.call(r)
	if c == nil {
		writeAPIError(w, 404, "CALL_NOT_FOUND", nil)
		return
	}
	if c.script.noStream {
		writeAPIError(w, 503, "UNAVAILABLE", nil)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(200)
	fl := w.(http.Flusher)
	fl.Flush()
	for i, s := range c.script.steps {
		select {
		case <-r.Context().Done():
			return
		case <-time.After(s.after):
		}
		v := s.view
		v.ID, v.CampaignID = id, widgetCampaign
		data, _ := json.Marshal(map[string]any{"call": v})
		fmt.Fprintf(w, "event: status\nid: %d\ndata: %s\n\n", i+1, data)
		fl.Flush()
	}
	if n := len(c.script.steps); n == 0 || !isFinal(c.script.steps[n-1].view.State) {
		<-r.Context().Done() // no final state: the stream stays open
	}
}

// get answers the polling fallback: each request shows the next step.
func (f *fakeBannerAPI) get(w http.ResponseWriter, r *http.Request) {
	id, c := f.call(r)
	if c == nil {
		writeAPIError(w, 404, "CALL_NOT_FOUND", nil)
		return
	}
	f.mu.Lock()
	v := c.script.first
	if steps := c.script.steps; len(steps) > 0 {
		v = steps[min(c.polls, len(steps)-1)].view
	}
	c.polls++
	f.mu.Unlock()
	v.ID, v.CampaignID = id, widgetCampaign
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"call": v})
}

func isFinal(state string) bool {
	switch state {
	case "ended", "canceled", "failed_visitor", "failed_company":
		return true
	}
	return false
}

func (f *fakeBannerAPI) request(t *testing.T, number string) bannerCallRequest {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	req, ok := f.requests[number]
	if !ok {
		t.Fatalf("no request for %s", number)
	}
	return req
}

func (f *fakeBannerAPI) solvedBy(number string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.solved[number]
}

func (f *fakeBannerAPI) pollsOf(number string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if c.number == number {
			n += c.polls
		}
	}
	return n
}

// --- the browser --------------------------------------------------------------

type browser struct{ ctx context.Context }

// startBrowser starts one headless Chromium for a test; each subtest gets a
// tab of it. It stops when the test ends.
func startBrowser(t *testing.T) *browser {
	t.Helper()
	return &browser{ctx: browsertest.Start(t, chromedp.WindowSize(1200, 860))}
}

// tab is one page of a subtest, with what its console said.
type tab struct {
	t   *testing.T
	ctx context.Context

	mu      sync.Mutex
	console []chromedp.ConsoleMessage
}

func (b *browser) open(t *testing.T, url string) *tab { return b.openWith(t, url, nil) }

// openWith opens url in a new tab after prepare ran on it, and waits for
// the widget. JavaScript exceptions and CSP violations fail the test.
func (b *browser) openWith(t *testing.T, url string, prepare func(context.Context) error) *tab {
	t.Helper()
	tabCtx, cancelTab := chromedp.NewContext(b.ctx)
	ctx, cancel := context.WithTimeout(tabCtx, 30*time.Second)
	p := &tab{t: t, ctx: ctx}
	done := make(chan struct{})
	t.Cleanup(func() {
		cancel()
		cancelTab()
		<-done
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, m := range p.console {
			if m.IsException() || strings.Contains(m.Text, "Content Security Policy") || strings.Contains(m.Text, "Content-Security-Policy") {
				t.Errorf("page console: %s", m)
			}
		}
	})
	if err := chromedp.Do(tabCtx); err != nil { // opens the tab
		close(done)
		t.Fatalf("open a tab: %v", err)
	}
	messages := chromedp.Console(tabCtx)
	go func() {
		defer close(done)
		for m, err := range messages {
			if err != nil {
				return
			}
			p.mu.Lock()
			p.console = append(p.console, m)
			p.mu.Unlock()
		}
	}()
	if prepare != nil {
		if err := prepare(ctx); err != nil {
			t.Fatalf("prepare the tab: %v", err)
		}
	}
	p.run(chromedp.Navigate(url), chromedp.WaitReady(chromedp.CSS(`section.rb-c2c[data-state="idle"]`)))
	return p
}

func (p *tab) run(actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	if err := chromedp.Do(p.ctx, actions...); err != nil {
		p.t.Fatalf("browser: %v (widget: %s)", err, p.describe())
	}
}

func (p *tab) eval(js string) string {
	p.t.Helper()
	s, err := chromedp.Run(p.ctx, chromedp.Evaluate[string](js))
	if err != nil {
		p.t.Fatalf("evaluate %s: %v", js, err)
	}
	return s
}

// keys focuses sel (unless "") and types keys into whatever has the focus,
// as a keyboard would.
func (p *tab) keys(sel, keys string) {
	p.t.Helper()
	if sel != "" {
		p.run(chromedp.Focus(chromedp.CSS(sel)))
	}
	p.run(chromedp.KeyEvent(keys))
}

// clearNumber empties the widget's number input.
func (p *tab) clearNumber() {
	p.t.Helper()
	p.eval(`document.querySelector('section.rb-c2c input[type=tel]').value = ''`)
}

// describe says where the widget is, for failure messages.
func (p *tab) describe() string {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(p.ctx), 2*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(() => { const r = document.querySelector('section.rb-c2c');
		return r ? JSON.stringify({state: r.dataset.state, error: r.dataset.error || '', text: r.innerText, log: window.rbLog || []}) : 'no widget' })()`))
	if err != nil {
		return err.Error()
	}
	return s
}

// waitState waits for the widget's data-state.
func (p *tab) waitState(state string) {
	p.t.Helper()
	p.waitFor("state "+state, `document.querySelector('section.rb-c2c').dataset.state === `+strconv.Quote(state))
}

// waitFor waits until the JavaScript condition holds.
func (p *tab) waitFor(what, cond string) {
	p.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ok, err := chromedp.Run(p.ctx, chromedp.Evaluate[bool](cond))
		if err == nil && ok {
			return
		}
		if err != nil || time.Now().After(deadline) {
			p.t.Fatalf("widget never reached %s (err %v): %s", what, err, p.describe())
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// waitError waits for an error with its code and visible message.
func (p *tab) waitError(code, text string) {
	p.t.Helper()
	p.waitFor("error "+code, `(() => { const r = document.querySelector('section.rb-c2c');
		return r.dataset.state === 'error' && r.dataset.error === `+strconv.Quote(code)+` })()`)
	got := p.eval(`(() => { const e = document.querySelector('section.rb-c2c .rb-c2c-error'); return e.hidden ? '' : e.innerText })()`)
	if want := "⚠ " + text; got != want {
		p.t.Errorf("error %s: %q, want %q", code, got, want)
	}
}

// record keeps every state the widget shows, with its visible status text,
// in window.rbLog: states pass faster than a test polls.
func (p *tab) record() {
	p.t.Helper()
	p.eval(`(() => { const r = document.querySelector('section.rb-c2c'), s = r.querySelector('.rb-c2c-status');
		window.rbLog = [];
		const rec = () => { const e = r.dataset.state + '|' + (s.hidden ? '' : s.textContent);
			if (window.rbLog[window.rbLog.length - 1] !== e) window.rbLog.push(e) };
		new MutationObserver(rec).observe(r, {attributes: true, childList: true, characterData: true, subtree: true});
		return 'ok' })()`)
}

// wantLog checks that the recorded states include want, in order (the
// solving progress or the countdown may add some in between); an entry
// matches a recorded one it starts.
func (p *tab) wantLog(want ...string) {
	p.t.Helper()
	got, err := chromedp.Run(p.ctx, chromedp.Evaluate[[]string](`window.rbLog`))
	if err != nil {
		p.t.Fatal(err)
	}
	i := 0
	for _, g := range got {
		if i < len(want) && strings.HasPrefix(g, want[i]) {
			i++
		}
	}
	if i < len(want) {
		p.t.Errorf("widget states:\n  %s\nmissing, in order, from %q on; want:\n  %s", strings.Join(got, "\n  "), want[i], strings.Join(want, "\n  "))
	}
}

// screenshot saves the page when RINGBACK_WIDGET_SCREENSHOT names a file.
func (p *tab) screenshot(suffix string) {
	p.t.Helper()
	path := os.Getenv("RINGBACK_WIDGET_SCREENSHOT")
	if path == "" {
		return
	}
	if suffix != "" {
		path = strings.TrimSuffix(path, ".png") + "-" + suffix + ".png"
	}
	png, err := chromedp.Run(p.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		p.t.Fatalf("screenshot: %v", err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		p.t.Fatal(err)
	}
	p.t.Logf("saved %s", path)
}
