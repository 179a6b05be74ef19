package specs

import (
	"net/url"
	"strings"

	"github.com/chatbackend/chatbackend/apiserver/envvar"
)

// defaultPostgresPort is libpq's, used when a connection string names none.
const defaultPostgresPort = "5432"

// DatabaseFingerprint identifies the database(s) the env Secret data points
// at: host, port, database name and user of DATABASE_URL and, when set,
// DATABASE_DIRECT_URL (the migrations connect there). The password and the
// connection options (sslmode, timeouts) are left out, so rotating a
// password or tuning TLS does not migrate again, while a new host, a
// restored copy under another name or another role does.
//
// Why hand parsing rather than pgconn.ParseConfig: that parser also reads
// the operator's PG* environment, ~/.pgpass and the TLS files a URL names,
// none of which exist in the operator's pod, and the fingerprint must not
// depend on them. A URL that does not parse is fingerprinted whole, so any
// change to it re-migrates (harmless: migrate is idempotent).
func DatabaseFingerprint(data map[string][]byte) string {
	var b strings.Builder
	for _, name := range []string{envvar.DatabaseURL, envvar.DatabaseDirectURL} {
		if v := strings.TrimSpace(string(data[name])); v != "" {
			b.WriteString(name + "=" + databaseTarget(v) + "\n")
		}
	}
	return ShortHash(b.String())
}

// databaseTarget is "user@host:port/dbname" of a PostgreSQL URL or
// keyword/value connection string, with libpq's defaults filled in (port
// 5432, database named after the user) so that spelling them out or not
// is the same target.
func databaseTarget(dsn string) string {
	var user, hosts, port, dbname string
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "unparsed:" + dsn
		}
		user = u.User.Username()
		hosts = u.Host
		dbname = strings.TrimPrefix(u.Path, "/")
		q := u.Query()
		user, hosts, port, dbname = or(q.Get("user"), user), or(q.Get("host"), hosts), q.Get("port"), or(q.Get("dbname"), dbname)
	} else {
		kv := keywordValues(dsn)
		user, hosts, port, dbname = kv["user"], kv["host"], kv["port"], kv["dbname"]
	}
	return user + "@" + normaliseHosts(hosts, port) + "/" + or(dbname, user)
}

// normaliseHosts lower-cases a comma-separated host list and gives every
// host its port (its own, the port parameter or 5432).
func normaliseHosts(hosts, port string) string {
	parts := strings.Split(strings.ToLower(hosts), ",")
	ports := strings.Split(port, ",")
	for i, h := range parts {
		p := or(ports[min(i, len(ports)-1)], defaultPostgresPort)
		if j := strings.LastIndex(h, ":"); j >= 0 && !strings.HasSuffix(h, "]") {
			h, p = h[:j], or(h[j+1:], p)
		}
		parts[i] = or(h, "localhost") + ":" + p
	}
	return strings.Join(parts, ",")
}

// keywordValues parses "host=db port=5432 dbname=chat" (values may be
// single-quoted).
func keywordValues(dsn string) map[string]string {
	kv := map[string]string{}
	for _, f := range strings.Fields(dsn) {
		if k, v, ok := strings.Cut(f, "="); ok {
			kv[k] = strings.Trim(v, "'")
		}
	}
	return kv
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
