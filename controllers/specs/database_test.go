package specs_test

import (
	"testing"

	. "github.com/onsi/gomega"

	"github.com/chatbackend/chatbackend/controllers/specs"
)

// TestDatabaseFingerprint: the migration's identity changes with the
// database the pods would use, and only with it: a new password or new
// connection options are the same database, already migrated.
func TestDatabaseFingerprint(t *testing.T) {
	fp := func(kv ...string) string {
		data := map[string][]byte{}
		for i := 0; i < len(kv); i += 2 {
			data[kv[i]] = []byte(kv[i+1])
		}
		return specs.DatabaseFingerprint(data)
	}
	base := fp("DATABASE_URL", "postgres://app:secret@db.example.com:5432/chat?sslmode=require")
	same := map[string]string{
		"another password":       fp("DATABASE_URL", "postgres://app:rotated@db.example.com:5432/chat?sslmode=require"),
		"other options":          fp("DATABASE_URL", "postgres://app:secret@db.example.com/chat?sslmode=verify-full&connect_timeout=5"),
		"default port spelt out": fp("DATABASE_URL", "postgresql://app:secret@DB.example.com/chat"),
		"keyword/value form":     fp("DATABASE_URL", "host=db.example.com port=5432 dbname=chat user=app password='x y'"),
		"other keys in the data": fp("DATABASE_URL", "postgres://app:secret@db.example.com:5432/chat", "OPENAI_API_KEY", "sk-1"),
		"user in the query":      fp("DATABASE_URL", "postgres://db.example.com/chat?user=app&password=p"),
		"empty direct URL":       fp("DATABASE_URL", "postgres://app@db.example.com/chat", "DATABASE_DIRECT_URL", " "),
	}
	for name, got := range same {
		t.Run("same/"+name, func(t *testing.T) {
			NewWithT(t).Expect(got).To(Equal(base))
		})
	}
	other := map[string]string{
		"another host":     fp("DATABASE_URL", "postgres://app:secret@db-restored.example.com:5432/chat"),
		"another port":     fp("DATABASE_URL", "postgres://app:secret@db.example.com:6432/chat"),
		"another database": fp("DATABASE_URL", "postgres://app:secret@db.example.com:5432/chat_restored"),
		"another user":     fp("DATABASE_URL", "postgres://owner:secret@db.example.com:5432/chat"),
		"a direct URL": fp("DATABASE_URL", "postgres://app:secret@db.example.com:5432/chat",
			"DATABASE_DIRECT_URL", "postgres://app@db-primary.example.com/chat"),
		"another keyword/value host": fp("DATABASE_URL", "host=db2.example.com dbname=chat user=app"),
	}
	seen := map[string]string{}
	for name, got := range other {
		t.Run("other/"+name, func(t *testing.T) {
			g := NewWithT(t)
			g.Expect(got).NotTo(Equal(base))
			g.Expect(seen).NotTo(ContainElement(got), "differs from every other target")
			seen[name] = got
		})
	}
	t.Run("database named after the user by default", func(t *testing.T) {
		NewWithT(t).Expect(fp("DATABASE_URL", "postgres://chat@db")).To(Equal(fp("DATABASE_URL", "postgres://chat@db/chat")))
	})
	t.Run("direct URL host counts", func(t *testing.T) {
		g := NewWithT(t)
		a := fp("DATABASE_URL", "postgres://app@pooler/chat", "DATABASE_DIRECT_URL", "postgres://app@primary-a/chat")
		b := fp("DATABASE_URL", "postgres://app@pooler/chat", "DATABASE_DIRECT_URL", "postgres://app:new@primary-a:5432/chat")
		c := fp("DATABASE_URL", "postgres://app@pooler/chat", "DATABASE_DIRECT_URL", "postgres://app@primary-b/chat")
		g.Expect(a).To(Equal(b))
		g.Expect(a).NotTo(Equal(c))
	})
}
