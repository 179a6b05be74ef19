package controllers

import (
	"testing"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	chatv1alpha1 "github.com/chatbackend/chatbackend/api/v1alpha1"
)

// TestDowngradeRefusal: only a lower semantic version of the same
// repository is refused; digests, unordered tags and other repositories
// are not guarded, and the annotation lets exactly the image it names
// through.
func TestDowngradeRefusal(t *testing.T) {
	const repo = "registry.example.com/chat-apiserver"
	cases := []struct {
		name, migrated, image, annotation string
		refused                           bool
	}{
		{"first migration", "", repo + ":v1.0.0", "", false},
		{"same image", repo + ":v1.2.0", repo + ":v1.2.0", "", false},
		{"upgrade", repo + ":v1.2.0", repo + ":v1.10.0", "", false},
		{"downgrade", repo + ":v1.10.0", repo + ":v1.2.0", "", true},
		{"downgrade without v", repo + ":1.10.0", repo + ":1.9.3", "", true},
		{"to a pre-release of the same version", repo + ":v1.2.0", repo + ":v1.2.0-rc.1", "", true},
		{"equal versions spelt differently", repo + ":v1.2", repo + ":v1.2.0", "", false},
		{"docker hub short name", "chat-apiserver:v2.0.0", "docker.io/library/chat-apiserver:v1.0.0", "", true},
		{"allowed", repo + ":v1.10.0", repo + ":v1.2.0", repo + ":v1.2.0", false},
		{"allowed for another image", repo + ":v1.10.0", repo + ":v1.2.0", repo + ":v1.3.0", true},
		{"digest", repo + ":v1.10.0", repo + "@sha256:" + sha, "", false},
		{"tag and digest", repo + ":v1.10.0", repo + ":v1.2.0@sha256:" + sha, "", false},
		{"latest", repo + ":v1.10.0", repo + ":latest", "", false},
		{"from a non-semver tag", repo + ":main-abc123", repo + ":v1.0.0", "", false},
		{"other repository", repo + ":v1.10.0", "mirror.example.com/chat-apiserver:v1.2.0", "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			cb := &chatv1alpha1.ChatBackend{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{}}}
			cb.Status.MigratedImage = tc.migrated
			if tc.annotation != "" {
				cb.Annotations[chatv1alpha1.AnnotationAllowDowngrade] = tc.annotation
			}
			msg := downgradeRefusal(cb, tc.image)
			if !tc.refused {
				g.Expect(msg).To(BeEmpty())
				return
			}
			g.Expect(msg).To(ContainSubstring(tc.image))
			g.Expect(msg).To(ContainSubstring(tc.migrated))
			g.Expect(msg).To(ContainSubstring(chatv1alpha1.AnnotationAllowDowngrade + "=" + tc.image))
		})
	}
}

const sha = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
