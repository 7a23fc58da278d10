// Package browsertest starts headless Chromium for the browser tests the
// way this kind of machine needs it: one lookup of the binary and one set
// of flags for every package that drives a browser.
package browsertest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/chromedp/chromedp"
)

// Binary finds Chromium: CHROMIUM_BIN, else /usr/bin/chromium. Missing, the
// test is skipped with the fix, or fails under CI (which must install it).
func Binary(t testing.TB) string {
	t.Helper()
	bin := os.Getenv("CHROMIUM_BIN")
	if bin == "" {
		bin = "/usr/bin/chromium"
	}
	path, err := exec.LookPath(bin)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI must install chromium (Debian package chromium; or set CHROMIUM_BIN): %v", err)
		}
		t.Skipf("browser test skipped: no Chromium at %s (apt-get install chromium, or set CHROMIUM_BIN): %v", bin, err)
	}
	return path
}

// AllocatorOptions are the flags every browser test starts Chromium with:
// headless, no sandbox (tests run as root), a fresh profile in profileDir,
// and no background connections (this machine's network is closed: they
// would fail, many at a time), plus extra.
func AllocatorOptions(bin, profileDir string, extra ...chromedp.ExecAllocatorOption) []chromedp.ExecAllocatorOption {
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.UserDataDir(profileDir),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
	)
	return append(opts, extra...)
}

// ShotsDir is where a test's screenshots go: its temp dir, or
// BROWSER_SCREENSHOTS/<test name> when that is set, to keep them after the
// run.
func ShotsDir(t testing.TB) string {
	t.Helper()
	root := os.Getenv("BROWSER_SCREENSHOTS")
	if root == "" {
		return t.TempDir()
	}
	dir := filepath.Join(root, t.Name())
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// Shot saves a full-page PNG of the page in ctx as dir/<name>.png and
// returns its path, or "" and the reason when it could not.
func Shot(ctx context.Context, dir, name string) (string, error) {
	buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // quality 100: PNG
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		return "", err
	}
	return path, nil
}
