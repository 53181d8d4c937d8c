// Package awsfake is test equipment: an in-process AWS endpoint for the
// aws injector's tests, never a code path of a user's run. One server
// answers every service the injector calls, routed by the SigV4 credential
// scope, and speaks each service's documented protocol: query (EC2, IAM,
// STS: form-encoded bodies, XML answers), JSON 1.1 (CloudTrail, Secrets
// Manager, SSM: X-Amz-Target), REST-JSON (Lambda) and REST-XML (S3). It
// checks every request's SigV4 signature against its own implementation
// of the algorithm, keeps the state the injector's resources need
// (trails, buckets, VPCs, groups, flow logs, secrets, parameters, users,
// roles, functions) and records every call as CloudTrail would name it
// (eventSource, eventName, request parameters, userAgent).
package awsfake

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"
)

// Call is one request the fake answered, as CloudTrail would log it.
type Call struct {
	EventSource string // "cloudtrail.amazonaws.com"
	EventName   string // "StopLogging", "UpdateFunctionCode20150331v2"
	// Params are the request's parameters: form fields (query protocol,
	// list indexes dropped), JSON body keys, or path and query parameters
	// of REST calls.
	Params    map[string]any
	UserAgent string
	Status    int
	ErrorCode string
}

// Server is the fake endpoint.
type Server struct {
	*httptest.Server
	AccessKey, SecretKey string
	Region, Account      string
	// Arn is the caller's identity (default arn:aws:iam::<account>:user/vigil-ci).
	Arn string

	mu    sync.Mutex
	calls []Call
	deny  map[string]string // "iam:CreateUser" -> error code
	seq   int
	state state
}

// state is what exists.
type state struct {
	trails    map[string]*trail
	buckets   map[string]map[string][]byte // bucket -> key -> object
	policies  map[string]string
	vpcs      map[string]map[string]string // id -> tags
	groups    map[string]*group
	flowLogs  map[string]map[string]string // id -> tags
	secrets   map[string]string
	params    map[string]string
	users     map[string]*user
	roles     map[string]string // name -> arn
	functions map[string]*function
}

type trail struct {
	bucket    string
	logging   bool
	selectors any
}

type group struct {
	vpc, name string
	tags      map[string]string
	ingress   map[string]bool // "tcp/22/0.0.0.0/0"
}

type user struct {
	keys         []string
	loginProfile bool
	policies     map[string]bool
}

type function struct {
	code       []byte
	statements map[string]bool
}

