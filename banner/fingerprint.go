package banner

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strings"

	"github.com/mixvoip/consentd"
)

// material is what a visitor's answer is about: if any of it changes, the answer no
// longer covers what the banner shows and the visitor is asked again. Tags, account
// ids and Consent Mode are not in it: they change how a partner is loaded, not who
// gets what.
type material struct {
	Format     int                          `json:"format"`
	Controller consent.Controller           `json:"controller"`
	Policy     string                       `json:"policy_version"`
	Languages  []string                     `json:"languages"`
	Categories []materialCategory           `json:"categories"`
	Partners   []materialPartner            `json:"partners"`
	UI         map[string]map[string]string `json:"ui"`
}

type materialCategory struct {
	ID          string   `json:"id"`
	Required    bool     `json:"required"`
	Name        []string `json:"name"`
	Description []string `json:"description"`
}

type materialPartner struct {
	ID         string           `json:"id"`
	Name       string           `json:"name"`
	Provider   string           `json:"provider"`
	Category   string           `json:"category"`
	Purpose    []string         `json:"purpose"`
	DataShared []string         `json:"data_shared"`
	Cookies    []consent.Cookie `json:"cookies"`
	Storage    []string         `json:"storage,omitempty"`
	LeavesEEA  bool             `json:"leaves_eea"`
	Transfer   string           `json:"transfer"`
	PrivacyURL string           `json:"privacy_url"`
}

// Fingerprint returns the material fingerprint of site's banner: 16 hex digits of the
// SHA-256 of a canonical JSON of the controller, the policy version, the categories,
// the enabled partners' disclosures and the UI texts, in the site's languages. It is
// "" if the banner cannot be built for site (see Build's error).
func Fingerprint(site *consent.Site) string {
	langs, err := languages(site)
	if err != nil {
		return ""
	}
	ui, err := siteTexts(site, langs)
	if err != nil {
		return ""
	}
	return newMaterial(site, langs, ui, enabledOnly).fingerprint()
}

// scope is which partners a material covers.
type scope int

const (
	enabledOnly scope = iota // what the visitor is shown: the material fingerprint
	allPartners              // the coverage fingerprint, see newMaterial
)

// newMaterial returns what is material in site's banner in langs, with the UI texts
// ui; its partners in the catalog's order. With allPartners it covers every partner of
// the catalog whether enabled or not, so that switching a partner on or off does not
// change its fingerprint, the coverage fingerprint. A stored answer still covers the
// banner if its coverage fingerprint is current and it holds an explicit answer for
// every enabled partner: switching a partner off then needs no new answer, switching
// on one that the visitor never answered does, and changing any partner's disclosure
// asks everyone again.
func newMaterial(site *consent.Site, langs []string, ui map[string]map[string]string, partners scope) *material {
	m := &material{
		Format:     1,
		Controller: site.Controller,
		Policy:     site.Policy.Version,
		Languages:  langs,
		Categories: []materialCategory{},
		Partners:   []materialPartner{},
		UI:         map[string]map[string]string{},
	}
	for _, l := range langs {
		m.UI[l] = ui[l] // json sorts map keys: canonical
	}
	for _, c := range site.Categories {
		m.Categories = append(m.Categories, materialCategory{
			ID: c.ID, Required: c.Required,
			Name: localize(c.Name, langs), Description: localize(c.Description, langs),
		})
	}
	for i := range site.Partners {
		if p := &site.Partners[i]; p.Enabled || partners == allPartners {
			m.Partners = append(m.Partners, told(p, langs))
		}
	}
	return m
}

// told returns what the banner tells its visitors about partner p in each of langs:
// what the fingerprint covers is what the second layer shows (disclosure).
func told(p *consent.Partner, langs []string) materialPartner {
	return materialPartner{
		ID: p.ID, Name: p.Name, Provider: p.Provider, Category: p.Category,
		Purpose: localize(p.Purpose, langs), DataShared: nonNil(p.DataShared),
		Cookies: p.Cookies, Storage: p.Storage, LeavesEEA: p.LeavesEEA, Transfer: p.Transfer,
		PrivacyURL: p.PrivacyURL,
	}
}

// fingerprint returns 16 hex digits of the SHA-256 of m's canonical JSON.
func (m *material) fingerprint() string {
	canonical := *m
	// the order of the catalog is not material; none is [], never null
	canonical.Partners = slices.Clone(m.Partners)
	slices.SortFunc(canonical.Partners, func(a, b materialPartner) int { return strings.Compare(a.ID, b.ID) })
	data, err := json.Marshal(&canonical)
	if err != nil {
		panic("banner: fingerprint: " + err.Error()) // plain strings, bools and slices
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:8])
}
