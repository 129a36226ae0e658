package policy

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The oracle's "Restates" comments name the function of sim each rule
// restates. sim is refactored apart from the oracle: a name that no
// longer exists there would send a reader to nothing, so each is checked
// against sim's source (read, not imported: policy stays below sim).
func TestOracleRestatesExistingEngineFunctions(t *testing.T) {
	fset := token.NewFileSet()
	funcs := map[string]bool{} // "name" and "Type.name" of sim's functions and methods
	files, err := filepath.Glob("../sim/*.go")
	require.NoError(t, err)
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		require.NoError(t, err)
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok {
				continue
			}
			name := fd.Name.Name
			if fd.Recv != nil && len(fd.Recv.List) == 1 {
				typ := fd.Recv.List[0].Type
				if st, ok := typ.(*ast.StarExpr); ok {
					typ = st.X
				}
				if id, ok := typ.(*ast.Ident); ok {
					name = id.Name + "." + name
				}
			}
			funcs[name] = true
		}
	}
	require.Contains(t, funcs, "startTLSOffer", "sim's functions read from ../sim")

	src, err := os.ReadFile("oracle.go")
	require.NoError(t, err)
	f, err := parser.ParseFile(fset, "oracle.go", src, parser.ParseComments)
	require.NoError(t, err)
	// A function of sim as the comments name it: camelCase (startTLSOffer)
	// or Type.method (receiverState.serveDialback, Endpoint.dial); not
	// another package's (tls.Config, certs.State.Passes) nor a knob
	// (PlainDialback), which start with a capital.
	word := regexp.MustCompile(`[A-Za-z]+(?:\.[A-Za-z]+)*`)
	camel := regexp.MustCompile(`^[a-z]+[A-Z][A-Za-z]*$`)
	checked := 0
	for _, cg := range f.Comments {
		_, after, ok := strings.Cut(cg.Text(), "Restates")
		if !ok {
			continue
		}
		for _, n := range word.FindAllString(after, -1) {
			typ, _, method := strings.Cut(n, ".")
			switch {
			case method && (typ == "Endpoint" || typ == "xconn" || typ == "connecting" || strings.HasSuffix(typ, "State")):
			case !method && camel.MatchString(n) && !strings.HasSuffix(n, "State") && !strings.HasPrefix(n, "predict"):
			default:
				continue
			}
			checked++
			assert.True(t, funcs[n], "policy/oracle.go restates sim's %s, which sim has no more: name its counterpart now", n)
		}
	}
	assert.Greater(t, checked, 20, "names of sim's functions in the oracle's Restates comments")
}
