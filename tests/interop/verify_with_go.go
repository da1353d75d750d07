// Command verify_with_go checks a sealtrail log with Go's reference packages
// golang.org/x/mod/sumdb/note and golang.org/x/mod/sumdb/tlog, an
// implementation that shares no code with sealtrail.
//
// Usage:
//
//	verify_with_go tiles -dir DIR -vkey VKEY [-old CHECKPOINT]... [-proof TLOG_PROOF]...
//	               [-consistency OLD:NEW:FILE]... [-max-proofs N]
//	verify_with_go sign -skey FILE -text FILE   (prints note.Sign's output)
//	verify_with_go open -vkey VKEY -note FILE   (prints the text note.Open verified)
//
// VKEY is a signed-note verifier key, inline or the path of a file holding one.
//
// "tiles" reads a c2sp.org/tlog-tiles directory (checkpoint, tile/<L>/<N>[.p/<W>],
// tile/entries/<N>[.p/<W>]) and checks, using only x/mod:
//   - the checkpoint opens with note.Open under the vkey and names the key's log;
//   - tlog.TreeHash(size) over a tlog.TileHashReader of the tiles equals its root;
//   - every entry of every bundle hashes (tlog.RecordHash) to its authenticated
//     leaf, and tlog.ProveRecord/CheckRecord prove it in the tree (all indexes,
//     or an evenly spread sample of -max-proofs of them);
//   - the tree rebuilt from the entries alone (tlog.StoredHashes) has the
//     checkpoint's root, and every file under tile/ equals what Go computes from
//     the entries (tlog.ReadTileData for hash tiles; the entries for bundles);
//   - every -old checkpoint opens, its tiles and the entries rebuild its root,
//     its partial entry bundle is a prefix of the log, and
//     tlog.ProveTree/CheckTree prove the latest tree extends it;
//   - every -proof (c2sp.org/tlog-proof@v1) carries exactly tlog.ProveRecord's
//     hashes and verifies with tlog.CheckRecord;
//   - every -consistency file (base64 hashes, one a line, as `sealtrail prove
//     --from OLD --to NEW` prints) equals tlog.ProveTree's output and verifies
//     with tlog.CheckTree (both sizes must be the latest or an -old checkpoint).
//
// The rebuild from the entries is not redundant: in x/mod before v0.40.0
// (Debian ships v0.7.0) tlog.TileHashReader leaves some full tiles unchecked
// against their parent when several subtree hashes of the tree share a tile
// (Go issue 80744, CVE-2026-56865), so a forged leaf tile can go unnoticed by it.
//
// It prints one "ok: ..." line, or "FAIL: ..." on stderr and exits 1.
package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

const (
	tileHeight = 8
	tileWidth  = 1 << tileHeight
	proofLine  = "c2sp.org/tlog-proof@v1"
)

// emptyRoot is the RFC 6962 / RFC 9162 root of the empty tree, SHA-256("").
// tlog.TreeHash(0) returns the all-zero hash instead, so size 0 is handled here.
var emptyRoot = tlog.Hash(sha256.Sum256(nil))

type checkpoint struct {
	origin string
	size   int64
	root   tlog.Hash
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "FAIL: "+format+"\n", args...)
	os.Exit(1)
}

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	if len(os.Args) < 2 {
		fail("usage: verify_with_go tiles|sign|open [flags]")
	}
	var err error
	switch os.Args[1] {
	case "tiles":
		err = cmdTiles(os.Args[2:])
	case "sign":
		err = cmdSign(os.Args[2:])
	case "open":
		err = cmdOpen(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q (want tiles, sign or open)", os.Args[1])
	}
	if err != nil {
		fail("%v", err)
	}
}

// keyText returns an inline key, or the trimmed content of the file it names.
func keyText(arg string) (string, error) {
	if data, err := os.ReadFile(arg); err == nil {
		return strings.TrimSpace(string(data)), nil
	} else if !errors.Is(err, fs.ErrNotExist) && !strings.Contains(arg, "+") {
		return "", err
	}
	return strings.TrimSpace(arg), nil
}

