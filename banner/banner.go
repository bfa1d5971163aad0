// Package banner builds each site's consent banner: the TypeScript and CSS sources
// embedded in the binary, bundled in-process with esbuild's Go API, with the site's
// configuration and texts compiled in, precompressed once for serving.
package banner

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
	"sync"

	"github.com/andybalholm/brotli"
	"github.com/evanw/esbuild/pkg/api"

	"github.com/mixvoip/consentd"
)

//go:embed src/*.ts src/*.css i18n/*.json
var sources embed.FS

// Bundle is one site's banner, ready to serve, in two scripts per language: the first
// layer's, which a page loads, with the texts of its first layer, and the second
// layer's, which the first loads when the visitor opens the preferences, with all
// texts.
type Bundle struct {
	Site        string
	Languages   []string // primary subtags, the default first
	Scripts     []Asset  // the first layer's, in the order of Languages
	Prefs       []Asset  // the second layer's, in the order of Languages
	Fingerprint string   // material fingerprint of the settings compiled in
	Coverage    string   // coverage fingerprint compiled in: see fingerprint
	// Snapshot is what this bundle shows, to be stored before it is served; its
	// CreatedAt is left to the one who stores it, on a copy: a Cache shares bundles.
	Snapshot *consent.Snapshot

	input [sha256.Size]byte // the key of what it was built from, for a Cache
}

// Asset is one file as served: as is and precompressed.
type Asset struct {
	Raw    []byte
	Gzip   []byte // best compression
	Brotli []byte // best quality
	ETag   string // strong, quoted, hash of Raw
}

// Options adjust a build.
type Options struct {
	// RewriteSrc, if set, replaces each partner tag's script URL; demo pages use it to
	// point partner tags at local fakes. Nil keeps the URLs of sites.yaml.
	RewriteSrc func(partnerID, src string) string
}

// Build bundles the banner for site. It is safe for concurrent use. Most of its cost
// is brotli at best quality: a Cache spares it for the sites that did not change.
func Build(site *consent.Site, opts Options) (*Bundle, error) {
	return NewCache().Build(site, opts) // an empty cache: it builds
}

// Language returns the index in b.Languages of lang, a primary subtag, or -1.
func (b *Bundle) Language(lang string) int {
	return slices.Index(b.Languages, lang)
}

// input is what a bundle is made of besides the sources embedded in the binary: the
// settings compiled in, with opts applied, its texts and the snapshot of what it shows.
// build reads nothing else, so the hash of an input's JSON stands for the bundle it
// makes.
type input struct {
	Settings *settings  `json:"settings"`
	Texts    []language `json:"texts"`
	// BundleHash left empty: it is a hash of what build makes.
	Snapshot *consent.Snapshot `json:"snapshot"`
}

func prepare(site *consent.Site, opts Options) (*input, error) {
	set, texts, err := newSettings(site, opts)
	if err != nil {
		return nil, err
	}
	return &input{Settings: set, Texts: texts, Snapshot: snapshot(site, set, texts)}, nil
}

// key identifies the bundle that in builds.
func (in *input) key() ([sha256.Size]byte, error) {
	data, err := json.Marshal(in)
	if err != nil {
		return [sha256.Size]byte{}, fmt.Errorf("banner: %s: encode input: %w", in.Settings.Site, err)
	}
	return sha256.Sum256(data), nil
}

func (in *input) build(key [sha256.Size]byte) (*Bundle, error) {
	site := in.Settings.Site
	b := &Bundle{Site: site, Languages: in.Settings.Languages, Fingerprint: in.Settings.Fingerprint, Coverage: in.Settings.Coverage, input: key}
	// the bundle hash covers every script: the first layer's in the order of the
	// languages, then the second layer's
	var sums []byte
	for _, s := range []struct {
		entry string
		set   *settings
		texts func(*language) *language
		into  *[]Asset
	}{
		{"src/main.ts", in.Settings, (*language).firstLayer, &b.Scripts},
		{"src/prefs.ts", in.Settings.withoutTags(), func(l *language) *language { return l }, &b.Prefs},
	} {
		for i := range in.Texts {
			js, err := script(s.entry, s.set, s.texts(&in.Texts[i]))
			if err != nil {
				return nil, err
			}
			asset, err := newAsset(js)
			if err != nil {
				return nil, fmt.Errorf("banner: %s: %w", site, err)
			}
			*s.into = append(*s.into, asset)
			sum := sha256.Sum256(js)
			sums = append(sums, sum[:]...)
		}
	}
	snap := *in.Snapshot
	all := sha256.Sum256(sums)
	snap.BundleHash = hex.EncodeToString(all[:])
	b.Snapshot = &snap
	return b, nil
}

