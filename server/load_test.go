package server_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/banner"
	"github.com/mixvoip/consentd/config"
	"github.com/mixvoip/consentd/server"
	"github.com/mixvoip/consentd/store/storetest"
)

// snapshotLog is the real bbolt store, noting the site of every snapshot it is asked
// to store.
type snapshotLog struct {
	consent.Store
	mu    sync.Mutex
	sites []string
}

func (s *snapshotLog) PutSnapshot(ctx context.Context, snap *consent.Snapshot) error {
	s.mu.Lock()
	s.sites = append(s.sites, snap.Site)
	s.mu.Unlock()
	return s.Store.PutSnapshot(ctx, snap)
}

// take returns the sites noted since the last take, sorted.
func (s *snapshotLog) take() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	sites := s.sites
	s.sites = nil
	slices.Sort(sites)
	return sites
}

// MustConfig returns the shipped sites.yaml, with only the sites of keys if any are
// given.
func MustConfig(tb testing.TB, keys ...string) *config.Config {
	tb.Helper()
	cfg, err := config.Load("../sites.yaml")
	if err != nil {
		tb.Fatal(err)
	}
	if len(keys) > 0 {
		only := map[string]*consent.Site{}
		for _, k := range keys {
			only[k] = cfg.Sites[k]
		}
		cfg.Sites = only
	}
	return cfg
}

// MustLoadedServer returns a server, with demo pages if demo is set, serving cfg from
// a fresh bbolt store that notes its snapshots.
func MustLoadedServer(tb testing.TB, cfg *config.Config, demo bool) (*server.Server, *snapshotLog) {
	tb.Helper()
	store := &snapshotLog{Store: MustFreshStore(tb)}
	srv := server.New(store, server.Options{Demo: demo, Keys: storetest.Keys(), Origin: storetest.Origin, Logger: slog.New(slog.DiscardHandler)})
	if err := srv.Load(cfg); err != nil {
		tb.Fatal(err)
	}
	return srv, store
}

// servedBundles returns, by site, the banner and demo bundles srv serves.
func servedBundles(srv *server.Server, cfg *config.Config) map[string][2]*banner.Bundle {
	out := map[string][2]*banner.Bundle{}
	for key := range cfg.Sites {
		b, demo := server.Bundles(srv, key)
		out[key] = [2]*banner.Bundle{b, demo}
	}
	return out
}

// TestLoadRebuildsOnlyChangedSites: a reload that switches a partner on one site
// builds that site's bundles again and serves the others' as they were; what a
// bundle shows is stored once, when it is first served.
func TestLoadRebuildsOnlyChangedSites(t *testing.T) {
	cfg := MustConfig(t)
	srv, snapshots := MustLoadedServer(t, cfg, true)
	if got := snapshots.take(); !slices.Equal(got, cfg.SiteKeys()) {
		t.Errorf("first load stored the snapshots of %v, want every site's", got)
	}
	first := servedBundles(srv, cfg)

	switched := MustConfig(t)
	switched.Sites[testSite].Partner("meta-pixel").Enabled = false
	if err := srv.Load(switched); err != nil {
		t.Fatal(err)
	}
	second := servedBundles(srv, switched)
	for key := range cfg.Sites {
		for i, what := range []string{"banner", "demo banner"} {
			if rebuilt, want := second[key][i] != first[key][i], key == testSite; rebuilt != want {
				t.Errorf("%s of %s built again: %v, want %v", what, key, rebuilt, want)
			}
		}
	}
	if got := snapshots.take(); !slices.Equal(got, []string{testSite}) {
		t.Errorf("the reload stored the snapshots of %v, want only %s's", got, testSite)
	}
	b := second[testSite][0]
	if b.Fingerprint == first[testSite][0].Fingerprint {
		t.Fatal("fixture: switching meta-pixel off did not change the fingerprint")
	}
	if !b.Snapshot.CreatedAt.IsZero() {
		t.Error("Load set CreatedAt on the bundle's own snapshot, which later loads share")
	}
	if snap, err := snapshots.Snapshot(context.Background(), testSite, b.Fingerprint); err != nil || snap.CreatedAt.IsZero() {
		t.Errorf("stored snapshot of the new banner: %+v, %v; want one with its time", snap, err)
	}
	f := &fixture{srv: srv}
	if rec := f.do(t, http.MethodGet, "/v1/banner/"+testSite+".js", "", nil); rec.Header().Get("ETag") != b.Scripts[0].ETag {
		t.Errorf("served ETag %s, want the new bundle's %s", rec.Header().Get("ETag"), b.Scripts[0].ETag)
	}

	// Back to the first configuration: its bundle of testSite was not kept.
	if err := srv.Load(cfg); err != nil {
		t.Fatal(err)
	}
	third := servedBundles(srv, cfg)
	if third[testSite][0] == first[testSite][0] || third[testSite][0].Scripts[0].ETag != first[testSite][0].Scripts[0].ETag {
		t.Errorf("back to the first configuration: bundle %p (ETag %s), want a new build of %p (ETag %s)",
			third[testSite][0], third[testSite][0].Scripts[0].ETag, first[testSite][0], first[testSite][0].Scripts[0].ETag)
	}
}