func loadVerifier(arg string) (note.Verifier, error) {
	text, err := keyText(arg)
	if err != nil {
		return nil, err
	}
	v, err := note.NewVerifier(text)
	if err != nil {
		return nil, fmt.Errorf("note.NewVerifier(%q): %v", text, err)
	}
	return v, nil
}

// parseCheckpoint parses a c2sp.org/tlog-checkpoint note text: origin line,
// decimal size without leading zeroes, standard base64 of a 32-byte root, then
// optional non-empty extension lines.
func parseCheckpoint(text string) (checkpoint, error) {
	var c checkpoint
	if !strings.HasSuffix(text, "\n") {
		return c, errors.New("checkpoint text does not end with a newline")
	}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) < 3 {
		return c, fmt.Errorf("checkpoint has %d lines, want origin, size and root", len(lines))
	}
	for _, ext := range lines[3:] {
		if ext == "" {
			return c, errors.New("checkpoint has an empty extension line")
		}
	}
	c.origin = lines[0]
	if c.origin == "" {
		return c, errors.New("checkpoint origin is empty")
	}
	sizeText := lines[1]
	size, err := strconv.ParseInt(sizeText, 10, 64)
	if err != nil || size < 0 || strconv.FormatInt(size, 10) != sizeText {
		return c, fmt.Errorf("checkpoint size %q is not a canonical decimal", sizeText)
	}
	c.size = size
	root, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(root) != tlog.HashSize || base64.StdEncoding.EncodeToString(root) != lines[2] {
		return c, fmt.Errorf("checkpoint root %q is not the base64 of a SHA-256 hash", lines[2])
	}
	copy(c.root[:], root)
	return c, nil
}

// openCheckpoint verifies a signed checkpoint with note.Open; the log's key is named after its origin.
func openCheckpoint(msg []byte, v note.Verifier) (checkpoint, error) {
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		return checkpoint{}, fmt.Errorf("note.Open: %v", err)
	}
	signed := false
	for _, sig := range n.Sigs {
		if sig.Name == v.Name() && sig.Hash == v.KeyHash() {
			signed = true
		}
	}
	if !signed {
		return checkpoint{}, errors.New("note.Open accepted the note without the log key's signature")
	}
	c, err := parseCheckpoint(n.Text)
	if err != nil {
		return c, err
	}
	if c.origin != v.Name() {
		return c, fmt.Errorf("checkpoint origin %q is not the key name %q", c.origin, v.Name())
	}
	if c.size == 0 && c.root != emptyRoot {
		return c, fmt.Errorf("empty checkpoint root %v is not SHA-256(\"\")", c.root)
	}
	return c, nil
}

// dirTiles is a tlog.TileReader over a C2SP tiles directory.
type dirTiles struct {
	root      string
	files     map[string][]byte
	reads     int
	fallbacks int
}

// c2spPath maps Go's tile path tile/8/<L>/<N>[.p/<W>] to C2SP's tile/<L>/<N>[.p/<W>].
func c2spPath(t tlog.Tile) (string, error) {
	if t.H != tileHeight || t.L < 0 {
		return "", fmt.Errorf("unexpected tile %+v", t)
	}
	goPath := t.Path()
	prefix := fmt.Sprintf("tile/%d/", tileHeight)
	if !strings.HasPrefix(goPath, prefix) {
		return "", fmt.Errorf("unexpected Go tile path %q", goPath)
	}
	return "tile/" + strings.TrimPrefix(goPath, prefix), nil
}

// entriesPath is tile/entries/<N>[.p/<W>], with Go's encoding of N and W.
func entriesPath(n int64, w int) string {
	goPath := tlog.Tile{H: tileHeight, L: 0, N: n, W: w}.Path()
	return "tile/entries/" + strings.TrimPrefix(goPath, fmt.Sprintf("tile/%d/0/", tileHeight))
}

func (d *dirTiles) read(rel string) ([]byte, error) {
	if data, ok := d.files[rel]; ok {
		return data, nil
	}
	data, err := os.ReadFile(filepath.Join(d.root, filepath.FromSlash(rel)))
	if err != nil {
		return nil, err
	}
	d.reads++
	d.files[rel] = data
	return data, nil
}

