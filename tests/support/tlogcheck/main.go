// Command tlogcheck checks the registry's audit log with code nobody here wrote: the
// signed-note and Merkle tree packages of Go's checksum database (golang.org/x/mod/sumdb).
//
//	tlogcheck note VKEY FILE                           verify a checkpoint note; print its lines
//	tlogcheck inclusion SIZE ROOT INDEX LEAF PROOF...  RFC 6962 inclusion (hex hashes)
//	tlogcheck consistency OLD OLDROOT NEW NEWROOT PROOF...
//	tlogcheck tiles PREFIX VKEY                         the whole tree from its tiles (tlog-tiles)
//	tlogcheck proof VKEY FILE                           a c2sp.org/tlog-proof of one event
//
// Exit status 0 when the check holds, 1 when it does not, 2 for bad arguments.
package main

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

func fail(code int, format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(code)
}

func hash(s string) tlog.Hash {
	raw, err := hex.DecodeString(s)
	if err != nil || len(raw) != tlog.HashSize {
		fail(2, "not a hex SHA-256 hash: %q", s)
	}
	var h tlog.Hash
	copy(h[:], raw)
	return h
}

func number(s string) int64 {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		fail(2, "not a size or an index: %q", s)
	}
	return n
}

func hashes(args []string) []tlog.Hash {
	out := make([]tlog.Hash, len(args))
	for i, a := range args {
		out[i] = hash(a)
	}
	return out
}

func main() {
	if len(os.Args) < 2 {
		fail(2, "usage: tlogcheck note|inclusion|consistency ...")
	}
	args := os.Args[2:]
	switch os.Args[1] {
	case "note":
		if len(args) != 2 {
			fail(2, "usage: tlogcheck note VKEY FILE")
		}
		verifier, err := note.NewVerifier(strings.TrimSpace(args[0]))
		if err != nil {
			fail(2, "verifier key: %v", err)
		}
		msg, err := os.ReadFile(args[1])
		if err != nil {
			fail(2, "%v", err)
		}
		n, err := note.Open(msg, note.VerifierList(verifier))
		if err != nil {
			fail(1, "note: %v", err)
		}
		fmt.Print(n.Text)
	case "inclusion":
		if len(args) < 4 {
			fail(2, "usage: tlogcheck inclusion SIZE ROOT INDEX LEAF PROOF...")
		}
		err := tlog.CheckRecord(hashes(args[4:]), number(args[0]), hash(args[1]), number(args[2]), hash(args[3]))
		if err != nil {
			fail(1, "inclusion: %v", err)
		}
		fmt.Println("ok")
	case "consistency":
		if len(args) < 4 {
			fail(2, "usage: tlogcheck consistency OLD OLDROOT NEW NEWROOT PROOF...")
		}
		err := tlog.CheckTree(hashes(args[4:]), number(args[2]), hash(args[3]), number(args[0]), hash(args[1]))
		if err != nil {
			fail(1, "consistency: %v", err)
		}
		fmt.Println("ok")
	case "proof":
		if len(args) != 2 {
			fail(2, "usage: tlogcheck proof VKEY FILE")
		}
		proof(strings.TrimSpace(args[0]), args[1])
	case "tiles":
		if len(args) != 2 {
			fail(2, "usage: tlogcheck tiles PREFIX VKEY")
		}
		tiles(strings.TrimRight(args[0], "/"), strings.TrimSpace(args[1]))
	default:
		fail(2, "unknown check %q", os.Args[1])
	}
}

func get(url string) []byte {
	resp, err := http.Get(url)
	if err != nil {
		fail(1, "%s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		fail(1, "%s: status %d %v", url, resp.StatusCode, err)
	}
	return body
}

// path is a tile's c2sp.org/tlog-tiles path: the same as Go's sumdb tile paths, without
// the tile height.
func path(t tlog.Tile) string {
	n := fmt.Sprintf("%03d", t.N%1000)
	for rest := t.N / 1000; rest > 0; rest /= 1000 {
		n = fmt.Sprintf("x%03d/%s", rest%1000, n)
	}
	level := strconv.Itoa(t.L)
	if t.L == -1 {
		level = "entries"
	}
	if t.W < 1<<uint(t.H) {
		n += fmt.Sprintf(".p/%d", t.W)
	}
	return "tile/" + level + "/" + n
}

type fetcher struct{ prefix string }

func (f fetcher) Height() int { return 8 }

func (f fetcher) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		out[i] = get(f.prefix + "/" + path(t))
	}
	return out, nil
}

func (f fetcher) SaveTiles([]tlog.Tile, [][]byte) {}

