package specs_test

import (
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/chatbackend/chatbackend/controllers/specs"
)

// TestDefaultResources: pods without requests are BestEffort, the first to
// be evicted; the defaults apply per resource the spec leaves alone, and
// never produce a request above the user's limit.
func TestDefaultResources(t *testing.T) {
	q := resource.MustParse
	cases := []struct {
		name string
		in   corev1.ResourceRequirements
		want corev1.ResourceRequirements
	}{
		{"nothing set: every default", corev1.ResourceRequirements{}, corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: q("100m"), corev1.ResourceMemory: q("128Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceMemory: q("512Mi")},
		}},
		{"a small memory limit is not met with a larger default request", corev1.ResourceRequirements{
			Limits: corev1.ResourceList{corev1.ResourceMemory: q("64Mi")},
		}, corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: q("100m")},
			Limits:   corev1.ResourceList{corev1.ResourceMemory: q("64Mi")},
		}},
		{"cpu request set: memory defaults still apply", corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: q("1")},
		}, corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: q("1"), corev1.ResourceMemory: q("128Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceMemory: q("512Mi")},
		}},
		{"everything set: kept as is", corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: q("2"), corev1.ResourceMemory: q("1Gi")},
			Limits:   corev1.ResourceList{corev1.ResourceCPU: q("4"), corev1.ResourceMemory: q("2Gi")},
		}, corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: q("2"), corev1.ResourceMemory: q("1Gi")},
			Limits:   corev1.ResourceList{corev1.ResourceCPU: q("4"), corev1.ResourceMemory: q("2Gi")},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			in := tc.in.DeepCopy()
			got := specs.DefaultResources(tc.in)
			g.Expect(got).To(Equal(tc.want))
			g.Expect(tc.in).To(Equal(*in), "the spec is not modified")
			for name, req := range got.Requests {
				if lim, ok := got.Limits[name]; ok {
					g.Expect(req.Cmp(lim)).To(BeNumerically("<=", 0), "%s request above its limit", name)
				}
			}
		})
	}
}
