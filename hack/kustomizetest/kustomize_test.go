// Package kustomizetest renders config/default with the kustomize library,
// exactly as `kubectl apply -k config/default` would, and checks that it
// yields what an install needs and that it agrees with the Helm chart (the
// supported install path) wherever the two describe the same thing: the
// manager's command, flags, ports, probes and security contexts, and every
// RBAC rule.
//
// It lives in a test-only package so kustomize never links into the
// manager or chat-apiserver. The chart is rendered with the real helm binary
// (bin/helm, `make tools-helm`).
package kustomizetest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

const (
	namespace = "chatbackend-system"
	crdName   = "chatbackends.chat.chatbackend.io"
	// What `helm template` names the release in this test.
	release = "chatbackend-operator"
)

var root = filepath.Join("..", "..")

func TestConfigDefaultRendersTheOperatorInstall(t *testing.T) {
	g := NewWithT(t)
	objs := renderKustomize(t)

	g.Expect(get[corev1.Namespace](t, objs, "Namespace", "", namespace).Labels).To(
		HaveKeyWithValue("pod-security.kubernetes.io/enforce", "restricted"),
		"the namespace enforces the restricted Pod Security profile the operator meets")

	crd := find(t, objs, "CustomResourceDefinition", "", crdName)
	generated := readObjects(t, filepath.Join(root, "config", "crd", "bases", "chat.chatbackend.io_chatbackends.yaml"))
	g.Expect(generated).To(HaveLen(1))
	g.Expect(crd.Object["spec"]).To(Equal(generated[0].Object["spec"]), "the CRD is the one controller-gen generated")

	dep := get[appsv1.Deployment](t, objs, "Deployment", namespace, "chatbackend-controller-manager")
	pod := dep.Spec.Template.Spec
	g.Expect(pod.Containers).To(HaveLen(1))
	manager := pod.Containers[0]
	g.Expect(manager.Image).To(Equal("ghcr.io/chatbackend/chatbackend:dev"), "config/manager's images: entry rewrites the placeholder")
	g.Expect(manager.Args).To(ContainElements("--leader-elect", "--metrics-bind-address=:8080", "--health-probe-bind-address=:8081"))
	g.Expect(*dep.Spec.Replicas).To(BeNumerically(">", 1), "a standby replica takes over on leader loss")
	g.Expect(*pod.SecurityContext.RunAsNonRoot).To(BeTrue())
	g.Expect(pod.SecurityContext.SeccompProfile.Type).To(Equal(corev1.SeccompProfileTypeRuntimeDefault))
	g.Expect(*manager.SecurityContext.ReadOnlyRootFilesystem).To(BeTrue())
	g.Expect(*manager.SecurityContext.AllowPrivilegeEscalation).To(BeFalse())
	g.Expect(manager.SecurityContext.Capabilities.Drop).To(ConsistOf(corev1.Capability("ALL")))

	// The ServiceAccount exists and is bound to the generated manager role.
	get[corev1.ServiceAccount](t, objs, "ServiceAccount", namespace, pod.ServiceAccountName)
	role := get[rbacv1.ClusterRole](t, objs, "ClusterRole", "", "chatbackend-manager-role")
	g.Expect(role.Rules).To(Equal(generatedManagerRules(t)), "the ClusterRole carries the rules controller-gen generated from the markers")
	binding := get[rbacv1.ClusterRoleBinding](t, objs, "ClusterRoleBinding", "", "chatbackend-manager-rolebinding")
	g.Expect(binding.RoleRef.Name).To(Equal(role.Name))
	g.Expect(binding.Subjects).To(ConsistOf(rbacv1.Subject{Kind: "ServiceAccount", Name: pod.ServiceAccountName, Namespace: namespace}))
	leader := get[rbacv1.RoleBinding](t, objs, "RoleBinding", namespace, "chatbackend-leader-election-rolebinding")
	g.Expect(leader.Subjects).To(ConsistOf(rbacv1.Subject{Kind: "ServiceAccount", Name: pod.ServiceAccountName, Namespace: namespace}))

	// The metrics Service reaches the manager's metrics port.
	svc := get[corev1.Service](t, objs, "Service", namespace, "chatbackend-controller-manager-metrics")
	g.Expect(pod.Containers[0].Ports).To(ContainElement(HaveField("Name", svc.Spec.Ports[0].TargetPort.StrVal)))
	for k, v := range svc.Spec.Selector {
		g.Expect(dep.Spec.Template.Labels).To(HaveKeyWithValue(k, v), "the metrics Service selects the manager's pods")
	}
}

