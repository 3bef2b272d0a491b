package main

import (
	"context"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"mailsetup/internal/testkit"
)

// newBrowser starts headless Chromium (Debian's chromium) at phone width
// and returns its chromedp context; it is stopped when the test ends.
// Chromium runs without its sandbox (tests run as root in CI) and with
// every background network feature off: it only talks to our loopback
// server.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	path := testkit.Tool(t, "chromium", "chromium")
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Headless,
		chromedp.DisableGPU,
		chromedp.NoSandbox,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("metrics-recording-only", true),
		chromedp.Flag("mute-audio", true),
		// The embedded default's certificate is self-signed.
		chromedp.Flag("ignore-certificate-errors", true),
		chromedp.WindowSize(390, 844),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	ctx, cancelT := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() { cancelT(); cancelC(); cancelA() })
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(390, 844)); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return ctx
}

// checkPhonePage fails when the page is wider than the viewport
// (something cut off or needing sideways scrolling at phone width), or
// when it breaks the basics every page promises: a language, one h1,
// and a label for every form field.
func checkPhonePage(t *testing.T, ctx context.Context, page string) {
	t.Helper()
	w, err := chromedp.Run(ctx, chromedp.Evaluate[int64](`document.documentElement.scrollWidth - window.innerWidth`))
	if err != nil {
		t.Fatal(err)
	}
	if w > 0 {
		t.Errorf("%s: the page is %d px wider than the 390 px viewport", page, w)
	}
	problems, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`(() => {
		const out = [];
		if (!document.documentElement.lang) out.push("no lang attribute");
		const h1 = document.querySelectorAll("h1").length;
		if (h1 !== 1) out.push(h1 + " h1 elements");
		for (const el of document.querySelectorAll("input:not([type=hidden]), select, textarea")) {
			if (el.labels.length === 0 && !el.getAttribute("aria-label")) out.push("no label for " + (el.id || el.name));
		}
		return out;
	})()`))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", page, p)
	}
}