// readPrefix reads a (possibly partial) tile or bundle; when a partial one is
// missing it falls back to the full one, as c2sp.org/tlog-tiles lets clients do.
func (d *dirTiles) readPrefix(rel, full string, partial bool) ([]byte, bool, error) {
	data, err := d.read(rel)
	if err == nil || !partial || !errors.Is(err, fs.ErrNotExist) {
		return data, false, err
	}
	data, err = d.read(full)
	if err != nil {
		return nil, false, fmt.Errorf("neither %s nor %s: %v", rel, full, err)
	}
	d.fallbacks++
	return data, true, nil
}

func (d *dirTiles) Height() int { return tileHeight }

func (d *dirTiles) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		rel, err := c2spPath(t)
		if err != nil {
			return nil, err
		}
		fullTile := t
		fullTile.W = tileWidth
		full, _ := c2spPath(fullTile)
		data, fellBack, err := d.readPrefix(rel, full, t.W < tileWidth)
		if err != nil {
			return nil, err
		}
		want := t.W * tlog.HashSize
		if fellBack && len(data) >= want {
			data = data[:want]
		}
		if len(data) != want {
			return nil, fmt.Errorf("%s holds %d bytes, want %d", rel, len(data), want)
		}
		out[i] = data
	}
	return out, nil
}

func (d *dirTiles) SaveTiles(tiles []tlog.Tile, data [][]byte) {}

// bundle reads the entries of bundle n, width w (its first w entries when it fell back to the full bundle).
func (d *dirTiles) bundle(n int64, w int) ([][]byte, error) {
	rel := entriesPath(n, w)
	data, fellBack, err := d.readPrefix(rel, entriesPath(n, tileWidth), w < tileWidth)
	if err != nil {
		return nil, err
	}
	return parseBundle(rel, data, w, fellBack)
}

// parseBundle splits uint16-BE length-prefixed entries; there must be exactly w
// of them, or at least w when prefix is set (a full bundle read for a partial one).
func parseBundle(rel string, data []byte, w int, prefix bool) ([][]byte, error) {
	var entries [][]byte
	rest := data
	for len(rest) > 0 && !(prefix && len(entries) == w) {
		if len(rest) < 2 {
			return nil, fmt.Errorf("%s: truncated length prefix after %d entries", rel, len(entries))
		}
		size := int(binary.BigEndian.Uint16(rest))
		if len(rest) < 2+size {
			return nil, fmt.Errorf("%s: entry %d claims %d bytes, %d left", rel, len(entries), size, len(rest)-2)
		}
		entries = append(entries, rest[2:2+size])
		rest = rest[2+size:]
	}
	if len(entries) != w {
		return nil, fmt.Errorf("%s holds %d entries, want %d", rel, len(entries), w)
	}
	return entries, nil
}

// memHashes holds every stored hash of the tree (tlog's storage order), rebuilt
// from the entries alone with tlog.StoredHashes; it trusts no tile.
type memHashes []tlog.Hash

func (m *memHashes) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if x < 0 || x >= int64(len(*m)) {
			return nil, fmt.Errorf("stored hash %d not computed (have %d)", x, len(*m))
		}
		out[i] = (*m)[x]
	}
	return out, nil
}

// sample returns the indexes to prove: all of them, or max of them spread evenly from first to last.
func sample(size int64, max int) []int64 {
	if max > 0 && max < 2 {
		max = 2
	}
	if max <= 0 || size <= int64(max) {
		out := make([]int64, size)
		for i := range out {
			out[i] = int64(i)
		}
		return out
	}
	seen := map[int64]bool{}
	var out []int64
	for k := 0; k < max; k++ {
		i := int64(k) * (size - 1) / int64(max-1)
		if !seen[i] {
			seen[i] = true
			out = append(out, i)
		}
	}
	return out
}

type verifier struct {
	tiles   *dirTiles
	key     note.Verifier
	latest  checkpoint
	reader  tlog.HashReader
	entries [][]byte
	mem     *memHashes
	known   map[int64]tlog.Hash // roots of the latest and every -old checkpoint, by size
}

// treeReader is a HashReader authenticated against c's root; c must be consistent with the latest tree.
func (v *verifier) treeReader(c checkpoint) tlog.HashReader {
	if c.size == v.latest.size {
		return v.reader
	}
	return tlog.TileHashReader(tlog.Tree{N: c.size, Hash: c.root}, v.tiles)
}

