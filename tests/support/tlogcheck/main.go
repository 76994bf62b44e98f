// Command tlogcheck checks the registry's audit log with code nobody here wrote: the
// signed-note and Merkle tree packages of Go's checksum database (golang.org/x/mod/sumdb).
//
//	tlogcheck note VKEY FILE                           verify a checkpoint note; print its lines
//	tlogcheck inclusion SIZE ROOT INDEX LEAF PROOF...  RFC 6962 inclusion (hex hashes)
//	tlogcheck consistency OLD OLDROOT NEW NEWROOT PROOF...
//
// Exit status 0 when the check holds, 1 when it does not, 2 for bad arguments.
package main

import (
	"encoding/hex"
	"fmt"
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
	default:
		fail(2, "unknown check %q", os.Args[1])
	}
}
