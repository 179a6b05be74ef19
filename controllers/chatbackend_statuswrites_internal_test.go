package controllers

import (
	"testing"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	chatv1alpha1 "github.com/chatbackend/chatbackend/api/v1alpha1"
)

// TestStatusWritesReadOwnWrites: a reconcile starts from the ChatBackend its
// last status patch was answered with only while the cache is older than
// that answer; a cache that caught up or went past it, a ChatBackend made
// again under the same name, or versions that cannot be compared all read
// the cache, and drop the record.
func TestStatusWritesReadOwnWrites(t *testing.T) {
	cb := func(uid, rv, migrated string) *chatv1alpha1.ChatBackend {
		return &chatv1alpha1.ChatBackend{
			ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "chat", UID: types.UID(uid), ResourceVersion: rv,
				ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "chatbackend-operator"}}},
			Status: chatv1alpha1.ChatBackendStatus{MigratedImage: migrated},
		}
	}
	cases := []struct {
		name      string
		cached    *chatv1alpha1.ChatBackend
		wantImage string
	}{
		{"cache behind the write", cb("a", "99", ""), "v1"},
		{"cache behind by digits", cb("a", "9", ""), "v1"},
		{"cache caught up", cb("a", "100", "v1"), "v1"},
		{"cache past the write", cb("a", "101", "v2"), "v2"},
		{"made again under the same name", cb("b", "99", ""), ""},
		{"versions not comparable", cb("a", "x99", ""), ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			var w statusWrites
			w.record(cb("a", "100", "v1"))
			got := w.latest(tc.cached)
			g.Expect(got.Status.MigratedImage).To(Equal(tc.wantImage))
			g.Expect(got.ManagedFields == nil).To(Equal(got != tc.cached), "a record is kept without managedFields")
			if got == tc.cached {
				g.Expect(w.byCB).To(BeEmpty(), "the record is dropped once the cache is read")
			} else {
				g.Expect(w.byCB).To(HaveLen(1), "kept while the cache is behind")
				got.Status.MigratedImage = "changed by the reconcile"
				g.Expect(w.latest(tc.cached).Status.MigratedImage).To(Equal(tc.wantImage), "each reconcile gets its own copy")
			}
		})
	}
	var w statusWrites
	w.record(cb("a", "100", "v1"))
	w.forget(types.NamespacedName{Namespace: "ns", Name: "chat"})
	if got := w.latest(cb("a", "99", "")); got.Status.MigratedImage != "" {
		t.Errorf("a forgotten record was used: %q", got.Status.MigratedImage)
	}
}
