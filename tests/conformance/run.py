#!/usr/bin/env python3
"""Conformance corpus runner: builds every tests/conformance/cases/*.case with an ocib binary and
checks the expectations (format: tests/conformance/README.md).

  run.py OCIB [NAME-SUBSTRING...]          build with ocib; PASS / FAIL / KNOWN-DIFF / SKIP per case
  run.py --reference [NAME-SUBSTRING...]   build with /work/shared/reference/buildkit.sh (BuildKit) and
                                           check the same expectations against its output (for authors)
Exit status: 0 when no case FAILed (a known-difference case that passes is a FAIL: remove its marker).
"""
import json, os, shlex, shutil, stat, subprocess, sys, tarfile, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
CASES = os.path.join(HERE, "cases")
BUSYBOX = "/bin/busybox"
REFERENCE = os.environ.get("OCIB_REFERENCE", "/work/shared/reference/buildkit.sh")


class CaseError(Exception):
    pass


def parse_case(path):
    c = {"name": os.path.basename(path)[:-5], "meta": {}, "sections": [], "expect": []}
    cur = None
    last_key = None
    with open(path) as f:
        lines = f.read().split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for ln in lines:
        if ln.startswith("=== "):
            head = ln[4:].strip()
            kind, _, rest = head.partition(" ")
            cur = {"kind": kind, "arg": rest.strip(), "lines": []}
            c["sections"].append(cur)
            continue
        if cur is None:
            if ln.startswith("#   ") and last_key:
                # a continuation of the header line above it
                c["meta"][last_key][-1] += " " + ln[1:].strip()
                continue
            last_key = None
            if ln.startswith("#") and ":" in ln and " " not in ln[1:].split(":")[0].strip():
                k, _, v = ln[1:].partition(":")
                k = k.strip()
                c["meta"].setdefault(k, []).append(v.strip())
                last_key = k
            elif ln.strip() and not ln.startswith("#"):
                raise CaseError(f"{path}: text before the first section: {ln!r}")
            continue
        cur["lines"].append(ln)
    for s in c["sections"]:
        if s["kind"] == "expect":
            for ln in s["lines"]:
                if ln.strip() and not ln.lstrip().startswith("#"):
                    c["expect"].append(ln.strip())
    return c


def section_text(s):
    # A section's text is its lines joined with "\n" and a final "\n"; `=== file NAME noeol` drops it.
    t = "\n".join(s["lines"])
    while t.endswith("\n\n"):
        t = t[:-1]
    if s["lines"] and not t.endswith("\n"):
        t += "\n"
    return t


def make_context(c, work):
    ctx = os.path.join(work, "ctx")
    os.makedirs(ctx)
    shutil.copy(BUSYBOX, os.path.join(ctx, "busybox"))
    os.chmod(os.path.join(ctx, "busybox"), 0o755)
    dockerfile = None
    for s in c["sections"]:
        k, arg = s["kind"], s["arg"]
        if k == "Dockerfile":
            name = arg or "Dockerfile"
            with open(os.path.join(ctx, name), "w") as f:
                f.write(section_text(s))
            dockerfile = name
        elif k == "file":
            words = arg.split()
            p = os.path.join(ctx, words[0])
            os.makedirs(os.path.dirname(p), exist_ok=True)
            text = section_text(s)
            if "noeol" in words[1:]:
                text = text[:-1] if text.endswith("\n") else text
            with open(p, "w") as f:
                f.write(text)
            for w in words[1:]:
                if w.startswith("mode="):
                    os.chmod(p, int(w[5:], 8))
        elif k == "sh":
            r = subprocess.run(["bash", "-euc", "\n".join(s["lines"])], cwd=ctx, capture_output=True, text=True,
                               env=dict(os.environ, CTX=ctx, WORK=work))
            if r.returncode != 0:
                raise CaseError(f"=== sh failed: {r.stderr.strip()}")
        elif k in ("expect",):
            pass
        else:
            raise CaseError(f"unknown section '=== {k}'")
    if dockerfile is None:
        raise CaseError("no '=== Dockerfile' section")
    if c["meta"].get("dockerfile"):
        dockerfile = c["meta"]["dockerfile"][0]  # -f names this path of the context (a symlink, say)
    return ctx, dockerfile


def case_args(c, ctx, work):
    args = []
    for a in c["meta"].get("args", []):
        args += [w.replace("$CTX", ctx).replace("$WORK", work) for w in shlex.split(a)]
    env = {}
    for e in c["meta"].get("env", []):
        k, _, v = e.partition("=")
        env[k.strip()] = v
    return args, env


# ---- the filesystem views: ocib's tar output, BuildKit's applied fs/ -------------------------

