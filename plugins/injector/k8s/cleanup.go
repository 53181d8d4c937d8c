package k8s

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/vigilsec/vigil/core/plugin"
)

// Cleanup deletes what the injection created: each recorded artifact, then
// every pod and service account of the namespace labelled with the run
// marker (which also catches objects of an Inject that stopped half way),
// and waits until they are gone, at most cleanup_timeout. It works without
// any state from Inject.
func (x *Injector) Cleanup(ctx context.Context, req plugin.CleanupRequest) (plugin.CleanupResult, error) {
	c, err := x.config()
	if err != nil {
		return plugin.CleanupResult{}, err
	}
	if err := checkMarker(req.Marker); err != nil {
		return plugin.CleanupResult{Error: err.Error()}, nil
	}
	if c.rest == nil {
		return plugin.CleanupResult{}, nil // anonymous probes create nothing
	}
	cs, _, err := clientFor(c, req.Marker)
	if err != nil {
		return plugin.CleanupResult{Error: err.Error()}, nil
	}
	timeout := c.cleanupTimeout
	if req.Timeout > timeout {
		timeout = req.Timeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	ns := c.Namespace
	var (
		out  []string
		errs []string
	)
	grace := int64(0)
	opts := metav1.DeleteOptions{GracePeriodSeconds: &grace}
	for _, a := range req.Artifacts {
		if a.Kind != "k8s-object" {
			continue
		}
		kind, ans, name, ok := splitRef(a.Ref)
		switch {
		case !ok:
			errs = append(errs, fmt.Sprintf("artifact %q: want <resource>/<namespace>/<name>", a.Ref))
			continue
		case ans != ns:
			errs = append(errs, fmt.Sprintf("artifact %q: outside namespace %s, left alone", a.Ref, ns))
			continue
		}
		var err error
		switch kind {
		case "pods":
			err = cs.CoreV1().Pods(ns).Delete(ctx, name, opts)
		case "serviceaccounts":
			err = cs.CoreV1().ServiceAccounts(ns).Delete(ctx, name, opts)
		default:
			errs = append(errs, fmt.Sprintf("artifact %q: unknown resource", a.Ref))
			continue
		}
		switch {
		case err == nil:
			out = append(out, "deleted "+a.Ref)
		case apierrors.IsNotFound(err):
		default:
			errs = append(errs, apiError("delete", kind, ns, err).Error())
		}
	}

	sel := metav1.ListOptions{LabelSelector: LabelRunMarker + "=" + req.Marker}
	if err := cs.CoreV1().Pods(ns).DeleteCollection(ctx, opts, sel); err != nil && !apierrors.IsNotFound(err) {
		errs = append(errs, apiError("deletecollection", "pods", ns, err).Error())
	}
	if err := cs.CoreV1().ServiceAccounts(ns).DeleteCollection(ctx, opts, sel); err != nil && !apierrors.IsNotFound(err) {
		errs = append(errs, apiError("deletecollection", "serviceaccounts", ns, err).Error())
	}
	if left, err := x.waitGone(ctx, cs, ns, sel); err != nil {
		errs = append(errs, fmt.Sprintf("k8s: cleanup: still present after %s: %s (%v)", timeout, strings.Join(left, ", "), err))
	}
	res := plugin.CleanupResult{Output: []byte(strings.Join(out, "\n"))}
	if len(errs) > 0 {
		res.ExitCode = 1
		res.Error = strings.Join(errs, "; ")
	}
	return res, nil
}

// waitGone polls until no pod or service account matches sel; when ctx
// ends first it returns those last seen.
func (x *Injector) waitGone(ctx context.Context, cs kubernetes.Interface, ns string, sel metav1.ListOptions) ([]string, error) {
	var last []string
	for {
		left, err := listLeft(ctx, cs, ns, sel)
		switch {
		case err != nil:
			// Typically the deadline (or the client's rate limiter
			// refusing to wait past it): report what was last seen.
			return last, err
		case len(left) == 0:
			return nil, nil
		}
		last = left
		select {
		case <-ctx.Done():
			return last, ctx.Err()
		case <-timeAfter(x.interval()):
		}
	}
}

// listLeft lists the pods and service accounts matching sel.
func listLeft(ctx context.Context, cs kubernetes.Interface, ns string, sel metav1.ListOptions) ([]string, error) {
	var left []string
	pods, err := cs.CoreV1().Pods(ns).List(ctx, sel)
	if err != nil {
		return nil, apiError("list", "pods", ns, err)
	}
	for _, p := range pods.Items {
		left = append(left, "pods/"+ns+"/"+p.Name)
	}
	sas, err := cs.CoreV1().ServiceAccounts(ns).List(ctx, sel)
	if err != nil {
		return nil, apiError("list", "serviceaccounts", ns, err)
	}
	for _, s := range sas.Items {
		left = append(left, "serviceaccounts/"+ns+"/"+s.Name)
	}
	sort.Strings(left)
	return left, nil
}

// splitRef splits "<resource>/<namespace>/<name>".
func splitRef(ref string) (kind, ns, name string, ok bool) {
	parts := strings.Split(ref, "/")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return "", "", "", false
	}
	return parts[0], parts[1], parts[2], true
}

// timeAfter is time.After.
var timeAfter = time.After
