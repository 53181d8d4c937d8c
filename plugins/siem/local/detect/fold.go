package detect

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// foldKey returns a canonical form of s such that
//
//	foldKey(a) == foldKey(b)  <=>  strings.EqualFold(a, b)
//
// strings.EqualFold compares rune by rune (invalid UTF-8 bytes decode to
// utf8.RuneError) and treats two runes as equal when they are in the same
// Unicode simple-folding orbit. foldKey maps every rune to one representative
// of its orbit: the ASCII lower-case letter when the orbit has one (so that
// the key of an ASCII string is its ASCII lower-casing), otherwise the
// smallest rune of the orbit.
func foldKey(s string) string {
	if isASCII(s) {
		return asciiLower(s)
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s { // range yields utf8.RuneError for invalid bytes
		b.WriteRune(canonicalRune(r))
	}
	return b.String()
}

// canonicalRune returns the representative of r's simple-folding orbit.
func canonicalRune(r rune) rune {
	if r < utf8.RuneSelf {
		return rune(lowerTable[r])
	}
	best := r
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		if f < utf8.RuneSelf {
			return rune(lowerTable[f])
		}
		if f < best {
			best = f
		}
	}
	return best
}

// lowerTable maps every byte to its ASCII lower-case form (bytes that are
// not ASCII upper-case letters map to themselves).
var lowerTable = func() (t [256]byte) {
	for i := range t {
		b := byte(i)
		if 'A' <= b && b <= 'Z' {
			b += 'a' - 'A'
		}
		t[i] = b
	}
	return t
}()

// isASCII reports whether s has only ASCII bytes.
func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// hasASCIIUpper reports whether s has an ASCII upper-case letter.
func hasASCIIUpper(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			return true
		}
	}
	return false
}

// asciiLower lower-cases the ASCII letters of s (no allocation when s has
// none).
func asciiLower(s string) string {
	if !hasASCIIUpper(s) {
		return s
	}
	b := make([]byte, len(s))
	for i := 0; i < len(s); i++ {
		b[i] = lowerTable[s[i]]
	}
	return string(b)
}
