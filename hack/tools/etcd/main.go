// Command etcd is a thin wrapper around etcd's own main package so that
// hack/build-tools.sh can build a pinned etcd server from Go modules.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