// consistent checks with ProveTree/CheckTree that the latest tree extends c, and
// that the tiles of c's tree rebuild c's root with TreeHash.
func (v *verifier) consistent(c checkpoint) error {
	if c.size > v.latest.size {
		return fmt.Errorf("checkpoint size %d is beyond the latest %d", c.size, v.latest.size)
	}
	if c.size == 0 {
		return nil // the empty tree is a prefix of every tree; root checked in openCheckpoint
	}
	proof, err := tlog.ProveTree(v.latest.size, c.size, v.reader)
	if err != nil {
		return fmt.Errorf("tlog.ProveTree(%d, %d): %v", v.latest.size, c.size, err)
	}
	if err := tlog.CheckTree(proof, v.latest.size, v.latest.root, c.size, c.root); err != nil {
		return fmt.Errorf("tlog.CheckTree(%d -> %d): %v", c.size, v.latest.size, err)
	}
	th, err := tlog.TreeHash(c.size, v.treeReader(c))
	if err != nil {
		return fmt.Errorf("tlog.TreeHash(%d) over its tiles: %v", c.size, err)
	}
	if th != c.root {
		return fmt.Errorf("tlog.TreeHash(%d) = %v, checkpoint says %v", c.size, th, c.root)
	}
	if th, err = tlog.TreeHash(c.size, v.mem); err != nil || th != c.root {
		return fmt.Errorf("tlog.TreeHash(%d) of the entries = %v (%v), checkpoint says %v", c.size, th, err, c.root)
	}
	return nil
}

// checkFiles compares every file under tile/ with what Go computes from the entries.
func (v *verifier) checkFiles() (int, error) {
	top := filepath.Join(v.tiles.root, "tile")
	if _, err := os.Stat(top); errors.Is(err, fs.ErrNotExist) && v.latest.size == 0 {
		return 0, nil
	}
	count := 0
	err := filepath.WalkDir(top, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		relPath, err := filepath.Rel(v.tiles.root, path)
		if err != nil {
			return err
		}
		rel := filepath.ToSlash(relPath)
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		count++
		if strings.HasPrefix(rel, "tile/entries/") {
			t, err := tlog.ParseTilePath(fmt.Sprintf("tile/%d/0/", tileHeight) + strings.TrimPrefix(rel, "tile/entries/"))
			if err != nil {
				return fmt.Errorf("unexpected file %s", rel)
			}
			first := t.N * tileWidth
			if first+int64(t.W) > v.latest.size {
				return fmt.Errorf("%s is beyond the tree of size %d", rel, v.latest.size)
			}
			entries, err := parseBundle(rel, data, t.W, false)
			if err != nil {
				return err
			}
			for i, e := range entries {
				if !bytes.Equal(e, v.entries[first+int64(i)]) {
					return fmt.Errorf("%s: entry %d differs from the log's", rel, first+int64(i))
				}
			}
			return nil
		}
		t, err := tlog.ParseTilePath(fmt.Sprintf("tile/%d/", tileHeight) + strings.TrimPrefix(rel, "tile/"))
		if err != nil || t.L < 0 {
			return fmt.Errorf("unexpected file %s", rel)
		}
		if t.N*tileWidth+int64(t.W) > v.latest.size>>uint(tileHeight*t.L) {
			return fmt.Errorf("%s is beyond the tree of size %d", rel, v.latest.size)
		}
		want, err := tlog.ReadTileData(t, v.mem)
		if err != nil {
			return fmt.Errorf("tlog.ReadTileData(%s): %v", rel, err)
		}
		if !bytes.Equal(data, want) {
			return fmt.Errorf("%s is not the tile Go computes from the entries", rel)
		}
		return nil
	})
	return count, err
}

