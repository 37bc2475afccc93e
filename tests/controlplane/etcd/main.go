// Command etcd runs etcd's own server entry point. etcd's root module (which holds the
// upstream main package) is not installable with `go install pkg@version` because its
// go.mod has replace directives, so this module links go.etcd.io/etcd/server/v3 directly.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