// The chart and config/default install the same operator: wherever they
// describe the same thing, they must say the same.
func TestConfigDefaultAgreesWithTheChart(t *testing.T) {
	g := NewWithT(t)
	kust := renderKustomize(t)
	chart := renderChart(t)

	kDep := get[appsv1.Deployment](t, kust, "Deployment", namespace, "chatbackend-controller-manager")
	cDep := get[appsv1.Deployment](t, chart, "Deployment", namespace, release)
	k, c := kDep.Spec.Template.Spec, cDep.Spec.Template.Spec
	km, cm := k.Containers[0], c.Containers[0]

	g.Expect(km.Command).To(Equal(cm.Command))
	g.Expect(strings.SplitN(km.Image, ":", 2)[0]).To(Equal(strings.SplitN(cm.Image, ":", 2)[0]), "the same image repository")
	// Every flag config/default sets, the chart sets to the same value. The
	// chart may set more (--default-apiserver-image, --zap-log-level), to
	// values the manager uses when the flag is absent.
	g.Expect(flags(cm.Args)).To(HaveKeyWithValue("--default-apiserver-image", HavePrefix(strings.SplitN(cm.Image, ":", 2)[0]+":")))
	for name, value := range flags(km.Args) {
		g.Expect(flags(cm.Args)).To(HaveKeyWithValue(name, value), "flag %s", name)
	}
	g.Expect(km.Ports).To(Equal(cm.Ports))
	g.Expect(km.LivenessProbe).To(Equal(cm.LivenessProbe))
	g.Expect(km.ReadinessProbe).To(Equal(cm.ReadinessProbe))
	g.Expect(km.SecurityContext).To(Equal(cm.SecurityContext))
	g.Expect(k.SecurityContext).To(Equal(c.SecurityContext))
	g.Expect(k.TerminationGracePeriodSeconds).To(Equal(c.TerminationGracePeriodSeconds))

	// RBAC: the same rules under each install's names.
	for _, pair := range [][2]string{
		{"chatbackend-manager-role", release + "-manager"},
		{"chatbackend-chatbackend-editor-role", release + "-chatbackend-editor"},
		{"chatbackend-chatbackend-viewer-role", release + "-chatbackend-viewer"},
		{"chatbackend-metrics-reader", release + "-metrics-reader"},
	} {
		g.Expect(get[rbacv1.ClusterRole](t, kust, "ClusterRole", "", pair[0]).Rules).To(
			Equal(get[rbacv1.ClusterRole](t, chart, "ClusterRole", "", pair[1]).Rules), "ClusterRole %s vs %s", pair[0], pair[1])
	}
	g.Expect(get[rbacv1.Role](t, kust, "Role", namespace, "chatbackend-leader-election-role").Rules).To(
		Equal(get[rbacv1.Role](t, chart, "Role", namespace, release+"-leader-election").Rules))

	kSvc := get[corev1.Service](t, kust, "Service", namespace, "chatbackend-controller-manager-metrics")
	cSvc := get[corev1.Service](t, chart, "Service", namespace, release+"-metrics")
	g.Expect(kSvc.Spec.Ports).To(Equal(cSvc.Spec.Ports))
}

// flags maps each --name to its value; a bare boolean flag is "true".
func flags(args []string) map[string]string {
	out := map[string]string{}
	for _, a := range args {
		name, value, found := strings.Cut(a, "=")
		if !found {
			value = "true"
		}
		out[name] = value
	}
	return out
}

func renderKustomize(t *testing.T) []*unstructured.Unstructured {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	resources, err := k.Run(filesys.MakeFsOnDisk(), filepath.Join(root, "config", "default"))
	if err != nil {
		t.Fatalf("kustomize build config/default: %v", err)
	}
	out, err := resources.AsYaml()
	if err != nil {
		t.Fatalf("kustomize build config/default: %v", err)
	}
	return decode(t, out)
}

func renderChart(t *testing.T) []*unstructured.Unstructured {
	t.Helper()
	helm := filepath.Join(root, "bin", "helm")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, helm, "template", release, filepath.Join(root, "charts", "chatbackend-operator"),
		"--namespace", namespace, "--kube-version", "1.36.3")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helm template (run `make tools-helm` if %s is missing): %v\n%s", helm, err, stderr.String())
	}
	return decode(t, out)
}

func readObjects(t *testing.T, path string) []*unstructured.Unstructured {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return decode(t, b)
}

func generatedManagerRules(t *testing.T) []rbacv1.PolicyRule {
	t.Helper()
	objs := readObjects(t, filepath.Join(root, "config", "rbac", "role.yaml"))
	if len(objs) != 1 {
		t.Fatalf("config/rbac/role.yaml holds %d objects, want 1", len(objs))
	}
	return convert[rbacv1.ClusterRole](t, objs[0]).Rules
}

// decode splits a multi-document YAML stream into objects.
func decode(t *testing.T, stream []byte) []*unstructured.Unstructured {
	t.Helper()
	var out []*unstructured.Unstructured
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(stream), 4096)
	for {
		var obj map[string]any
		if err := dec.Decode(&obj); err != nil {
			if errors.Is(err, io.EOF) {
				return out
			}
			t.Fatalf("decode YAML: %v", err)
		}
		if len(obj) > 0 { // an empty document between two ---
			out = append(out, &unstructured.Unstructured{Object: obj})
		}
	}
}

func find(t *testing.T, objs []*unstructured.Unstructured, kind, ns, name string) *unstructured.Unstructured {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == kind && o.GetNamespace() == ns && o.GetName() == name {
			return o
		}
	}
	var have []string
	for _, o := range objs {
		have = append(have, o.GetKind()+" "+o.GetNamespace()+"/"+o.GetName())
	}
	t.Fatalf("no %s %s/%s among:\n%s", kind, ns, name, strings.Join(have, "\n"))
	return nil
}

// get finds an object and converts it to its typed form.
func get[T any](t *testing.T, objs []*unstructured.Unstructured, kind, ns, name string) *T {
	t.Helper()
	return convert[T](t, find(t, objs, kind, ns, name))
}

func convert[T any](t *testing.T, u *unstructured.Unstructured) *T {
	t.Helper()
	out := new(T)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, out, true); err != nil {
		t.Fatalf("%s %s: %v", u.GetKind(), u.GetName(), err)
	}
	return out
}