func (v *verifier) checkOld(path string) error {
	msg, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	c, err := openCheckpoint(msg, v.key)
	if err != nil {
		return err
	}
	if err := v.consistent(c); err != nil {
		return err
	}
	if w := int(c.size % tileWidth); w != 0 {
		n := c.size / tileWidth
		old, err := v.tiles.bundle(n, w)
		if err != nil {
			return err
		}
		for i, e := range old {
			if !bytes.Equal(e, v.entries[n*tileWidth+int64(i)]) {
				return fmt.Errorf("%s: entry %d differs from the latest log's", entriesPath(n, w), n*tileWidth+int64(i))
			}
		}
	}
	if root, ok := v.known[c.size]; ok && root != c.root {
		return fmt.Errorf("two checkpoints of size %d with different roots", c.size)
	}
	v.known[c.size] = c.root
	return nil
}

func decodeHash(line string) (tlog.Hash, error) {
	var h tlog.Hash
	raw, err := base64.StdEncoding.DecodeString(line)
	if err != nil || len(raw) != tlog.HashSize {
		return h, fmt.Errorf("%q is not the base64 of a SHA-256 hash", line)
	}
	copy(h[:], raw)
	return h, nil
}

func sameProof(got, want []tlog.Hash) error {
	if len(got) != len(want) {
		return fmt.Errorf("%d hashes, Go computes %d", len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			return fmt.Errorf("hash %d is %v, Go computes %v", i, got[i], want[i])
		}
	}
	return nil
}

// checkTlogProof checks a c2sp.org/tlog-proof@v1 file against Go's own proof.
func (v *verifier) checkTlogProof(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	split := bytes.Index(data, []byte("\n\n"))
	if split < 0 {
		return errors.New("no blank line before the checkpoint")
	}
	lines := strings.Split(string(data[:split]), "\n")
	if lines[0] != proofLine {
		return fmt.Errorf("first line %q, want %q", lines[0], proofLine)
	}
	lines = lines[1:]
	var extra []byte
	if len(lines) > 0 && strings.HasPrefix(lines[0], "extra ") {
		if extra, err = base64.StdEncoding.DecodeString(strings.TrimPrefix(lines[0], "extra ")); err != nil {
			return fmt.Errorf("extra line: %v", err)
		}
		lines = lines[1:]
	}
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "index ") {
		return errors.New("missing index line")
	}
	indexText := strings.TrimPrefix(lines[0], "index ")
	index, err := strconv.ParseInt(indexText, 10, 64)
	if err != nil || index < 0 || strconv.FormatInt(index, 10) != indexText {
		return fmt.Errorf("index %q is not a canonical decimal", indexText)
	}
	var hashes tlog.RecordProof
	for _, line := range lines[1:] {
		h, err := decodeHash(line)
		if err != nil {
			return err
		}
		hashes = append(hashes, h)
	}
	c, err := openCheckpoint(data[split+2:], v.key)
	if err != nil {
		return fmt.Errorf("its checkpoint: %v", err)
	}
	if index >= c.size {
		return fmt.Errorf("index %d is not in its checkpoint of size %d", index, c.size)
	}
	if err := v.consistent(c); err != nil {
		return fmt.Errorf("its checkpoint: %v", err)
	}
	leaf := tlog.RecordHash(v.entries[index])
	if extra != nil && !bytes.Equal(extra, leaf[:]) {
		return fmt.Errorf("extra %x is not the leaf hash %v of entry %d", extra, leaf, index)
	}
	want, err := tlog.ProveRecord(c.size, index, v.treeReader(c))
	if err != nil {
		return fmt.Errorf("tlog.ProveRecord(%d, %d): %v", c.size, index, err)
	}
	if err := sameProof(hashes, want); err != nil {
		return fmt.Errorf("proof of %d in %d: %v", index, c.size, err)
	}
	if err := tlog.CheckRecord(hashes, c.size, c.root, index, leaf); err != nil {
		return fmt.Errorf("tlog.CheckRecord(%d in %d): %v", index, c.size, err)
	}
	return nil
}

