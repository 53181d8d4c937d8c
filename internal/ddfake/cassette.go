package ddfake

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"reflect"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Cassette is a go-vcr v2 recording of real Datadog interactions, as the
// official client's tests keep them.
type Cassette struct {
	Interactions []Interaction `yaml:"interactions"`
	Version      int           `yaml:"version"`
}

// Interaction is one recorded request and its answer.
type Interaction struct {
	ID      int `yaml:"id"`
	Request struct {
		Body    string              `yaml:"body"`
		Headers map[string][]string `yaml:"headers"`
		Method  string              `yaml:"method"`
		URL     string              `yaml:"url"`
	} `yaml:"request"`
	Response struct {
		Body    string              `yaml:"body"`
		Code    int                 `yaml:"code"`
		Headers map[string][]string `yaml:"headers"`
		Status  string              `yaml:"status"`
	} `yaml:"response"`
}

// LoadCassette reads a go-vcr v2 YAML cassette.
func LoadCassette(file string) (*Cassette, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("ddfake: %w", err)
	}
	var c Cassette
	if err := yaml.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("ddfake: %s: %w", file, err)
	}
	if c.Version != 2 || len(c.Interactions) == 0 {
		return nil, fmt.Errorf("ddfake: %s: not a go-vcr v2 cassette with interactions", file)
	}
	return &c, nil
}

// cassette is a cassette being replayed.
type cassette struct {
	c      *Cassette
	next   int
	errors []string
}

// Replay makes the fake serve c's interactions in order instead of its own
// store: each request must match the next recorded one (method, path,
// query, and the JSON body, times compared as instants), else it is
// answered 400 and the mismatch is kept for ReplayErrors.
func (s *Server) Replay(c *Cassette) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cassette = &cassette{c: c}
}

// ReplayErrors returns the mismatches found so far and whether every
// interaction of the cassette was played.
func (s *Server) ReplayErrors() (errs []string, done bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cassette == nil {
		return nil, false
	}
	return append([]string(nil), s.cassette.errors...), s.cassette.next == len(s.cassette.c.Interactions)
}

func (s *Server) replaying() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cassette != nil
}

func (s *Server) serveCassette(w http.ResponseWriter, req Request) {
	s.mu.Lock()
	cs := s.cassette
	if cs.next >= len(cs.c.Interactions) {
		msg := fmt.Sprintf("request %d (%s %s) beyond the cassette's %d interactions", cs.next, req.Method, req.Path, len(cs.c.Interactions))
		cs.errors = append(cs.errors, msg)
		s.mu.Unlock()
		writeErrors(w, http.StatusBadRequest, msg)
		return
	}
	it := cs.c.Interactions[cs.next]
	if msg := matchRequest(it, req); msg != "" {
		msg = fmt.Sprintf("interaction %d: %s", cs.next, msg)
		cs.errors = append(cs.errors, msg)
		s.mu.Unlock()
		writeErrors(w, http.StatusBadRequest, msg)
		return
	}
	cs.next++
	s.mu.Unlock()
	for k, vs := range it.Response.Headers {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.WriteHeader(it.Response.Code)
	io.WriteString(w, it.Response.Body)
}

// matchRequest compares a request with a recorded one; "" means they
// match.
func matchRequest(it Interaction, req Request) string {
	if !strings.EqualFold(it.Request.Method, req.Method) {
		return fmt.Sprintf("method %s, recorded %s", req.Method, it.Request.Method)
	}
	u, err := url.Parse(it.Request.URL)
	if err != nil {
		return "bad recorded URL: " + err.Error()
	}
	if u.Path != req.Path {
		return fmt.Sprintf("path %s, recorded %s", req.Path, u.Path)
	}
	if got, want := canonQuery(req.Query), canonQuery(u.Query()); got != want {
		return fmt.Sprintf("query %s, recorded %s", got, want)
	}
	for _, h := range []string{"Content-Type", "Accept"} {
		if want := it.Request.Headers[h]; len(want) > 0 && !strings.HasPrefix(req.Header.Get(h), want[0]) {
			return fmt.Sprintf("header %s %q, recorded %q", h, req.Header.Get(h), want[0])
		}
	}
	want := strings.TrimSpace(it.Request.Body)
	got := strings.TrimSpace(string(req.Body))
	if want == "" && got == "" {
		return ""
	}
	var wv, gv any
	if err := json.Unmarshal([]byte(want), &wv); err != nil {
		return "bad recorded body: " + err.Error()
	}
	if err := json.Unmarshal([]byte(got), &gv); err != nil {
		return "body is not JSON: " + err.Error()
	}
	if !reflect.DeepEqual(normalize(wv), normalize(gv)) {
		return fmt.Sprintf("body %s, recorded %s", got, want)
	}
	return ""
}

func canonQuery(q url.Values) string {
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b bytes.Buffer
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%v;", k, q[k])
	}
	return b.String()
}

// normalize turns RFC 3339 strings into instants, so that
// "2022-04-13T11:17:57.080Z" equals "2022-04-13T11:17:57.08Z".
func normalize(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, e := range x {
			out[k] = normalize(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normalize(e)
		}
		return out
	case string:
		if t, err := time.Parse(time.RFC3339Nano, x); err == nil {
			return t.UnixNano()
		}
		return x
	}
	return v
}
