package tarpit

import (
	"bufio"
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"slices"
)

// Model is an order-2 word Markov model in a compact, read-only form.
//
// Words are interned in one byte arena. States are the distinct word pairs
// (w1, w2), sorted; the successors of state s are the entries
// succStart[s]..succStart[s+1] of the flat succ* slices, which hold the next
// word, the cumulative count (for a weighted choice) and the index of the
// state that follows, so that generating a word costs no map lookup.
type Model struct {
	arena     []byte
	wordOff   []uint32 // len words+1
	stateW1   []uint32
	stateW2   []uint32
	succStart []uint32 // len states+1
	succWord  []uint32
	succCum   []uint32
	succNext  []uint32
	starts    []uint32 // states that begin a sentence
}

// Words returns the vocabulary size.
func (m *Model) Words() int { return len(m.wordOff) - 1 }

// States returns the number of (w1, w2) states.
func (m *Model) States() int { return len(m.stateW1) }

// Transitions returns the number of (state, successor) pairs.
func (m *Model) Transitions() int { return len(m.succWord) }

// word returns the bytes of word id.
func (m *Model) word(id uint32) []byte { return m.arena[m.wordOff[id]:m.wordOff[id+1]] }

// BuildOptions bound the model built from text.
type BuildOptions struct {
	// MaxInputBytes is how much text is read. Default 64 MiB.
	MaxInputBytes int64
	// MaxWords caps the vocabulary; later new words are dropped. Default 200 000.
	MaxWords int
	// MaxTokens caps the number of tokens used. Default 8 000 000.
	MaxTokens int
}

func (o BuildOptions) withDefaults() BuildOptions {
	if o.MaxInputBytes <= 0 {
		o.MaxInputBytes = 64 << 20
	}
	if o.MaxWords <= 0 {
		o.MaxWords = 200_000
	}
	if o.MaxTokens <= 0 {
		o.MaxTokens = 8_000_000
	}
	return o
}

// ErrTooLittleText is returned by Build when the text has too few words to
// make a model.
var ErrTooLittleText = errors.New("tarpit: too little text for a model (need at least 3 words)")

// Build tokenises plain text (whitespace-separated words, punctuation kept
// on the words) and builds a model. The token stream is treated as circular
// so that every state has a successor.
func Build(text io.Reader, opts BuildOptions) (*Model, error) {
	opts = opts.withDefaults()
	data, err := io.ReadAll(io.LimitReader(text, opts.MaxInputBytes))
	if err != nil {
		return nil, fmt.Errorf("tarpit: read text: %w", err)
	}
	ids := make(map[string]uint32)
	var (
		arena  []byte
		offs   = []uint32{0}
		tokens []uint32
	)
	tokenize(data, func(w []byte) bool {
		id, ok := ids[string(w)]
		if !ok {
			if len(offs)-1 >= opts.MaxWords {
				return true
			}
			id = uint32(len(offs) - 1)
			ids[string(w)] = id
			arena = append(arena, w...)
			offs = append(offs, uint32(len(arena)))
		}
		tokens = append(tokens, id)
		return len(tokens) < opts.MaxTokens
	})
	if len(tokens) < 3 {
		return nil, ErrTooLittleText
	}
	n := len(tokens)
	tokens = append(tokens, tokens[0], tokens[1])
	type tri struct{ a, b, c uint32 }
	tris := make([]tri, n)
	for i := range n {
		tris[i] = tri{tokens[i], tokens[i+1], tokens[i+2]}
	}
	slices.SortFunc(tris, func(x, y tri) int {
		if c := cmp.Compare(x.a, y.a); c != 0 {
			return c
		}
		if c := cmp.Compare(x.b, y.b); c != 0 {
			return c
		}
		return cmp.Compare(x.c, y.c)
	})
	m := &Model{arena: arena, wordOff: offs}
	for i, t := range tris {
		newState := i == 0 || t.a != tris[i-1].a || t.b != tris[i-1].b
		if newState {
			m.stateW1 = append(m.stateW1, t.a)
			m.stateW2 = append(m.stateW2, t.b)
			m.succStart = append(m.succStart, uint32(len(m.succWord)))
		}
		if newState || t.c != tris[i-1].c {
			cum := uint32(0)
			if !newState {
				cum = m.succCum[len(m.succCum)-1]
			}
			m.succWord = append(m.succWord, t.c)
			m.succCum = append(m.succCum, cum+1)
			continue
		}
		m.succCum[len(m.succCum)-1]++
	}
	m.succStart = append(m.succStart, uint32(len(m.succWord)))
	m.succNext = make([]uint32, len(m.succWord))
	for s := range m.stateW1 {
		for i := m.succStart[s]; i < m.succStart[s+1]; i++ {
			next, ok := m.findState(m.stateW2[s], m.succWord[i])
			if !ok { // cannot happen with a circular stream; fall back safely
				next = 0
			}
			m.succNext[i] = next
		}
	}
	for s := range m.stateW1 {
		w1 := m.word(m.stateW1[s])
		w2 := m.word(m.stateW2[s])
		if endsSentence(w1) && startsSentence(w2) {
			m.starts = append(m.starts, uint32(s))
		}
	}
	if len(m.starts) == 0 {
		m.starts = []uint32{0}
	}
	return m, nil
}