class TarFS:
    def __init__(self, path):
        self.e = {}
        with tarfile.open(path) as t:
            for m in t.getmembers():
                n = m.name
                while n.startswith("./"):
                    n = n[2:]
                n = "/" + n.strip("/")
                data = None
                if m.isfile():
                    data = t.extractfile(m).read()
                self.e[n] = m, data
        self.e.setdefault("/", (None, None))

    def get(self, p):
        if p not in self.e:
            return None
        m, data = self.e[p]
        if m is None:
            return {"type": "dir", "mode": None, "uid": 0, "gid": 0}
        kind = "dir" if m.isdir() else "symlink" if m.issym() else "file" if m.isfile() else \
            "hardlink" if m.islnk() else "other"
        if kind == "hardlink":
            tgt = "/" + m.linkname.lstrip("./").strip("/")
            base = self.get(tgt)
            if base:
                base = dict(base, mode=m.mode & 0o7777, uid=m.uid, gid=m.gid)
            return base
        return {"type": kind, "mode": m.mode & 0o7777, "uid": m.uid, "gid": m.gid, "data": data,
                "link": m.linkname, "mtime": m.mtime}

    def listdir(self, p):
        pre = p.rstrip("/") + "/"
        return sorted({k[len(pre):].split("/")[0] for k in self.e if k.startswith(pre) and k != pre})


class DirFS:
    def __init__(self, root):
        self.root = root

    def get(self, p):
        full = os.path.join(self.root, p.lstrip("/"))
        try:
            st = os.lstat(full)
        except (FileNotFoundError, NotADirectoryError):
            return None
        kind = "dir" if stat.S_ISDIR(st.st_mode) else "symlink" if stat.S_ISLNK(st.st_mode) else \
            "file" if stat.S_ISREG(st.st_mode) else "other"
        d = {"type": kind, "mode": st.st_mode & 0o7777, "uid": st.st_uid, "gid": st.st_gid, "mtime": int(st.st_mtime)}
        if kind == "file":
            with open(full, "rb") as f:
                d["data"] = f.read()
        if kind == "symlink":
            d["link"] = os.readlink(full)
        return d

    def listdir(self, p):
        return sorted(os.listdir(os.path.join(self.root, p.lstrip("/"))))


# ---- expectations ---------------------------------------------------------------------------

def jpath(obj, key):
    for part in key.split(".") if key else []:
        if isinstance(obj, dict):
            obj = obj.get(part)
        else:
            return None
    return obj


