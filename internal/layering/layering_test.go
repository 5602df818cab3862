package layering

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

const (
	module      = "github.com/certctl-io/ejbca-issuer"
	signingPkg  = module + "/controllers/signing"
	issuersPkg  = module + "/controllers/issuers"
	controllers = module + "/controllers"
	apiPkg      = module + "/api/v1alpha1"
	clientPkg   = "sigs.k8s.io/controller-runtime/pkg/client"
)

// wiring is what the signing core must not depend on, even indirectly.
var wiring = []string{
	"sigs.k8s.io/controller-runtime/pkg/builder",
	"sigs.k8s.io/controller-runtime/pkg/handler",
	"sigs.k8s.io/controller-runtime/pkg/predicate",
}

// pkg is what `go list -json` says of one package.
type pkg struct {
	ImportPath, Dir, Export string
	GoFiles, Deps           []string
	Standard                bool
}

var (
	listOnce sync.Once
	listed   map[string]*pkg
	listErr  error
)

// listModule lists the module's packages and their dependencies, with
// export data (from the build cache) to type-check against; once for both
// tests.
func listModule(t *testing.T) map[string]*pkg {
	t.Helper()
	listOnce.Do(func() { listed, listErr = goList() })
	if listErr != nil {
		t.Fatal(listErr)
	}
	return listed
}

func goList() (map[string]*pkg, error) {
	cmd := exec.Command("go", "list", "-export", "-deps", "-json", "./...")
	cmd.Dir = filepath.Join("..", "..")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list: %w\n%s", err, stderr.String())
	}
	pkgs := map[string]*pkg{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		p := &pkg{}
		if err := dec.Decode(p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, err
		}
		pkgs[p.ImportPath] = p
	}
	return pkgs, nil
}

// TestSigningCoreKnowsNoWiring fails when controllers/signing depends, even
// through another package, on controller-runtime's builder, handler or
// predicate packages, or on any other controllers package: the core
// decides and signs, and the reconcilers in controllers/ wire it.
func TestSigningCoreKnowsNoWiring(t *testing.T) {
	checkSigningDeps(t, listModule(t))
}

func checkSigningDeps(t *testing.T, pkgs map[string]*pkg) {
	t.Helper()
	core, ok := pkgs[signingPkg]
	if !ok {
		t.Fatalf("%s not found", signingPkg)
	}
	for _, d := range core.Deps {
		for _, w := range wiring {
			if d == w {
				t.Errorf("%s depends on %s; watches and predicates belong to the reconcilers in controllers/", signingPkg, d)
			}
		}
		if d == controllers || strings.HasPrefix(d, controllers+"/") {
			t.Errorf("%s depends on %s; the core sits below every controller package", signingPkg, d)
		}
	}
}

// TestOnlyIssuersWriteIssuers fails when a package other than
// controllers/issuers writes an issuer's status (through Status() or any
// SubResource client), or when another controllers package writes an
// issuer at all. It type-checks the module's non-test files against the
// build cache's export data and looks at every call of controller-runtime's
// client write methods whose object is an EJBCAIssuer, an
// EJBCAClusterIssuer or a v1alpha1.Issuer.
func TestOnlyIssuersWriteIssuers(t *testing.T) {
	pkgs := listModule(t)
	fset := token.NewFileSet()
	imp := exportImporter(fset, pkgs)
	checked := 0
	for path, p := range pkgs {
		if !strings.HasPrefix(path, module) || path == issuersPkg || len(p.GoFiles) == 0 {
			continue
		}
		for _, w := range issuerWrites(t, fset, imp, p) {
			t.Errorf("%s writes an issuer; only %s may (through its own status writer)", w, issuersPkg)
		}
		checked++
	}
	if checked < 10 {
		t.Fatalf("only %d packages checked; the module listing is wrong", checked)
	}
}

// typeCheck parses and type-checks p's non-test files.
func typeCheck(t *testing.T, fset *token.FileSet, imp types.Importer, p *pkg) ([]*ast.File, *types.Info) {
	t.Helper()
	var files []*ast.File
	for _, name := range p.GoFiles {
		f, err := parser.ParseFile(fset, filepath.Join(p.Dir, name), nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	info := &types.Info{Selections: map[*ast.SelectorExpr]*types.Selection{}, Types: map[ast.Expr]types.TypeAndValue{}}
	if _, err := (&types.Config{Importer: imp}).Check(p.ImportPath, fset, files, info); err != nil {
		t.Fatalf("type-checking %s: %v", p.ImportPath, err)
	}
	return files, info
}

// exportImporter imports from the build cache's export data of pkgs.
func exportImporter(fset *token.FileSet, pkgs map[string]*pkg) types.Importer {
	return importer.ForCompiler(fset, "gc", func(path string) (io.ReadCloser, error) {
		p, ok := pkgs[path]
		if !ok || p.Export == "" {
			return nil, errors.New("no export data for " + path)
		}
		return os.Open(p.Export)
	})
}

// methodCalls calls visit with every method call in files.
func methodCalls(files []*ast.File, info *types.Info, visit func(call *ast.CallExpr, m *types.Func)) {
	for _, f := range files {
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if s := info.Selections[sel]; s != nil && s.Kind() == types.MethodVal {
				if m, ok := s.Obj().(*types.Func); ok {
					visit(call, m)
				}
			}
			return true
		})
	}
}