// checkConsistency checks OLD:NEW:FILE, a consistency proof as sealtrail prints it.
func (v *verifier) checkConsistency(arg string) error {
	parts := strings.SplitN(arg, ":", 3)
	if len(parts) != 3 {
		return fmt.Errorf("-consistency %q: want OLD:NEW:FILE", arg)
	}
	oldSize, err1 := strconv.ParseInt(parts[0], 10, 64)
	newSize, err2 := strconv.ParseInt(parts[1], 10, 64)
	if err1 != nil || err2 != nil || oldSize < 1 || oldSize > newSize {
		return fmt.Errorf("-consistency %q: bad sizes", arg)
	}
	oldRoot, ok1 := v.known[oldSize]
	newRoot, ok2 := v.known[newSize]
	if !ok1 || !ok2 {
		return fmt.Errorf("-consistency %q: pass the checkpoints of both sizes with -old", arg)
	}
	data, err := os.ReadFile(parts[2])
	if err != nil {
		return err
	}
	var hashes tlog.TreeProof
	for _, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		if line == "" {
			continue // an empty proof prints nothing
		}
		h, err := decodeHash(line)
		if err != nil {
			return err
		}
		hashes = append(hashes, h)
	}
	want, err := tlog.ProveTree(newSize, oldSize, v.treeReader(checkpoint{size: newSize, root: newRoot}))
	if err != nil {
		return fmt.Errorf("tlog.ProveTree(%d, %d): %v", newSize, oldSize, err)
	}
	if err := sameProof(hashes, want); err != nil {
		return fmt.Errorf("consistency proof %d -> %d: %v", oldSize, newSize, err)
	}
	if err := tlog.CheckTree(hashes, newSize, newRoot, oldSize, oldRoot); err != nil {
		return fmt.Errorf("tlog.CheckTree(%d -> %d): %v", oldSize, newSize, err)
	}
	return nil
}

func cmdTiles(args []string) error {
	fl := flag.NewFlagSet("tiles", flag.ContinueOnError)
	dir := fl.String("dir", "", "C2SP tiles directory")
	vkey := fl.String("vkey", "", "verifier key, inline or a file")
	maxProofs := fl.Int("max-proofs", 4096, "inclusion proofs to check at most (0: all)")
	var olds, proofs, consistency listFlag
	fl.Var(&olds, "old", "an older signed checkpoint file (repeatable)")
	fl.Var(&proofs, "proof", "a c2sp.org/tlog-proof file (repeatable)")
	fl.Var(&consistency, "consistency", "OLD:NEW:FILE consistency proof (repeatable)")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if *dir == "" || *vkey == "" || fl.NArg() != 0 {
		return errors.New("tiles needs -dir and -vkey")
	}
	key, err := loadVerifier(*vkey)
	if err != nil {
		return err
	}
	v := &verifier{tiles: &dirTiles{root: *dir, files: map[string][]byte{}}, key: key, known: map[int64]tlog.Hash{}}

	// (a) The latest checkpoint.
	msg, err := os.ReadFile(filepath.Join(*dir, "checkpoint"))
	if err != nil {
		return err
	}
	if v.latest, err = openCheckpoint(msg, key); err != nil {
		return fmt.Errorf("checkpoint: %v", err)
	}
	size := v.latest.size
	v.known[size] = v.latest.root
	v.reader = tlog.TileHashReader(tlog.Tree{N: size, Hash: v.latest.root}, v.tiles)

	// (b) The root, rebuilt from the tiles by Go.
	if size > 0 {
		th, err := tlog.TreeHash(size, v.reader)
		if err != nil {
			return fmt.Errorf("tlog.TreeHash(%d): %v", size, err)
		}
		if th != v.latest.root {
			return fmt.Errorf("tlog.TreeHash(%d) = %v, checkpoint says %v", size, th, v.latest.root)
		}
	}

	// (c) Every entry: its leaf in the authenticated tiles, and an inclusion proof.
	for n := int64(0); n*tileWidth < size; n++ {
		w := tileWidth
		if rest := size - n*tileWidth; rest < tileWidth {
			w = int(rest)
		}
		bundle, err := v.tiles.bundle(n, w)
		if err != nil {
			return err
		}
		indexes := make([]int64, w)
		for i := range indexes {
			indexes[i] = tlog.StoredHashIndex(0, n*tileWidth+int64(i))
		}
		leaves, err := v.reader.ReadHashes(indexes)
		if err != nil {
			return fmt.Errorf("leaf hashes %d..%d: %v", n*tileWidth, n*tileWidth+int64(w)-1, err)
		}
		for i, e := range bundle {
			if got := tlog.RecordHash(e); got != leaves[i] {
				return fmt.Errorf("entry %d hashes to %v, the tiles hold %v", n*tileWidth+int64(i), got, leaves[i])
			}
		}
		v.entries = append(v.entries, bundle...)
	}

	// The same tree rebuilt from the entries alone, and every exported file against it.
	v.mem = &memHashes{}
	for i, e := range v.entries {
		hashes, err := tlog.StoredHashes(int64(i), e, v.mem)
		if err != nil {
			return fmt.Errorf("tlog.StoredHashes(%d): %v", i, err)
		}
		*v.mem = append(*v.mem, hashes...)
	}
	if size > 0 {
		th, err := tlog.TreeHash(size, v.mem)
		if err != nil || th != v.latest.root {
			return fmt.Errorf("tlog.TreeHash(%d) of the entries = %v (%v), checkpoint says %v", size, th, err, v.latest.root)
		}
	}
	files, err := v.checkFiles()
	if err != nil {
		return err
	}

	proved := sample(size, *maxProofs)
	for _, i := range proved {
		p, err := tlog.ProveRecord(size, i, v.reader)
		if err != nil {
			return fmt.Errorf("tlog.ProveRecord(%d, %d): %v", size, i, err)
		}
		if err := tlog.CheckRecord(p, size, v.latest.root, i, tlog.RecordHash(v.entries[i])); err != nil {
			return fmt.Errorf("tlog.CheckRecord(%d in %d): %v", i, size, err)
		}
	}

	// (d) Older checkpoints: each a prefix of the latest tree.
	for _, path := range olds {
		if err := v.checkOld(path); err != nil {
			return fmt.Errorf("older checkpoint %s: %v", path, err)
		}
	}
	// (e) Offline receipts and consistency proofs made by sealtrail.
	for _, path := range proofs {
		if err := v.checkTlogProof(path); err != nil {
			return fmt.Errorf("tlog-proof %s: %v", path, err)
		}
	}
	for _, arg := range consistency {
		if err := v.checkConsistency(arg); err != nil {
			return err
		}
	}
	fmt.Printf("ok: %s size %d root %v verified by golang.org/x/mod/sumdb: %d entries, %d inclusion proofs, "+
		"%d older checkpoints, %d tlog-proofs, %d consistency proofs, %d tile files equal to Go's "+
		"(%d files read by the tile reader, %d full-tile fallbacks)\n",
		v.latest.origin, size, v.latest.root, len(v.entries), len(proved), len(olds), len(proofs),
		len(consistency), files, v.tiles.reads, v.tiles.fallbacks)
	return nil
}

