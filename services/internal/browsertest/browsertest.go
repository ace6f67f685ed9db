// Package browsertest starts the headless Chromium the widget's browser
// tests drive (chromedp). scripts/setup installs Debian's chromium when no
// Chromium is on PATH; a test without one fails rather than skips, since
// a skipped browser test would pass while the widget is broken.
package browsertest

import (
	"context"
	"os/exec"
	"testing"

	"github.com/chromedp/chromedp"
)

// Find returns the path of a Chromium to drive.
func Find(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	t.Fatalf("no chromium, chromium-browser or google-chrome on PATH: run scripts/setup (installs Debian's chromium)")
	return ""
}

// Start starts a headless Chromium (English, no sandbox: tests run as
// root) that stops when the test ends, and returns its browser context;
// chromedp.NewContext on it opens tabs.
func Start(t testing.TB, opts ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	all := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(Find(t)), chromedp.NoSandbox, chromedp.Flag("lang", "en-US"))
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), append(all, opts...)...)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() {
		cancel()
		cancelAlloc() // waits for the browser to exit
	})
	if err := chromedp.Do(ctx); err != nil { // starts it
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}
