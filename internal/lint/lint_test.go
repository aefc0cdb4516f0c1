package lint

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

const module = "github.com/kinesis-network/portal"

type pkg struct {
	dir     string
	name    string
	doc     bool
	imports map[string]bool
}

func loadPackages(t *testing.T) map[string]*pkg {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	pkgs := map[string]*pkg{}
	fset := token.NewFileSet()
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			n := d.Name()
			if path != root && (strings.HasPrefix(n, ".") || n == "testdata" || n == "bin") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ParseComments|parser.ImportsOnly)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		p := pkgs[rel]
		if p == nil {
			p = &pkg{dir: rel, imports: map[string]bool{}}
			pkgs[rel] = p
		}
		test := strings.HasSuffix(path, "_test.go")
		if !test {
			p.name = f.Name.Name
			if f.Doc != nil && strings.TrimSpace(f.Doc.Text()) != "" {
				p.doc = true
			}
		}
		for _, im := range f.Imports {
			ip := strings.Trim(im.Path.Value, `"`)
			if strings.HasPrefix(ip, module+"/") && !test {
				p.imports[strings.TrimPrefix(ip, module+"/")] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return pkgs
}

func TestEveryPackageHasADocComment(t *testing.T) {
	for dir, p := range loadPackages(t) {
		if p.name == "" { // test-only directory
			continue
		}
		if !p.doc {
			t.Errorf("package %s (%s) has no package comment", p.name, dir)
		}
	}
}

func TestLayering(t *testing.T) {
	under := func(path, prefix string) bool { return path == prefix || strings.HasPrefix(path, prefix+"/") }
	for dir, p := range loadPackages(t) {
		for im := range p.imports {
			if under(im, "cmd") || under(im, "e2e") {
				t.Errorf("%s imports %s: nothing may import cmd/ or e2e/", dir, im)
			}
			if under(dir, "registry") && !under(im, "registry") {
				t.Errorf("%s imports %s: registry must not depend on other packages of ours", dir, im)
			}
			if (under(dir, "gateway") || under(dir, "firewall") || under(dir, "registry") || under(dir, "certs")) && under(im, "stream") {
				t.Errorf("%s imports %s: the portal's data plane must not depend on the stream service", dir, im)
			}
			if under(dir, "stream") && (under(im, "gateway") || under(im, "registry") || under(im, "api")) {
				t.Errorf("%s imports %s: the stream service is a workload and stands alone", dir, im)
			}
			if under(dir, "firewall") && !under(im, "firewall") {
				t.Errorf("%s imports %s: firewall must stand alone", dir, im)
			}
		}
	}
}
