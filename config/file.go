package config

// The shape of sites.yaml. These types exist only to be decoded strictly; Load turns
// them into consent.Site values.

type file struct {
	Controller controllerFile          `yaml:"controller"`
	DPO        contactFile             `yaml:"dpo"`
	Categories []categoryFile          `yaml:"categories"`
	Partners   map[string]*partnerFile `yaml:"partners"`
	Sites      map[string]*siteFile    `yaml:"sites"`
}

type controllerFile struct {
	Name         string `yaml:"name"`
	Address      string `yaml:"address"`
	Email        string `yaml:"email"`
	Jurisdiction string `yaml:"jurisdiction"`
}

type contactFile struct {
	Name  string `yaml:"name"`
	Email string `yaml:"email"`
}

type categoryFile struct {
	ID          string            `yaml:"id"`
	Required    bool              `yaml:"required"`
	Name        map[string]string `yaml:"name"`
	Description map[string]string `yaml:"description"`
}

type partnerFile struct {
	Name        string            `yaml:"name"`
	Provider    string            `yaml:"provider"`
	Category    string            `yaml:"category"`
	Purpose     map[string]string `yaml:"purpose"`
	DataShared  []string          `yaml:"data_shared"`
	Cookies     []cookieFile      `yaml:"cookies"`
	Storage     []string          `yaml:"storage"`
	LeavesEEA   bool              `yaml:"leaves_eea"`
	Transfer    string            `yaml:"transfer"`
	PrivacyURL  string            `yaml:"privacy_url"`
	ConsentMode bool              `yaml:"consent_mode"`
	Tags        []tagFile         `yaml:"tags"`
}

type cookieFile struct {
	Name     string `yaml:"name"`
	Lifetime string `yaml:"lifetime"`
}

type tagFile struct {
	Src    string `yaml:"src"`
	Inline string `yaml:"inline"`
}

type siteFile struct {
	Controller     *controllerFile              `yaml:"controller"`
	Origins        []string                     `yaml:"origins"`
	Languages      []string                     `yaml:"languages"`
	Policy         policyFile                   `yaml:"policy"`
	Cookie         siteCookieFile               `yaml:"cookie"`
	RetentionDays  int                          `yaml:"retention_days"`
	FloatingButton bool                         `yaml:"floating_button"`
	Partners       map[string]*sitePartnerFile  `yaml:"partners"`
	Texts          map[string]map[string]string `yaml:"texts"`
	Theme          map[string]string            `yaml:"theme"`
}

type policyFile struct {
	URL     string `yaml:"url"`
	Version string `yaml:"version"`
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
