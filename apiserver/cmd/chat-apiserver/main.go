// Command chat-apiserver is the authenticated RAG chat API: `serve`,
// `migrate` and `version`.
package main

import (
	"os"

	"github.com/chatbackend/chatbackend/apiserver/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr)) }