// New starts a fake for one account and region with a fresh key pair.
func New() *Server {
	s := &Server{AccessKey: "AKIAVIGILFAKE0000001", SecretKey: "vigil-fake-secret-key-0123456789abcdef", Region: "eu-west-1", Account: "111122223333",
		deny: map[string]string{}}
	s.Arn = "arn:aws:iam::" + s.Account + ":user/vigil-ci"
	s.state = state{trails: map[string]*trail{}, buckets: map[string]map[string][]byte{}, policies: map[string]string{},
		vpcs: map[string]map[string]string{}, groups: map[string]*group{}, flowLogs: map[string]map[string]string{},
		secrets: map[string]string{}, params: map[string]string{}, users: map[string]*user{}, roles: map[string]string{},
		functions: map[string]*function{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// Deny makes every later call of action ("iam:CreateUser") fail with
// AccessDenied in the service's own format.
func (s *Server) Deny(action string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deny[action] = "AccessDenied"
}

// Calls returns the calls answered so far.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

// Leftovers lists what exists: every resource the injector may create,
// as "kind name".
func (s *Server) Leftovers() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	add := func(kind string, names []string) {
		for _, n := range names {
			out = append(out, kind+" "+n)
		}
	}
	st := s.state
	add("trail", sortedKeys(st.trails))
	add("bucket", sortedKeys(st.buckets))
	add("vpc", sortedKeys(st.vpcs))
	add("security-group", sortedKeys(st.groups))
	add("flow-log", sortedKeys(st.flowLogs))
	add("secret", sortedKeys(st.secrets))
	add("parameter", sortedKeys(st.params))
	add("user", sortedKeys(st.users))
	add("role", sortedKeys(st.roles))
	add("function", sortedKeys(st.functions))
	sort.Strings(out)
	return out
}

// apiError is an error answer.
type apiError struct {
	status  int
	code    string
	message string
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

func errf(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, code: code, message: fmt.Sprintf(format, args...)}
}

// request is a parsed request.
type request struct {
	service, action string
	form            url.Values     // query protocol
	json            map[string]any // JSON protocols
	path            []string       // REST: path segments
	query           url.Values
	body            []byte
	method          string
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	sc, err := parseAuth(r.Header.Get("Authorization"))
	if err != nil {
		http.Error(w, "MissingAuthenticationToken: "+err.Error(), http.StatusForbidden)
		return
	}
	if sc.accessKey != s.AccessKey {
		writeError(w, sc.service, errf(403, "InvalidClientTokenId", "The security token included in the request is invalid."))
		return
	}
	body, err := verify(r, sc, s.SecretKey, time.Now())
	if err != nil {
		writeError(w, sc.service, errf(403, "SignatureDoesNotMatch", "%v", err))
		return
	}
	if sc.region != s.Region {
		writeError(w, sc.service, errf(400, "InvalidRegion", "signed for region %s, this endpoint is %s", sc.region, s.Region))
		return
	}
	req, perr := parseRequest(sc.service, r, body)
	if perr != nil {
		writeError(w, sc.service, perr)
		return
	}
	s.mu.Lock()
	call := Call{EventSource: sc.service + ".amazonaws.com", EventName: eventName(req), Params: paramsOf(req), UserAgent: r.Header.Get("User-Agent")}
	var status int
	var out any
	var aerr *apiError
	if code, denied := s.deny[sc.service+":"+req.action]; denied {
		aerr = errf(403, deniedCode(sc.service, code), "User: %s is not authorized to perform: %s:%s", s.Arn, sc.service, req.action)
	} else {
		status, out, aerr = s.handle(req)
	}
	if aerr != nil {
		call.Status, call.ErrorCode = aerr.status, aerr.code
	} else {
		call.Status = status
	}
	s.calls = append(s.calls, call)
	s.mu.Unlock()
	if aerr != nil {
		writeError(w, sc.service, aerr)
		return
	}
	writeAnswer(w, sc.service, req, status, out)
}

// deniedCode is AccessDenied as each service spells it.
func deniedCode(service, code string) string {
	switch service {
	case "ec2":
		return "UnauthorizedOperation"
	case "cloudtrail", "secretsmanager", "ssm", "lambda":
		return code + "Exception"
	}
	return code
}

func parseRequest(service string, r *http.Request, body []byte) (*request, *apiError) {
	req := &request{service: service, body: body, method: r.Method, query: r.URL.Query()}
	switch service {
	case "ec2", "iam", "sts":
		if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/x-www-form-urlencoded") || r.Method != http.MethodPost {
			return nil, errf(400, "InvalidRequest", "query protocol: want a form POST, got %s %s", r.Method, ct)
		}
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, errf(400, "MalformedQueryString", "%v", err)
		}
		req.form, req.action = form, form.Get("Action")
		if form.Get("Version") == "" {
			return nil, errf(400, "MissingParameter", "Version")
		}
	case "cloudtrail", "secretsmanager", "ssm":
		target := r.Header.Get("X-Amz-Target")
		if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-amz-json-1.1") || target == "" {
			return nil, errf(400, "UnknownOperationException", "JSON 1.1 protocol: want Content-Type application/x-amz-json-1.1 and X-Amz-Target")
		}
		req.action = target[strings.LastIndexByte(target, '.')+1:]
		if err := json.Unmarshal(body, &req.json); err != nil && len(body) > 0 {
			return nil, errf(400, "SerializationException", "%v", err)
		}
	case "lambda", "s3":
		req.path = strings.Split(strings.Trim(r.URL.Path, "/"), "/")
		if service == "lambda" && len(body) > 0 {
			if err := json.Unmarshal(body, &req.json); err != nil {
				return nil, errf(400, "InvalidRequestContentException", "%v", err)
			}
		}
		req.action = restAction(service, r.Method, req.path, req.query)
		if req.action == "" {
			return nil, errf(404, "UnknownOperation", "%s %s", r.Method, r.URL.Path)
		}
	default:
		return nil, errf(400, "UnknownService", "service %q", service)
	}
	return req, nil
}