// tiles checks the whole tree of the latest checkpoint from the log's tiles alone: the
// tile hash reader verifies every tile it reads against the signed root; then every
// entry bundle must hash to its level-0 tile.
func tiles(prefix, vkey string) {
	verifier, err := note.NewVerifier(vkey)
	if err != nil {
		fail(2, "verifier key: %v", err)
	}
	n, err := note.Open(get(prefix+"/checkpoint"), note.VerifierList(verifier))
	if err != nil {
		fail(1, "checkpoint: %v", err)
	}
	lines := strings.Split(n.Text, "\n")
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil {
		fail(1, "checkpoint size: %v", err)
	}
	raw, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(raw) != tlog.HashSize {
		fail(1, "checkpoint root: %v", err)
	}
	var root tlog.Hash
	copy(root[:], raw)
	tree := tlog.Tree{N: size, Hash: root}
	reader := tlog.TileHashReader(tree, fetcher{prefix})
	got, err := tlog.TreeHash(size, reader)
	if err != nil || got != root {
		fail(1, "tree hash from tiles: %v (%v, want %v)", err, got, root)
	}
	for i := int64(0); i < size; i += 1 + size/7 {
		proof, err := tlog.ProveRecord(size, i, reader)
		if err != nil {
			fail(1, "proof of %d from tiles: %v", i, err)
		}
		leaf, err := reader.ReadHashes([]int64{tlog.StoredHashIndex(0, i)})
		if err != nil {
			fail(1, "leaf %d: %v", i, err)
		}
		if err := tlog.CheckRecord(proof, size, root, i, leaf[0]); err != nil {
			fail(1, "record %d: %v", i, err)
		}
	}
	for start := int64(0); start < size; start += 256 {
		width := size - start
		if width > 256 {
			width = 256
		}
		t := tlog.Tile{H: 8, L: 0, N: start / 256, W: int(width)}
		hashes := get(prefix + "/" + path(t))
		e := t
		e.L = -1
		bundle := get(prefix + "/" + path(e))
		for i := int64(0); i < width; i++ {
			if len(bundle) < 2 {
				fail(1, "entry bundle %d ends early", t.N)
			}
			length := int(binary.BigEndian.Uint16(bundle))
			entry := bundle[2 : 2+length]
			bundle = bundle[2+length:]
			leaf := tlog.RecordHash(entry)
			if !bytes.Equal(leaf[:], hashes[i*32:(i+1)*32]) {
				fail(1, "entry %d does not hash to its leaf", start+i)
			}
		}
		if len(bundle) != 0 {
			fail(1, "entry bundle %d is longer than its tile", t.N)
		}
	}
	fmt.Printf("ok %d\n", size)
}

// proof checks a tlog proof: the checkpoint note opens with the key, and the event in the
// extra data (its hash is the log entry) is at the index in the signed tree.
func proof(vkey, file string) {
	verifier, err := note.NewVerifier(vkey)
	if err != nil {
		fail(2, "verifier key: %v", err)
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		fail(2, "%v", err)
	}
	parts := strings.SplitN(string(raw), "\n\n", 2)
	if len(parts) != 2 {
		fail(1, "no blank line before the checkpoint")
	}
	lines := strings.Split(parts[0], "\n")
	if lines[0] != "c2sp.org/tlog-proof@v1" {
		fail(1, "not a tlog proof")
	}
	lines = lines[1:]
	var extra []byte
	if len(lines) > 0 && strings.HasPrefix(lines[0], "extra ") {
		extra, err = base64.StdEncoding.DecodeString(lines[0][6:])
		if err != nil {
			fail(1, "extra: %v", err)
		}
		lines = lines[1:]
	}
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "index ") {
		fail(1, "no index line")
	}
	index := number(lines[0][6:])
	var path tlog.RecordProof
	for _, line := range lines[1:] {
		h, err := base64.StdEncoding.DecodeString(line)
		if err != nil || len(h) != tlog.HashSize {
			fail(1, "not a hash: %q", line)
		}
		var node tlog.Hash
		copy(node[:], h)
		path = append(path, node)
	}
	n, err := note.Open([]byte(parts[1]), note.VerifierList(verifier))
	if err != nil {
		fail(1, "checkpoint: %v", err)
	}
	head := strings.Split(n.Text, "\n")
	size := number(head[1])
	rootRaw, err := base64.StdEncoding.DecodeString(head[2])
	if err != nil || len(rootRaw) != tlog.HashSize {
		fail(1, "checkpoint root")
	}
	var root tlog.Hash
	copy(root[:], rootRaw)
	var event struct {
		Hash string `json:"hash"`
	}
	if err := json.Unmarshal(extra, &event); err != nil {
		fail(1, "extra is not an event: %v", err)
	}
	entry, err := hex.DecodeString(event.Hash)
	if err != nil {
		fail(1, "event hash: %v", err)
	}
	if err := tlog.CheckRecord(path, size, root, index, tlog.RecordHash(entry)); err != nil {
		fail(1, "record %d: %v", index, err)
	}
	fmt.Printf("ok %d %d\n", index, size)
}
