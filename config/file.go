package config

// The shape of sites.yaml, decoded strictly: the domain's own types where the file
// holds them as they are (the controller, the DPO, a policy, the categories and the
// partners of the catalog; their yaml tags name the keys), and the types below where
// the file says more or less than the domain (a site, its cookie in days, its
// switch per partner). Load turns them into consent.Site values.

import consent "github.com/mixvoip/consentd"

type file struct {
	Controller consent.Controller          `yaml:"controller"`
	DPO        consent.Contact             `yaml:"dpo"`
	Categories []consent.Category          `yaml:"categories"`
	Partners   map[string]*consent.Partner `yaml:"partners"`
	Sites      map[string]*siteFile        `yaml:"sites"`
}

type siteFile struct {
	Controller     *consent.Controller          `yaml:"controller"`
	Origins        []string                     `yaml:"origins"`
	Languages      []string                     `yaml:"languages"`
	Policy         consent.Policy               `yaml:"policy"`
	Cookie         siteCookieFile               `yaml:"cookie"`
	RetentionDays  int                          `yaml:"retention_days"`
	FloatingButton bool                         `yaml:"floating_button"`
	Partners       map[string]*sitePartnerFile  `yaml:"partners"`
	Texts          map[string]map[string]string `yaml:"texts"`
	Theme          map[string]string            `yaml:"theme"`
	Technical      consent.Technical            `yaml:"technical"`
}

type siteCookieFile struct {
	Name        string `yaml:"name"`
	Domain      string `yaml:"domain"`
	ConsentDays int    `yaml:"consent_days"`
	RefusalDays int    `yaml:"refusal_days"`
}

type sitePartnerFile struct {
	Enabled bool   `yaml:"enabled"`
	Account string `yaml:"account"`
}
