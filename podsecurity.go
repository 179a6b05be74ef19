package main

import (
	"fmt"
	"slices"
	"strconv"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"

	"github.com/chatbackend/chatbackend/controllers/specs"
)

// openShiftSecurityGroup is served by OpenShift only: its
// SecurityContextConstraints assign each pod a UID of its namespace's
// range and refuse others.
const openShiftSecurityGroup = "security.openshift.io"

// podUserFlag is --pod-run-as-user: "auto" (nil, the default), "none" or a
// UID.
type podUserFlag struct{ user *specs.PodUser }

func (f *podUserFlag) String() string {
	switch {
	case f == nil || f.user == nil:
		return "auto"
	case f.user.PlatformAssigned:
		return "none"
	default:
		return strconv.FormatInt(f.user.UID, 10)
	}
}

func (f *podUserFlag) Set(v string) error {
	switch v {
	case "auto":
		f.user = nil
		return nil
	case "none":
		f.user = &specs.PodUser{PlatformAssigned: true}
		return nil
	}
	uid, err := strconv.ParseInt(v, 10, 64)
	if err != nil || uid < 1 {
		return fmt.Errorf("want auto, none or a UID above 0 (the pods run as non-root), not %q", v)
	}
	f.user = &specs.PodUser{UID: uid}
	return nil
}

// resolve turns "auto" into "none" on OpenShift (the API group of its
// SecurityContextConstraints is served) and into 65532 elsewhere. It asks
// once, at start-up: a cluster does not turn into OpenShift while it runs.
func (f *podUserFlag) resolve(cfg *rest.Config) (specs.PodUser, error) {
	if f.user != nil {
		return *f.user, nil
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return specs.PodUser{}, fmt.Errorf("discovery client: %w", err)
	}
	groups, err := dc.ServerGroups()
	if err != nil {
		return specs.PodUser{}, fmt.Errorf("list the served API groups for --pod-run-as-user=auto: %w", err)
	}
	openShift := slices.ContainsFunc(groups.Groups, func(g metav1.APIGroup) bool { return g.Name == openShiftSecurityGroup })
	if openShift {
		return specs.PodUser{PlatformAssigned: true}, nil
	}
	return specs.PodUser{UID: specs.NonRootUID}, nil
}

// podUserLog says in the start-up log what "auto" became.
func podUserLog(u specs.PodUser) string {
	return (&podUserFlag{user: &u}).String()
}
