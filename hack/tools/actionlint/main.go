// actionlint lints the GitHub Actions workflows under .github/workflows (hack/image.sh
// lint-workflows). It is rhysd/actionlint's own command, built from the pinned module so the
// linter version is reviewed like any other dependency. When shellcheck is on PATH, actionlint
// also checks the `run:` scripts with it. `--version` prints the pinned module version (the
// upstream flag would say "(devel)": this wrapper is the main module).
package main

import (
	"fmt"
	"os"
	"runtime/debug"

	"github.com/rhysd/actionlint"
)

func main() {
	if len(os.Args) == 2 && (os.Args[1] == "--version" || os.Args[1] == "-version") {
		fmt.Println("actionlint", moduleVersion("github.com/rhysd/actionlint"))
		return
	}
	cmd := actionlint.Command{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}
	os.Exit(cmd.Main(os.Args))
}

func moduleVersion(path string) string {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range info.Deps {
			if dep.Path == path {
				return dep.Version
			}
		}
	}
	return "unknown"
}