// restAction names a Lambda or S3 REST call.
func restAction(service, method string, path []string, q url.Values) string {
	if service == "lambda" {
		if len(path) < 2 || path[0] != "2015-03-31" || path[1] != "functions" {
			return ""
		}
		switch {
		case method == http.MethodPost && len(path) == 2:
			return "CreateFunction"
		case method == http.MethodGet && len(path) == 3:
			return "GetFunction"
		case method == http.MethodDelete && len(path) == 3:
			return "DeleteFunction"
		case method == http.MethodPut && len(path) == 4 && path[3] == "code":
			return "UpdateFunctionCode"
		case method == http.MethodPost && len(path) == 4 && path[3] == "policy":
			return "AddPermission"
		case method == http.MethodDelete && len(path) == 5 && path[3] == "policy":
			return "RemovePermission"
		}
		return ""
	}
	if len(path) != 1 || path[0] == "" {
		return ""
	}
	_, policy := q["policy"]
	_, del := q["delete"]
	switch {
	case method == http.MethodPut && policy:
		return "PutBucketPolicy"
	case method == http.MethodPut:
		return "CreateBucket"
	case method == http.MethodGet && q.Get("list-type") == "2":
		return "ListObjects"
	case method == http.MethodPost && del:
		return "DeleteObjects"
	case method == http.MethodDelete:
		return "DeleteBucket"
	}
	return ""
}

// eventName is CloudTrail's name of a call: Lambda's carry their API
// version.
func eventName(req *request) string {
	if req.service == "lambda" {
		switch req.action {
		case "UpdateFunctionCode", "AddPermission", "RemovePermission", "CreateFunction", "DeleteFunction", "GetFunction":
			return req.action + "20150331v2"
		}
	}
	return req.action
}

var indexRE = regexp.MustCompile(`\.\d+`)

// paramsOf flattens a request's parameters as CloudTrail's
// requestParameters hold them (keys only matter to the recordings check).
func paramsOf(req *request) map[string]any {
	out := map[string]any{}
	switch {
	case req.form != nil:
		for k, v := range req.form {
			if k == "Action" || k == "Version" {
				continue
			}
			out[indexRE.ReplaceAllString(k, "")] = v[0]
		}
	case req.json != nil:
		for k, v := range req.json {
			out[k] = v
		}
	}
	if req.service == "lambda" && len(req.path) >= 3 {
		out["functionName"] = req.path[2]
		if len(req.path) == 5 {
			out["statementId"] = req.path[4]
		}
	}
	if req.service == "s3" && len(req.path) == 1 {
		out["bucketName"] = req.path[0]
	}
	return out
}

func (s *Server) nextID(prefix string) string {
	s.seq++
	return fmt.Sprintf("%s-%017x", prefix, s.seq)
}

// writeAnswer encodes an answer in the service's protocol.
func writeAnswer(w http.ResponseWriter, service string, req *request, status int, out any) {
	w.Header().Set("X-Amzn-Requestid", "vigil-fake-request")
	switch service {
	case "ec2", "iam", "sts", "s3":
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(status)
		if x, ok := out.(string); ok {
			io.WriteString(w, x)
		}
	default:
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		if service == "lambda" {
			w.Header().Set("Content-Type", "application/json")
		}
		w.WriteHeader(status)
		if status != http.StatusNoContent {
			if out == nil {
				out = map[string]any{}
			}
			_ = json.NewEncoder(w).Encode(out)
		}
	}
}

// writeError encodes an error in the service's protocol.
func writeError(w http.ResponseWriter, service string, e *apiError) {
	switch service {
	case "ec2":
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(e.status)
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>%s</Code><Message>%s</Message></Error></Errors><RequestID>vigil-fake</RequestID></Response>`, e.code, xmlText(e.message))
	case "iam", "sts":
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(e.status)
		fmt.Fprintf(w, `<ErrorResponse xmlns="https://%s.amazonaws.com/doc/"><Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>vigil-fake</RequestId></ErrorResponse>`, service, e.code, xmlText(e.message))
	case "s3":
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(e.status)
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>%s</Message><RequestId>vigil-fake</RequestId></Error>`, e.code, xmlText(e.message))
	case "lambda":
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Amzn-Errortype", e.code)
		w.WriteHeader(e.status)
		_ = json.NewEncoder(w).Encode(map[string]string{"Type": "User", "message": e.message})
	default:
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.WriteHeader(e.status)
		_ = json.NewEncoder(w).Encode(map[string]string{"__type": e.code, "message": e.message})
	}
}

var xmlEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;")

func xmlText(s string) string { return xmlEscaper.Replace(s) }
