package chart

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os/exec"
	"strings"
	"time"

	"github.com/chromedp/chromedp"
)

// browserNames are the executables FindBrowser looks for in PATH, then
// browserPaths the fixed places (Debian's chromium package).
var (
	browserNames = [...]string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"}
	browserPaths = [...]string{"/usr/bin/chromium", "/usr/lib/chromium/chromium"}
)

// closeTimeout bounds the browser's graceful shutdown.
const closeTimeout = 5 * time.Second

// FindBrowser returns the Chromium or Chrome executable to use: path when
// it is not empty (an error if it cannot be run), else the first of
// chromium, chromium-browser, google-chrome, google-chrome-stable found in
// PATH, else /usr/bin/chromium or /usr/lib/chromium/chromium.
func FindBrowser(path string) (string, error) {
	if path != "" {
		p, err := exec.LookPath(path)
		if err != nil {
			return "", fmt.Errorf("browser %s: %w", path, err)
		}
		return p, nil
	}
	for _, name := range browserNames {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	for _, p := range browserPaths {
		if _, err := exec.LookPath(p); err == nil {
			return p, nil
		}
	}
	return "", errors.New("no Chromium or Chrome found (looked for " +
		strings.Join(browserNames[:], ", ") + " in PATH and " + strings.Join(browserPaths[:], ", ") + ")")
}

// browser is one headless Chromium, shared by all snapshots of a WriteAll.
type browser struct {
	ctx         context.Context // the tab's chromedp context
	cancelTab   context.CancelFunc
	cancelAlloc context.CancelFunc
}

// startBrowser starts a headless Chromium at path and opens a blank tab,
// giving up after timeout. The browser lives until close or until ctx ends.
func startBrowser(ctx context.Context, path string, timeout time.Duration, log *slog.Logger) (*browser, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	flags := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.DisableGPU,
		chromedp.WindowSize(widthPx+100, heightPx+100),
		// Nothing may reach the network: the pages load only file:// URLs.
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-domain-reliability", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-pings", true),
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND"),
		// file:// pages need this to load the sibling echarts.min.js in
		// some Chrome builds.
		chromedp.Flag("allow-file-access-from-files", true),
	)
	// As root, chromedp adds --no-sandbox itself.
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, flags...)
	debugf := func(format string, args ...any) { log.Debug("chromium: " + fmt.Sprintf(format, args...)) }
	tctx, cancelTab := chromedp.NewContext(actx,
		chromedp.WithLogf(debugf), chromedp.WithErrorf(debugf))
	b := &browser{ctx: tctx, cancelTab: cancelTab, cancelAlloc: cancelAlloc}

	// The browser process is bound to the context of its first action, so
	// that must be tctx itself, not a child with a deadline: a timer kills
	// it instead when the start takes too long.
	timer := time.AfterFunc(timeout, cancelAlloc)
	err := chromedp.Do(tctx)
	if !timer.Stop() {
		b.close()
		return nil, fmt.Errorf("start %s: no answer within %v", path, timeout)
	}
	if err != nil {
		b.close()
		return nil, fmt.Errorf("start %s: %w", path, err)
	}
	return b, nil
}

// snapshot loads the HTML chart at the absolute path file and returns the
// chart as PNG, drawn by ECharts itself at pixelRatio 2 on white, without
// the toolbox.
func (b *browser) snapshot(file, id string, timeout time.Duration) ([]byte, error) {
	ctx, cancel := context.WithTimeout(b.ctx, timeout)
	defer cancel()
	u := url.URL{Scheme: "file", Path: file}
	if err := chromedp.Do(ctx, chromedp.Navigate(u.String())); err != nil {
		return nil, fmt.Errorf("load %s: %w", u.String(), err)
	}
	// Scripts ran before the load event, and with animation off the chart
	// is complete once setOption returns: no waiting needed.
	js := fmt.Sprintf(`(function () {
		if (typeof echarts === "undefined") { throw new Error("%[1]s did not load"); }
		var el = document.getElementById(%[2]q);
		var chart = el && echarts.getInstanceByDom(el);
		if (!chart) { throw new Error("no chart %[2]s on the page"); }
		return chart.getDataURL({type: "png", pixelRatio: %[3]d, backgroundColor: "#ffffff", excludeComponents: ["toolbox"]});
	})()`, EChartsFile, id, pixelRatio)
	dataURL, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
	if err != nil {
		return nil, fmt.Errorf("render %s: %w", file, err)
	}
	const prefix = "data:image/png;base64,"
	if !strings.HasPrefix(dataURL, prefix) {
		return nil, fmt.Errorf("render %s: not a PNG data URL: %.40q", file, dataURL)
	}
	png, err := base64.StdEncoding.DecodeString(dataURL[len(prefix):])
	if err != nil {
		return nil, fmt.Errorf("render %s: %w", file, err)
	}
	if !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
		return nil, fmt.Errorf("render %s: the data URL holds no PNG", file)
	}
	return png, nil
}

// close shuts the browser down: gracefully when it answers within
// closeTimeout, else by killing it. It waits until the process is gone and
// its temporary profile removed.
func (b *browser) close() {
	ctx, cancel := context.WithTimeout(b.ctx, closeTimeout)
	_ = chromedp.Cancel(ctx) // errors here only mean it had to be killed
	cancel()
	b.cancelTab()
	b.cancelAlloc()
}
