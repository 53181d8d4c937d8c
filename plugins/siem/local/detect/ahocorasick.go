package detect

// automaton is an Aho-Corasick multi-pattern matcher compiled to a dense
// DFA over byte classes. Patterns are matched against ASCII-lower-cased
// input: the byte class table folds A-Z onto a-z, so callers pass either an
// ASCII string as is or the strings.ToLower form of a non-ASCII string.
//
// Transitions are stored premultiplied by the number of classes and shifted
// left by one bit; the low bit flags states that end at least one pattern,
// so the scan loop is one table load and one branch per input byte.
type automaton struct {
	classes  [256]uint8 // byte -> class (0 = byte in no pattern)
	nclasses int
	delta    []int32 // (state*nclasses + class) -> next<<1 | hasOutput
	out      [][]int32
	dict     []int32 // nearest proper suffix state with output, -1 if none
	patLen   []int32 // pattern id -> length in bytes
}

// newAutomaton compiles patterns (already lower-cased, non-empty).
func newAutomaton(patterns []string) *automaton {
	a := &automaton{}
	// Byte classes: every distinct byte of the patterns gets its own class.
	var used [256]bool
	for _, p := range patterns {
		for i := 0; i < len(p); i++ {
			used[p[i]] = true
		}
	}
	n := 1
	var cls [256]uint8
	for b := 0; b < 256; b++ {
		if used[b] {
			cls[b] = uint8(n)
			n++
		}
	}
	// Patterns are lower-cased, so A-Z never occur and n <= 231 fits a uint8.
	a.nclasses = n
	for b := 0; b < 256; b++ {
		a.classes[b] = cls[lowerTable[b]]
	}

	// Trie.
	type node struct {
		next map[uint8]int32
	}
	trie := []node{{next: map[uint8]int32{}}}
	a.out = [][]int32{nil}
	for id, p := range patterns {
		s := int32(0)
		for i := 0; i < len(p); i++ {
			c := cls[p[i]]
			nx, ok := trie[s].next[c]
			if !ok {
				nx = int32(len(trie))
				trie = append(trie, node{next: map[uint8]int32{}})
				a.out = append(a.out, nil)
				trie[s].next[c] = nx
			}
			s = nx
		}
		a.out[s] = append(a.out[s], int32(id))
		a.patLen = append(a.patLen, int32(len(p)))
	}

	// Breadth-first construction of failure links and the dense DFA.
	states := len(trie)
	fail := make([]int32, states)
	a.dict = make([]int32, states)
	next := make([]int32, states*n) // plain state numbers for now
	order := make([]int32, 0, states)
	a.dict[0] = -1
	for c := 0; c < n; c++ {
		if nx, ok := trie[0].next[uint8(c)]; ok {
			next[c] = nx
			fail[nx] = 0
			a.dict[nx] = -1
			order = append(order, nx)
		}
	}
	for q := 0; q < len(order); q++ {
		s := order[q]
		f := fail[s]
		for c := 0; c < n; c++ {
			if nx, ok := trie[s].next[uint8(c)]; ok {
				next[int(s)*n+c] = nx
				fs := next[int(f)*n+c]
				fail[nx] = fs
				if len(a.out[fs]) > 0 {
					a.dict[nx] = fs
				} else {
					a.dict[nx] = a.dict[fs]
				}
				order = append(order, nx)
			} else {
				next[int(s)*n+c] = next[int(f)*n+c]
			}
		}
	}
	a.delta = make([]int32, len(next))
	for i, nx := range next {
		v := nx * int32(n) << 1
		if len(a.out[nx]) > 0 || a.dict[nx] >= 0 {
			v |= 1
		}
		a.delta[i] = v
	}
	return a
}

// scan runs the automaton over s and calls hit(pattern, end) for every
// occurrence of a pattern ending at byte offset end (exclusive).
func (a *automaton) scan(s string, hit func(pattern int32, end int)) {
	n := int32(a.nclasses)
	st := int32(0)
	for i := 0; i < len(s); i++ {
		v := a.delta[st+int32(a.classes[s[i]])]
		st = v >> 1
		if v&1 == 0 {
			continue
		}
		for q := st / n; q >= 0; q = a.dict[q] {
			for _, id := range a.out[q] {
				hit(id, i+1)
			}
		}
	}
}