// findState binary-searches the sorted states for (w1, w2).
func (m *Model) findState(w1, w2 uint32) (uint32, bool) {
	lo, hi := 0, len(m.stateW1)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if m.stateW1[mid] < w1 || m.stateW1[mid] == w1 && m.stateW2[mid] < w2 {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo < len(m.stateW1) && m.stateW1[lo] == w1 && m.stateW2[lo] == w2 {
		return uint32(lo), true
	}
	return 0, false
}

func endsSentence(w []byte) bool {
	if len(w) == 0 {
		return false
	}
	switch w[len(w)-1] {
	case '.', '?', '!':
		return true
	}
	return false
}

func startsSentence(w []byte) bool { return len(w) > 0 && 'A' <= w[0] && w[0] <= 'Z' }

// next picks the successor of state s for the random value r and returns the
// word and the next state. A state without successors restarts at a
// sentence start.
func (m *Model) next(s uint32, r uint64) (word, state uint32) {
	lo, hi := m.succStart[s], m.succStart[s+1]
	if lo == hi {
		st := m.starts[uint32((r>>32)*uint64(len(m.starts))>>32)]
		return m.stateW2[st], st
	}
	total := uint64(m.succCum[hi-1])
	x := uint32((r & 0xffffffff) * total >> 32) // in [0, total)
	i := lo
	if hi-lo <= 8 {
		for m.succCum[i] <= x {
			i++
		}
	} else {
		j, k := lo, hi-1
		for j < k {
			mid := (j + k) >> 1
			if m.succCum[mid] <= x {
				j = mid + 1
			} else {
				k = mid
			}
		}
		i = j
	}
	return m.succWord[i], m.succNext[i]
}

// Model file format, all integers little-endian uint32:
//
//	magic "SDMK" | version | words | arenaLen | states | transitions | starts
//	arena [arenaLen]byte | wordOff [words+1] | stateW1 [states] | stateW2 [states]
//	succStart [states+1] | succWord, succCum, succNext [transitions] | starts [starts]
//	crc32 (IEEE) of everything before it
const (
	modelMagic   = "SDMK"
	modelVersion = 1
	headerLen    = 4 + 6*4

	// Limits on a loaded model, so a hostile file cannot make LoadModel
	// allocate without bound.
	maxModelWords       = 1 << 20
	maxModelArena       = 64 << 20
	maxModelStates      = 1 << 23
	maxModelTransitions = 1 << 24
)

// ErrBadModel is wrapped by every LoadModel validation error.
var ErrBadModel = errors.New("tarpit: invalid model file")

// WriteTo writes the model in the versioned binary format.
func (m *Model) WriteTo(w io.Writer) (int64, error) {
	var buf bytes.Buffer
	buf.WriteString(modelMagic)
	put := func(v ...uint32) {
		for _, x := range v {
			buf.Write([]byte{byte(x), byte(x >> 8), byte(x >> 16), byte(x >> 24)})
		}
	}
	put(modelVersion, uint32(m.Words()), uint32(len(m.arena)), uint32(m.States()), uint32(m.Transitions()), uint32(len(m.starts)))
	buf.Write(m.arena)
	for _, s := range [][]uint32{m.wordOff, m.stateW1, m.stateW2, m.succStart, m.succWord, m.succCum, m.succNext, m.starts} {
		put(s...)
	}
	put(crc32IEEE(buf.Bytes()))
	n, err := w.Write(buf.Bytes())
	if err != nil {
		return int64(n), fmt.Errorf("tarpit: write model: %w", err)
	}
	return int64(n), nil
}

// LoadModel reads and validates a model written by WriteTo. Every count,
// index and bound is checked, so a corrupt or hostile file gives an error
// wrapping ErrBadModel, never a panic or an unbounded allocation.
func LoadModel(r io.Reader) (*Model, error) {
	br := bufio.NewReader(r)
	hdr := make([]byte, headerLen)
	if _, err := io.ReadFull(br, hdr); err != nil {
		return nil, fmt.Errorf("%w: header: %w", ErrBadModel, err)
	}
	if string(hdr[:4]) != modelMagic {
		return nil, fmt.Errorf("%w: bad magic %q", ErrBadModel, hdr[:4])
	}
	h := decodeU32s(hdr[4:])
	version, words, arenaLen, states, trans, nstarts := h[0], h[1], h[2], h[3], h[4], h[5]
	switch {
	case version != modelVersion:
		return nil, fmt.Errorf("%w: version %d, want %d", ErrBadModel, version, modelVersion)
	case words == 0 || words > maxModelWords:
		return nil, fmt.Errorf("%w: %d words (want 1..%d)", ErrBadModel, words, maxModelWords)
	case arenaLen > maxModelArena:
		return nil, fmt.Errorf("%w: arena of %d bytes (limit %d)", ErrBadModel, arenaLen, maxModelArena)
	case states == 0 || states > maxModelStates:
		return nil, fmt.Errorf("%w: %d states (want 1..%d)", ErrBadModel, states, maxModelStates)
	case trans > maxModelTransitions:
		return nil, fmt.Errorf("%w: %d transitions (limit %d)", ErrBadModel, trans, maxModelTransitions)
	case nstarts == 0 || nstarts > states:
		return nil, fmt.Errorf("%w: %d sentence starts (want 1..%d)", ErrBadModel, nstarts, states)
	}
	ints := uint64(words+1) + 2*uint64(states) + uint64(states+1) + 3*uint64(trans) + uint64(nstarts)
	body := make([]byte, 0, min(uint64(arenaLen)+4*ints+4, 1<<20))
	buf := bytes.NewBuffer(body)
	want := int64(arenaLen) + 4*int64(ints) + 4
	if n, err := io.CopyN(buf, br, want); err != nil {
		return nil, fmt.Errorf("%w: truncated after %d of %d body bytes: %w", ErrBadModel, n, want, err)
	}
	b := buf.Bytes()
	sum := crc32Update(crc32IEEE(hdr), b[:len(b)-4])
	if got := decodeU32s(b[len(b)-4:])[0]; got != sum {
		return nil, fmt.Errorf("%w: checksum mismatch", ErrBadModel)
	}
	m := &Model{arena: b[:arenaLen:arenaLen]}
	ints32 := decodeU32s(b[arenaLen : len(b)-4])
	take := func(n uint32) []uint32 {
		s := ints32[:n:n]
		ints32 = ints32[n:]
		return s
	}
	m.wordOff = take(words + 1)
	m.stateW1 = take(states)
	m.stateW2 = take(states)
	m.succStart = take(states + 1)
	m.succWord = take(trans)
	m.succCum = take(trans)
	m.succNext = take(trans)
	m.starts = take(nstarts)
	if err := m.validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadModel, err)
	}
	return m, nil
}

