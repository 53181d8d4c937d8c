package awsfake

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

// scope is what a request's SigV4 Authorization header says.
type scope struct {
	accessKey, date, region, service string
	signedHeaders                    []string
	signature                        string
}

// parseAuth reads "AWS4-HMAC-SHA256 Credential=AKID/20261207/eu-west-1/ec2/aws4_request,
// SignedHeaders=host;x-amz-date, Signature=abc".
func parseAuth(h string) (scope, error) {
	const alg = "AWS4-HMAC-SHA256 "
	if !strings.HasPrefix(h, alg) {
		return scope{}, fmt.Errorf("not a SigV4 Authorization header")
	}
	var s scope
	for _, part := range strings.Split(strings.TrimPrefix(h, alg), ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "Credential":
			f := strings.Split(v, "/")
			if len(f) != 5 || f[4] != "aws4_request" {
				return scope{}, fmt.Errorf("credential scope %q", v)
			}
			s.accessKey, s.date, s.region, s.service = f[0], f[1], f[2], f[3]
		case "SignedHeaders":
			s.signedHeaders = strings.Split(v, ";")
		case "Signature":
			s.signature = v
		}
	}
	if s.accessKey == "" || len(s.signedHeaders) == 0 || s.signature == "" {
		return scope{}, fmt.Errorf("incomplete Authorization header")
	}
	return s, nil
}

// verify checks a request's SigV4 signature with secret, computed here
// from the documented algorithm (not with the SDK's signer): the canonical
// request, the string to sign and the derived key. It returns the body.
func verify(r *http.Request, s scope, secret string, now time.Time) ([]byte, error) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	amzDate := r.Header.Get("X-Amz-Date")
	t, err := time.Parse("20060102T150405Z", amzDate)
	if err != nil {
		return nil, fmt.Errorf("X-Amz-Date %q", amzDate)
	}
	if d := now.Sub(t); d > 15*time.Minute || d < -15*time.Minute {
		return nil, fmt.Errorf("request time %s is %s from the server's", amzDate, d)
	}
	if !strings.HasPrefix(amzDate, s.date) {
		return nil, fmt.Errorf("credential date %s is not the request's %s", s.date, amzDate)
	}
	payload := r.Header.Get("X-Amz-Content-Sha256")
	sum := sha256.Sum256(body)
	switch payload {
	case "", hex.EncodeToString(sum[:]):
		payload = hex.EncodeToString(sum[:])
	case "UNSIGNED-PAYLOAD":
	default:
		return nil, fmt.Errorf("X-Amz-Content-Sha256 does not match the body")
	}
	var canon strings.Builder
	canon.WriteString(r.Method + "\n")
	canon.WriteString(canonicalPath(r.URL.EscapedPath(), s.service) + "\n")
	canon.WriteString(canonicalQuery(r.URL.Query()) + "\n")
	for _, h := range s.signedHeaders {
		v := r.Header.Values(h)
		if h == "host" {
			v = []string{r.Host}
		}
		if h == "content-length" {
			v = []string{fmt.Sprint(len(body))}
		}
		for i := range v {
			v[i] = strings.Join(strings.Fields(v[i]), " ")
		}
		canon.WriteString(h + ":" + strings.Join(v, ",") + "\n")
	}
	canon.WriteString("\n" + strings.Join(s.signedHeaders, ";") + "\n" + payload)
	cr := sha256.Sum256([]byte(canon.String()))
	credScope := strings.Join([]string{s.date, s.region, s.service, "aws4_request"}, "/")
	toSign := "AWS4-HMAC-SHA256\n" + amzDate + "\n" + credScope + "\n" + hex.EncodeToString(cr[:])
	key := []byte("AWS4" + secret)
	for _, p := range []string{s.date, s.region, s.service, "aws4_request"} {
		key = hmacSHA256(key, p)
	}
	want := hex.EncodeToString(hmacSHA256(key, toSign))
	if !hmac.Equal([]byte(want), []byte(s.signature)) {
		return nil, fmt.Errorf("signature mismatch")
	}
	if !signed(s.signedHeaders, "host") || !signed(s.signedHeaders, "x-amz-date") {
		return nil, fmt.Errorf("host and x-amz-date must be signed")
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	return body, nil
}

func signed(hs []string, h string) bool {
	for _, x := range hs {
		if x == h {
			return true
		}
	}
	return false
}

func hmacSHA256(key []byte, s string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(s))
	return m.Sum(nil)
}

// canonicalPath is the URI path as SigV4 wants it: S3 signs the path as
// sent; every other service encodes each segment once more.
func canonicalPath(escaped, service string) string {
	if escaped == "" {
		return "/"
	}
	if service == "s3" {
		return escaped
	}
	segs := strings.Split(escaped, "/")
	for i, s := range segs {
		segs[i] = uriEncode(s, false)
	}
	return strings.Join(segs, "/")
}

// canonicalQuery sorts and encodes the query.
func canonicalQuery(q url.Values) string {
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		vs := append([]string(nil), q[k]...)
		sort.Strings(vs)
		for _, v := range vs {
			parts = append(parts, uriEncode(k, true)+"="+uriEncode(v, true))
		}
	}
	return strings.Join(parts, "&")
}

// uriEncode is SigV4's UriEncode: everything but unreserved characters is
// percent-encoded (and "/" too when slash is set).
func uriEncode(s string, slash bool) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_', c == '.', c == '~':
			b.WriteByte(c)
		case c == '/' && !slash:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}
