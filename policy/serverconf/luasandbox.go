package serverconf

import (
	"context"
	"fmt"
	"runtime/metrics"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// Bounds of the Lua sandbox. A configuration is a page of settings: these
// leave it room a hundred times over and stop a hostile one long before
// it costs anything.
const (
	// maxLuaBytes bounds one Lua file: gopher-lua's parser and compiler
	// are not interruptible, so what they may cost is bounded by size
	// and shape (luaShape) before they start.
	maxLuaBytes = 128 << 10
	// maxLuaNesting bounds brackets, blocks and elseif chains, and
	// maxLuaRightAssoc the right-associative operators (.. and ^): the
	// compiler's cost grows with the square of both.
	maxLuaNesting    = 64
	maxLuaRightAssoc = 500
	// luaTimeout bounds the evaluation of the whole configuration, and
	// luaMemory what it may allocate beyond what the process had.
	luaTimeout = 2 * time.Second
	luaMemory  = 32 << 20
	// maxLuaString bounds a string a sandboxed function builds.
	maxLuaString = 1 << 20
)

// luaShape checks a Lua chunk's nesting and operator chains before the
// parser sees it, skipping strings and comments as the lexer does. It
// returns the line of the first excess.
func luaShape(src string) (line int, err error) {
	depth, ra := 0, 0
	line = 1
	var stack []int // per open block, the elseifs it has
	for i := 0; i < len(src); i++ {
		c := src[i]
		switch {
		case c == '\n':
			line++
		case c == '-' && i+1 < len(src) && src[i+1] == '-':
			i += 2
			if lvl, ok := longBracket(src, i); ok {
				end := strings.Index(src[i:], "]"+strings.Repeat("=", lvl)+"]")
				if end < 0 {
					return line, nil // the parser says it is unfinished
				}
				line += strings.Count(src[i:i+end], "\n")
				i += end + lvl + 1
				continue
			}
			for i < len(src) && src[i] != '\n' {
				i++
			}
			i--
		case c == '"' || c == '\'':
			for i++; i < len(src) && src[i] != c && src[i] != '\n'; i++ {
				if src[i] == '\\' && i+1 < len(src) {
					if src[i+1] == '\n' {
						line++
					}
					i++
				}
			}
		case c == '[':
			if lvl, ok := longBracket(src, i); ok {
				end := strings.Index(src[i:], "]"+strings.Repeat("=", lvl)+"]")
				if end < 0 {
					return line, nil
				}
				line += strings.Count(src[i:i+end], "\n")
				i += end + lvl + 1
				continue
			}
			depth++
		case c == '(' || c == '{':
			depth++
		case c == ')' || c == '}' || c == ']':
			depth--
		case c == '.' && i+1 < len(src) && src[i+1] == '.':
			if i+2 < len(src) && src[i+2] == '.' {
				i += 2
				continue
			}
			ra++
			i++
		case c == '^':
			ra++
		case isIdentStart(c):
			j := i
			for j < len(src) && isIdentChar(src[j]) {
				j++
			}
			if i > 0 && (isIdentChar(src[i-1]) || src[i-1] == '.') {
				i = j - 1
				continue
			}
			switch src[i:j] {
			case "function", "do", "repeat", "if":
				depth++
				stack = append(stack, 0)
			case "elseif":
				// The compiler nests each elseif in the one before.
				if n := len(stack); n > 0 {
					stack[n-1]++
					depth++
				}
			case "end", "until":
				depth--
				if n := len(stack); n > 0 {
					depth -= stack[n-1]
					stack = stack[:n-1]
				}
			}
			i = j - 1
		}
		if depth > maxLuaNesting {
			return line, fmt.Errorf("nested more than %d deep (brackets, blocks and elseif together): not evaluated", maxLuaNesting)
		}
		if ra > maxLuaRightAssoc {
			return line, fmt.Errorf("more than %d '..' and '^' operators in one file: not evaluated", maxLuaRightAssoc)
		}
	}
	return line, nil
}

// longBracket reports whether src[i:] opens a long bracket, [[ or [==[,
// and its level.
func longBracket(src string, i int) (int, bool) {
	if i >= len(src) || src[i] != '[' {
		return 0, false
	}
	j := i + 1
	for j < len(src) && src[j] == '=' {
		j++
	}
	if j < len(src) && src[j] == '[' {
		return j - i - 1, true
	}
	return 0, false
}

func isIdentStart(c byte) bool { return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isIdentChar(c byte) bool  { return isIdentStart(c) || c >= '0' && c <= '9' }

// sandboxError is a configuration that uses what the sandbox does not
// evaluate: the file may be fine for the server, but xmppneg cannot say
// what it amounts to.
type sandboxError struct {
	src Source
	msg string
}

func (e *sandboxError) Error() string {
	return fmt.Sprintf("%s: %s (xmppneg evaluates configuration files in a sandbox without os, io, require, load or metatables; the server may accept this file, but xmppneg cannot say what it amounts to)", e.src, e.msg)
}

// forbidden are globals of Prosody's Lua that a configuration could reach
// and that the sandbox refuses: they read or change the system, load
// code, or escape the environment.
var forbidden = map[string]bool{
	"os": true, "io": true, "require": true, "dofile": true, "loadfile": true, "load": true, "loadstring": true,
	"package": true, "debug": true, "coroutine": true, "collectgarbage": true, "getfenv": true, "setfenv": true,
	"getmetatable": true, "setmetatable": true, "rawget": true, "rawset": true, "rawequal": true, "rawlen": true,
	"pcall": true, "xpcall": true, "module": true, "newproxy": true, "utf8": true, "_G": true, "_ENV": true,
	"print": true,
}

// newSandbox returns a Lua state with no libraries but the pure
// functions a configuration may use, and the table of those functions
// (what the configuration's environment falls back to).
func newSandbox() (*lua.LState, *lua.LTable) {
	L := lua.NewState(lua.Options{SkipOpenLibs: true, CallStackSize: 128, RegistrySize: 1024, RegistryMaxSize: 1 << 16, MinimizeStackMemory: true})
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{{lua.BaseLibName, lua.OpenBase}, {lua.TabLibName, lua.OpenTable}, {lua.StringLibName, lua.OpenString}, {lua.MathLibName, lua.OpenMath}} {
		L.Push(L.NewFunction(lib.open))
		L.Push(lua.LString(lib.name))
		L.Call(1, 0)
	}
	g := L.G.Global
	safe := L.NewTable()
	for _, name := range []string{"assert", "error", "ipairs", "next", "pairs", "select", "tonumber", "tostring", "type", "unpack"} {
		safe.RawSetString(name, g.RawGetString(name))
	}
	str := L.NewTable()
	orig := g.RawGetString("string").(*lua.LTable)
	for _, name := range []string{"byte", "char", "len", "lower", "upper", "reverse", "sub"} {
		str.RawSetString(name, orig.RawGetString(name))
	}
	str.RawSetString("rep", L.NewFunction(luaStrRep))
	str.RawSetString("format", L.NewFunction(luaStrFormat(orig.RawGetString("format"))))
	for _, name := range []string{"find", "match", "gmatch", "gsub", "dump"} {
		name := name
		str.RawSetString(name, L.NewFunction(func(L *lua.LState) int {
			L.RaiseError("string.%s is not evaluated by xmppneg's sandbox (Lua patterns can take unbounded time)", name)
			return 0
		}))
	}
	safe.RawSetString("string", str)
	tab := L.NewTable()
	origTab := g.RawGetString("table").(*lua.LTable)
	for _, name := range []string{"insert", "remove", "getn", "maxn"} {
		tab.RawSetString(name, origTab.RawGetString(name))
	}
	tab.RawSetString("concat", L.NewFunction(luaTableConcat(origTab.RawGetString("concat"))))
	safe.RawSetString("table", tab)
	m := L.NewTable()
	g.RawGetString("math").(*lua.LTable).ForEach(func(k, v lua.LValue) {
		if k.String() != "random" && k.String() != "randomseed" {
			m.RawSet(k, v)
		}
	})
	safe.RawSetString("math", m)
	// Methods on strings ("x"):upper() use the sandbox's string table.
	mt := L.NewTable()
	mt.RawSetString("__index", str)
	L.SetMetatable(lua.LString(""), mt)
	// Nothing reaches the real globals any more.
	for _, k := range []string{"string", "table", "math", "_G"} {
		g.RawSetString(k, lua.LNil)
	}
	return L, safe
}

func luaStrRep(L *lua.LState) int {
	s := L.CheckString(1)
	n := L.CheckInt(2)
	if n <= 0 || s == "" {
		L.Push(lua.LString(""))
		return 1
	}
	if len(s)*n > maxLuaString || n > maxLuaString {
		L.RaiseError("string.rep: a string of more than %d bytes", maxLuaString)
	}
	L.Push(lua.LString(strings.Repeat(s, n)))
	return 1
}

// luaStrFormat bounds widths and precisions as Lua does (two digits):
// gopher-lua passes the format to Go's fmt, which would allocate any
// width asked for.
func luaStrFormat(orig lua.LValue) lua.LGFunction {
	return func(L *lua.LState) int {
		f := L.CheckString(1)
		for i := 0; i < len(f); i++ {
			if f[i] != '%' {
				continue
			}
			digits := 0
			for i++; i < len(f) && strings.IndexByte("-+ #0123456789.", f[i]) >= 0; i++ {
				if f[i] >= '0' && f[i] <= '9' {
					digits++
					if digits > 2 {
						L.RaiseError("invalid format (width or precision too long)")
					}
				} else if f[i] == '.' {
					digits = 0
				}
			}
		}
		top := L.GetTop()
		L.Push(orig)
		for i := 1; i <= top; i++ {
			L.Push(L.Get(i))
		}
		L.Call(top, 1)
		return 1
	}
}

func luaTableConcat(orig lua.LValue) lua.LGFunction {
	return func(L *lua.LState) int {
		t := L.CheckTable(1)
		sep := L.OptString(2, "")
		total := 0
		n := t.Len()
		if n > maxLuaString {
			L.RaiseError("table.concat: more than %d items", maxLuaString)
		}
		for i := 1; i <= n; i++ {
			total += len(t.RawGetInt(i).String()) + len(sep)
			if total > maxLuaString {
				L.RaiseError("table.concat: a string of more than %d bytes", maxLuaString)
			}
		}
		top := L.GetTop()
		L.Push(orig)
		for i := 1; i <= top; i++ {
			L.Push(L.Get(i))
		}
		L.Call(top, 1)
		return 1
	}
}

// watchMemory cancels ctx when the process's heap grows by more than
// limit bytes while the configuration runs: gopher-lua has no allocation
// hook, so a table or a string growing without bound is caught by
// sampling (every 2 ms; string functions are bounded on their own).
func watchMemory(ctx context.Context, cancel context.CancelCauseFunc, limit uint64) {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(sample)
	if sample[0].Value.Kind() != metrics.KindUint64 {
		return
	}
	start := sample[0].Value.Uint64()
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			metrics.Read(sample)
			if now := sample[0].Value.Uint64(); now > start+limit {
				cancel(fmt.Errorf("the configuration allocated more than %d MiB", limit>>20))
				return
			}
		}
	}
}