// TestLoadErrors: the sites build in parallel, and a Load in which some fail reports
// each of them and changes nothing that is served.
func TestLoadErrors(t *testing.T) {
	cfg := MustConfig(t, "mixvoip.com", "voxbi.com")
	srv, _ := MustLoadedServer(t, cfg, true)
	before := servedBundles(srv, cfg)
	tests := []struct {
		name   string
		broken []string
	}{
		{"one site", []string{"voxbi.com"}},
		{"every site", []string{"mixvoip.com", "voxbi.com"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			broken := MustConfig(t, "mixvoip.com", "voxbi.com")
			// Changed on every site, so that the good ones are built too.
			for _, s := range broken.Sites {
				s.Policy.Version += "-next"
			}
			for _, key := range tt.broken {
				broken.Sites[key].Languages = []string{"xx"}
			}
			err := srv.Load(broken)
			if err == nil {
				t.Fatal("Load: no error")
			}
			for key := range cfg.Sites {
				for _, what := range []string{"build banner for " + key + ":", "build demo banner for " + key + ":"} {
					if got, want := strings.Contains(err.Error(), what), slices.Contains(tt.broken, key); got != want {
						t.Errorf("error names %q: %v, want %v; error:\n%v", what, got, want, err)
					}
				}
			}
			for key, bundles := range servedBundles(srv, cfg) {
				if bundles != before[key] {
					t.Errorf("after a failed Load %s serves other bundles", key)
				}
			}
		})
	}
}

// TestEarlierSecondLayers: after sites.yaml changes, a first-layer script still in a
// browser's cache asks for the second layer of its own configuration, by fingerprint,
// and gets it, for the last keptBundles configurations; the current one without a
// fingerprint; a fingerprint never served, or served too long ago, gets 404.
func TestEarlierSecondLayers(t *testing.T) {
	cfg := MustConfig(t, testSite)
	srv, _ := MustLoadedServer(t, cfg, true)
	f := &fixture{srv: srv}
	var fingerprints []string
	for i := range 6 {
		c := MustConfig(t, testSite)
		c.Sites[testSite].Policy.Version = fmt.Sprintf("2027-0%d", i+1) // a new fingerprint each time
		if err := srv.Load(c); err != nil {
			t.Fatal(err)
		}
		b, _ := server.Bundles(srv, testSite)
		fingerprints = append(fingerprints, b.Fingerprint)
	}
	current := fingerprints[len(fingerprints)-1]
	for i, fp := range fingerprints {
		kept := i >= len(fingerprints)-1-4 // the current one and the four before it
		for _, path := range []string{"/v1/banner/" + testSite + "/fr.js?f=" + fp, "/demo/" + testSite + "/banner/fr.js?f=" + fp} {
			rec := f.do(t, http.MethodGet, path, "", nil)
			if got := rec.Code == http.StatusOK && strings.Contains(rec.Body.String(), `f:"`+fp+`"`); got != kept {
				t.Errorf("GET %s (configuration %d of %d): status %d, served: %v, want %v", path, i+1, len(fingerprints), rec.Code, got, kept)
			}
		}
	}
	if rec := f.do(t, http.MethodGet, "/v1/banner/"+testSite+"/fr.js", "", nil); !strings.Contains(rec.Body.String(), `f:"`+current+`"`) {
		t.Errorf("without a fingerprint: %d, want the current second layer", rec.Code)
	}
	if rec := f.do(t, http.MethodGet, "/v1/banner/"+testSite+"/fr.js?f=0123456789abcdef", "", nil); rec.Code != http.StatusNotFound {
		t.Errorf("a fingerprint never served: %d, want 404", rec.Code)
	}
}