def check(c, res):
    """res: {"rc", "stderr", "fs", "config", "history"}; returns a list of failure strings."""
    bad = []
    fails = [e for e in c["expect"] if e.split()[0] == "fails"]
    if fails:
        if res["rc"] == 0:
            return ["build succeeded, expected it to fail"]
    elif res["rc"] != 0:
        tail = "\n".join(res["stderr"].strip().splitlines()[-6:])
        return [f"build failed (exit {res['rc']}):\n{tail}"]
    for e in c["expect"]:
        try:
            words = shlex.split(e, posix=False)
            op = words[0]
            if op == "fails":
                if len(words) > 1 and words[1] != "-" and int(words[1]) != res["rc"]:
                    bad.append(f"exit status {res['rc']}, expected {words[1]}")
                continue
            if op == "stderr":
                sub = json.loads(e.split(None, 1)[1])
                if sub not in res["stderr"]:
                    bad.append(f"error output lacks {sub!r}: {res['stderr'].strip()[-600:]!r}")
                continue
            if op == "image":
                # a top-level field of the image config (architecture, os, variant); --reference cannot see them
                if res.get("image") is None:
                    continue
                want = json.loads(e.split(None, 2)[2])
                got = jpath(res["image"], words[1])
                if got != want:
                    bad.append(f"image {words[1]} = {json.dumps(got)}, expected {json.dumps(want)}")
                continue
            if op in ("config", "config-has", "config-lacks"):
                key = words[1]
                want = json.loads(e.split(None, 2)[2]) if len(words) > 2 else None
                got = jpath(res["config"], key)
                if op == "config" and got != want:
                    bad.append(f"config {key} = {json.dumps(got)}, expected {json.dumps(want)}")
                if op == "config-has" and (got is None or want not in got):
                    bad.append(f"config {key} = {json.dumps(got)}, expected it to contain {json.dumps(want)}")
                if op == "config-lacks" and got is not None and want in got:
                    bad.append(f"config {key} = {json.dumps(got)}, expected it not to contain {json.dumps(want)}")
                continue
            if op == "history-count":
                if len(res["history"]) != int(words[1]):
                    bad.append(f"{len(res['history'])} history entries, expected {words[1]}: {res['history']!r}")
                continue
            if op == "history-empty":
                idx, want = int(words[1]), words[2] == "true"
                h = res["history_empty"]
                got = h[idx] if -len(h) <= idx < len(h) else "missing"
                if got is not None and got != want:
                    bad.append(f"history[{idx}] empty_layer = {got}, expected {want}")
                continue
            if op == "history":
                idx, rel = int(words[1]), words[2]
                want = json.loads(e.split(None, 3)[3])
                h = res["history"]
                got = h[idx] if -len(h) <= idx < len(h) else None
                if got is None or (rel == "=" and got != want) or (rel == "~" and want not in got):
                    bad.append(f"history[{idx}] = {got!r}, expected {rel} {want!r}")
                if rel == "!~" and got is not None and want in got:
                    bad.append(f"history[{idx}] = {got!r}, expected it not to contain {want!r}")
                continue
            rest = e.split(None, 1)[1]
            if rest.startswith('"'):  # a JSON-quoted path (spaces)
                path, end = json.JSONDecoder().raw_decode(rest)
                rest = rest[end:].strip()
            else:
                path, _, rest = rest.partition(" ")
                rest = rest.strip()
            words = [op, path] + rest.split()
            ent = res["fs"].get(path)
            if op == "absent":
                if ent is not None:
                    bad.append(f"{path} exists ({ent['type']}), expected absent")
                continue
            if ent is None:
                bad.append(f"{path} is missing")
                continue
            if op == "exists":
                pass
            elif op == "type":
                if ent["type"] != words[2]:
                    bad.append(f"{path} is a {ent['type']}, expected {words[2]}")
            elif op == "mtime":
                if int(ent.get("mtime", -1)) != int(words[2]):
                    bad.append(f"{path} mtime {ent.get('mtime')}, expected {words[2]}")
            elif op == "mode":
                if ent["mode"] != int(words[2], 8):
                    bad.append(f"{path} mode {ent['mode']:04o}, expected {words[2]}")
            elif op == "owner":
                got = f"{ent['uid']}:{ent['gid']}"
                if got != words[2]:
                    bad.append(f"{path} owner {got}, expected {words[2]}")
            elif op == "link":
                if ent["type"] != "symlink" or ent.get("link") != words[2]:
                    bad.append(f"{path} is {ent['type']} -> {ent.get('link')!r}, expected symlink -> {words[2]}")
            elif op in ("content", "contains", "lacks"):
                want = json.loads(rest)
                if ent["type"] != "file":
                    bad.append(f"{path} is a {ent['type']}, expected a file")
                    continue
                got = ent["data"].decode("utf-8", "replace")
                if op == "content" and got != want:
                    bad.append(f"{path} holds {got!r}, expected {want!r}")
                if op == "contains" and want not in got:
                    bad.append(f"{path} holds {got!r}, expected it to contain {want!r}")
                if op == "lacks" and want in got:
                    bad.append(f"{path} holds {got!r}, expected it not to contain {want!r}")
            elif op == "entries":
                want = json.loads(rest)
                got = res["fs"].listdir(path) if ent["type"] == "dir" else None
                if got != sorted(want):
                    bad.append(f"{path} holds {got}, expected {sorted(want)}")
            else:
                bad.append(f"unknown expectation {op!r}")
        except (ValueError, IndexError, json.JSONDecodeError) as x:
            bad.append(f"cannot read expectation {e!r}: {x}")
    return bad


# ---- builders -------------------------------------------------------------------------------

def build_ocib(ocib, store, c, work):
    ctx, df = make_context(c, work)
    args, env = case_args(c, ctx, work)
    tarp, lay = os.path.join(work, "fs.tar"), os.path.join(work, "layout")
    cmd = [ocib, "build", "--progress=plain", "-f", os.path.join(ctx, df), *args,
           "-o", f"type=tar,dest={tarp}", "-o", f"type=oci-layout,dest={lay}", ctx]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=240,
                       env=dict(os.environ, OCIB_ROOT=store, **env))
    res = {"rc": r.returncode, "stderr": r.stderr + r.stdout, "fs": None, "config": {}, "history": [], "history_empty": []}
    if r.returncode == 0:
        res["fs"] = TarFS(tarp)
        idx = json.load(open(os.path.join(lay, "index.json")))
        blob = lambda d: os.path.join(lay, "blobs", *d.split(":", 1))
        m = json.load(open(blob(idx["manifests"][0]["digest"])))
        if "manifests" in m:
            m = json.load(open(blob(m["manifests"][0]["digest"])))
        cfg = json.load(open(blob(m["config"]["digest"])))
        res["config"] = cfg.get("config", {})
        res["image"] = {k: v for k, v in cfg.items() if k not in ("config", "history", "rootfs")}
        res["history"] = [h.get("created_by", "") for h in cfg.get("history", [])]
        res["history_empty"] = [bool(h.get("empty_layer", False)) for h in cfg.get("history", [])]
    return res