// issuerWrites type-checks p and returns the positions of its calls that
// write an issuer: a subresource write (status) anywhere, any write in
// controllers/.
func issuerWrites(t *testing.T, fset *token.FileSet, imp types.Importer, p *pkg) []string {
	t.Helper()
	files, info := typeCheck(t, fset, imp, p)
	inControllers := p.ImportPath == controllers || strings.HasPrefix(p.ImportPath, controllers+"/")
	var found []string
	methodCalls(files, info, func(call *ast.CallExpr, m *types.Func) {
		writer := clientWriter(m)
		if writer == "" || (writer == "Writer" && !inControllers) {
			return
		}
		for _, arg := range call.Args {
			if isIssuer(info.Types[arg].Type) {
				found = append(found, fset.Position(call.Pos()).String())
			}
		}
	})
	return found
}

// attemptsWiring are the methods of signing.Attempts that wire its life
// (election, handover), which Setup calls; every other one is the signer's.
var attemptsWiring = map[string]bool{"WithPredecessor": true, "Drained": true}

// attemptsFiles are the files of controllers/signing that may reach
// Attempts: its own, the signer's (the one way the request side reaches it)
// and the readiness check's (whether its inventory was taken).
var attemptsFiles = map[string]bool{"attempts.go": true, "signer.go": true, "readiness.go": true}

// TestOnlyTheSignerTouchesAttempts fails when the exactly-once memory
// (signing.Attempts) is called from anywhere but the signer (and its own
// file and the readiness check), apart from the wiring of its life in
// Setup: the request reconcilers reach it only through the Signer.
func TestOnlyTheSignerTouchesAttempts(t *testing.T) {
	pkgs := listModule(t)
	fset := token.NewFileSet()
	imp := exportImporter(fset, pkgs)
	for path, p := range pkgs {
		if !strings.HasPrefix(path, module) || len(p.GoFiles) == 0 {
			continue
		}
		files, info := typeCheck(t, fset, imp, p)
		methodCalls(files, info, func(call *ast.CallExpr, m *types.Func) {
			recv := m.Type().(*types.Signature).Recv()
			if recv == nil || !isNamed(recv.Type(), signingPkg, "Attempts") {
				return
			}
			pos := fset.Position(call.Pos())
			if (path == signingPkg && attemptsFiles[filepath.Base(pos.Filename)]) || attemptsWiring[m.Name()] {
				return
			}
			t.Errorf("%s calls Attempts.%s; only the Signer reaches the exactly-once memory", pos, m.Name())
		})
	}
}

// isNamed: t is pkg.name or a pointer to it.
func isNamed(t types.Type, pkg, name string) bool {
	if p, ok := t.(*types.Pointer); ok {
		t = p.Elem()
	}
	n, ok := t.(*types.Named)
	return ok && n.Obj().Pkg() != nil && n.Obj().Pkg().Path() == pkg && n.Obj().Name() == name
}

// clientWriter names the controller-runtime client interface that declares
// a write method m ("Writer" for the object, "SubResourceWriter" for status
// and other subresources), or "" when m writes nothing.
func clientWriter(fn *types.Func) string {
	if fn.Pkg() == nil || fn.Pkg().Path() != clientPkg {
		return ""
	}
	switch fn.Name() {
	case "Create", "Update", "Patch", "Apply", "Delete", "DeleteAllOf":
	default:
		return ""
	}
	recv := fn.Type().(*types.Signature).Recv()
	if recv == nil {
		return ""
	}
	named, ok := recv.Type().(*types.Named)
	if !ok {
		return ""
	}
	switch n := named.Obj().Name(); n {
	case "Writer", "SubResourceWriter":
		return n
	}
	return ""
}

// isIssuer: t is one of our issuer kinds, a pointer to one, or the
// v1alpha1.Issuer interface.
func isIssuer(t types.Type) bool {
	if p, ok := t.(*types.Pointer); ok {
		t = p.Elem()
	}
	named, ok := t.(*types.Named)
	if !ok || named.Obj().Pkg() == nil || named.Obj().Pkg().Path() != apiPkg {
		return false
	}
	switch named.Obj().Name() {
	case "EJBCAIssuer", "EJBCAClusterIssuer", "Issuer":
		return true
	}
	return false
}