// script bundles the banner from entry with c and texts compiled in.
func script(entry string, c *settings, texts *language) ([]byte, error) {
	set := *c
	set.Texts = texts
	define, err := json.Marshal(&set)
	if err != nil {
		return nil, fmt.Errorf("banner: %s: encode settings: %w", set.Site, err)
	}
	res := api.Build(api.BuildOptions{
		EntryPoints:       []string{entry},
		Bundle:            true,
		Write:             false,
		Format:            api.FormatIIFE,
		Platform:          api.PlatformBrowser,
		Target:            api.ES2017,
		MinifyWhitespace:  true,
		MinifyIdentifiers: true,
		MinifySyntax:      true,
		// Charset left at ASCII: non-ASCII text becomes \u escapes, so the banner reads
		// right on any page, whatever charset the page or the response declares.
		Define:    map[string]string{"__SETTINGS__": string(define), "__THEME__": themeDefine},
		Plugins:   []api.Plugin{embedded},
		LogLevel:  api.LogLevelSilent,
		Sourcemap: api.SourceMapNone,
	})
	if len(res.Errors) > 0 {
		msgs := api.FormatMessages(res.Errors, api.FormatMessagesOptions{Kind: api.ErrorMessage})
		return nil, fmt.Errorf("banner: %s: esbuild:\n%s", set.Site, strings.Join(msgs, ""))
	}
	if len(res.OutputFiles) != 1 {
		return nil, fmt.Errorf("banner: %s: esbuild returned %d files, want 1", set.Site, len(res.OutputFiles))
	}
	return res.OutputFiles[0].Contents, nil
}

func newAsset(raw []byte) (Asset, error) {
	sum := sha256.Sum256(raw)
	a := Asset{Raw: raw, ETag: `"` + hex.EncodeToString(sum[:16]) + `"`}
	var err error
	if a.Gzip, err = gzipBytes(raw); err != nil {
		return Asset{}, fmt.Errorf("gzip: %w", err)
	}
	if a.Brotli, err = brotliBytes(raw); err != nil {
		return Asset{}, fmt.Errorf("brotli: %w", err)
	}
	return a, nil
}

// snapshot records what the settings set, built for site, show: the texts as
// compiled in, and the enabled partners' disclosures without the tags that load
// them and the hosts those contact, which the visitor is not shown. Its BundleHash
// is left to the build.
func snapshot(site *consent.Site, set *settings, texts []language) *consent.Snapshot {
	snap := &consent.Snapshot{
		Site: site.Key, Fingerprint: set.Fingerprint, Controller: site.Controller, Policy: site.Policy,
		Languages: set.Languages, Texts: map[string]map[string]string{}, Categories: site.Categories,
	}
	for _, t := range texts {
		snap.Texts[t.Lang] = t.UI
	}
	for _, p := range site.Partners {
		if p.Enabled {
			p.Tags, p.Hosts = nil, nil
			snap.Partners = append(snap.Partners, p)
		}
	}
	return snap
}

// embedded serves the sources from the embed.FS in a namespace of its own, so a build
// touches no file on disk.
var embedded = api.Plugin{
	Name: "embedded",
	Setup: func(pb api.PluginBuild) {
		pb.OnResolve(api.OnResolveOptions{Filter: `.*`}, func(args api.OnResolveArgs) (api.OnResolveResult, error) {
			p := args.Path
			if args.Kind != api.ResolveEntryPoint {
				p = path.Join(path.Dir(args.Importer), p)
			}
			p = path.Clean(p)
			if path.Ext(p) == "" {
				p += ".ts"
			}
			if _, err := fs.Stat(sources, p); err != nil {
				return api.OnResolveResult{}, fmt.Errorf("no embedded source %q", p)
			}
			return api.OnResolveResult{Path: p, Namespace: "banner"}, nil
		})
		pb.OnLoad(api.OnLoadOptions{Filter: `.*`, Namespace: "banner"}, func(args api.OnLoadArgs) (api.OnLoadResult, error) {
			if path.Ext(args.Path) == ".css" {
				css, err := minifiedCSS(args.Path)
				if err != nil {
					return api.OnLoadResult{}, err
				}
				return api.OnLoadResult{Contents: &css, Loader: api.LoaderText}, nil
			}
			data, err := fs.ReadFile(sources, args.Path)
			if err != nil {
				return api.OnLoadResult{}, err
			}
			s := string(data)
			return api.OnLoadResult{Contents: &s, Loader: api.LoaderTS}, nil
		})
	},
}

var cssCache sync.Map // path → minified CSS; the sources never change at run time

// minifiedCSS returns the stylesheet minified: the text loader alone would ship it
// with its comments and whitespace.
func minifiedCSS(name string) (string, error) {
	if css, ok := cssCache.Load(name); ok {
		return css.(string), nil
	}
	data, err := fs.ReadFile(sources, name)
	if err != nil {
		return "", err
	}
	res := api.Transform(string(data), api.TransformOptions{
		Loader:            api.LoaderCSS,
		MinifyWhitespace:  true,
		MinifySyntax:      true,
		MinifyIdentifiers: true,
		Sourcefile:        name,
	})
	if len(res.Errors) > 0 {
		msgs := api.FormatMessages(res.Errors, api.FormatMessagesOptions{Kind: api.ErrorMessage})
		return "", fmt.Errorf("%s", strings.Join(msgs, ""))
	}
	css := strings.TrimSpace(string(res.Code))
	cssCache.Store(name, css)
	return css, nil
}

func gzipBytes(b []byte) ([]byte, error) {
	var buf bytes.Buffer
	w, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(b); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func brotliBytes(b []byte) ([]byte, error) {
	var buf bytes.Buffer
	w := brotli.NewWriterLevel(&buf, brotli.BestCompression)
	if _, err := w.Write(b); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
