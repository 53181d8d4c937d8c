package plugin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	pluginv1 "github.com/vigilsec/vigil/core/plugin/proto/v1"
)

// Params are a test's or target's plugin parameters (decoded TOML; JSON on
// the wire).
type Params map[string]any

// MarshalJSON encodes the params as a JSON object ({} when nil).
func (p Params) MarshalJSON() ([]byte, error) {
	if p == nil {
		return []byte("{}"), nil
	}
	b, err := json.Marshal(map[string]any(p))
	if err != nil {
		return nil, fmt.Errorf("plugin: encode params: %w", err)
	}
	return b, nil
}

// ParamsFromJSON decodes params sent over the wire.
func ParamsFromJSON(b []byte) (Params, error) {
	p := Params{}
	if len(bytes.TrimSpace(b)) == 0 {
		return p, nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("plugin: decode params: %w", err)
	}
	return p, nil
}

// Decode decodes the params strictly into v (a pointer to a struct with json
// tags): an unknown param is an error naming it.
func (p Params) Decode(v any) error {
	b, err := p.MarshalJSON()
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("params: %w", err)
	}
	return nil
}

// String returns the named param as a string ("" when absent).
func (p Params) String(name string) string {
	switch v := p[name].(type) {
	case nil:
		return ""
	case string:
		return v
	default:
		return fmt.Sprint(v)
	}
}

func timeToProto(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func timeFromProto(ts *timestamppb.Timestamp) time.Time {
	if ts == nil {
		return time.Time{}
	}
	return ts.AsTime()
}

// toStatus turns a plugin error into a gRPC status; ErrUnsupported becomes
// codes.Unimplemented and ErrDenied codes.PermissionDenied, so that the
// client side can turn them back.
func toStatus(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrUnsupported):
		return status.Error(codes.Unimplemented, err.Error())
	case errors.Is(err, ErrDenied):
		return status.Error(codes.PermissionDenied, err.Error())
	default:
		if _, ok := status.FromError(err); ok {
			return err
		}
		return status.Error(codes.Unknown, err.Error())
	}
}

// fromStatus turns a gRPC error back into a plain error: Unimplemented
// becomes ErrUnsupported, PermissionDenied wraps ErrDenied (the message is
// the plugin's), a broken connection says the plugin is gone.
func fromStatus(err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	switch st.Code() {
	case codes.Unimplemented:
		return ErrUnsupported
	case codes.PermissionDenied:
		return deniedError{msg: st.Message()}
	case codes.Unavailable:
		return fmt.Errorf("%w: %s", ErrPluginGone, st.Message())
	case codes.Canceled, codes.DeadlineExceeded:
		return fmt.Errorf("%s: %w", st.Message(), contextErr(st.Code()))
	default:
		return errors.New(st.Message())
	}
}

// deniedError is ErrDenied as it comes back over gRPC: the plugin's own
// message, which already says what was denied.
type deniedError struct{ msg string }

func (e deniedError) Error() string { return e.msg }
func (e deniedError) Unwrap() error { return ErrDenied }

// ErrPluginGone means the plugin process stopped answering (crashed or was
// killed).
var ErrPluginGone = errors.New("plugin process is gone")

func contextErr(c codes.Code) error {
	if c == codes.DeadlineExceeded {
		return context.DeadlineExceeded
	}
	return context.Canceled
}

func rulesToProto(rs []Rule) []*pluginv1.Rule {
	out := make([]*pluginv1.Rule, len(rs))
	for i, r := range rs {
		out[i] = &pluginv1.Rule{
			Id: r.ID, Name: r.Name, Techniques: r.Techniques, Enabled: r.Enabled,
			Source: r.Source, Query: r.Query, Language: r.Language, Refused: r.Refused, Broken: r.Broken, Platforms: r.Platforms,
		}
	}
	return out
}

func rulesFromProto(rs []*pluginv1.Rule) []Rule {
	out := make([]Rule, 0, len(rs))
	for _, r := range rs {
		out = append(out, Rule{
			ID: r.GetId(), Name: r.GetName(), Techniques: r.GetTechniques(), Enabled: r.GetEnabled(),
			Source: r.GetSource(), Query: r.GetQuery(), Language: r.GetLanguage(),
			Refused: r.GetRefused(), Broken: r.GetBroken(), Platforms: r.GetPlatforms(),
		})
	}
	return out
}
