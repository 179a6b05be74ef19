package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	"sigs.k8s.io/yaml"
)

// TestProjectDescribesTheLayout: PROJECT tells kubebuilder (and readers)
// where things are. It must stay true: the go/v3 layout puts main.go at the
// root, the types in api/<version>, the reconcilers in controllers/.
func TestProjectDescribesTheLayout(t *testing.T) {
	g := NewWithT(t)
	raw, err := os.ReadFile("PROJECT")
	g.Expect(err).NotTo(HaveOccurred())
	var project struct {
		Layout    []string `json:"layout"`
		Repo      string   `json:"repo"`
		Domain    string   `json:"domain"`
		Resources []struct {
			API *struct {
				Namespaced bool `json:"namespaced"`
			} `json:"api"`
			Controller bool   `json:"controller"`
			Domain     string `json:"domain"`
			Group      string `json:"group"`
			Kind       string `json:"kind"`
			Path       string `json:"path"`
			Version    string `json:"version"`
		} `json:"resources"`
	}
	g.Expect(yaml.Unmarshal(raw, &project)).To(Succeed())

	gomod, err := os.ReadFile("go.mod")
	g.Expect(err).NotTo(HaveOccurred())
	module, _, _ := strings.Cut(strings.TrimPrefix(string(gomod), "module "), "\n")
	g.Expect(project.Repo).To(Equal(strings.TrimSpace(module)))
	g.Expect(project.Layout).To(Equal([]string{"go.kubebuilder.io/v3"}))
	g.Expect("main.go").To(BeARegularFile(), "go/v3 keeps the manager's main.go at the root")

	g.Expect(project.Resources).NotTo(BeEmpty())
	for _, r := range project.Resources {
		dir := strings.TrimPrefix(r.Path, project.Repo+"/")
		g.Expect(dir).To(Equal(filepath.Join("api", r.Version)), r.Kind)
		g.Expect(filepath.Join(dir, strings.ToLower(r.Kind)+"_types.go")).To(BeARegularFile(), r.Kind)
		g.Expect(r.Domain).To(Equal(project.Domain), r.Kind)
		crd := filepath.Join("config", "crd", "bases", r.Group+"."+r.Domain+"_"+strings.ToLower(r.Kind)+"s.yaml")
		g.Expect(crd).To(BeARegularFile(), "%s: the generated CRD", r.Kind)
		g.Expect(r.API).NotTo(BeNil(), r.Kind)
		crdYAML, err := os.ReadFile(crd)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(strings.Contains(string(crdYAML), "scope: Namespaced")).To(Equal(r.API.Namespaced), "%s: namespaced", r.Kind)
		if r.Controller {
			g.Expect(filepath.Join("controllers", strings.ToLower(r.Kind)+"_controller.go")).To(BeARegularFile(), r.Kind)
		}
	}
}
