package consent

import "time"

// Snapshot is what a site's visitors were shown under one material fingerprint: the
// controller, the policy, the categories, the enabled partners with everything
// disclosed about them, and the texts in every language. It is stored once, when the
// banner is first served, and never overwritten; every record names its snapshot by
// site and fingerprint.
type Snapshot struct {
	Site        string                       `json:"site"`
	Fingerprint string                       `json:"fingerprint"`
	CreatedAt   time.Time                    `json:"created_at"` // first served
	Controller  Controller                   `json:"controller"`
	Policy      Policy                       `json:"policy"`
	Languages   []string                     `json:"languages"`
	Texts       map[string]map[string]string `json:"texts"` // the banner's texts per language, as shown
	Categories  []Category                   `json:"categories"`
	Partners    []Partner                    `json:"partners"`    // enabled ones, without their tags and hosts
	BundleHash  string                       `json:"bundle_hash"` // SHA-256 of the banner script, hex
}
