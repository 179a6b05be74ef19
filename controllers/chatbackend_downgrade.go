package controllers

import (
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"golang.org/x/mod/semver"

	chatv1alpha1 "github.com/chatbackend/chatbackend/api/v1alpha1"
)

// downgradeRefusal says why image must not replace status.migratedImage,
// or "" when it may. A lower version is refused because its code does not
// know the schema the newer release migrated to: its pods would serve
// queries against tables they do not expect (chat-apiserver migrate itself
// refuses a schema newer than its binary, so the Job would fail anyway,
// after the fact; this stops it before anything runs and says why).
//
// Only a tag that is a semantic version (v1.2.3 or 1.2.3, x/mod/semver's
// rules) of the same repository compares: a digest, "latest" or any other
// tag has no order, and another repository may number its releases
// differently, so those are not guarded. AnnotationAllowDowngrade equal to
// image lets it through.
func downgradeRefusal(cb *chatv1alpha1.ChatBackend, image string) string {
	migrated := cb.Status.MigratedImage
	if migrated == "" || migrated == image || cb.Annotations[chatv1alpha1.AnnotationAllowDowngrade] == image {
		return ""
	}
	repo, version, ok := imageVersion(image)
	if !ok {
		return ""
	}
	migratedRepo, migratedVersion, ok := imageVersion(migrated)
	if !ok || repo != migratedRepo || semver.Compare(version, migratedVersion) >= 0 {
		return ""
	}
	return fmt.Sprintf("image %s (version %s) is older than the migrated image %s (version %s): "+
		"its code may not know the database schema that version migrated to, so no migration runs and "+
		"the Deployment keeps serving image %s. To downgrade anyway (after restoring a database backup "+
		"of the older version, or when the release notes allow it), annotate the ChatBackend %s=%s",
		image, version, migrated, migratedVersion, migrated, chatv1alpha1.AnnotationAllowDowngrade, image)
}

// imageVersion is the repository of image and its tag as a canonical
// semantic version, and false when image is not repository:tag with such a
// tag (a digest, "latest", a build number...).
func imageVersion(image string) (repo, version string, ok bool) {
	ref, err := name.ParseReference(image)
	if err != nil {
		return "", "", false
	}
	tag, isTag := ref.(name.Tag)
	if !isTag {
		return "", "", false
	}
	v := tag.TagStr()
	if !strings.HasPrefix(v, "v") {
		v = "v" + v
	}
	if !semver.IsValid(v) {
		return "", "", false
	}
	return tag.Context().Name(), semver.Canonical(v), true
}
