package e2e

import (
	"os"
	"testing"

	"github.com/chromedp/chromedp"
)

func TestConsoleShot(t *testing.T) {
	e := mustConsoleEnv(t)
	p := e.mustOpenConsole(t)
	p.MustViewport(desktop)
	shot := func(name string) {
		buf, err := chromedp.Run(p.ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile("/tmp/shot-"+name+".png", buf, 0o644)
	}
	shot("signin")
	p.MustSignIn(e.All)
	shot("overview")
	p.MustGo(e.URL + "/dpo/consents?consent_id=" + e.Consents["mixvoip.com"][0])
	shot("proof")
	p.MustGo(e.URL + "/dpo/erase?consent_id=" + e.Consents["mixvoip.com"][0])
	shot("erase")
	p.MustGo(e.URL + "/dpo/audit")
	shot("audit")
	p.MustGo(e.URL + "/dpo/log")
	shot("log")
	p.MustGo(e.URL + "/dpo/export")
	shot("export")
	p.MustMedia("dark", false)
	p.MustGo(e.URL + "/dpo/")
	shot("overview-dark")
}
