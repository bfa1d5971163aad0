package translog_test

import (
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/mixvoip/consentd/translog"
)

// The paths of C2SP tlog-tiles, as its examples write them.
func TestTilePath(t *testing.T) {
	tests := []struct {
		tile tlog.Tile
		path string
	}{
		{tlog.Tile{H: 8, L: 0, N: 0, W: 256}, "tile/0/000"},
		{tlog.Tile{H: 8, L: 0, N: 1234067, W: 256}, "tile/0/x001/x234/067"},
		{tlog.Tile{H: 8, L: 1, N: 1234067, W: 8}, "tile/1/x001/x234/067.p/8"},
		{tlog.Tile{H: 8, L: 2, N: 5, W: 1}, "tile/2/005.p/1"},
		{tlog.Tile{H: 8, L: 3, N: 1000, W: 256}, "tile/3/x001/000"},
		{tlog.Tile{H: 8, L: 0, N: 1234, W: 256}, "tile/0/x001/234"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			got, err := translog.TilePath(tt.tile)
			if err != nil || got != tt.path {
				t.Errorf("TilePath(%+v) = %q, %v; want %q", tt.tile, got, err, tt.path)
			}
			back, err := translog.ParseTilePath(tt.path)
			if err != nil || back != tt.tile {
				t.Errorf("ParseTilePath(%q) = %+v, %v; want %+v", tt.path, back, err, tt.tile)
			}
		})
	}
}

func TestTilePathRefuses(t *testing.T) {
	for _, tile := range []tlog.Tile{{H: 4, L: 0, N: 1, W: 16}, {H: 8, L: -1, N: 1, W: 256}, {H: 8, L: 64, N: 0, W: 256}} {
		if p, err := translog.TilePath(tile); err == nil {
			t.Errorf("TilePath(%+v) = %q, want an error", tile, p)
		}
	}
	for _, path := range []string{
		"tile/8/0/000",     // x/mod's form
		"tile/entries/000", // entry tiles: consentd serves none
		"tile/data/000",    // x/mod's name for them
		"tile/0/1234",      // not in groups of three
		"tile/0/000.p/0",   // no empty partial tile
		"tile/0/000.p/256", // a full tile is not partial
		"tile/0/../000",    // not a path element
		"/tile/0/000",      // absolute
		"tile/0/000/",      // trailing slash
		"tiles/0/000",      // another prefix
		"tile/64/000",      // no such level
	} {
		if tile, err := translog.ParseTilePath(path); err == nil {
			t.Errorf("ParseTilePath(%q) = %+v, want an error", path, tile)
		}
	}
}

// TestTileIn: a tile is in a tree when the tree completed every subtree it names; a
// level or index past the tree is not, however x/mod would wrap it.
func TestTileIn(t *testing.T) {
	tests := []struct {
		tile tlog.Tile
		size int64
		want bool
	}{
		{tlog.Tile{H: 8, L: 0, N: 0, W: 41}, 41, true},
		{tlog.Tile{H: 8, L: 0, N: 0, W: 42}, 41, false},
		{tlog.Tile{H: 8, L: 0, N: 0, W: 256}, 41, false},
		{tlog.Tile{H: 8, L: 0, N: 0, W: 256}, 256, true},
		{tlog.Tile{H: 8, L: 0, N: 1, W: 1}, 256, false},
		{tlog.Tile{H: 8, L: 0, N: 1, W: 1}, 257, true},
		{tlog.Tile{H: 8, L: 1, N: 0, W: 1}, 255, false},
		{tlog.Tile{H: 8, L: 1, N: 0, W: 1}, 256, true},
		{tlog.Tile{H: 8, L: 1, N: 0, W: 2}, 511, false},
		{tlog.Tile{H: 8, L: 8, N: 0, W: 1}, 1 << 62, false},
		{tlog.Tile{H: 8, L: 7, N: 0, W: 1}, 1 << 56, true},
		{tlog.Tile{H: 8, L: 0, N: 1 << 55, W: 256}, 1 << 62, false},
		{tlog.Tile{H: 8, L: 0, N: 0, W: 0}, 10, false},
		{tlog.Tile{H: 4, L: 0, N: 0, W: 1}, 10, false},
	}
	for _, tt := range tests {
		if got := translog.TileIn(tt.tile, tt.size); got != tt.want {
			t.Errorf("TileIn(%+v, %d) = %t, want %t", tt.tile, tt.size, got, tt.want)
		}
	}
}
