package banner

import (
	"crypto/sha256"

	"github.com/mixvoip/consentd"
)

// Cache hands out bundles already built, such as those being served, in place of
// building them again from the same input: a reload of sites.yaml then builds only
// the banners that changed. It holds the bundles it was made with and nothing else.
type Cache struct {
	bundles map[[sha256.Size]byte]*Bundle // by input key
}

// NewCache returns a Cache of bundles; nil ones are left out.
func NewCache(bundles ...*Bundle) *Cache {
	c := &Cache{bundles: make(map[[sha256.Size]byte]*Bundle, len(bundles))}
	for _, b := range bundles {
		if b != nil {
			c.bundles[b.input] = b
		}
	}
	return c
}

// Build is Build, except that it returns the bundle of c that was built from the
// same input, if there is one. It is safe for concurrent use. The bundles it returns
// may be shared: do not change them.
func (c *Cache) Build(site *consent.Site, opts Options) (*Bundle, error) {
	in, err := prepare(site, opts)
	if err != nil {
		return nil, err
	}
	key, err := in.key()
	if err != nil {
		return nil, err
	}
	if b := c.bundles[key]; b != nil {
		return b, nil
	}
	return in.build(key)
}
