package translog

import (
	"fmt"
	"strings"

	"golang.org/x/mod/sumdb/tlog"
)

// maxLevel is the highest tile level C2SP tlog-tiles allows.
const maxLevel = 63

// TileHeight is the height of every hash tile: 256 hashes wide, as C2SP tlog-tiles
// fixes it.
const TileHeight = 8

// x/mod's paths name the height, which C2SP fixes at 8: tile/8/L/N against tile/L/N.
const (
	modTilePrefix  = "tile/8/"
	c2spTilePrefix = "tile/"
)

// TilePath returns the C2SP tlog-tiles path of the hash tile t, tile/L/N[.p/W], where
// N is written in groups of three digits, all but the last prefixed with x.
func TilePath(t tlog.Tile) (string, error) {
	if t.H != TileHeight || t.L < 0 || t.L > maxLevel {
		return "", fmt.Errorf("translog: tile %+v is not a hash tile of height %d", t, TileHeight)
	}
	return c2spTilePrefix + strings.TrimPrefix(t.Path(), modTilePrefix), nil
}

// ParseTilePath returns the hash tile at the C2SP tlog-tiles path, which TilePath
// writes. Entry tiles (tile/entries/N) are refused: consentd serves none.
func ParseTilePath(path string) (tlog.Tile, error) {
	rest, ok := strings.CutPrefix(path, c2spTilePrefix)
	if !ok || strings.HasPrefix(rest, "entries/") || strings.HasPrefix(rest, "data/") {
		return tlog.Tile{}, fmt.Errorf("translog: %q is not a hash tile path such as tile/0/x001/234", path)
	}
	t, err := tlog.ParseTilePath(modTilePrefix + rest)
	if err != nil || t.L < 0 || t.L > maxLevel {
		return tlog.Tile{}, fmt.Errorf("translog: %q is not a hash tile path such as tile/0/x001/234", path)
	}
	return t, nil
}

// TileIn reports whether the tree of size leaves holds the hash tile t, in full: its
// hashes are of subtrees that tree completed. Whatever is beyond (a level or an index
// past the tree, which x/mod's arithmetic would wrap around) is not in it.
func TileIn(t tlog.Tile, size int64) bool {
	if t.H != TileHeight || t.L < 0 || t.N < 0 || t.W < 1 || t.W > 1<<TileHeight {
		return false
	}
	shift := TileHeight * t.L
	if shift >= 63 {
		return false
	}
	// How many hashes the tile's level has in the tree, as many as complete subtrees.
	hashes := size >> shift
	return t.N <= (hashes-int64(t.W))>>TileHeight && hashes >= int64(t.W)
}
