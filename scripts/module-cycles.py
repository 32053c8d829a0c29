#!/usr/bin/env python3
"""The modules of each crate form no cycle: for every crate under crates/, the top-level
modules of src/ and which others they name through `crate::` paths (outside comments and
#[cfg(test)] items), and the strongly connected components of that graph. Exits 1 when a
crate has a cycle. usage: scripts/module-cycles.py [REPO_ROOT] [-v]  (-v: every edge)"""
import os, re, sys
args = [a for a in sys.argv[1:] if a != '-v']
root = args[0] if args else os.path.join(os.path.dirname(os.path.abspath(__file__)), '..')
found = False
def strip_tests(src):
    # remove #[cfg(test)] mod X { ... } blocks and #[cfg(test)] mod x; lines
    out = []
    i = 0
    lines = src.split('\n')
    n = len(lines)
    while i < n:
        l = lines[i]
        if l.strip().startswith('#[cfg(test)]'):
            # skip following item
            j = i + 1
            while j < n and lines[j].strip().startswith('#['):
                j += 1
            if j < n and re.match(r'\s*(pub(\([^)]*\))?\s+)?mod\s+\w+\s*;', lines[j]):
                i = j + 1; continue
            if j < n and '{' in lines[j]:
                depth = 0
                k = j
                while k < n:
                    depth += lines[k].count('{') - lines[k].count('}')
                    if depth <= 0 and k >= j and '{' in ''.join(lines[j:k+1]):
                        break
                    k += 1
                i = k + 1; continue
            i = j + 1; continue
        out.append(l)
        i += 1
    return '\n'.join(out)
def nocomment(src):
    return '\n'.join(re.sub(r'//.*', '', l) for l in src.split('\n'))
for crate in sorted(os.listdir(f'{root}/crates')):
    src = f'{root}/crates/{crate}/src'
    if not os.path.isdir(src): continue
    mods = {}
    for dp, dn, fn in os.walk(src):
        for f in fn:
            if not f.endswith('.rs'): continue
            p = os.path.join(dp, f)
            rel = os.path.relpath(p, src)
            parts = rel[:-3].split('/')
            if parts[-1] == 'mod': parts = parts[:-1]
            if parts in (['lib'], ['main']) : continue
            if parts == ['tests'] or parts[-1] == 'tests': continue
            top = parts[0]
            mods.setdefault(top, '')
            mods[top] += '\n' + nocomment(strip_tests(open(p).read()))
    g = {m: set() for m in mods}
    for m, s in mods.items():
        for ref in re.findall(r'crate::(\w+)', s):
            if ref in mods and ref != m: g[m].add(ref)
        # use crate::{a, b::{..}, ...}: top-level items of the group
        for mt in re.finditer(r'crate::\{', s):
            i = mt.end(); depth = 1; cur = ''; items = []
            while i < len(s) and depth:
                ch = s[i]
                if ch == '{': depth += 1
                elif ch == '}': depth -= 1
                if depth == 1 and ch == ',': items.append(cur); cur = ''
                elif depth >= 1: cur += ch
                i += 1
            items.append(cur)
            for it in items:
                mm = re.match(r'\s*(\w+)', it)
                if mm and mm.group(1) in mods and mm.group(1) != m: g[m].add(mm.group(1))
    # tarjan
    idx = {}; low = {}; st = []; on = set(); sccs = []; c = [0]
    def sc(v):
        idx[v] = low[v] = c[0]; c[0] += 1; st.append(v); on.add(v)
        for w in g[v]:
            if w not in idx: sc(w); low[v] = min(low[v], low[w])
            elif w in on: low[v] = min(low[v], idx[w])
        if low[v] == idx[v]:
            comp = []
            while True:
                w = st.pop(); on.discard(w); comp.append(w)
                if w == v: break
            if len(comp) > 1: sccs.append(sorted(comp))
    sys.setrecursionlimit(10000)
    for v in g:
        if v not in idx: sc(v)
    print(crate, sccs if sccs else 'no cycles')
    found = found or bool(sccs)
    if '-v' in sys.argv:
        for k in sorted(g): print('   ', k, '->', sorted(g[k]))
sys.exit(1 if found else 0)