func (m *Model) validate() error {
	words, states := uint32(m.Words()), uint32(m.States())
	if m.wordOff[0] != 0 || m.wordOff[words] != uint32(len(m.arena)) {
		return errors.New("word offsets do not cover the arena")
	}
	for i := range words {
		a, b := m.wordOff[i], m.wordOff[i+1]
		if b <= a || b-a > MaxWordLen {
			return fmt.Errorf("word %d has bad bounds %d..%d", i, a, b)
		}
		if !keepWord(m.arena[a:b]) {
			return fmt.Errorf("word %d is not a clean word", i)
		}
	}
	for s := range states {
		if m.stateW1[s] >= words || m.stateW2[s] >= words {
			return fmt.Errorf("state %d refers to a missing word", s)
		}
		if s > 0 && (m.stateW1[s-1] > m.stateW1[s] || m.stateW1[s-1] == m.stateW1[s] && m.stateW2[s-1] >= m.stateW2[s]) {
			return fmt.Errorf("states not sorted at %d", s)
		}
	}
	if m.succStart[0] != 0 || m.succStart[states] != uint32(len(m.succWord)) {
		return errors.New("successor ranges do not cover the transitions")
	}
	for s := range states {
		lo, hi := m.succStart[s], m.succStart[s+1]
		if hi < lo {
			return fmt.Errorf("state %d has a negative successor range", s)
		}
		prev := uint32(0)
		for i := lo; i < hi; i++ {
			w, next := m.succWord[i], m.succNext[i]
			if w >= words || next >= states {
				return fmt.Errorf("transition %d out of range", i)
			}
			if m.succCum[i] <= prev {
				return fmt.Errorf("transition %d: cumulative counts not increasing", i)
			}
			prev = m.succCum[i]
			if m.stateW1[next] != m.stateW2[s] || m.stateW2[next] != w {
				return fmt.Errorf("transition %d leads to an inconsistent state", i)
			}
		}
	}
	for _, st := range m.starts {
		if st >= states {
			return errors.New("sentence start out of range")
		}
	}
	return nil
}

func decodeU32s(b []byte) []uint32 {
	out := make([]uint32, len(b)/4)
	for i := range out {
		out[i] = uint32(b[4*i]) | uint32(b[4*i+1])<<8 | uint32(b[4*i+2])<<16 | uint32(b[4*i+3])<<24
	}
	return out
}
