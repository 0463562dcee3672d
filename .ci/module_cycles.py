"""Import cycles between the modules of a crate: `python3 .ci/module_cycles.py src ...`.

Each file is a module (mod.rs / lib.rs stand for their folder). An edge a → b is a path
in a's code that names b: `crate::b::…`, `super::b::…`, or b inside `use super::{…}`.
Comments, doc comments and `#[cfg(test)]` blocks are left out, and so is the crate root
(lib.rs declares and re-exports every module). Prints the modules and edges it read and
every cycle (a strongly connected component of more than one module); exits with 1 if
any folder given has one."""
import os,re,sys,itertools

def check(root):
    mods={}
    for dp,_,fs in os.walk(root):
        for f in fs:
            if not f.endswith('.rs'): continue
            p=os.path.join(dp,f); rel=os.path.relpath(p,root)[:-3]
            parts=rel.split(os.sep)
            if parts[-1] in ('mod','lib','main'): parts=parts[:-1]
            mods['::'.join(parts)]=p
    def strip(src):
        out=[]
        for l in src.split('\n'):
            t=l.strip()
            if t.startswith('//'): continue
            out.append(l)
        s='\n'.join(out)
        # drop #[cfg(test)] mod tests { ... } blocks
        i=s.find('#[cfg(test)]')
        while i!=-1:
            j=s.find('{',i)
            depth=0;k=j
            while k<len(s):
                if s[k]=='{':depth+=1
                elif s[k]=='}':
                    depth-=1
                    if depth==0:break
                k+=1
            s=s[:i]+s[k+1:]
            i=s.find('#[cfg(test)]')
        return s
    edges={m:set() for m in mods}
    for m,p in mods.items():
        s=strip(open(p).read())
        parent='::'.join(m.split('::')[:-1]) if m else ''
        names=set()
        for x in re.findall(r'crate::([a-z_][a-z0-9_]*(?:::[a-z_][a-z0-9_]*)*)',s):
            names.add(x)
        for x in re.findall(r'super::([a-z_][a-z0-9_]*(?:::[a-z_][a-z0-9_]*)*)',s):
            names.add((parent+'::' if parent else '')+x)
        for grp in re.findall(r'(?:super|crate)::\{([^}]*)\}',s):
            for x in re.split(r'[,\s]+',grp):
                x=x.strip()
                if re.fullmatch(r'[a-z_][a-z0-9_]*',x):
                    pre=parent if 'super' in s else ''
                    names.add(x)
                    if parent: names.add(parent+'::'+x)
        for n in names:
            parts=n.split('::')
            for k in range(len(parts),0,-1):
                cand='::'.join(parts[:k])
                if cand in mods and cand!=m and not m.startswith(cand+'::') and cand!='':
                    edges[m].add(cand); break
    # find cycles (strongly connected components of size > 1)
    index={};low={};st=[];on=set();sccs=[];c=[0]
    def sc(v):
        index[v]=low[v]=c[0];c[0]+=1;st.append(v);on.add(v)
        for w in edges[v]:
            if w not in index: sc(w);low[v]=min(low[v],low[w])
            elif w in on: low[v]=min(low[v],index[w])
        if low[v]==index[v]:
            comp=[]
            while True:
                w=st.pop();on.discard(w);comp.append(w)
                if w==v:break
            if len(comp)>1: sccs.append(comp)
    sys.setrecursionlimit(10000)
    for v in edges:
        if v not in index: sc(v)
    print(f"{len(mods)} modules, {sum(len(e) for e in edges.values())} edges")
    for comp in sccs:
        print("cycle:", ' ↔ '.join(sorted(comp)))
        for a in comp:
            print("   ",a,"→",sorted(edges[a]&set(comp)))
    if not sccs: print("no cycles")
    return not sccs


if __name__ == "__main__":
    ok = True
    for folder in sys.argv[1:]:
        print(folder + ":", end=" ")
        ok = check(folder) and ok
    sys.exit(0 if ok else 1)
