package suite

import (
	"context"
	"fmt"
	"github.com/ringback/ringback/services/internal/browsertest"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// The banner, end to end: a visitor types a number into the
// click-to-call widget in headless Chromium and presses Enter; the suite
// (the FreeSWITCH simulator at the test time scale) calls the visitor, then
// the company's operator, and the widget follows the call to "connected"
// and "ended". Numbers ending in 0001 answer after about a second and talk
// for 4-6 s, scaled.
//
// Two pages: the gateway's own demo page, and a company's page on another
// origin that embeds /widget.js with the campaign this test creates (the
// embedding every customer does: cross-origin requests, CORS, the status
// stream from the gateway's origin). The demo page is pointed at that
// campaign too (suite.Options.DemoCampaign).
func TestEndToEndBannerBrowser(t *testing.T) {
	e := start(t)

	operator := e.receptionEndpoint(t)
	code, camp := e.do(t, "POST", "/v1/campaigns", e.key, `{"name":"Browser test","operatorEndpointIds":["`+operator+
		`"],"redialAttempts":1,"redialIntervalS":1,"allowedOrigins":["*"]}`)
	campaignID, publicKey := dig(camp, "campaign", "id"), dig(camp, "campaign", "publicKey")
	if code != 200 || campaignID == "" || publicKey == "" {
		t.Fatalf("create the campaign: %d %v", code, camp)
	}

	browserCtx := browsertest.Start(t)

	// The two run one after the other: they call the same operator number.
	t.Run("demo page", func(t *testing.T) {
		e.demo.Store(campaignID)
		defer e.demo.Store("")
		p := openPage(t, browserCtx, e.info.HTTPURL+"/demo/banner")
		if got := p.eval(`document.querySelector('script[data-campaign]').dataset.campaign`); got != campaignID {
			t.Errorf("the demo page's campaign: %q, want %q", got, campaignID)
		}
		p.call("+15551230001")
		if msg := p.waitStates("connected", "ended"); msg != "" {
			t.Fatalf("%s\nthe campaign's calls:\n%s", msg, e.campaignEvents(campaignID))
		}
	})

	t.Run("embedded on a company's site", func(t *testing.T) {
		// The company's page: its own origin, a strict CSP that lets in
		// only the gateway's script and connections, and a container for
		// the widget.
		site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/favicon.ico" {
				w.WriteHeader(http.StatusNoContent) // the company's icon: not this test's
				return
			}
			if r.URL.Path != "/" {
				http.NotFound(w, r)
				return
			}
			w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src "+e.info.HTTPURL+"; connect-src "+e.info.HTTPURL+"; style-src 'self' 'unsafe-inline'")
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Write([]byte(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Acme</title></head><body>
<h1>Acme</h1><div id="call-box"></div>
<script src="` + e.info.HTTPURL + `/widget.js" data-campaign="` + campaignID + `" data-key="` + publicKey + `" data-target="#call-box" defer></script>
</body></html>`))
		}))
		defer site.Close()
		p := openPage(t, browserCtx, site.URL+"/")
		if got := p.eval(`document.querySelector('#call-box > section.rb-c2c') ? 'in the box' : 'elsewhere'`); got != "in the box" {
			t.Errorf("widget: %s", got)
		}
		p.call("+15551230001")
		if msg := p.waitStates("connected", "ended"); msg != "" {
			t.Fatalf("%s\nthe campaign's calls:\n%s", msg, e.campaignEvents(campaignID))
		}

		// The call the widget followed is the campaign's, and completed.
		deadline := time.Now().Add(10 * time.Second)
		for {
			if st, src := e.campaignCall(campaignID); st == "CALL_STATUS_COMPLETED" && src == "CALL_SOURCE_BANNER" {
				break
			} else if time.Now().After(deadline) {
				t.Fatalf("the campaign's call in the events: status %q source %q, want COMPLETED BANNER", st, src)
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
}

// receptionEndpoint creates the operator's endpoint, "Reception" at
// +15550000001, and returns its id; the development campaign may have made
// it already (endpoint names are unique in an account), and then it is
// that one.
func (e *e2e) receptionEndpoint(t *testing.T) string {
	t.Helper()
	code, ep := e.do(t, "POST", "/v1/endpoints", e.key, `{"name":"Reception","kind":"ENDPOINT_KIND_EXTERNAL_NUMBER","address":"+15550000001"}`)
	if code == 200 && dig(ep, "endpoint", "id") != "" {
		return dig(ep, "endpoint", "id")
	}
	if code != 409 || dig(ep, "error", "code") != "NAME_TAKEN" {
		t.Fatalf("create the operator endpoint: %d %v", code, ep)
	}
	code, list := e.do(t, "GET", "/v1/endpoints?pageSize=500", e.key, "")
	eps, _ := list["endpoints"].([]any)
	for _, x := range eps {
		if m, _ := x.(map[string]any); dig(m, "name") == "Reception" && dig(m, "address") == "+15550000001" &&
			dig(m, "kind") == "ENDPOINT_KIND_EXTERNAL_NUMBER" {
			return dig(m, "id")
		}
	}
	t.Fatalf("no endpoint Reception at +15550000001 among the account's: %d %v", code, list)
	return ""
}

// campaignCall returns the status and source of the latest event of a call
// of the campaign seen on JetStream.
func (e *e2e) campaignCall(campaignID string) (status, source string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, evs := range e.events {
		if n := len(evs); n > 0 && evs[n-1].GetCall().GetCampaignId() == campaignID {
			c := evs[n-1].GetCall()
			return c.GetStatus().String(), c.GetSource().String()
		}
	}
	return "", ""
}

// campaignEvents describes the campaign's calls as JetStream told them:
// each event's type, state and failure, for failure messages.
func (e *e2e) campaignEvents(campaignID string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var b strings.Builder
	for id, evs := range e.events {
		if len(evs) == 0 || evs[0].GetCall().GetCampaignId() != campaignID {
			continue
		}
		fmt.Fprintf(&b, "  call %s:\n", id)
		for _, ev := range evs {
			c := ev.GetCall()
			fmt.Fprintf(&b, "    %s leg=%s status=%s attempt=%d/%d failed=%s/%s hangup=%s outcome=%q\n",
				strings.TrimPrefix(ev.GetType().String(), "EVENT_TYPE_"), ev.GetLeg(), c.GetStatus(), c.GetAttempt(), c.GetMaxAttempts(),
				c.GetFailedLeg(), c.GetFailureReason(), c.GetHangupCause(), c.GetOutcome())
		}
	}
	return b.String()
}

// page is a tab of the browser showing a page with the widget.
type page struct {
	t   *testing.T
	ctx context.Context
	at  int // how far waitStates has read window.rbLog
}

// openPage opens url in a new tab (closed when the test ends), waits for the
// widget and records every state it shows in window.rbLog (states can
// pass faster than a test polls). JavaScript exceptions and CSP violations
// fail the test.
func openPage(t *testing.T, browserCtx context.Context, url string) *page {
	t.Helper()
	tabCtx, cancelTab := chromedp.NewContext(browserCtx)
	ctx, cancel := context.WithTimeout(tabCtx, 90*time.Second)
	var (
		mu       sync.Mutex
		problems []string
	)
	done := make(chan struct{})
	t.Cleanup(func() {
		cancel()
		cancelTab()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, p := range problems {
			t.Errorf("page console: %s", p)
		}
	})
	if err := chromedp.Do(tabCtx); err != nil {
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
			t.Logf("page console: %s (%s)", m, m.URL) // the widget logs unexpected codes and failures
			// The page names its icon inline: a request for /favicon.ico
			// (a 404 from the gateway) means the page lost it.
			if m.IsException() || strings.Contains(m.Text, "Content Security Policy") || strings.HasSuffix(m.URL, "/favicon.ico") {
				mu.Lock()
				problems = append(problems, m.String())
				mu.Unlock()
			}
		}
	}()
	p := &page{t: t, ctx: ctx}
	if err := chromedp.Do(ctx, chromedp.Navigate(url), chromedp.WaitReady(chromedp.CSS(`section.rb-c2c[data-state="idle"]`))); err != nil {
		t.Fatalf("open %s: %v", url, err)
	}
	p.eval(`(() => { const r = document.querySelector('section.rb-c2c'), s = r.querySelector('.rb-c2c-status');
		window.rbLog = [];
		const rec = () => { const e = r.dataset.state + '|' + (r.dataset.error || '') + '|' + (s.hidden ? '' : s.textContent);
			if (window.rbLog[window.rbLog.length - 1] !== e) window.rbLog.push(e) };
		new MutationObserver(rec).observe(r, {attributes: true, childList: true, characterData: true, subtree: true});
		return 'recording' })()`)
	return p
}

func (p *page) eval(js string) string {
	p.t.Helper()
	s, err := chromedp.Run(p.ctx, chromedp.Evaluate[string](js))
	if err != nil {
		p.t.Fatalf("evaluate %s: %v", js, err)
	}
	return s
}

// call types number into the widget and presses Enter, as a visitor with
// a keyboard does.
func (p *page) call(number string) {
	p.t.Helper()
	err := chromedp.Do(p.ctx, chromedp.Focus(chromedp.CSS("section.rb-c2c input[type=tel]")), chromedp.KeyEvent(number+kb.Enter))
	if err != nil {
		p.t.Fatalf("type the number: %v", err)
	}
}

// waitStates waits for the widget to show each state in turn (60 s each),
// giving up at once on an error or another final state; it returns why it
// gave up, or "".
func (p *page) waitStates(states ...string) string {
	p.t.Helper()
	for _, want := range states {
		deadline := time.Now().Add(60 * time.Second)
		for {
			log, err := chromedp.Run(p.ctx, chromedp.Evaluate[[]string](`window.rbLog`))
			if err != nil {
				return "read the widget's states: " + err.Error()
			}
			found := false
			for ; p.at < len(log) && !found; p.at++ {
				state, _, _ := strings.Cut(log[p.at], "|")
				switch {
				case state == want:
					found = true
				case state == "error", state == "canceled", strings.HasPrefix(state, "failed_"), state == "ended":
					return "widget states, waiting for " + want + ":\n  " + strings.Join(log, "\n  ")
				}
			}
			if found {
				break
			}
			if time.Now().After(deadline) {
				return "widget never showed " + want + " in 60 s:\n  " + strings.Join(log, "\n  ")
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	log, _ := chromedp.Run(p.ctx, chromedp.Evaluate[[]string](`window.rbLog`))
	p.t.Logf("widget states:\n  %s", strings.Join(log, "\n  "))
	return ""
}