def build_reference(c, work):
    ctx, df = make_context(c, work)
    args, env = case_args(c, ctx, work)
    out = os.path.join(work, "bk-out")
    r = subprocess.run([REFERENCE, "-f", os.path.join(ctx, df), *args, ctx], capture_output=True, text=True,
                       env=dict(os.environ, BK_OUT=out, **env))
    log = open(os.path.join(out, "log")).read() if os.path.exists(os.path.join(out, "log")) else ""
    res = {"rc": r.returncode, "stderr": log + r.stderr, "fs": None, "config": {}, "history": [], "history_empty": []}
    if r.returncode == 0:
        res["fs"] = DirFS(os.path.join(out, "fs"))
        res["config"] = json.load(open(os.path.join(out, "config.json")))
        hist = [json.loads(l) for l in open(os.path.join(out, "history.json")) if l.strip()]
        res["history"] = [h.get("CreatedBy", "") for h in reversed(hist)]
        res["history_empty"] = [None for _ in hist]  # docker history does not say
    return res


def main(argv):
    reference = argv[:1] == ["--reference"]
    if reference:
        filters = argv[1:]
        ocib = None
    else:
        if not argv:
            print(__doc__, file=sys.stderr)
            return 2
        ocib, filters = os.path.abspath(argv[0]), argv[1:]
        if not os.access(ocib, os.X_OK):
            print(f"ocib binary {ocib} not executable", file=sys.stderr)
            return 2
    if not os.access(BUSYBOX, os.X_OK) or subprocess.run(["ldd", BUSYBOX], capture_output=True).returncode == 0:
        print("SKIP: a static /bin/busybox is needed (apt-get install busybox-static)")
        return 125
    if os.geteuid() != 0 and not os.environ.get("OCIB_CONFORMANCE_ANY_USER"):
        # Owners (COPY --chown, chown in RUN, USER) are part of the expectations; rootless builds map them.
        print("SKIP: run as root (the cases check file owners); OCIB_CONFORMANCE_ANY_USER=1 runs them anyway")
        return 125
    names = sorted(n[:-5] for n in os.listdir(CASES) if n.endswith(".case"))
    if filters:
        names = [n for n in names if any(f in n for f in filters)]
    top = tempfile.mkdtemp(prefix="ocib-conformance.")
    os.chmod(top, 0o755)
    store = os.path.join(top, "store")
    counts = {"PASS": 0, "FAIL": 0, "KNOWN-DIFF": 0, "SKIP": 0}
    t0 = time.time()
    try:
        for n in names:
            work = os.path.join(top, n)
            os.makedirs(work)
            t1 = time.time()
            try:
                c = parse_case(os.path.join(CASES, n + ".case"))
                req = c["meta"].get("requires", [])
                if "root" in req and os.geteuid() != 0:
                    print(f"SKIP       {n}: needs root", flush=True)
                    counts["SKIP"] += 1
                    continue
                if "amd64" in req and os.uname().machine != "x86_64":
                    print(f"SKIP       {n}: expects an amd64 host", flush=True)
                    counts["SKIP"] += 1
                    continue
                if reference and c["meta"].get("reference", [""])[0].startswith("no"):
                    print(f"SKIP       {n}: {c['meta']['reference'][0]}", flush=True)
                    counts["SKIP"] += 1
                    continue
                res = build_reference(c, work) if reference else build_ocib(ocib, store, c, work)
                bad = check(c, res)
            except CaseError as x:
                bad = [str(x)]
                c = {"meta": {}}
            except subprocess.TimeoutExpired:
                bad = ["build timed out"]
            dt = time.time() - t1
            kd = c["meta"].get("known-difference") if not reference else None
            if kd and bad:
                verdict = "KNOWN-DIFF"
                detail = kd[0]
            elif kd:
                verdict, detail = "FAIL", "passes but is marked known-difference: remove the marker"
            elif bad:
                verdict, detail = "FAIL", "; ".join(bad)
            else:
                verdict, detail = "PASS", ""
            counts[verdict] += 1
            print(f"{verdict:<10} {n} ({dt:.1f}s){': ' + detail if detail else ''}", flush=True)
            if verdict == "KNOWN-DIFF" and os.environ.get("OCIB_CONFORMANCE_VERBOSE"):
                print("           observed: " + "; ".join(bad), flush=True)
            if not os.environ.get("OCIB_CONFORMANCE_KEEP"):
                shutil.rmtree(work, ignore_errors=True)
    finally:
        if os.environ.get("OCIB_CONFORMANCE_KEEP"):
            print(f"kept {top}")
        else:
            shutil.rmtree(top, ignore_errors=True)
    print(f"{len(names)} cases: {counts['PASS']} pass, {counts['FAIL']} fail, {counts['KNOWN-DIFF']} known-diff, "
          f"{counts['SKIP']} skip ({time.time() - t0:.0f}s)")
    return 1 if counts["FAIL"] else 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except BrokenPipeError:  # output piped into head
        sys.exit(1)
