"""Prints the tables of docs/results/2026-12-06-ffn-line.md: each model the validations timed,
its measured decode time and the predictions of the same profile by tailor before (OLD: a
release build of 06894e7) and after the FFN line (target/release/tailor), then mean and
largest |predicted/measured - 1| and Kendall's tau per set and phase. Run from the
repository root: python3 docs/results/2026-12-06-ffn-line/table.py \
  docs/results/2026-12-06-ffn-line/validate-picks.json docs/results/2026-12-06-ffn-line/validate-sample.json
"""
import json, subprocess, sys, os, statistics as st, itertools
D='docs/results/2026-12-06-ffn-line'; E=os.environ.get('OUT','out/ffn-line'); P=D+'/profile-llamacpp-q4_0-xeon.toml'; os.makedirs(E, exist_ok=True)
def toml_of(spec):
    lines=['format_version = 1','','[model]']
    for k,v in spec.items():
        if v is None: continue
        if isinstance(v,bool): v='true' if v else 'false'
        elif isinstance(v,str): v='"%s"'%v
        lines.append(f'{k} = {v}')
    return '\n'.join(lines)+'\n'
def predict(binary, spec, tag):
    f=f'{E}/tmp-{tag}.toml'; open(f,'w').write(toml_of(spec))
    out=subprocess.run([binary,'predict',f,'--profile',P,'--prompt','64','--context','128','--json'],capture_output=True,text=True)
    if out.returncode: sys.exit(out.stderr)
    return json.loads(out.stdout)
def dig(d, key):
    # first value under `key` anywhere
    if isinstance(d,dict):
        if key in d: return d[key]
        for v in d.values():
            r=dig(v,key)
            if r is not None: return r
    return None
def tau(a,b):
    c=d=0
    for i,j in itertools.combinations(range(len(a)),2):
        s=(a[i]-a[j])*(b[i]-b[j])
        c+=s>0; d+=s<0
    return (c-d)/max(1,c+d)
rows=[]
for f in sys.argv[1:]:
    v=json.load(open(f))
    for r in v['rows']:
        if not r.get('measured'): continue
        m=r['measured']
        old=predict(os.environ.get('OLD','out/ffn-line/tailor-old'), r['spec'],'o')
        new=predict('target/release/tailor', r['spec'],'n')
        rows.append(dict(src=os.path.basename(f),id=r['id'],s=r['spec'],meas=m['decode_ms'],pmeas=m['prefill_ms'],
            old=old['decode_ms_per_token'],new=new['decode_ms_per_token'],pold=old['prefill_ms'],pnew=new['prefill_ms'],vnew=r['predicted_decode_ms']))
print('| set | model | measured decode ms | old pred | old ratio | new pred | new ratio |')
print('| --- | --- | --- | --- | --- | --- | --- |')
for r in rows:
    s=r['s']
    name=f"{s['hidden_size']}x{s['num_layers']} {s['num_heads']}/{s['num_kv_heads']} ffn {s['intermediate_size']}"
    assert abs(r['new']-r['vnew'])<1e-6*r['new'], (r['new'], r['vnew'])
    print(f"| {r['src'].split('.')[0]} | {name} | {r['meas']:.3f} | {r['old']:.3f} | {r['meas']/r['old']:.3f} | {r['new']:.3f} | {r['meas']/r['new']:.3f} |")
for ph,mk,ok,nk in [('decode','meas','old','new'),('prefill','pmeas','pold','pnew')]:
    for src in sorted(set(r['src'] for r in rows))+['all']:
        R=[r for r in rows if src in ('all',r['src'])]
        def ape(k): return [abs(r[k]/r[mk]-1) for r in R]
        print(f"{ph} {src}: n={len(R)} old mean APE {st.mean(ape(ok)):.3f} max {max(ape(ok)):.3f} tau {tau([r[ok] for r in R],[r[mk] for r in R]):.2f} | new mean APE {st.mean(ape(nk)):.3f} max {max(ape(nk)):.3f} tau {tau([r[nk] for r in R],[r[mk] for r in R]):.2f}")