func cmdSign(args []string) error {
	fl := flag.NewFlagSet("sign", flag.ContinueOnError)
	skeyFile := fl.String("skey", "", "signer key file")
	textFile := fl.String("text", "", "note text file")
	if err := fl.Parse(args); err != nil {
		return err
	}
	skey, err := os.ReadFile(*skeyFile)
	if err != nil {
		return err
	}
	text, err := os.ReadFile(*textFile)
	if err != nil {
		return err
	}
	signer, err := note.NewSigner(strings.TrimSpace(string(skey)))
	if err != nil {
		return fmt.Errorf("note.NewSigner: %v", err)
	}
	msg, err := note.Sign(&note.Note{Text: string(text)}, signer)
	if err != nil {
		return fmt.Errorf("note.Sign: %v", err)
	}
	_, err = os.Stdout.Write(msg)
	return err
}

func cmdOpen(args []string) error {
	fl := flag.NewFlagSet("open", flag.ContinueOnError)
	vkey := fl.String("vkey", "", "verifier key, inline or a file")
	noteFile := fl.String("note", "", "signed note file")
	if err := fl.Parse(args); err != nil {
		return err
	}
	key, err := loadVerifier(*vkey)
	if err != nil {
		return err
	}
	msg, err := os.ReadFile(*noteFile)
	if err != nil {
		return err
	}
	n, err := note.Open(msg, note.VerifierList(key))
	if err != nil {
		return fmt.Errorf("note.Open: %v", err)
	}
	_, err = os.Stdout.Write([]byte(n.Text))
	return err
}
